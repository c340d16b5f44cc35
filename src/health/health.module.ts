import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { EngineModule } from '../engine/engine.module';
import { LifecycleModule } from '../lifecycle/lifecycle.module';
import { HealthController } from './health.controller';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), LifecycleModule, EngineModule],
  controllers: [HealthController],
})
export class HealthModule {}

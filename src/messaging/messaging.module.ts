import { Module } from '@nestjs/common';
import { EngineModule } from '../engine/engine.module';
import { ConnectionRegistry } from './connection-registry';
import { Messenger } from './messenger';

/** The outbound port: this node's clients, and users anywhere in the deployment (the cluster bus). */
@Module({
  imports: [EngineModule],
  providers: [ConnectionRegistry, Messenger],
  exports: [ConnectionRegistry, Messenger],
})
export class MessagingModule {}

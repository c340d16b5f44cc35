import { Module } from '@nestjs/common';
import { DrainState } from './drain-state';

@Module({ providers: [DrainState], exports: [DrainState] })
export class LifecycleModule {}

import { Global, Module } from '@nestjs/common';
import { ConnectionRegistry } from './connection-registry';
import { Messenger } from './messenger';

/** The outbound side, shared by the gateway (which registers connections) and every feature. */
@Global()
@Module({
  providers: [ConnectionRegistry, Messenger],
  exports: [ConnectionRegistry, Messenger],
})
export class MessagingModule {}

import { Module } from '@nestjs/common';
import { EngineModule } from '../engine/engine.module';
import { ActivityFeed } from './activity';
import { ConnectionRegistry } from './connection-registry';
import { Messenger } from './messenger';
import { RemoteRoutes, remoteRoutesOptionsProvider } from './remote-routes';

/**
 * The outbound port: this node's clients, and users anywhere in the deployment (the cluster bus);
 * and the feed of what happened (ActivityFeed), for the modules that report it elsewhere.
 */
@Module({
  imports: [EngineModule],
  providers: [ConnectionRegistry, Messenger, RemoteRoutes, remoteRoutesOptionsProvider, ActivityFeed],
  exports: [ConnectionRegistry, Messenger, ActivityFeed],
})
export class MessagingModule {}

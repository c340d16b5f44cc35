import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AuthModule } from '../auth/auth.module';
import { PresenceModule } from '../presence/presence.module';
import { Admission } from './admission';
import { Authenticator } from './authenticator';
import { MessageRouter } from './message-router';
import { WsGateway } from './ws.gateway';

@Module({
  imports: [DiscoveryModule, AuthModule, PresenceModule],
  providers: [Admission, Authenticator, MessageRouter, WsGateway],
  exports: [Admission, WsGateway],
})
export class GatewayModule {}

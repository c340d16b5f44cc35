import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AuthModule } from '../auth/auth.module';
import { LifecycleModule } from '../lifecycle/lifecycle.module';
import { MessagingModule } from '../messaging/messaging.module';
import { ObservabilityModule } from '../observability/observability.module';
import { SessionModule } from '../session/session.module';
import { Admission } from './admission';
import { gatewayLimitsProvider } from './gateway-limits';
import { LoginHandler } from './login.handler';
import { MessageRouter } from './message-router';
import { ProtocolExceptionFilter } from './protocol-exception.filter';
import { WsGateway } from './ws.gateway';

/** The WebSocket endpoint: admission, login, routing to the feature handlers, per-connection limits. */
@Module({
  imports: [DiscoveryModule, AuthModule, SessionModule, MessagingModule, ObservabilityModule, LifecycleModule],
  providers: [Admission, LoginHandler, MessageRouter, ProtocolExceptionFilter, WsGateway, gatewayLimitsProvider],
  exports: [Admission, WsGateway],
})
export class GatewayModule {}

import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { EngineModule } from '../engine/engine.module';
import { MessagingModule } from '../messaging/messaging.module';
import { ObservabilityModule } from '../observability/observability.module';
import { SessionModule } from '../session/session.module';
import { TokenLifecycle } from './token-lifecycle.service';
import { TokenRefreshHandler } from './token-refresh.handler';
import { tokenOptionsProvider } from './token.options';

/**
 * The token lifecycle (docs/protocol.md, "Token lifecycle"): expiry of a connection's token,
 * TOKEN_REFRESH_MESSAGE, and the periodic re-check (AUTH_RECHECK_INTERVAL_MS).
 */
@Module({
  imports: [AuthModule, EngineModule, MessagingModule, ObservabilityModule, SessionModule],
  providers: [TokenLifecycle, TokenRefreshHandler, tokenOptionsProvider],
  exports: [TokenLifecycle],
})
export class TokenModule {}

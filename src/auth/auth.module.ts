import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HttpModule } from '@nestjs/axios';
import { Module } from '@nestjs/common';
import { AUTH_OPTIONS, authOptionsProvider, type AuthOptions } from './auth.options';
import { ObservabilityModule } from '../observability/observability.module';
import { AuthGuard } from './auth.guard';
import { DemoTokenVerifier } from './demo-token-verifier';
import { HttpTokenVerifier } from './http-token-verifier';
import { TokenHolders } from './token-holders';
import { TokenService } from './token.service';
import { TOKEN_VERIFIER } from './token-verifier';

@Module({
  imports: [
    ObservabilityModule,
    HttpModule.register({
      // Keep-alive: a login storm must not open one TCP connection per CHECK_TOKEN.
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 256 }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
    }),
  ],
  providers: [
    authOptionsProvider,
    HttpTokenVerifier,
    {
      provide: TOKEN_VERIFIER,
      inject: [AUTH_OPTIONS, HttpTokenVerifier],
      useFactory: (config: AuthOptions, http: HttpTokenVerifier) =>
        config.authServerUrl ? http : new DemoTokenVerifier(),
    },
    TokenService,
    TokenHolders,
    AuthGuard,
  ],
  // AUTH_OPTIONS and TokenHolders too: a module that uses @UseGuards(AuthGuard) instantiates the
  // guard in its own scope.
  exports: [TokenService, TokenHolders, AuthGuard, AUTH_OPTIONS],
})
export class AuthModule {}

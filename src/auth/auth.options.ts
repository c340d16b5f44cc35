import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the auth module reads. */
export type AuthOptions = Pick<
  GatewayConfig,
  | 'authServerUrl'
  | 'authTimeoutMs'
  | 'authCacheTtlMs'
  | 'authInvalidCacheMs'
  | 'authBreakerThreshold'
  | 'authBreakerCooldownMs'
  | 'authMaxInFlight'
  | 'authTokenMaxBytes'
  | 'allowQueryToken'
>;

export const AUTH_OPTIONS = Symbol('AUTH_OPTIONS');

export const authOptionsProvider: Provider = {
  provide: AUTH_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: (c: GatewayConfig): AuthOptions => ({
    authServerUrl: c.authServerUrl,
    authTimeoutMs: c.authTimeoutMs,
    authCacheTtlMs: c.authCacheTtlMs,
    authInvalidCacheMs: c.authInvalidCacheMs,
    authBreakerThreshold: c.authBreakerThreshold,
    authBreakerCooldownMs: c.authBreakerCooldownMs,
    authMaxInFlight: c.authMaxInFlight,
    authTokenMaxBytes: c.authTokenMaxBytes,
    allowQueryToken: c.allowQueryToken,
  }),
};

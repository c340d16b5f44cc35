import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the token lifecycle reads. */
export type TokenOptions = Pick<GatewayConfig, 'authRecheckIntervalMs'>;

export const TOKEN_OPTIONS = Symbol('TOKEN_OPTIONS');

export const tokenOptionsProvider: Provider = {
  provide: TOKEN_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: ({ authRecheckIntervalMs }: GatewayConfig): TokenOptions => ({ authRecheckIntervalMs }),
};

import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the session core reads. */
export type SessionOptions = Pick<GatewayConfig, 'duplicateProbeMs'>;

export const SESSION_OPTIONS = Symbol('SESSION_OPTIONS');

export const sessionOptionsProvider: Provider = {
  provide: SESSION_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: ({ duplicateProbeMs }: GatewayConfig): SessionOptions => ({ duplicateProbeMs }),
};

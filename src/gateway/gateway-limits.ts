import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the gateway module reads. */
export type GatewayLimits = Pick<
  GatewayConfig,
  | 'wsPath'
  | 'maxFrameBytes'
  | 'maxConnections'
  | 'allowedOrigins'
  | 'allowQueryToken'
  | 'authDeadlineMs'
  | 'heartbeatIntervalMs'
  | 'rateLimitPerSec'
  | 'rateLimitBurst'
  | 'sendBufferMaxBytes'
  | 'broadcastBatching'
  | 'preAuthMaxFrameBytes'
  | 'maxMessageFrameBytes'
  | 'maxJsonDepth'
  | 'inboundQueueMaxBytes'
  | 'inboundBytesPerSec'
>;

export const GATEWAY_LIMITS = Symbol('GATEWAY_LIMITS');

export const gatewayLimitsProvider: Provider = {
  provide: GATEWAY_LIMITS,
  inject: [GATEWAY_CONFIG],
  useFactory: (config: GatewayConfig): GatewayLimits => config,
};

import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the dialog feature reads. */
export type DialogOptions = Pick<GatewayConfig, 'dialogMaxBytes' | 'deliveryTimeoutMs'>;

export const DIALOG_OPTIONS = Symbol('DIALOG_OPTIONS');

export const dialogOptionsProvider: Provider = {
  provide: DIALOG_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: ({ dialogMaxBytes, deliveryTimeoutMs }: GatewayConfig): DialogOptions => ({ dialogMaxBytes, deliveryTimeoutMs }),
};

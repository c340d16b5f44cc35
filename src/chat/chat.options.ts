import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the chat feature reads. */
export type ChatOptions = Pick<GatewayConfig, 'chatMaxLength'>;

export const CHAT_OPTIONS = Symbol('CHAT_OPTIONS');

export const chatOptionsProvider: Provider = {
  provide: CHAT_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: ({ chatMaxLength }: GatewayConfig): ChatOptions => ({ chatMaxLength }),
};

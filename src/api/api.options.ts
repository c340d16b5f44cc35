import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the Server API reads. */
export interface ApiOptions {
  /** API_KEYS: at least one (the module is imported only when the API is on). */
  readonly keys: readonly string[];
  readonly port: number;
  readonly host: string;
  /** PORT, which API_PORT may not be. */
  readonly publicPort: number;
  /** HEADERS_TIMEOUT_MS, as on the public listener. */
  readonly headersTimeoutMs: number;
  /**
   * The largest request body: MAX_MESSAGE_FRAME_BYTES + DIALOG_MAX_BYTES, the largest message frame
   * a client may send plus room for a pretty-printed clientData. Larger bodies get 413 unread.
   */
  readonly bodyMaxBytes: number;
  /** MAX_JSON_DEPTH: deeper bodies are refused (400) without being parsed. */
  readonly maxJsonDepth: number;
  /** DELIVERY_TIMEOUT_MS: how long a disconnect or a profile change waits for the user's node. */
  readonly commandTimeoutMs: number;
  /** API_KEY_FAILURES_PER_MINUTE: wrong keys per client address (a burst of as many, then that rate) before 429. */
  readonly keyFailuresPerMinute: number;
}

export const API_OPTIONS = Symbol('API_OPTIONS');

export function apiOptionsOf(config: GatewayConfig): ApiOptions {
  return {
    keys: config.apiKeys ?? [],
    port: config.apiPort,
    host: config.apiHost,
    publicPort: config.port,
    headersTimeoutMs: config.headersTimeoutMs,
    bodyMaxBytes: config.maxMessageFrameBytes + config.dialogMaxBytes,
    maxJsonDepth: config.maxJsonDepth,
    commandTimeoutMs: config.deliveryTimeoutMs,
    keyFailuresPerMinute: config.apiKeyFailuresPerMinute,
  };
}

export const apiOptionsProvider: Provider = {
  provide: API_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: apiOptionsOf,
};

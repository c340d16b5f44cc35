import type { Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';

/** The slice of the configuration the events module reads (EVENTS_*). */
export interface EventsOptions {
  /** NATS servers (EVENTS_NATS_URL); the module is only imported when there is at least one. */
  natsUrls: readonly string[];
  /** Subjects are `<subjectPrefix>.<kind>` (EVENTS_SUBJECT_PREFIX). */
  subjectPrefix: string;
  /** Publish with JetStream acknowledgement, retried until acknowledged (EVENTS_JETSTREAM). */
  jetStream: boolean;
  /** Events kept while they cannot be published (EVENTS_BUFFER_MAX); beyond, the oldest are dropped. */
  bufferMax: number;
  /**
   * How long a fact may wait for the next publishing batch (ms; 0: the next event-loop turn). One
   * batch is one socket write to NATS: batching is what keeps an event's cost at a few microseconds.
   */
  flushIntervalMs: number;
}

/** Events are published in batches at most this far apart. */
export const FLUSH_INTERVAL_MS = 10;

export const EVENTS_OPTIONS = Symbol('EVENTS_OPTIONS');

export const eventsOptionsProvider: Provider = {
  provide: EVENTS_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: (config: GatewayConfig): EventsOptions => ({
    natsUrls: config.eventsNatsUrls ?? [],
    subjectPrefix: config.eventsSubjectPrefix,
    jetStream: config.eventsJetStream,
    bufferMax: config.eventsBufferMax,
    flushIntervalMs: FLUSH_INTERVAL_MS,
  }),
};

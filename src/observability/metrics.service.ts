import { Inject, Injectable, Optional, type Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MessageType } from '../protocol/protocol';
import { PlainHistogram } from './plain-histogram';

const KNOWN_TYPES = new Set<string>(Object.values(MessageType));

/** The slice of the configuration the metrics read. */
export interface MetricsOptions {
  /**
   * METRICS_EVENT_LOOP_RESOLUTION_MS: how often the event-loop delay (`nodejs_eventloop_lag_*`) is
   * sampled. Each sample is a timer that wakes the event loop: at prom-client's default of 10 ms,
   * 100 wake-ups a second, ~1 % of a core on an idle node.
   */
  readonly eventLoopResolutionMs: number;
}

export const METRICS_OPTIONS = Symbol('METRICS_OPTIONS');
export const DEFAULT_EVENT_LOOP_RESOLUTION_MS = 100;

export const metricsOptionsProvider: Provider = {
  provide: METRICS_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: ({ metricsEventLoopResolutionMs }: GatewayConfig): MetricsOptions => ({ eventLoopResolutionMs: metricsEventLoopResolutionMs }),
};

/** Bounded label values: a message type we know, or "other" (a client can send any string). */
export function typeLabel(type: string | undefined): string {
  return type !== undefined && KNOWN_TYPES.has(type) ? type : 'other';
}

/**
 * The gateway's Prometheus metrics. Labels are bounded enums (message type, outcome, close
 * code): never a user id or a token. Per-frame counts are plain integers on the hot path,
 * copied into prom-client at scrape time.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly received = new Map<string, number>();
  private readonly sent = new Map<string, number>();
  private readonly deliveries = new Map<string, number>();
  private readonly eventsPublished = new Map<string, number>();
  private connectionSource: () => { open: number; authenticated: number } = () => ({ open: 0, authenticated: 0 });

  readonly authChecks = new Counter({
    name: 'gateway_auth_checks_total',
    help: 'Token checks by outcome (valid, invalid, unavailable, circuit_open, cached)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly authCheckDuration = new Histogram({
    name: 'gateway_auth_check_duration_seconds',
    help: 'Duration of CHECK_TOKEN requests to the authorization server',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly dialogDeliveryDuration = new PlainHistogram(
    'gateway_dialog_delivery_duration_seconds',
    'From accepting a DIALOG_MESSAGE to knowing its delivery outcome',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    this.registry,
  );
  readonly disconnects = new Counter({
    name: 'gateway_disconnects_total',
    help: 'Closed connections by close code',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly droppedBeforeAuth = new Counter({
    name: 'gateway_frames_dropped_before_auth_total',
    help: 'Frames discarded because they arrived before AUTH SUCCESS',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'gateway_rate_limited_frames_total',
    help: 'Frames refused by the per-connection rate limit',
    registers: [this.registry],
  });
  readonly eventsDropped = new Counter({
    name: 'gateway_events_dropped_total',
    help: 'Events never published: dropped, oldest first, from a full buffer while NATS could not take them, or left at shutdown',
    registers: [this.registry],
  });
  readonly slowConsumerDrops = new Counter({
    name: 'gateway_slow_consumer_drops_total',
    help: 'Connections dropped because their send buffer overflowed',
    registers: [this.registry],
  });
  /** Server API requests by route template (`GET /api/v1/users/:userId`, never a user id) and HTTP status. */
  readonly apiRequests = new Counter({
    name: 'gateway_api_requests_total',
    help: 'Server API requests by route template and HTTP status',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });

  constructor(@Optional() @Inject(METRICS_OPTIONS) options?: MetricsOptions) {
    countedFrom(this.registry, 'gateway_messages_received_total', 'Frames received from authenticated clients, by type', 'type', this.received);
    countedFrom(this.registry, 'gateway_messages_sent_total', 'Frames written to clients, by type', 'type', this.sent);
    countedFrom(this.registry, 'gateway_dialog_deliveries_total', 'DELIVERY_MESSAGEs by status', 'status', this.deliveries);
    countedFrom(this.registry, 'gateway_events_published_total', 'Events published on NATS (with JetStream: acknowledged), by kind', 'kind', this.eventsPublished);
    const source = () => this.connectionSource();
    new Gauge({
      name: 'gateway_connections',
      help: 'Open WebSocket connections of this node, by state',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const { open, authenticated } = source();
        this.set({ state: 'open' }, open);
        this.set({ state: 'authenticated' }, authenticated);
      },
    });
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: options?.eventLoopResolutionMs ?? DEFAULT_EVENT_LOOP_RESOLUTION_MS });
  }

  /**
   * A counter by one label, read at scrape time from a Map another part keeps (the cluster
   * engine's deliveries by path, for example), so that part needs no prom-client.
   */
  addCounterSource(name: string, help: string, label: string, counts: ReadonlyMap<string, number>): void {
    countedFrom(this.registry, name, help, label, counts);
  }

  /** A gauge by one label, read at scrape time. */
  addGaugeSource(name: string, help: string, label: string, read: () => Record<string, number>): void {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        for (const [value, n] of Object.entries(read())) this.set({ [label]: value }, n);
      },
    });
  }

  /** Tells the gauge where to read connection counts from. */
  setConnectionSource(source: () => { open: number; authenticated: number }): void {
    this.connectionSource = source;
  }

  countReceived(type: string | undefined): void {
    const label = typeLabel(type);
    this.received.set(label, (this.received.get(label) ?? 0) + 1);
  }

  /** A dialog's outcome is known, `seconds` after it was accepted. */
  observeDialogDelivery(status: string, seconds: number): void {
    this.deliveries.set(status, (this.deliveries.get(status) ?? 0) + 1);
    this.dialogDeliveryDuration.observe(seconds);
  }

  /** An event of this kind (chat, dialog, connect, disconnect, profile) was published. */
  countEventPublished(kind: string): void {
    this.eventsPublished.set(kind, (this.eventsPublished.get(kind) ?? 0) + 1);
  }

  countSent(type: string): void {
    this.sent.set(type, (this.sent.get(type) ?? 0) + 1);
  }
}

/**
 * A labelled counter fed from a plain Map that the hot path increments (a Map.set per event
 * instead of a prom-client label lookup); copied into prom-client at scrape time.
 */
function countedFrom(registry: Registry, name: string, help: string, label: string, counts: ReadonlyMap<string, number>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, n] of counts) this.inc({ [label]: value }, n);
    },
  });
}

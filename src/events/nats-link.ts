import { Logger } from '@nestjs/common';
import { connect, Events, type JetStreamClient, type NatsConnection } from 'nats';
import type { EventLink } from './event-link';

/** How long one connection attempt may take, and the pause before the next one. */
const CONNECT_TIMEOUT_MS = 2000;
const RETRY_MS = 1000;
/** How long a JetStream publish waits for its acknowledgement before it is retried. */
export const ACK_TIMEOUT_MS = 2000;
/** At most one "unreachable" warning per this long (the link retries every second). */
const WARN_EVERY_MS = 30_000;

/** A server list fit for a log line: credentials in a URL (nats://user:pass@host) are never written. */
export function redactServers(servers: readonly string[]): string {
  return servers.map((s) => s.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1***@')).join(',');
}

/**
 * The NATS connection of the events module (the `nats` package). The first connection is tried in
 * the background and retried every second until it succeeds; after that the client reconnects by
 * itself, forever. Status changes go to the log (never a credential) and to EventPublisher.
 */
export class NatsLink implements EventLink {
  private readonly logger = new Logger('Events');
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private connecting: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private connected = false;
  private lastWarn = 0;
  private failures = 0;
  private onUp: () => void = () => undefined;

  constructor(
    private readonly servers: readonly string[],
    /** The client name the NATS server shows (monitoring): the gateway node's id. */
    private readonly name: string,
  ) {}

  get up(): boolean {
    return this.connected;
  }

  start(onUp: () => void): void {
    this.onUp = onUp;
    this.dial();
  }

  publish(subject: string, data: string): void {
    if (!this.nc || !this.connected) throw new Error('NATS not connected');
    this.nc.publish(subject, data);
  }

  async publishAcked(subject: string, data: string, msgId: string): Promise<void> {
    if (!this.js || !this.connected) throw new Error('NATS not connected');
    await this.js.publish(subject, data, { msgID: msgId, timeout: ACK_TIMEOUT_MS });
  }

  async flush(timeoutMs: number): Promise<void> {
    if (!this.nc) return;
    await within(this.nc.flush(), timeoutMs, 'NATS flush');
  }

  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.connecting) await within(this.connecting, timeoutMs, 'NATS connect').catch(() => undefined);
    const nc = this.nc;
    this.nc = undefined;
    this.js = undefined;
    this.connected = false;
    if (nc) await within(nc.close(), timeoutMs, 'NATS close').catch((err: unknown) => this.logger.warn({ err: String(err) }, 'NATS connection not closed cleanly'));
  }

  private dial(): void {
    if (this.closed) return;
    this.connecting = connect({
      servers: [...this.servers],
      name: `chat-gateway ${this.name}`,
      timeout: CONNECT_TIMEOUT_MS,
      maxReconnectAttempts: -1,
      reconnectTimeWait: RETRY_MS,
      // A server that stops answering (not a closed socket) is noticed within ~30 s.
      pingInterval: 10_000,
      maxPingOut: 2,
    }).then(
      (nc) => {
        if (this.closed) {
          void nc.close();
          return;
        }
        this.nc = nc;
        this.js = nc.jetstream();
        this.connected = true;
        this.failures = 0;
        this.logger.log({ servers: redactServers(this.servers), server: nc.getServer() }, 'events: connected to NATS');
        void this.watch(nc);
        this.onUp();
      },
      (err: unknown) => {
        this.failures += 1;
        const now = Date.now();
        if (now - this.lastWarn >= WARN_EVERY_MS) {
          this.lastWarn = now;
          this.logger.warn({ servers: redactServers(this.servers), attempts: this.failures, err: errorText(err) }, 'events: NATS unreachable, events are buffered; retrying every second');
        }
        if (!this.closed) this.retryTimer = setTimeout(() => this.dial(), RETRY_MS);
      },
    ).finally(() => {
      this.connecting = undefined;
    });
  }

  private async watch(nc: NatsConnection): Promise<void> {
    void nc.closed().then((err) => {
      if (this.nc !== nc) return;
      // Closed without our asking (the client gave up, or the server refused us): start over.
      this.connected = false;
      this.nc = undefined;
      this.js = undefined;
      this.logger.warn({ err: err ? errorText(err) : undefined }, 'events: NATS connection closed; reconnecting');
      this.dial();
    });
    for await (const status of nc.status()) {
      if (this.nc !== nc) return;
      if (status.type === Events.Disconnect) {
        this.connected = false;
        this.logger.warn({ server: String(status.data) }, 'events: NATS disconnected, events are buffered until it is back');
      } else if (status.type === Events.Reconnect) {
        this.connected = true;
        this.logger.log({ server: String(status.data) }, 'events: NATS reconnected');
        this.onUp();
      }
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.message}${'code' in err ? ` (${String((err as { code: unknown }).code)})` : ''}` : String(err);
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.max(0, ms)} ms`)), Math.max(0, ms));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

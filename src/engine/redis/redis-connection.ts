import { Logger } from '@nestjs/common';
import Redis, { type RedisOptions } from 'ioredis';
import { RedisKeys } from './redis-keys';

export interface RedisConnectionOptions {
  url: string;
  /** Key and channel prefix (default `gw:`). */
  prefix?: string;
  /** Bound on one command's round trip (default 2000 ms). */
  commandTimeoutMs?: number;
  /** Bound on the PING of a readiness check (default 1000 ms). */
  pingTimeoutMs?: number;
  /** Longest pause between reconnection attempts (default 1000 ms). */
  maxReconnectDelayMs?: number;
  /** Name shown by CLIENT LIST (a node id helps when debugging). */
  name?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * The two Redis connections of a node: one for commands and PUBLISH, one for subscriptions.
 *
 * - Fail fast: no offline queue, no retry of a command cut by a disconnection, a bound on every
 *   command. While Redis is unreachable every call rejects at once (or within the command
 *   timeout when Redis hangs); nothing waits for Redis to come back.
 * - Reconnection is endless, in the background, at most `maxReconnectDelayMs` apart; a node
 *   started before Redis is reachable starts anyway and connects when it can.
 * - Subscriptions are restored by this class on every `ready` of the subscriber (ioredis's own
 *   autoResubscribe only covers a connection that was ready when it closed; ours also covers
 *   one that never got ready, or was closed mid-handshake).
 * - PUBLISHes go out in call order on the single command connection: what one node publishes to
 *   one channel arrives in that order.
 */
export class RedisConnection {
  readonly keys: RedisKeys;
  readonly commands: Redis;
  readonly subscriber: Redis;
  private readonly logger = new Logger('RedisEngine');
  private readonly handlers = new Map<string, (message: string) => void>();
  private readonly healthChecks: (() => boolean)[] = [];
  private readonly readyListeners: (() => void)[] = [];
  private readonly readyWaiters = new Set<() => void>();
  private subscribed = false;
  private closed = false;
  private wasDown = false;
  private readonly pingTimeoutMs: number;

  constructor(private readonly options: RedisConnectionOptions) {
    this.keys = new RedisKeys(options.prefix);
    this.pingTimeoutMs = options.pingTimeoutMs ?? 1000;
    const maxDelay = options.maxReconnectDelayMs ?? 1000;
    const common: RedisOptions = {
      lazyConnect: true,
      protocol: 2,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
      commandTimeout: options.commandTimeoutMs ?? 2000,
      connectTimeout: 2000,
      enableReadyCheck: true,
      disableClientInfo: true,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), maxDelay),
    };
    const name = options.name ? `gw-${options.name}` : undefined;
    this.commands = new Redis(options.url, { ...common, connectionName: name && `${name}-cmd` });
    this.subscriber = new Redis(options.url, { ...common, connectionName: name && `${name}-sub` });

    this.commands.on('error', (err: Error) => this.onError('commands', err));
    this.subscriber.on('error', (err: Error) => this.onError('subscriber', err));
    this.commands.on('ready', () => {
      if (this.wasDown) this.logger.log('redis reachable again (commands)');
      this.wasDown = false;
      this.wakeReadyWaiters();
      for (const listener of this.readyListeners) listener();
    });
    this.commands.on('close', () => this.onClose('commands'));
    this.subscriber.on('close', () => {
      this.subscribed = false;
      this.onClose('subscriber');
    });
    this.subscriber.on('ready', () => void this.resubscribe());
    this.subscriber.on('message', (channel: string, message: string) => {
      const handler = this.handlers.get(channel);
      if (!handler) return;
      try {
        handler(message);
      } catch (err) {
        this.logger.error(`handler of ${channel} failed: ${err instanceof Error ? err.stack : String(err)}`);
      }
    });
  }

  /** Starts connecting in the background; never waits for Redis. */
  start(): void {
    for (const client of [this.commands, this.subscriber]) {
      client.connect().catch(() => {
        // reported through the 'error' event; the retry strategy keeps trying
      });
    }
  }

  /** Registers the handler of a channel; subscribed now if connected, and on every reconnection. */
  subscribe(channel: string, handler: (message: string) => void): void {
    this.handlers.set(channel, handler);
    if (this.subscriber.status === 'ready') {
      this.subscriber.subscribe(channel).catch((err: unknown) => this.logger.warn(`subscribe ${channel} failed: ${String(err)}`));
    }
  }

  /** Called on every (re)connection of the command connection. */
  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
  }

  /** Adds a condition of readiness (for example: this node's presence lease is held). */
  addHealthCheck(check: () => boolean): void {
    this.healthChecks.push(check);
  }

  /** Both connections up and subscribed: traffic between nodes flows. */
  get connected(): boolean {
    return !this.closed && this.commands.status === 'ready' && this.subscriber.status === 'ready' && this.subscribed;
  }

  /**
   * Resolves true once connected, false after `timeoutMs`. Only for the short windows of a start
   * or a reconnection in progress: while Redis is down it answers false at once.
   */
  async whenConnected(timeoutMs: number): Promise<boolean> {
    if (this.connected) return true;
    if (this.closed) return false;
    const connecting = (s: string) => s === 'wait' || s === 'connecting' || s === 'connect' || s === 'ready';
    if (!connecting(this.commands.status) || !connecting(this.subscriber.status)) return false;
    const deadline = Date.now() + timeoutMs;
    while (!this.connected && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.readyWaiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(50, Math.max(1, deadline - Date.now())));
        this.readyWaiters.add(wake);
      });
    }
    return this.connected;
  }

  /** Connected, every health check passes, and a PING comes back within the ping timeout. */
  async isHealthy(): Promise<boolean> {
    if (!this.connected || !this.healthChecks.every((check) => check())) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      const pong = await Promise.race([
        this.commands.ping(),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.pingTimeoutMs))),
      ]);
      return pong === 'PONG';
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes both connections: pending replies are awaited (bounded), then the sockets are cut. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakeReadyWaiters();
    await Promise.all([this.commands, this.subscriber].map((client) => closeClient(client)));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private async resubscribe(): Promise<void> {
    const channels = [...this.handlers.keys()];
    try {
      if (channels.length > 0) await this.subscriber.subscribe(...channels);
      this.subscribed = true;
      this.logger.log(`subscribed to ${channels.length} channel(s)`);
      this.wakeReadyWaiters();
    } catch (err) {
      this.logger.warn(`resubscription failed: ${String(err)}; reconnecting`);
      this.subscriber.disconnect(true);
    }
  }

  private wakeReadyWaiters(): void {
    for (const wake of [...this.readyWaiters]) wake();
  }

  private onError(which: string, err: Error): void {
    if (this.closed) return;
    // One warning per outage, the rest at debug level: a down Redis retries every second.
    if (!this.wasDown) this.logger.warn(`redis ${which} connection error: ${err.message}`);
    else this.logger.debug(`redis ${which} connection error: ${err.message}`);
    this.wasDown = true;
  }

  private onClose(which: string): void {
    if (this.closed) return;
    if (!this.wasDown) this.logger.warn(`redis ${which} connection closed; reconnecting`);
    this.wasDown = true;
  }
}

async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    const quit = client.quit().then(
      () => true,
      () => false,
    );
    const done = await Promise.race([quit, sleep(1000).then(() => false)]);
    if (done) return;
  }
  client.disconnect();
}

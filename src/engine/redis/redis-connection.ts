import { Logger } from '@nestjs/common';
import Redis, { type RedisOptions } from 'ioredis';
import { RedisKeys } from './redis-keys';
import { SentinelWatch, type RedisHostPort, type RedisSentinelOptions } from './sentinel-watch';

export interface RedisConnectionOptions {
  /** A standalone Redis (redis:// or rediss://). Exactly one of url and sentinel. */
  url?: string;
  /** Redis Sentinel: the primary of a master group, found through its sentinels. */
  sentinel?: RedisSentinelOptions;
  /** Password of the primary and replicas in Sentinel mode (a URL carries its own). */
  password?: string;
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

/** A write refused because the server is a replica: we are on a demoted primary (or the URL names a replica). */
export function isReadOnlyError(err: Error): boolean {
  return err.message.startsWith('READONLY') || err.message.includes(' READONLY ');
}

/** A reconnection delay: 50 ms doubling up to maxDelayMs. */
export const backoff = (maxDelayMs: number) => (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), maxDelayMs);

/**
 * The ioredis options both connections share (ioredis's own Sentinel support in Sentinel mode),
 * and the URL of a standalone Redis. `onReadOnly` decides what a READONLY reply does: true makes
 * that connection reconnect (finding the primary again).
 */
export function redisClientOptions(
  options: RedisConnectionOptions,
  onReadOnly: (err: Error) => boolean = () => true,
): { url?: string; options: RedisOptions } {
  if ((options.url === undefined) === (options.sentinel === undefined)) {
    throw new Error('RedisConnection needs exactly one of url (REDIS_URL) and sentinel (REDIS_SENTINELS)');
  }
  const maxDelay = options.maxReconnectDelayMs ?? 1000;
  const commandTimeout = options.commandTimeoutMs ?? 2000;
  const common: RedisOptions = {
    lazyConnect: true,
    protocol: 2,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    commandTimeout,
    connectTimeout: 2000,
    // Also checks the role in Sentinel mode: a server that is not (or no longer) the primary is
    // left at once and the sentinels are asked again.
    enableReadyCheck: true,
    disableClientInfo: true,
    retryStrategy: backoff(maxDelay),
    // A write refused by a replica: the primary moved (a failover that demoted the one we are
    // on). Reconnect, which asks the sentinels again; the command itself fails as usual.
    reconnectOnError: (err) => (isReadOnlyError(err) && onReadOnly(err) ? 1 : false),
  };
  if (options.url !== undefined) return { url: options.url, options: common };
  const sentinel = options.sentinel!;
  return {
    options: {
      ...common,
      // Each client gets its own list: ioredis adds the sentinels it discovers to it.
      sentinels: sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: sentinel.name,
      role: 'master',
      password: options.password,
      sentinelPassword: sentinel.password,
      // Every sentinel down: ask them all again, at most maxDelay apart.
      sentinelRetryStrategy: backoff(maxDelay),
      // A sentinel that hangs must not hold the reconnection: try the next one.
      sentinelCommandTimeout: Math.min(commandTimeout, 1000),
      // Our own SentinelWatch listens to +switch-master (one set of connections per node,
      // quiet when a sentinel is down); ioredis's detector would open one set per client.
      failoverDetector: false,
    },
  };
}

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
  private readonly watch?: SentinelWatch;
  /** When the last READONLY reply was logged (one warning per episode). */
  private readOnlyLoggedAt = 0;

  constructor(private readonly options: RedisConnectionOptions) {
    this.keys = new RedisKeys(options.prefix);
    this.pingTimeoutMs = options.pingTimeoutMs ?? 1000;
    const client = redisClientOptions(options, (err) => this.onReadOnly(err));
    const name = options.name ? `gw-${options.name}` : undefined;
    const create = (connectionName: string | undefined): Redis =>
      client.url !== undefined
        ? new Redis(client.url, { ...client.options, connectionName })
        : new Redis({ ...client.options, sentinels: client.options.sentinels!.map((s) => ({ ...s })), connectionName });
    this.commands = create(name && `${name}-cmd`);
    this.subscriber = create(name && `${name}-sub`);
    if (options.sentinel) {
      this.watch = new SentinelWatch(options.sentinel, (primary) => this.onSwitchMaster(primary), {
        maxReconnectDelayMs: Math.max(5000, options.maxReconnectDelayMs ?? 1000),
      });
    }

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
    this.watch?.start();
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
    this.watch?.close();
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

  /**
   * The command connection got READONLY: the server it is on was demoted to a replica. That
   * connection reconnects (ioredis, through reconnectOnError); the subscriber, which never sees
   * a READONLY but would hear nothing on a replica, is sent to the primary with it.
   */
  private onReadOnly(err: Error): boolean {
    if (this.closed) return false;
    if (Date.now() - this.readOnlyLoggedAt > 5000) {
      this.readOnlyLoggedAt = Date.now();
      this.logger.warn(`redis answered ${err.message.split('.')[0]}: this server is a replica now; reconnecting to the primary`);
    }
    if (this.subscriber.status === 'ready') this.subscriber.disconnect(true);
    return true;
  }

  /** A sentinel announced a new primary: move every connection that is not on it yet. */
  private onSwitchMaster(primary: RedisHostPort): void {
    if (this.closed) return;
    for (const [which, client] of [['commands', this.commands], ['subscriber', this.subscriber]] as const) {
      if (client.status !== 'ready' || isConnectedTo(client, primary)) continue;
      this.logger.warn(`sentinel: the primary is now ${primary.host}:${primary.port}; moving the ${which} connection`);
      client.disconnect(true);
    }
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

/** Whether a connected client's socket goes to that address. */
function isConnectedTo(client: Redis, address: RedisHostPort): boolean {
  const stream = (client as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
  if (!stream || stream.remotePort !== address.port) return false;
  const remote = (stream.remoteAddress ?? '').replace(/^::ffff:/, '');
  return remote === address.host.replace(/^::ffff:/, '');
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

import { Logger } from '@nestjs/common';
import Redis from 'ioredis';

export interface RedisHostPort {
  host: string;
  port: number;
}

/** Where the cluster's Redis is found in Sentinel mode. */
export interface RedisSentinelOptions {
  /** The sentinels asked for the current primary (any one that answers will do). */
  sentinels: readonly RedisHostPort[];
  /** The master group name they monitor. */
  name: string;
  /** The sentinels' own password (their requirepass), if any. */
  password?: string;
}

export interface SentinelWatchOptions {
  connectTimeoutMs?: number;
  /** Longest pause between reconnection attempts to a sentinel that is down (default 5000 ms). */
  maxReconnectDelayMs?: number;
}

/**
 * Parses a `+switch-master` message: `<name> <old ip> <old port> <new ip> <new port>`; undefined
 * when it is about another master group or malformed.
 */
export function parseSwitchMaster(message: string, name: string): RedisHostPort | undefined {
  const parts = message.trim().split(/\s+/);
  if (parts.length !== 5 || parts[0] !== name) return undefined;
  const port = Number(parts[4]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: parts[3], port };
}

/**
 * Listens to every sentinel's `+switch-master` channel and reports the new primary of our master
 * group. The connections to the data nodes find the new primary by themselves when the old one
 * dies (they lose their socket and ask the sentinels again); this covers the failovers where the
 * old primary stays reachable to us: a partition the sentinels saw and we did not, or a primary
 * that hangs (its sockets stay open and would only time out commands one by one).
 *
 * The three sentinels each announce the same switch: the listener gets each announcement and
 * decides (RedisConnection reconnects only a connection that is not on the new primary yet).
 * A sentinel that is down is retried in the background with a debug line, never an error storm.
 */
export class SentinelWatch {
  private readonly logger = new Logger('RedisSentinel');
  private readonly clients: Redis[] = [];
  private closed = false;

  constructor(
    private readonly sentinel: RedisSentinelOptions,
    private readonly onSwitch: (primary: RedisHostPort) => void,
    private readonly options: SentinelWatchOptions = {},
  ) {}

  start(): void {
    if (this.closed || this.clients.length > 0) return;
    const maxDelay = this.options.maxReconnectDelayMs ?? 5000;
    for (const address of this.sentinel.sentinels) {
      const client = new Redis({
        host: address.host,
        port: address.port,
        password: this.sentinel.password,
        lazyConnect: true,
        protocol: 2,
        enableReadyCheck: false,
        // The subscription is this connection's only use: restored on every reconnection.
        autoResubscribe: true,
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
        connectTimeout: this.options.connectTimeoutMs ?? 2000,
        disableClientInfo: true,
        retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 8), maxDelay),
      });
      client.on('error', (err: Error) => this.logger.debug(`sentinel ${address.host}:${address.port}: ${err.message}`));
      client.on('message', (_channel: string, message: string) => {
        const primary = parseSwitchMaster(message, this.sentinel.name);
        if (!primary || this.closed) return;
        try {
          this.onSwitch(primary);
        } catch (err) {
          this.logger.error(`switch-master handler failed: ${err instanceof Error ? err.stack : String(err)}`);
        }
      });
      client.subscribe('+switch-master').catch((err: unknown) => {
        if (!this.closed) this.logger.debug(`sentinel ${address.host}:${address.port}: subscribe failed: ${String(err)}`);
      });
      this.clients.push(client);
    }
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients.splice(0)) client.disconnect();
  }
}

import { randomUUID } from 'node:crypto';
import { RedisConnection, type RedisConnectionOptions } from '../../src/engine/redis/redis-connection';
import { redisCommand, type RedisServer } from './redis-server';

/** Helpers for the unit tests of the Redis engine (src/engine/redis/*.spec.ts). */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await Promise.resolve().then(check).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Opens connections under a fresh key prefix (tests sharing one redis-server do not see each other). */
export class ConnectionPool {
  private readonly open: RedisConnection[] = [];
  readonly prefix = `t${randomUUID().slice(0, 8)}:`;

  constructor(private readonly redis: RedisServer) {}

  /** A started connection, connected (waits up to 5 s). */
  async connect(options: Partial<RedisConnectionOptions> = {}): Promise<RedisConnection> {
    const connection = this.create(options);
    connection.start();
    await waitFor(() => connection.connected, 5000, 'redis connection');
    return connection;
  }

  create(options: Partial<RedisConnectionOptions> = {}): RedisConnection {
    const connection = new RedisConnection({
      url: this.redis.url,
      prefix: this.prefix,
      commandTimeoutMs: 500,
      maxReconnectDelayMs: 100,
      ...options,
    });
    this.open.push(connection);
    return connection;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((c) => c.close()));
  }
}

/** Runs a command on the test redis-server (outside the engine). */
export function raw(redis: RedisServer, ...args: string[]): ReturnType<typeof redisCommand> {
  return redisCommand(redis.port, args);
}

/** Silences the Nest logger of the engine classes in unit tests (call in a beforeAll). */
export function quietLogs(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('@nestjs/common') as typeof import('@nestjs/common')).Logger.overrideLogger(false);
}

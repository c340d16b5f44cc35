import { randomUUID } from 'node:crypto';
import { RedisConnection, type RedisConnectionOptions } from '../../src/engine/redis/redis-connection';
import { redisCommand, startRedisServer, type RedisServer } from './redis-server';
import { eventually } from './time';

/** Helpers for the unit tests of the Redis engine (src/engine/redis/*.spec.ts); to wait, test/support/time.ts. */

/** Opens connections under a fresh key prefix (tests sharing one redis-server do not see each other). */
export class ConnectionPool {
  private readonly open: RedisConnection[] = [];
  readonly prefix = `t${randomUUID().slice(0, 8)}:`;

  constructor(private readonly redis: RedisServer) {}

  /** A started connection, connected (waits up to 5 s). */
  async connect(options: Partial<RedisConnectionOptions> = {}): Promise<RedisConnection> {
    const connection = this.create(options);
    connection.start();
    await eventually(() => connection.connected, 5000, 'redis connection');
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

/** What useRedisEngine gives a spec: read its fields inside hooks and tests, not at collection time. */
export interface RedisEngineTestContext {
  /** One redis-server for the whole describe block (started in beforeAll, stopped in afterAll). */
  readonly redis: RedisServer;
  /** A fresh pool (fresh key prefix) for each test; its connections are closed after the test. */
  readonly pool: ConnectionPool;
}

export interface RedisEngineTestOptions {
  /** Runs after each test, before the pool's connections are closed (close what was built on them). */
  beforeClose?: () => void | Promise<void>;
}

/**
 * The set-up shared by the Redis engine specs; call it once at the top of a describe block:
 * quiet Nest logs and a real redis-server for the block, a new ConnectionPool for each test,
 * and its connections closed after each test (after options.beforeClose).
 */
export function useRedisEngine(options: RedisEngineTestOptions = {}): RedisEngineTestContext {
  let redis: RedisServer | undefined;
  let pool: ConnectionPool | undefined;

  beforeAll(async () => {
    quietLogs();
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  beforeEach(() => {
    pool = new ConnectionPool(context.redis);
  });
  afterEach(async () => {
    await options.beforeClose?.();
    await context.pool.closeAll();
  });

  const context: RedisEngineTestContext = {
    get redis(): RedisServer {
      if (!redis) throw new Error('useRedisEngine: the redis-server is not started (use it inside hooks and tests)');
      return redis;
    },
    get pool(): ConnectionPool {
      if (!pool) throw new Error('useRedisEngine: no pool yet (use it inside tests and beforeEach/afterEach hooks)');
      return pool;
    },
  };
  return context;
}

import { randomUUID } from 'node:crypto';
import { makeProfile } from '../../../test/support/factories';
import { quietLogs } from '../../../test/support/redis-engine';
import { redisCommand, startRedisServer, type RedisServer } from '../../../test/support/redis-server';
import { startRedisSentinel, type RedisNodeProcess, type RedisSentinelDeployment } from '../../../test/support/redis-sentinel';
import { eventually } from '../../../test/support/time';
import type { Session } from '../engine.ports';
import { isReadOnlyError, RedisConnection, redisClientOptions } from './redis-connection';
import { redisTarget } from './redis-engine';
import { RedisPresenceRegistry } from './redis-presence-registry';
import { parseSwitchMaster, SentinelWatch, type RedisHostPort } from './sentinel-watch';

/** Sentinel mode of the Redis engine: options, READONLY, the +switch-master watch, failovers on real processes. */

const SENTINELS = [
  { host: 's1', port: 26379 },
  { host: 's2', port: 26380 },
];

/** The port of the server a connected client's socket goes to. */
const remotePort = (connection: RedisConnection): number | undefined =>
  (connection.commands as unknown as { stream?: { remotePort?: number } }).stream?.remotePort;

describe('Redis engine in Sentinel mode', () => {
  beforeAll(() => quietLogs());

  describe('options (no server)', () => {
    it('standalone: the URL, fail-fast options and a READONLY reconnect', () => {
      const { url, options } = redisClientOptions({ url: 'redis://h:1', commandTimeoutMs: 700, maxReconnectDelayMs: 300 });
      expect(url).toBe('redis://h:1');
      expect(options).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 700, enableReadyCheck: true, autoResubscribe: false });
      expect(options.sentinels).toBeUndefined();
      expect(options.retryStrategy!(100)).toBe(300);
      expect(options.reconnectOnError!(new Error("READONLY You can't write against a read only replica."))).toBe(1);
      expect(options.reconnectOnError!(new Error('ERR wrong number of arguments'))).toBe(false);
    });

    it('Sentinel: ioredis sentinels and master group, role master, passwords, bounded sentinel retries', () => {
      const { url, options } = redisClientOptions({
        sentinel: { sentinels: SENTINELS, name: 'chat', password: 'sentinel-pw' },
        password: 'data-pw',
        commandTimeoutMs: 2000,
        maxReconnectDelayMs: 1000,
      });
      expect(url).toBeUndefined();
      expect(options).toMatchObject({ sentinels: SENTINELS, name: 'chat', role: 'master', password: 'data-pw', sentinelPassword: 'sentinel-pw', enableReadyCheck: true });
      expect(options.sentinels).not.toBe(SENTINELS); // ioredis adds the sentinels it discovers to its list
      expect(options.sentinelRetryStrategy!(1000)).toBe(1000);
      expect(options.sentinelCommandTimeout).toBe(1000);
      expect(options.failoverDetector).toBe(false); // our SentinelWatch does it, once per node
    });

    it('refuses both or neither of url and sentinel', () => {
      expect(() => redisClientOptions({})).toThrow(/exactly one/);
      expect(() => redisClientOptions({ url: 'redis://h', sentinel: { sentinels: SENTINELS, name: 'x' } })).toThrow(/exactly one/);
    });

    it('the engine uses REDIS_SENTINELS over REDIS_URL', () => {
      const base = { redisSentinelName: 'mymaster', redisPassword: 'pw', redisSentinelPassword: undefined };
      expect(redisTarget({ ...base, redisUrl: 'redis://h', redisSentinels: SENTINELS })).toEqual({
        sentinel: { sentinels: SENTINELS, name: 'mymaster', password: undefined },
        password: 'pw',
      });
      expect(redisTarget({ ...base, redisUrl: 'redis://h' })).toEqual({ url: 'redis://h' });
      expect(() => redisTarget(base)).toThrow(/REDIS_URL or REDIS_SENTINELS/);
    });

    it('recognizes READONLY replies, scripts included', () => {
      expect(isReadOnlyError(new Error("READONLY You can't write against a read only replica."))).toBe(true);
      expect(isReadOnlyError(new Error("READONLY You can't write against a read only replica. script: 67ed, on @user_script:1."))).toBe(true);
      expect(isReadOnlyError(new Error('NOSCRIPT No matching script'))).toBe(false);
    });

    it('parses +switch-master for its master group only', () => {
      expect(parseSwitchMaster('mymaster 10.0.0.1 6379 10.0.0.2 6380', 'mymaster')).toEqual({ host: '10.0.0.2', port: 6380 });
      expect(parseSwitchMaster('other 10.0.0.1 6379 10.0.0.2 6380', 'mymaster')).toBeUndefined();
      expect(parseSwitchMaster('mymaster 10.0.0.1 6379 10.0.0.2', 'mymaster')).toBeUndefined();
      expect(parseSwitchMaster('mymaster 10.0.0.1 6379 10.0.0.2 0', 'mymaster')).toBeUndefined();
    });
  });

  describe('a primary demoted under a live connection (standalone URL, REPLICAOF)', () => {
    let a: RedisServer;
    let b: RedisServer;
    const open: RedisConnection[] = [];
    beforeAll(async () => {
      [a, b] = await Promise.all([startRedisServer(), startRedisServer()]);
    });
    afterAll(async () => {
      await Promise.all([a?.kill(), b?.kill()]);
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
      await redisCommand(a.port, ['REPLICAOF', 'NO', 'ONE']);
    });

    it('a READONLY reply reconnects both connections (the subscriber too), and they serve again once it is a primary', async () => {
      const connection = new RedisConnection({ url: `redis://127.0.0.1:${a.port}`, commandTimeoutMs: 500, maxReconnectDelayMs: 100 });
      open.push(connection);
      connection.subscribe('ch', () => undefined);
      connection.start();
      await eventually(() => connection.connected, 3000, 'connected');
      const closes = { commands: 0, subscriber: 0 };
      connection.commands.on('close', () => (closes.commands += 1));
      connection.subscriber.on('close', () => (closes.subscriber += 1));

      const demote = await redisCommand(a.port, ['REPLICAOF', '127.0.0.1', String(b.port)]);
      expect(demote).toBe('OK');
      await expect(connection.commands.set('k', 'v')).rejects.toThrow(/READONLY/);
      await eventually(() => closes.commands >= 1 && closes.subscriber >= 1, 2000, 'both connections to reconnect');

      await redisCommand(a.port, ['REPLICAOF', 'NO', 'ONE']);
      await eventually(() => connection.connected, 3000, 'connected again');
      await expect(connection.commands.set('k', 'v')).resolves.toBe('OK');
    });
  });

  describe('SentinelWatch (a plain redis-server plays the sentinel)', () => {
    let fake: RedisServer;
    beforeAll(async () => {
      fake = await startRedisServer();
    });
    afterAll(() => fake?.kill());

    /** PUBLISHes until one subscriber (the watch) gets it. */
    const announce = (message: string) =>
      eventually(async () => (await redisCommand(fake.port, ['PUBLISH', '+switch-master', message])) === 1, 5000, 'the watch subscribed');

    it('reports a switch of its master group, ignores others, and resubscribes after the sentinel restarts', async () => {
      const seen: RedisHostPort[] = [];
      const watch = new SentinelWatch({ sentinels: [{ host: '127.0.0.1', port: fake.port }], name: 'mymaster' }, (p) => seen.push(p), {
        maxReconnectDelayMs: 100,
      });
      watch.start();
      try {
        await announce('other 127.0.0.1 1 127.0.0.1 2');
        await announce('mymaster 127.0.0.1 1 127.0.0.1 6380');
        await eventually(() => seen.length === 1, 2000, 'the switch reported');
        expect(seen).toEqual([{ host: '127.0.0.1', port: 6380 }]);

        await fake.stop();
        await fake.start();
        await announce('mymaster 127.0.0.1 6380 127.0.0.1 6381');
        await eventually(() => seen.length === 2, 2000, 'the switch reported after the restart');
        expect(seen[1]).toEqual({ host: '127.0.0.1', port: 6381 });
      } finally {
        watch.close();
      }
      await eventually(async () => (await redisCommand(fake.port, ['PUBLISH', '+switch-master', 'x'])) === 0, 2000, 'unsubscribed on close');
    });
  });

  describe('on real sentinels (a primary, a replica, three sentinels)', () => {
    let rs: RedisSentinelDeployment;
    const open: RedisConnection[] = [];
    const registries: RedisPresenceRegistry[] = [];
    beforeEach(async () => {
      rs = await startRedisSentinel();
    }, 30_000);
    afterEach(async () => {
      for (const r of registries.splice(0)) await r.close();
      await Promise.all(open.splice(0).map((c) => c.close()));
      await rs?.close();
    });

    const connect = async (prefix = `t${randomUUID().slice(0, 8)}:`, maxReconnectDelayMs = 200): Promise<RedisConnection> => {
      const connection = new RedisConnection({
        sentinel: { sentinels: rs.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name: rs.name },
        prefix,
        commandTimeoutMs: 500,
        maxReconnectDelayMs,
      });
      open.push(connection);
      connection.subscribe(`${prefix}ch`, () => undefined);
      connection.start();
      await eventually(() => connection.connected, 5000, 'connected through the sentinels');
      return connection;
    };

    /** Waits until the connection serves writes on `server` (the primary the sentinels name). */
    const servesOn = (connection: RedisConnection, server: RedisNodeProcess, timeoutMs: number) =>
      eventually(
        async () => connection.connected && remotePort(connection) === server.port && (await connection.commands.set('probe', '1')) === 'OK',
        timeoutMs,
        `the connection to serve on port ${server.port}`,
      );

    it('connects to the primary; after SIGKILL of the primary it serves on the promoted replica by itself', async () => {
      const connection = await connect();
      const old = await rs.primary();
      expect(remotePort(connection)).toBe(old.port);
      const killedAt = Date.now();
      await old.signal('SIGKILL');
      const promoted = await rs.waitForFailover(old);
      await servesOn(connection, promoted, 5000);
      expect(Date.now() - killedAt).toBeLessThan(15_000);
    }, 30_000);

    it('a primary that hangs (SIGSTOP): the +switch-master moves the connection to the promoted replica without waiting for the old one', async () => {
      const connection = await connect();
      const old = await rs.primary();
      await old.signal('SIGSTOP');
      try {
        const promoted = await rs.waitForFailover(old);
        // The old primary is still stopped: its sockets are open and would only time commands out.
        await servesOn(connection, promoted, 5000);
        expect(old.paused).toBe(true);
      } finally {
        await old.signal('SIGCONT');
      }
      // The old primary answers again (a primary still, until the sentinels demote it): the connection stays on the new one.
      await eventually(async () => (await old.info('replication')).role !== undefined, 3000, 'the old primary awake');
      await expect(connection.commands.set('after', '1')).resolves.toBe('OK');
      expect(remotePort(connection)).not.toBe(old.port);
    }, 30_000);

    /** A presence registry on its own connection (one node of the deployment), with what it reported. */
    const presenceNode = async (ttlMs: number, maxReconnectDelayMs?: number) => {
      const connection = await connect('presence:', maxReconnectDelayMs);
      const nodeId = randomUUID();
      const registry = new RedisPresenceRegistry(connection, nodeId, { ttlMs, connectWaitMs: 200 });
      registries.push(registry);
      const events = { expired: [] as string[], restored: [] as string[], lost: [] as string[] };
      registry.onExpired((ids) => events.expired.push(...ids));
      registry.onSessionsRestored((s) => events.restored.push(...s.map((x) => x.userId)));
      registry.onSessionLost((s) => events.lost.push(s.userId));
      registry.start();
      await eventually(() => registry.isRegistered, 3000, 'registered');
      return { nodeId, registry, events, session: (userId: string): Session => ({ userId, nodeId, connId: randomUUID(), profile: makeProfile(userId) }) };
    };

    it('leases that expired during the failover are renewed before anyone sweeps: no user announced gone and back', async () => {
      // Renewed every 500 ms, a lease outlives its last renewal by 1 s: less than the failover
      // takes. b comes back up to 1 s after a (its reconnection backoff); a sweeps every 500 ms.
      const TTL = 1500;
      const a = await presenceNode(TTL, 100);
      const b = await presenceNode(TTL, 1000);
      await a.registry.claim(a.session('ua'));
      await b.registry.claim(b.session('ub'));
      const old = await rs.primary();
      await rs.waitReplicated(old, rs.other(old));
      await old.signal('SIGKILL');
      await rs.waitForFailover(old);
      await eventually(async () => a.registry.isRegistered && b.registry.isRegistered && (await a.registry.list()).length === 2, 5000, 're-registered');
      await new Promise((resolve) => setTimeout(resolve, 2500)); // past the grace: sweeps run again
      expect([...a.events.expired, ...b.events.expired]).toEqual([]);
      expect([...a.events.restored, ...b.events.restored]).toEqual([]);
      expect((await b.registry.list()).map((p) => p.userId).sort()).toEqual(['ua', 'ub']);
    }, 30_000);

    it('a failover to a replica that missed the last writes: each node restores its sessions, drops its stale ones, re-registers its lease', async () => {
      const TTL = 4000;
      const node = () => presenceNode(TTL);
      const a = await node();
      const b = await node();
      const leaving = b.session('leaving');
      await a.registry.claim(a.session('a-old'));
      await b.registry.claim(leaving);
      const primary = await rs.primary();
      const replica = rs.other(primary);
      await rs.waitReplicated(primary, replica);

      // The replica stops receiving: everything below reaches the primary only.
      await rs.starveReplica(primary, replica);
      let c: Awaited<ReturnType<typeof presenceNode>>;
      try {
        await a.registry.claim(a.session('a-new'));
        await b.registry.claim(b.session('b-new'));
        await b.registry.release(leaving);
        c = await node(); // a node whose lease and registration exist on the primary only
        await c.registry.claim(c.session('c-new'));
        await primary.signal('SIGKILL');
      } finally {
        await replica.signal('SIGCONT');
      }
      await rs.waitForFailover(primary);
      const online = async () => (await a.registry.list()).map((p) => p.userId).sort().join();
      await eventually(
        async () => a.registry.isRegistered && b.registry.isRegistered && c.registry.isRegistered && (await online()) === 'a-new,a-old,b-new,c-new',
        TTL,
        'every live session back, the released one gone',
      );
      // The stale session (its release was lost) was removed by its own node and reported once;
      // nothing was swept (the leases were renewed in time), so nothing is re-announced.
      expect(b.events.expired).toEqual(['leaving']);
      expect([...a.events.expired, ...c.events.expired]).toEqual([]);
      expect([...a.events.restored, ...b.events.restored, ...c.events.restored]).toEqual([]);
      // The single-session rule holds again, for restored users and the others. A command may
      // still find its connection reconnecting (sentinels can announce the new primary once more
      // on a loaded machine): "redis unavailable" is retried, any answer is final.
      const answer = async (claim: () => Promise<boolean>): Promise<boolean> => {
        const until = Date.now() + 5000;
        for (;;) {
          try {
            return await claim();
          } catch (err) {
            if (Date.now() > until || !String(err).includes('redis unavailable')) throw err;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      };
      await expect(answer(() => a.registry.claim(a.session('c-new')))).resolves.toBe(false);
      await expect(answer(() => c.registry.claim(c.session('b-new')))).resolves.toBe(false);
      await expect(answer(() => a.registry.claim(a.session('leaving')))).resolves.toBe(true);
    }, 40_000);
  });
});

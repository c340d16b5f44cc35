import { randomUUID } from 'node:crypto';
import { makeProfile } from '../../../test/support/factories';
import { raw, useRedisEngine } from '../../../test/support/redis-engine';
import { strictMock } from '../../../test/support/strict-mock';
import { deferred, eventually, flushPromises, sleep, type Deferred } from '../../../test/support/time';
import type { Session } from '../engine.ports';
import type { RedisConnection } from './redis-connection';
import { RedisKeys } from './redis-keys';
import { RedisPresenceRegistry } from './redis-presence-registry';

const TTL = 1000;

let connSeq = 0;
function session(node: Node, userId: string): Session {
  return { userId, nodeId: node.nodeId, connId: `c${++connSeq}`, profile: makeProfile(userId) };
}

interface Node {
  nodeId: string;
  connection: RedisConnection;
  registry: RedisPresenceRegistry;
  expired: string[][];
  lost: Session[];
  restored: Session[][];
}

describe('RedisPresenceRegistry (real redis-server)', () => {
  const registries: RedisPresenceRegistry[] = [];
  const env = useRedisEngine({
    beforeClose: async () => {
      for (const r of registries.splice(0)) await r.close();
    },
  });

  /** A node; `timers: false` leaves the heartbeat and the sweep to the test (a node that can "die"). */
  async function node(opts: { timers?: boolean; ttlMs?: number } = {}): Promise<Node> {
    const connection = await env.pool.connect();
    const nodeId = randomUUID();
    const registry = new RedisPresenceRegistry(connection, nodeId, { ttlMs: opts.ttlMs ?? TTL, connectWaitMs: 200 });
    registries.push(registry);
    const n: Node = { nodeId, connection, registry, expired: [], lost: [], restored: [] };
    registry.onExpired((ids) => n.expired.push(ids));
    registry.onSessionLost((s) => n.lost.push(s));
    registry.onSessionsRestored((s) => n.restored.push(s));
    if (opts.timers === false) await registry.beat();
    else registry.start();
    await eventually(() => registry.isRegistered, 3000, 'registration');
    return n;
  }

  it('claims, lists, locates, updates and releases a session', async () => {
    const a = await node();
    const s = session(a, 'u1');
    await expect(a.registry.claim(s)).resolves.toBe(true);
    await expect(a.registry.claim({ ...s, connId: 'other' })).resolves.toBe(false);
    expect(await a.registry.list()).toEqual([s.profile]);
    await expect(a.registry.locate('u1')).resolves.toMatchObject({ userId: 'u1', nodeId: a.nodeId, connId: s.connId });
    await expect(a.registry.locate('nobody')).resolves.toBeUndefined();

    await a.registry.updateProfile('u1', { avatar: 'http://x/a.png' });
    expect(await a.registry.list()).toEqual([{ ...s.profile, avatar: 'http://x/a.png' }]);

    await expect(a.registry.release({ ...s, connId: 'not-this-one' })).resolves.toBe(false);
    await expect(a.registry.release(s)).resolves.toBe(true);
    await expect(a.registry.release(s)).resolves.toBe(false);
    expect(await a.registry.list()).toEqual([]);
  });

  it('keeps a frozen session as it is for its own users (one object per connection); an update makes a new value, a session not frozen is copied', async () => {
    const a = await node();
    const frozen = Object.freeze({ ...session(a, 'u1'), profile: Object.freeze(makeProfile('u1')) });
    await a.registry.claim(frozen);
    await expect(a.registry.locate('u1')).resolves.toBe(frozen);
    await a.registry.updateProfile('u1', { nickname: 'renamed' });
    const after = await a.registry.locate('u1');
    expect(after).not.toBe(frozen);
    expect(after).toMatchObject({ connId: frozen.connId, profile: { nickname: 'renamed' } });
    expect(frozen.profile.nickname).toBe(makeProfile('u1').nickname);

    const loose = session(a, 'u2');
    await a.registry.claim(loose);
    loose.profile.nickname = 'changed-outside';
    await expect(a.registry.locate('u2')).resolves.toMatchObject({ profile: { nickname: makeProfile('u2').nickname } });
  });

  it('the users of two nodes are one list; a user online on one node cannot log in on the other', async () => {
    const a = await node();
    const b = await node();
    await a.registry.claim(session(a, 'u1'));
    await b.registry.claim(session(b, 'u2'));
    await expect(b.registry.claim(session(b, 'u1'))).resolves.toBe(false);
    const ids = (await a.registry.list()).map((p) => p.userId).sort();
    expect(ids).toEqual(['u1', 'u2']);
    await expect(a.registry.locate('u2')).resolves.toMatchObject({ nodeId: b.nodeId });
  });

  it('racing claims of one user on two nodes: exactly one wins, every time', async () => {
    const a = await node();
    const b = await node();
    for (let i = 0; i < 100; i++) {
      const userId = `race-${i}`;
      const sa = session(a, userId);
      const sb = session(b, userId);
      const results = await Promise.all([a.registry.claim(sa), b.registry.claim(sb)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results[0] ? sa : sb;
      await expect(a.registry.locate(userId)).resolves.toMatchObject({ connId: winner.connId });
    }
  });

  it('sweeps a dead node: its users are reported exactly once, removed, and can log in again', async () => {
    const a = await node();
    const c = await node();
    const dead = await node({ timers: false });
    await dead.registry.claim(session(dead, 'd1'));
    await dead.registry.claim(session(dead, 'd2'));
    await a.registry.claim(session(a, 'a1'));

    // Nothing renews the dead node's lease; two live nodes sweep concurrently.
    await eventually(
      async () => {
        await Promise.all([a.registry.sweep(), c.registry.sweep()]);
        return a.expired.length + c.expired.length > 0;
      },
      TTL + 2000,
      'sweep',
    );
    const reported = [...a.expired, ...c.expired].flat().sort();
    expect(reported).toEqual(['d1', 'd2']);
    await Promise.all([a.registry.sweep(), c.registry.sweep()]);
    expect([...a.expired, ...c.expired].flat()).toHaveLength(2);

    expect((await a.registry.list()).map((p) => p.userId)).toEqual(['a1']);
    await expect(a.registry.claim(session(a, 'd1'))).resolves.toBe(true);
    expect(await raw(env.redis, 'EXISTS', `${env.pool.prefix}swept:${dead.nodeId}`)).toBe(1);
  });

  it('a live node is never swept, and never sweeps itself', async () => {
    const a = await node();
    await a.registry.claim(session(a, 'a1'));
    await sleep(TTL * 2);
    await a.registry.sweep();
    expect(a.expired).toEqual([]);
    expect((await a.registry.list()).map((p) => p.userId)).toEqual(['a1']);
  });

  it('claims over the session of a dead node not swept yet, reporting it expired first', async () => {
    const a = await node({ timers: false });
    const dead = await node({ timers: false });
    await dead.registry.claim(session(dead, 'u1'));
    await sleep(TTL + 100);
    await a.registry.beat();
    await expect(a.registry.claim(session(a, 'u1'))).resolves.toBe(true);
    expect(a.expired).toEqual([['u1']]);
    await expect(a.registry.locate('u1')).resolves.toMatchObject({ nodeId: a.nodeId });
    // The sweep does not report it again.
    await a.registry.sweep();
    expect(a.expired).toEqual([['u1']]);
  });

  it('re-registers its live users by itself after Redis lost its data (no CONNECT re-announce)', async () => {
    const a = await node();
    const b = await node();
    await a.registry.claim(session(a, 'a1'));
    await b.registry.claim(session(b, 'b1'));
    await raw(env.redis, 'FLUSHALL');
    expect(await a.registry.list()).toEqual([]);
    await eventually(async () => (await a.registry.list()).length === 2, TTL, 're-registration');
    expect(a.restored).toEqual([]);
    expect(b.restored).toEqual([]);
    expect(a.expired).toEqual([]);
    // The single-session rule holds again.
    await expect(b.registry.claim(session(b, 'a1'))).resolves.toBe(false);
  });

  it('a node swept while cut off restores its sessions and reports them restored; one taken meanwhile is lost', async () => {
    const a = await node();
    const b = await node({ timers: false });
    const keep = session(b, 'keep');
    const taken = session(b, 'taken');
    await b.registry.claim(keep);
    await b.registry.claim(taken);
    // b stalls longer than its lease: a sweeps it, then the user of `taken` logs in on a.
    await eventually(
      async () => {
        await a.registry.sweep();
        return a.expired.length > 0;
      },
      TTL + 2000,
      'sweep',
    );
    expect(a.expired.flat().sort()).toEqual(['keep', 'taken']);
    const newer = session(a, 'taken');
    await expect(a.registry.claim(newer)).resolves.toBe(true);

    await b.registry.beat(); // b is back
    expect(b.restored).toHaveLength(1);
    expect(b.restored[0].map((s) => s.userId)).toEqual(['keep']);
    expect(b.lost.map((s) => s.connId)).toEqual([taken.connId]);
    await expect(a.registry.locate('taken')).resolves.toMatchObject({ connId: newer.connId });
    await expect(a.registry.locate('keep')).resolves.toMatchObject({ connId: keep.connId, nodeId: b.nodeId });
    // A second beat changes nothing.
    await b.registry.beat();
    expect(b.restored).toHaveLength(1);
    expect(b.lost).toHaveLength(1);
  });

  it('fails fast while Redis is down, and recovers by itself when it is back (empty)', async () => {
    const a = await node();
    const s = session(a, 'u1');
    await a.registry.claim(s);
    await env.redis.stop();
    try {
      const started = Date.now();
      await expect(a.registry.claim(session(a, 'u2'))).rejects.toThrow();
      await expect(a.registry.list()).rejects.toThrow();
      await expect(a.registry.locate('zz')).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(1000);
      // A user leaving during the outage: the release fails; its session must not come back.
      const gone = session(a, 'u3');
      await expect(a.registry.release(gone)).rejects.toThrow();
    } finally {
      await env.redis.start();
    }
    await eventually(async () => a.registry.isRegistered && (await a.registry.list()).length === 1, 3000, 'recovery');
    expect((await a.registry.list()).map((p) => p.userId)).toEqual(['u1']);
    await expect(a.registry.claim(session(a, 'u2'))).resolves.toBe(true);
  });

  it('a hung Redis (SIGSTOP): a claim fails within the command timeout', async () => {
    const a = await node();
    process.kill(env.redis.pid!, 'SIGSTOP');
    try {
      const started = Date.now();
      await expect(a.registry.claim(session(a, 'u1'))).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(1500); // commandTimeoutMs is 500 here
    } finally {
      process.kill(env.redis.pid!, 'SIGCONT');
    }
    await eventually(async () => a.registry.isRegistered && (await a.registry.claim(session(a, 'u2'))), 3000, 'claims again');
  });

  it('removes, after an outage, a session whose release failed, and reports it', async () => {
    const a = await node();
    const s = session(a, 'u1');
    await a.registry.claim(s);
    // Writes hang longer than the command timeout (500 ms): the release fails, Redis keeps the session.
    await raw(env.redis, 'CLIENT', 'PAUSE', '800', 'WRITE');
    await expect(a.registry.release(s)).rejects.toThrow();
    await sleep(900);
    await eventually(() => a.expired.length > 0, 3000, 'stale session reported');
    expect(a.expired).toEqual([['u1']]);
    expect(await a.registry.list()).toEqual([]);
  });

  it('leaves on close: remaining sessions are removed and reported, the lease deleted', async () => {
    const a = await node();
    const b = await node();
    await b.registry.claim(session(b, 'b1'));
    await b.registry.close();
    expect(b.expired).toEqual([['b1']]);
    expect(await a.registry.list()).toEqual([]);
    expect(await raw(env.redis, 'EXISTS', `${env.pool.prefix}lease:${b.nodeId}`)).toBe(0);
    expect(await raw(env.redis, 'SISMEMBER', `${env.pool.prefix}nodes`, b.nodeId)).toBe(0);
  });

  it('logins share the online-list reads: 200 logins at once cost a couple of HVALS, each list holds everyone', async () => {
    const a = await node();
    const sessions = Array.from({ length: 200 }, (_, i) => session(a, `s${i}`));
    await Promise.all(sessions.map((s) => a.registry.claim(s)));
    const before = await hvalsCalls();
    const lists = await Promise.all(sessions.map((s) => a.registry.listBytes(s)));
    const reads = (await hvalsCalls()) - before;
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(2); // the one issued at once, and the one the others share
    for (const bytes of lists) {
      const users = JSON.parse(`[${Buffer.concat(bytes).toString().slice(1)}]`) as { userId: string }[];
      expect(users.map((u) => u.userId).sort()).toEqual(sessions.map((s) => s.userId).sort());
    }
  });

  async function hvalsCalls(): Promise<number> {
    const info = String(await raw(env.redis, 'INFO', 'commandstats'));
    return Number(/cmdstat_hvals:calls=(\d+)/.exec(info)?.[1] ?? 0);
  }
});

describe('RedisPresenceRegistry.listBytes: one HVALS shared by the logins that wait for it', () => {
  const keys = new RedisKeys('t:');
  let reads: Deferred<string[]>[];
  let registry: RedisPresenceRegistry;

  beforeEach(() => {
    reads = [];
    const hvals = jest.fn(() => {
      const read = deferred<string[]>();
      reads.push(read);
      return read.promise;
    });
    const connection = strictMock<RedisConnection>(
      {
        keys,
        // ioredis types hvals with a callback overload; the registry only awaits its promise.
        commands: strictMock<RedisConnection['commands']>({ hvals: hvals as unknown as RedisConnection['commands']['hvals'] }, 'commands'),
        addHealthCheck: jest.fn(),
        onReady: jest.fn(),
      },
      'connection',
    );
    registry = new RedisPresenceRegistry(connection, 'node-a', { ttlMs: 1000 });
  });

  const stored = (userId: string) => JSON.stringify({ userId, nodeId: 'node-a', connId: `c-${userId}`, profile: makeProfile(userId) });
  const self = (userId: string): Session => ({ userId, nodeId: 'node-a', connId: `c-${userId}`, profile: makeProfile(userId) });
  const ids = (bytes: readonly Buffer[]) => (JSON.parse(`[${Buffer.concat(bytes).toString().slice(1)}]`) as { userId: string }[]).map((u) => u.userId);

  it('a login that asks while a read is in flight gets the next read, never the one issued before it asked', async () => {
    const first = registry.listBytes(self('a'));
    const second = registry.listBytes(self('b'));
    const third = registry.listBytes(self('c'));
    await flushPromises();
    expect(reads).toHaveLength(1);
    reads[0].resolve([stored('a')]); // issued before b and c asked: it lacks them
    expect(ids(await first)).toEqual(['a']);
    await flushPromises();
    expect(reads).toHaveLength(2);
    reads[1].resolve([stored('a'), stored('b'), stored('c')]);
    expect(ids(await second)).toEqual(['a', 'b', 'c']);
    expect(ids(await third)).toEqual(['a', 'b', 'c']);
    expect(reads).toHaveLength(2);
  });

  it('a failed read fails only the logins that shared it; the next ones get a new read', async () => {
    const first = registry.listBytes(self('a'));
    const second = registry.listBytes(self('b'));
    reads[0].reject(new Error('redis unavailable'));
    await expect(first).rejects.toThrow('redis unavailable');
    await flushPromises();
    reads[1].resolve([stored('a'), stored('b')]);
    expect(ids(await second)).toEqual(['a', 'b']);
  });

  it('the joining user is in its own list even when the read missed it (a failover lost its claim)', async () => {
    const list = registry.listBytes(self('z'));
    reads[0].resolve([stored('a'), 'not json']);
    expect(ids(await list)).toEqual(['a', 'z']);
  });
});

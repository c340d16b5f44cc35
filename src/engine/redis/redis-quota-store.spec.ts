import { raw, useRedisEngine } from '../../../test/support/redis-engine';
import { sleep } from '../../../test/support/time';
import { RedisQuotaStore } from './redis-quota-store';

describe('RedisQuotaStore (real redis-server)', () => {
  const env = useRedisEngine();
  let now: number;
  const clock = () => now;

  beforeEach(() => {
    now = 1_700_000_000_000;
  });

  /** Two stores on two connections: two nodes sharing one clock. */
  async function nodes(): Promise<[RedisQuotaStore, RedisQuotaStore]> {
    return [new RedisQuotaStore(await env.pool.connect(), clock), new RedisQuotaStore(await env.pool.connect(), clock)];
  }

  it('lets `limit` attempts through across nodes and refuses the next ones', async () => {
    const [a, b] = await nodes();
    const results: boolean[] = [];
    for (let i = 0; i < 8; i++) results.push(await (i % 2 === 0 ? a : b).take('avatar:u1', 6, 60_000));
    expect(results).toEqual([true, true, true, true, true, true, false, false]);
    // another key is independent
    await expect(b.take('avatar:u2', 6, 60_000)).resolves.toBe(true);
  });

  it('racing nodes never let more than `limit` through (the script decides atomically)', async () => {
    const [a, b] = await nodes();
    // Many attempts within one millisecond: members must still be distinct.
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).take('race', 10, 60_000)));
    expect(results.filter(Boolean)).toHaveLength(10);
    expect(await raw(env.redis, 'ZCARD', `${env.pool.prefix}quota:race`)).toBe(10);
  });

  it('is a sliding window: each attempt frees its place exactly windowMs after it was counted', async () => {
    const [a, b] = await nodes();
    await a.take('u', 3, 60_000); // t = 0
    now += 20_000;
    await b.take('u', 3, 60_000); // t = 20 s
    now += 20_000;
    await a.take('u', 3, 60_000); // t = 40 s
    now += 19_999;
    await expect(b.take('u', 3, 60_000)).resolves.toBe(false);
    now += 1; // t = 60 s: the first left the window
    await expect(b.take('u', 3, 60_000)).resolves.toBe(true);
    await expect(a.take('u', 3, 60_000)).resolves.toBe(false);
    now += 20_000;
    await expect(a.take('u', 3, 60_000)).resolves.toBe(true);
  });

  it('does not count refused attempts, and keeps at most `limit` members', async () => {
    const [a] = await nodes();
    for (let i = 0; i < 2; i++) await a.take('u', 2, 1000);
    for (let i = 0; i < 20; i++) await expect(a.take('u', 2, 1000)).resolves.toBe(false);
    expect(await raw(env.redis, 'ZCARD', `${env.pool.prefix}quota:u`)).toBe(2);
    now += 1000;
    await expect(a.take('u', 2, 1000)).resolves.toBe(true);
  });

  it('the key expires one window after its newest attempt (bounded Redis memory)', async () => {
    const [a] = await nodes();
    await a.take('u', 6, 60_000);
    const ttl = Number(await raw(env.redis, 'PTTL', `${env.pool.prefix}quota:u`));
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // a refused attempt creates no key
    await expect(a.take('none', 0, 60_000)).resolves.toBe(false);
    expect(await raw(env.redis, 'EXISTS', `${env.pool.prefix}quota:none`)).toBe(0);
  });

  it('really expires in Redis', async () => {
    const [a] = await nodes();
    now = Date.now();
    await a.take('short', 1, 200);
    await sleep(350);
    expect(await raw(env.redis, 'EXISTS', `${env.pool.prefix}quota:short`)).toBe(0);
  });

  it('works again after Redis restarted with an empty script cache (EVALSHA falls back to EVAL)', async () => {
    const [a] = await nodes();
    await a.take('u', 6, 60_000);
    await raw(env.redis, 'SCRIPT', 'FLUSH');
    await expect(a.take('u', 6, 60_000)).resolves.toBe(true);
    expect(await raw(env.redis, 'ZCARD', `${env.pool.prefix}quota:u`)).toBe(2);
  });

  it('rejects while Redis is down', async () => {
    const [a] = await nodes();
    await env.redis.stop();
    try {
      await expect(a.take('u', 6, 60_000)).rejects.toThrow();
    } finally {
      await env.redis.start();
    }
  });
});

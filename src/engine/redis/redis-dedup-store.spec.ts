import { raw, useRedisEngine } from '../../../test/support/redis-engine';
import { sleep } from '../../../test/support/time';
import { Status } from '../../protocol/protocol';
import { DedupState } from '../engine.ports';
import { RedisDedupStore } from './redis-dedup-store';

describe('RedisDedupStore (real redis-server)', () => {
  const env = useRedisEngine();

  /** Two stores on two connections: two nodes. */
  async function stores(windowMs = 60_000, pendingTtlMs = 5_000): Promise<[RedisDedupStore, RedisDedupStore]> {
    return [
      new RedisDedupStore(await env.pool.connect(), { windowMs, pendingTtlMs }),
      new RedisDedupStore(await env.pool.connect(), { windowMs, pendingTtlMs }),
    ];
  }

  it('NEW, then PENDING anywhere; DELIVERED anywhere once settled SUCCESS', async () => {
    const [a, b] = await stores();
    await expect(a.reserve('alice', 'm1')).resolves.toBe(DedupState.NEW);
    await expect(b.reserve('alice', 'm1')).resolves.toBe(DedupState.PENDING);
    await expect(a.reserve('bob', 'm1')).resolves.toBe(DedupState.NEW); // keyed by sender too
    await a.settle('alice', 'm1', Status.SUCCESS);
    await expect(b.reserve('alice', 'm1')).resolves.toBe(DedupState.DELIVERED);
    await expect(b.outcome('alice', 'm1', 1000)).resolves.toBe(Status.SUCCESS);
  });

  it('an ERROR is forgotten: a repeat is a new attempt', async () => {
    const [a, b] = await stores();
    await a.reserve('alice', 'm1');
    await a.settle('alice', 'm1', Status.ERROR);
    await expect(b.reserve('alice', 'm1')).resolves.toBe(DedupState.NEW);
  });

  it('a waiter on another node gets the outcome of the pending attempt', async () => {
    const [a, b] = await stores();
    await a.reserve('alice', 'ok');
    await a.reserve('alice', 'ko');
    const waitOk = b.outcome('alice', 'ok', 3000);
    const waitKo = b.outcome('alice', 'ko', 3000);
    await sleep(100);
    await a.settle('alice', 'ok', Status.SUCCESS);
    await a.settle('alice', 'ko', Status.ERROR);
    await expect(waitOk).resolves.toBe(Status.SUCCESS);
    await expect(waitKo).resolves.toBe(Status.ERROR);
  });

  it('a waiter gives up with ERROR after its timeout; an unknown id is ERROR at once', async () => {
    const [a, b] = await stores();
    await a.reserve('alice', 'm1');
    const started = Date.now();
    await expect(b.outcome('alice', 'm1', 300)).resolves.toBe(Status.ERROR);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    await expect(b.outcome('alice', 'unknown', 3000)).resolves.toBe(Status.ERROR);
  });

  it('delivered ids are kept for the window, pending ones for their bound', async () => {
    const [a] = await stores(300, 300);
    await a.reserve('alice', 'd');
    await a.settle('alice', 'd', Status.SUCCESS);
    await a.reserve('alice', 'p'); // its node "dies" before settling
    const pttl = Number(await raw(env.redis, 'PTTL', `${env.pool.prefix}dedup:d:alice`));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
    await sleep(400);
    await expect(a.reserve('alice', 'd')).resolves.toBe(DedupState.NEW);
    await expect(a.reserve('alice', 'p')).resolves.toBe(DedupState.NEW);
  });

  it('with a window of 0 nothing is deduplicated, but waiters still learn the SUCCESS', async () => {
    const [a, b] = await stores(0);
    await a.reserve('alice', 'm1');
    const waiting = b.outcome('alice', 'm1', 2000);
    await sleep(50);
    await a.settle('alice', 'm1', Status.SUCCESS);
    await expect(waiting).resolves.toBe(Status.SUCCESS);
    await expect(b.reserve('alice', 'm1')).resolves.toBe(DedupState.NEW);
  });

  it('rejects at once while Redis is down (the caller delivers without dedup)', async () => {
    const [a] = await stores();
    await env.redis.stop();
    try {
      await expect(a.reserve('alice', 'm1')).rejects.toThrow();
      await expect(a.settle('alice', 'm1', Status.SUCCESS)).rejects.toThrow();
      await expect(a.outcome('alice', 'm1', 1000)).resolves.toBe(Status.ERROR);
    } finally {
      await env.redis.start();
    }
  });
});

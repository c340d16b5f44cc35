import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { raw, useRedisEngine, waitFor } from '../../../test/support/redis-engine';
import { AVATAR_INDEX_SUBDIR, RedisAvatarIndex } from './redis-avatar-index';

describe('RedisAvatarIndex (real redis-server)', () => {
  const env = useRedisEngine();
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-redis-avatars-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('an avatar set on one node is read on another', async () => {
    const a = new RedisAvatarIndex(await env.pool.connect(), dir);
    const b = new RedisAvatarIndex(await env.pool.connect(), dir);
    await a.set('u1', 'http://h/avatars/1.png');
    await a.set('u:2', 'http://h/avatars/2.png');
    await expect(b.get('u1')).resolves.toBe('http://h/avatars/1.png');
    await expect(b.get('nobody')).resolves.toBeUndefined();
    expect(await b.getMany(['u1', 'nobody', 'u:2'])).toEqual(
      new Map([
        ['u1', 'http://h/avatars/1.png'],
        ['u:2', 'http://h/avatars/2.png'],
      ]),
    );
    await a.set('u1', 'http://h/avatars/3.png');
    await expect(b.get('u1')).resolves.toBe('http://h/avatars/3.png');
    expect(await raw(env.redis, 'HGET', `${env.pool.prefix}avatars`, 'u1')).toBe('http://h/avatars/3.png');
    // Index files only (no leftovers), in a directory that is never served.
    expect(readdirSync(join(dir, AVATAR_INDEX_SUBDIR)).every((f) => /^[0-9a-f]{64}\.json$/.test(f))).toBe(true);
  });

  it('survives a Redis that lost its data, and is readable while Redis is down', async () => {
    const connection = await env.pool.connect();
    const index = new RedisAvatarIndex(connection, dir);
    await index.set('u1', 'http://h/avatars/1.png');
    await raw(env.redis, 'FLUSHALL');
    await expect(index.get('u1')).resolves.toBe('http://h/avatars/1.png');
    // written back to the hash
    await waitFor(async () => (await raw(env.redis, 'HGET', `${env.pool.prefix}avatars`, 'u1')) === 'http://h/avatars/1.png', 2000, 'write-back');

    await env.redis.stop();
    try {
      await expect(index.get('u1')).resolves.toBe('http://h/avatars/1.png');
      await expect(index.set('u1', 'http://h/avatars/2.png')).rejects.toThrow(); // not visible to the other nodes
    } finally {
      await env.redis.start();
    }
  });
});

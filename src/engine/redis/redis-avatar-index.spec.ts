import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { raw, useRedisEngine } from '../../../test/support/redis-engine';
import { eventually } from '../../../test/support/time';
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
    await eventually(async () => (await raw(env.redis, 'HGET', `${env.pool.prefix}avatars`, 'u1')) === 'http://h/avatars/1.png', 2000, 'write-back');

    await env.redis.stop();
    try {
      await expect(index.get('u1')).resolves.toBe('http://h/avatars/1.png');
      await expect(index.set('u1', 'http://h/avatars/2.png')).rejects.toThrow(); // not visible to the other nodes
    } finally {
      await env.redis.start();
    }
  });

  describe('get-and-set: set resolves to the URL it replaced', () => {
    it('undefined for a user without one, then the previous URL, whichever node set it', async () => {
      const a = new RedisAvatarIndex(await env.pool.connect(), dir);
      const b = new RedisAvatarIndex(await env.pool.connect(), dir);
      await expect(a.set('u1', 'url-1')).resolves.toBeUndefined();
      await expect(b.set('u1', 'url-2')).resolves.toBe('url-1');
      await expect(a.set('u1', 'url-3')).resolves.toBe('url-2');
      await expect(a.set('u2', 'other')).resolves.toBeUndefined();
    });

    it('racing sets on two nodes: every replaced URL is handed out exactly once', async () => {
      const a = new RedisAvatarIndex(await env.pool.connect(), dir);
      const b = new RedisAvatarIndex(await env.pool.connect(), dir);
      await a.set('u', 'url-0');
      const urls = Array.from({ length: 20 }, (_, i) => `url-${i + 1}`);
      const previous = await Promise.all(urls.map((url, i) => (i % 2 === 0 ? a : b).set('u', url)));
      const final = await a.get('u');
      // previous URLs + the final one = every URL ever set, each once
      expect([...previous, final].sort()).toEqual(['url-0', ...urls].sort());
    });

    it('after Redis lost its data, the previous URL comes from the file', async () => {
      const a = new RedisAvatarIndex(await env.pool.connect(), dir);
      await a.set('u1', 'url-1');
      await raw(env.redis, 'FLUSHALL');
      const b = new RedisAvatarIndex(await env.pool.connect(), dir);
      await expect(b.set('u1', 'url-2')).resolves.toBe('url-1');
      await expect(a.set('u1', 'url-3')).resolves.toBe('url-2');
    });

    it('the hash is authoritative while it has the user', async () => {
      const a = new RedisAvatarIndex(await env.pool.connect(), dir);
      await a.set('u1', 'url-1');
      await raw(env.redis, 'HSET', `${env.pool.prefix}avatars`, 'u1', 'url-in-redis');
      await expect(a.set('u1', 'url-2')).resolves.toBe('url-in-redis');
    });

    it('a set that fails in Redis puts the file back: the durable copy never names the failed URL', async () => {
      const index = new RedisAvatarIndex(await env.pool.connect(), dir);
      await index.set('u1', 'url-1');
      await env.redis.stop();
      try {
        await expect(index.set('u1', 'url-failed')).rejects.toThrow();
        await expect(index.set('nobody-yet', 'url-failed-2')).rejects.toThrow();
      } finally {
        await env.redis.start(); // with its data lost: only the files remain
      }
      await eventually(async () => (await raw(env.redis, 'PING')) === 'PONG', 5000, 'redis back');
      const fresh = new RedisAvatarIndex(await env.pool.connect(), dir);
      await expect(fresh.get('u1')).resolves.toBe('url-1');
      await expect(fresh.get('nobody-yet')).resolves.toBeUndefined();
      expect(readdirSync(join(dir, AVATAR_INDEX_SUBDIR))).toHaveLength(1);
      await expect(fresh.set('u1', 'url-2')).resolves.toBe('url-1');
    });
  });
});

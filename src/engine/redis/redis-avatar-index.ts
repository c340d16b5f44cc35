import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Logger } from '@nestjs/common';
import type { AvatarIndex } from '../../avatar/avatar-index';
import type { RedisConnection } from './redis-connection';

/** Subdirectory of AVATAR_DIR with one small file per user (never served: not an avatar name). */
export const AVATAR_INDEX_SUBDIR = '.index';

/**
 * The avatar index of a cluster: the Redis hash `avatars` (userId -> URL) every node reads, kept
 * durable on the shared avatar volume (one file per user, written atomically before the hash).
 * Redis is what the nodes share; the files make a saved avatar survive a Redis that restarts
 * without its data, and keep avatars readable while Redis is down:
 * - set(): file (temporary name, fsync, rename), then HSET; rejects when either fails.
 * - get()/getMany(): HGET/HMGET; a user missing from the hash (or Redis down) is looked up in
 *   the files, and found entries are written back to the hash (best effort).
 */
export class RedisAvatarIndex implements AvatarIndex {
  private readonly logger = new Logger('RedisAvatarIndex');
  private readonly dir: string;

  constructor(
    private readonly connection: RedisConnection,
    avatarDir: string,
  ) {
    this.dir = path.join(path.resolve(avatarDir), AVATAR_INDEX_SUBDIR);
  }

  async get(userId: string): Promise<string | undefined> {
    return (await this.getMany([userId])).get(userId);
  }

  async getMany(userIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (userIds.length === 0) return out;
    let missing = userIds;
    try {
      const values = await this.connection.commands.hmget(this.connection.keys.avatars, ...userIds);
      missing = [];
      userIds.forEach((userId, i) => {
        const url = values[i];
        if (typeof url === 'string') out.set(userId, url);
        else missing.push(userId);
      });
    } catch (err) {
      this.logger.debug(`avatar index unreachable in redis, reading the files: ${String(err)}`);
    }
    const recovered: string[] = [];
    for (const userId of missing) {
      const url = await this.readFile(userId);
      if (url !== undefined) {
        out.set(userId, url);
        recovered.push(userId, url);
      }
    }
    if (recovered.length > 0) {
      this.connection.commands.hset(this.connection.keys.avatars, ...recovered).catch(() => undefined);
    }
    return out;
  }

  async set(userId: string, url: string): Promise<void> {
    if (typeof userId !== 'string' || typeof url !== 'string') throw new TypeError('userId and url must be strings');
    await this.writeFile(userId, url);
    await this.connection.commands.hset(this.connection.keys.avatars, userId, url);
  }

  private fileOf(userId: string): string {
    return path.join(this.dir, `${createHash('sha256').update(userId).digest('hex')}.json`);
  }

  private async readFile(userId: string): Promise<string | undefined> {
    try {
      const parsed = JSON.parse(await fs.readFile(this.fileOf(userId), 'utf8')) as { userId?: unknown; url?: unknown };
      return parsed.userId === userId && typeof parsed.url === 'string' ? parsed.url : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn(`avatar index file unreadable: ${String(err)}`);
      return undefined;
    }
  }

  private async writeFile(userId: string, url: string): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const file = this.fileOf(userId);
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const handle = await fs.open(tmp, 'wx', 0o644);
      try {
        await handle.writeFile(JSON.stringify({ userId, url }), 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }
}

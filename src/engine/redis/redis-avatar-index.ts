import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Logger } from '@nestjs/common';
import type { AvatarIndex } from '../engine.ports';
import { AVATAR_SWAP } from './lua-scripts';
import type { RedisConnection } from './redis-connection';

/** Subdirectory of AVATAR_DIR with one small file per user (never served: not an avatar name). */
export const AVATAR_INDEX_SUBDIR = '.index';

/**
 * The avatar index of a cluster: the Redis hash `avatars` (userId -> URL) every node reads, kept
 * durable on the shared avatar volume (one file per user, written atomically before the hash).
 * Redis is what the nodes share; the files make a saved avatar survive a Redis that restarts
 * without its data, and keep avatars readable while Redis is down:
 * - set(): reads the user's file (the previous URL as the durable copy knows it), writes the new
 *   one (temporary name, fsync, rename), then swaps the hash entry atomically (AVATAR_SWAP: HGET
 *   + HSET in one script). It resolves to the URL the hash held, which is authoritative while
 *   Redis has it (of racing sets on several nodes, each gets a different previous URL); when
 *   the hash had none (Redis lost its data, or it was never written back), the file's URL is the
 *   previous one. When the swap fails (Redis down) the file is put back as it was (best effort)
 *   and set() rejects: the caller deletes the new avatar, which then no copy of the index names.
 *   (A swap applied by Redis whose reply was lost is indistinguishable from a failed one.)
 * - get()/getMany(): HGET/HMGET; a user missing from the hash (or Redis down) is looked up in
 *   the files, and found entries are written back to the hash (best effort, HSETNX: never over
 *   a newer set).
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
      const writeBack = this.connection.commands.pipeline();
      for (let i = 0; i < recovered.length; i += 2) writeBack.hsetnx(this.connection.keys.avatars, recovered[i], recovered[i + 1]);
      writeBack.exec().catch(() => undefined);
    }
    return out;
  }

  async set(userId: string, url: string): Promise<string | undefined> {
    if (typeof userId !== 'string' || typeof url !== 'string') throw new TypeError('userId and url must be strings');
    const fromFile = await this.readFile(userId);
    await this.writeFile(userId, url);
    let fromHash: unknown;
    try {
      fromHash = await AVATAR_SWAP.run(this.connection.commands, [this.connection.keys.avatars], [userId, url]);
    } catch (err) {
      await this.restoreFile(userId, fromFile).catch((restoreErr: unknown) =>
        this.logger.warn(`avatar index file not restored after a failed set: ${String(restoreErr)}`),
      );
      throw err;
    }
    return typeof fromHash === 'string' ? fromHash : fromFile;
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

  /** Puts a user's file back as it was before a set: its previous URL, or no file. */
  private async restoreFile(userId: string, url: string | undefined): Promise<void> {
    if (url === undefined) await fs.rm(this.fileOf(userId), { force: true });
    else await this.writeFile(userId, url);
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

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import type { AvatarIndex } from '../engine.ports';

export const AVATAR_INDEX_FILE = 'index.json';

/**
 * The avatar index of single-node mode: a Map in memory, persisted as one JSON object
 * (`{"<userId>":"<url>",...}`) in `<dir>/index.json` so that it survives restarts.
 *
 * - init() loads the file: a missing file is an empty index; an unreadable or corrupt one
 *   throws (rather than silently forgetting every saved avatar). get/getMany/set call init()
 *   themselves, so calling it at startup only surfaces a corrupt file early.
 * - set() resolves once the whole map, including the new entry, has been written atomically
 *   (temporary file in the same directory, fsync, rename); only then does get() return it. It
 *   resolves to the URL the entry replaced, as of the writes before it: sets are applied in call
 *   order, so two sets of one user batched into one write get the old URL and the first one's.
 *   On a write failure set() rejects and the entry is not applied (nor counted as replaced).
 * - Writes are serialized on one promise chain; sets arriving while a write is in flight are
 *   batched into the next single write.
 * - One process only: two processes writing the same file would overwrite each other's entries
 *   (cluster mode uses a shared index instead).
 */
export class FileAvatarIndex implements AvatarIndex {
  readonly file: string;
  private readonly dir: string;
  private entries = new Map<string, string>();
  private loaded?: Promise<void>;
  /** Updates waiting for the next write, in call order. */
  private pending: PendingSet[] = [];
  /** The next write, not started yet, that the pending updates will go out with. */
  private queued?: Promise<void>;
  /** The end of the write chain (never rejects). */
  private tail: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.file = path.join(this.dir, AVATAR_INDEX_FILE);
  }

  init(): Promise<void> {
    if (!this.loaded) {
      this.loaded = this.load().catch((err: unknown) => {
        this.loaded = undefined; // a later call retries (e.g. after the file was fixed)
        throw err;
      });
    }
    return this.loaded;
  }

  async get(userId: string): Promise<string | undefined> {
    await this.init();
    return this.entries.get(userId);
  }

  async getMany(userIds: string[]): Promise<Map<string, string>> {
    await this.init();
    const out = new Map<string, string>();
    for (const id of userIds) {
      const url = this.entries.get(id);
      if (url !== undefined) out.set(id, url);
    }
    return out;
  }

  async set(userId: string, url: string): Promise<string | undefined> {
    if (typeof userId !== 'string' || typeof url !== 'string') {
      throw new TypeError('userId and url must be strings');
    }
    await this.init();
    const update: PendingSet = { userId, url };
    this.pending.push(update);
    if (!this.queued) {
      const write = this.tail.then(() => this.flush());
      this.queued = write;
      this.tail = write.catch(() => undefined);
    }
    await this.queued;
    return update.previous;
  }

  private async flush(): Promise<void> {
    const updates = this.pending;
    this.pending = [];
    this.queued = undefined; // later sets go into the next write
    // Previous URLs are taken from the written state (entries), which includes every earlier
    // write, never from a write still in flight.
    const next = new Map(this.entries);
    for (const update of updates) {
      update.previous = next.get(update.userId);
      next.set(update.userId, update.url);
    }
    await this.writeAtomically(JSON.stringify(Object.fromEntries(next)));
    this.entries = next;
  }

  private async writeAtomically(json: string): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const tmp = path.join(this.dir, `.${AVATAR_INDEX_FILE}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await fs.open(tmp, 'wx', 0o644);
      try {
        await handle.writeFile(json, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, this.file);
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.entries = new Map();
        return;
      }
      throw new Error(`cannot read the avatar index ${this.file}: ${describe(err)}`, {
        cause: err,
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`corrupt avatar index ${this.file}: not JSON (${describe(err)})`, {
        cause: err,
      });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error(`corrupt avatar index ${this.file}: not a JSON object`);
    }
    const entries = new Map<string, string>();
    for (const [userId, url] of Object.entries(parsed)) {
      if (typeof url !== 'string') {
        throw new Error(
          `corrupt avatar index ${this.file}: the value of ${JSON.stringify(userId)} is not a string`,
        );
      }
      entries.set(userId, url);
    }
    this.entries = entries;
  }
}

interface PendingSet {
  userId: string;
  url: string;
  /** Set when its write is prepared: the URL this update replaces. */
  previous?: string;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

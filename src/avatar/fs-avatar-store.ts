import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { AVATAR_CONTENT_TYPES, AVATAR_FILE_NAME, AvatarStore, StoredAvatar } from './avatar-store';

/**
 * Avatars as files in one directory (AVATAR_DIR), which may be a volume shared by several nodes:
 * - names are 128 random bits (no coordination needed, collisions are not a concern);
 * - a file is written under a unique temporary name in the same directory, fsynced, then renamed
 *   into place, so readers on any node see either nothing or the whole file;
 * - a published file is never modified, so it may be cached forever; it is deleted when its user
 *   saves a new avatar (delete(), called by AvatarService once no userList can name it).
 * Temporary names start with "." and never match AVATAR_FILE_NAME, so they are never served.
 */
export class FsAvatarStore implements AvatarStore {
  private readonly dir: string;
  private ready?: Promise<void>;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  /** Creates the directory (recursively). Optional: put() does it on first use. */
  init(): Promise<void> {
    if (!this.ready) {
      this.ready = fs.mkdir(this.dir, { recursive: true }).then(
        () => undefined,
        (err: unknown) => {
          this.ready = undefined; // retry on the next call
          throw err;
        },
      );
    }
    return this.ready;
  }

  async put(data: Buffer, ext: 'webp' | 'png', _contentType?: string): Promise<string> {
    if (!Object.prototype.hasOwnProperty.call(AVATAR_CONTENT_TYPES, ext)) {
      throw new Error(`unsupported avatar extension: ${String(ext)}`);
    }
    await this.init();
    const fileName = `${randomBytes(16).toString('hex')}.${ext}`;
    const finalPath = path.join(this.dir, fileName);
    const tmpPath = path.join(this.dir, `.${fileName}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await fs.open(tmpPath, 'wx', 0o644);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmpPath, finalPath);
    } catch (err) {
      await fs.rm(tmpPath, { force: true }).catch(() => undefined);
      throw err;
    }
    return fileName;
  }

  async delete(fileName: string): Promise<void> {
    if (typeof fileName !== 'string' || !AVATAR_FILE_NAME.test(fileName)) {
      throw new Error(`not an avatar file name: ${JSON.stringify(fileName)}`);
    }
    try {
      await fs.unlink(path.join(this.dir, fileName));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return; // already gone (or never there)
      throw err;
    }
  }

  async get(fileName: string): Promise<StoredAvatar | undefined> {
    if (typeof fileName !== 'string') return undefined;
    const match = AVATAR_FILE_NAME.exec(fileName);
    if (!match) return undefined;
    const ext = match[1] as keyof typeof AVATAR_CONTENT_TYPES;
    try {
      const data = await fs.readFile(path.join(this.dir, fileName));
      return { data, contentType: AVATAR_CONTENT_TYPES[ext] };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
      throw err;
    }
  }
}

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { FileAvatarIndex } from './file-avatar-index';

describe('FileAvatarIndex', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'avatar-index-'));
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const readIndex = async (): Promise<unknown> =>
    JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));

  it('starts empty when there is no file', async () => {
    const index = new FileAvatarIndex(dir);
    await index.init();
    expect(await index.get('u1')).toBeUndefined();
    expect(await index.getMany(['u1', 'u2'])).toEqual(new Map());
  });

  it('creates a missing directory on the first write', async () => {
    const nested = path.join(dir, 'a', 'b');
    const index = new FileAvatarIndex(nested);
    await index.set('u1', 'http://x/avatars/1.webp');
    expect(JSON.parse(await fs.readFile(path.join(nested, 'index.json'), 'utf8'))).toEqual({
      u1: 'http://x/avatars/1.webp',
    });
  });

  it('sets, gets, overwrites and persists', async () => {
    const index = new FileAvatarIndex(dir);
    await index.set('u1', 'url-1');
    await index.set('u2', 'url-2');
    await index.set('u1', 'url-1b');
    expect(await index.get('u1')).toBe('url-1b');
    expect(await index.get('u2')).toBe('url-2');
    expect(await readIndex()).toEqual({ u1: 'url-1b', u2: 'url-2' });
  });

  it('getMany returns only the users that have an avatar', async () => {
    const index = new FileAvatarIndex(dir);
    await index.set('u1', 'url-1');
    await index.set('u3', 'url-3');
    expect(await index.getMany(['u1', 'u2', 'u3', 'u1'])).toEqual(
      new Map([
        ['u1', 'url-1'],
        ['u3', 'url-3'],
      ]),
    );
    expect(await index.getMany([])).toEqual(new Map());
  });

  it('is reloaded by a new instance (restart)', async () => {
    const first = new FileAvatarIndex(dir);
    await first.set('alice', 'http://h/avatars/a.webp');
    await first.set('bob', 'http://h/avatars/b.png');
    const second = new FileAvatarIndex(dir);
    await second.init();
    expect(await second.get('alice')).toBe('http://h/avatars/a.webp');
    expect(await second.getMany(['bob', 'carol'])).toEqual(new Map([['bob', 'http://h/avatars/b.png']]));
  });

  it('loads lazily when get is called without init', async () => {
    await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify({ u: 'v' }));
    expect(await new FileAvatarIndex(dir).get('u')).toBe('v');
  });

  it('keeps every one of many concurrent sets, and the file stays valid JSON', async () => {
    const index = new FileAvatarIndex(dir);
    const writes = Array.from({ length: 200 }, (_, i) => index.set(`user-${i}`, `url-${i}`));
    await Promise.all(writes);
    const expected = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`user-${i}`, `url-${i}`]));
    expect(await readIndex()).toEqual(expected);
    const reloaded = new FileAvatarIndex(dir);
    expect((await reloaded.getMany(Object.keys(expected))).size).toBe(200);
    expect((await fs.readdir(dir)).filter((f) => f !== 'index.json')).toEqual([]);
  });

  it('applies concurrent sets of one user in call order', async () => {
    const index = new FileAvatarIndex(dir);
    await Promise.all([index.set('u', 'a'), index.set('u', 'b'), index.set('u', 'c')]);
    expect(await index.get('u')).toBe('c');
    expect(await readIndex()).toEqual({ u: 'c' });
  });

  it('interleaved sets and reads never observe a half-written file', async () => {
    const index = new FileAvatarIndex(dir);
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      pending.push(index.set(`u${i % 5}`, `v${i}`));
      await new Promise((r) => setImmediate(r));
      const text = await fs.readFile(path.join(dir, 'index.json'), 'utf8').catch(() => '{}');
      expect(() => JSON.parse(text)).not.toThrow();
    }
    await Promise.all(pending);
    expect(await readIndex()).toEqual({ u0: 'v25', u1: 'v26', u2: 'v27', u3: 'v28', u4: 'v29' });
  });

  describe('get-and-set: set resolves to the URL it replaced', () => {
    it('undefined for a user without one, then each previous URL, per user', async () => {
      const index = new FileAvatarIndex(dir);
      await expect(index.set('u1', 'url-1')).resolves.toBeUndefined();
      await expect(index.set('u2', 'url-2')).resolves.toBeUndefined();
      await expect(index.set('u1', 'url-1b')).resolves.toBe('url-1');
      await expect(index.set('u1', 'url-1c')).resolves.toBe('url-1b');
      await expect(index.set('u2', 'url-2b')).resolves.toBe('url-2');
    });

    it('concurrent sets of one user (one batched write) each get a different previous URL', async () => {
      const index = new FileAvatarIndex(dir);
      await index.set('u', 'a');
      await expect(Promise.all([index.set('u', 'b'), index.set('u', 'c'), index.set('u', 'd')])).resolves.toEqual(['a', 'b', 'c']);
      expect(await readIndex()).toEqual({ u: 'd' });
    });

    it('a set queued behind a write in flight gets that write\'s URL, not the older one', async () => {
      const index = new FileAvatarIndex(dir);
      await index.set('u', 'old');
      const first = index.set('u', 'first');
      // let the first write start (its temporary file is being written) before the second set
      await new Promise((r) => setImmediate(r));
      const second = index.set('u', 'second');
      await expect(Promise.all([first, second])).resolves.toEqual(['old', 'first']);
    });

    it('a URL whose write failed is not handed out as replaced', async () => {
      const index = new FileAvatarIndex(dir);
      await index.set('u', 'v1');
      await fs.rm(dir, { recursive: true });
      await fs.writeFile(dir, 'not a directory');
      await expect(index.set('u', 'v2')).rejects.toThrow();
      await fs.rm(dir);
      await expect(index.set('u', 'v3')).resolves.toBe('v1');
    });

    it('knows the previous URL after a restart (from the file)', async () => {
      await new FileAvatarIndex(dir).set('u', 'before-restart');
      await expect(new FileAvatarIndex(dir).set('u', 'after')).resolves.toBe('before-restart');
    });
  });

  it('makes a set visible only once it is durable', async () => {
    const index = new FileAvatarIndex(dir);
    await index.init();
    const done = index.set('u', 'v');
    expect(await index.get('u')).toBeUndefined();
    await done;
    expect(await index.get('u')).toBe('v');
  });

  it('rejects a set whose write fails without applying it, and recovers', async () => {
    const index = new FileAvatarIndex(dir);
    await index.set('u1', 'v1');
    // make the directory unusable: replace it by a file
    await fs.rm(dir, { recursive: true });
    await fs.writeFile(dir, 'not a directory');
    await expect(index.set('u2', 'v2')).rejects.toThrow();
    expect(await index.get('u2')).toBeUndefined();
    expect(await index.get('u1')).toBe('v1');
    await fs.rm(dir);
    await index.set('u3', 'v3');
    expect(await readIndex()).toEqual({ u1: 'v1', u3: 'v3' });
  });

  it.each([
    ['not JSON', '{"u1": "v1"'],
    ['an array', '["u1"]'],
    ['null', 'null'],
    ['a string', '"index"'],
    ['a non-string value', '{"u1": 42}'],
    ['an empty file', ''],
  ])('throws a clear error on a corrupt file (%s)', async (_name, content) => {
    await fs.writeFile(path.join(dir, 'index.json'), content);
    const index = new FileAvatarIndex(dir);
    await expect(index.init()).rejects.toThrow(/corrupt avatar index .*index\.json/);
    await expect(index.get('u1')).rejects.toThrow(/corrupt avatar index/);
  });

  it('does not overwrite a corrupt file', async () => {
    await fs.writeFile(path.join(dir, 'index.json'), 'garbage');
    const index = new FileAvatarIndex(dir);
    await expect(index.set('u', 'v')).rejects.toThrow(/corrupt/);
    expect(await fs.readFile(path.join(dir, 'index.json'), 'utf8')).toBe('garbage');
  });

  it('handles awkward user ids as plain keys', async () => {
    const index = new FileAvatarIndex(dir);
    await index.set('__proto__', 'p');
    await index.set('constructor', 'c');
    await index.set('', 'empty');
    await index.set('ünï "cødé"\n', 'u');
    const reloaded = new FileAvatarIndex(dir);
    expect(await reloaded.getMany(['__proto__', 'constructor', '', 'ünï "cødé"\n', 'toString'])).toEqual(
      new Map([
        ['__proto__', 'p'],
        ['constructor', 'c'],
        ['', 'empty'],
        ['ünï "cødé"\n', 'u'],
      ]),
    );
  });
});

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { AVATAR_FILE_NAME, avatarFileNameOf, avatarUrl } from './avatar-store';
import { FsAvatarStore } from './fs-avatar-store';

describe('FsAvatarStore', () => {
  let root: string;
  let dir: string;

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'avatar-store-'));
    dir = path.join(root, 'nested', 'avatars');
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('creates its directory lazily and round-trips a file', async () => {
    const store = new FsAvatarStore(dir);
    const data = Buffer.from('RIFF\x00\x00\x00\x00WEBPdata', 'latin1');
    const name = await store.put(data, 'webp', 'image/webp');
    expect(name).toMatch(AVATAR_FILE_NAME);
    expect(name).toMatch(/^[a-f0-9]{32}\.webp$/);
    expect(await store.get(name)).toEqual({ data, contentType: 'image/webp' });
    expect(await fs.readFile(path.join(dir, name))).toEqual(data);
  });

  it('init() creates the directory and is idempotent', async () => {
    const store = new FsAvatarStore(dir);
    await Promise.all([store.init(), store.init()]);
    await store.init();
    expect((await fs.stat(dir)).isDirectory()).toBe(true);
  });

  it('derives the content type from the extension', async () => {
    const store = new FsAvatarStore(dir);
    const name = await store.put(Buffer.from('png bytes'), 'png', 'image/png');
    expect(name.endsWith('.png')).toBe(true);
    expect((await store.get(name))?.contentType).toBe('image/png');
  });

  it('chooses a new random name every time and leaves no temporary files', async () => {
    const store = new FsAvatarStore(dir);
    const names = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.put(Buffer.from(`avatar ${i}`), 'webp', 'image/webp')),
    );
    expect(new Set(names).size).toBe(50);
    expect((await fs.readdir(dir)).sort()).toEqual([...names].sort());
    for (const [i, name] of names.entries()) {
      expect((await store.get(name))?.data.toString()).toBe(`avatar ${i}`);
    }
  });

  it('shares the directory between instances (nodes on one volume)', async () => {
    const a = new FsAvatarStore(dir);
    const b = new FsAvatarStore(dir);
    const fromA = await a.put(Buffer.from('a'), 'webp', 'image/webp');
    const fromB = await b.put(Buffer.from('b'), 'png', 'image/png');
    expect((await b.get(fromA))?.data.toString()).toBe('a');
    expect((await a.get(fromB))?.data.toString()).toBe('b');
  });

  it('returns undefined for a well-formed name that does not exist', async () => {
    const store = new FsAvatarStore(dir);
    expect(await store.get(`${'0'.repeat(32)}.webp`)).toBeUndefined(); // dir not even created
    await store.init();
    expect(await store.get(`${'a'.repeat(32)}.png`)).toBeUndefined();
  });

  it('refuses every name it could not have chosen, including traversal attempts', async () => {
    const store = new FsAvatarStore(dir);
    const name = await store.put(Buffer.from('x'), 'webp', 'image/webp');
    // a readable file next to the directory that traversal would reach
    await fs.writeFile(path.join(root, 'secret.webp'), 'secret');
    await fs.writeFile(path.join(dir, 'index.json'), '{}');
    const attempts = [
      '../x',
      '../secret.webp',
      '..%2fsecret.webp',
      '..%2F..%2Fsecret.webp',
      '..\\secret.webp',
      path.join(root, 'secret.webp'),
      '/etc/passwd',
      `/${name}`,
      `./${name}`,
      `${name}/`,
      `${name}\n`,
      `${name}\0`,
      ` ${name}`,
      name.toUpperCase(),
      name.replace('.webp', '.jpg'),
      name.replace('.webp', '.svg'),
      `${name.slice(0, 31)}.webp`,
      `${name.slice(0, 32)}0.webp`,
      'index.json',
      '.',
      '..',
      '',
    ];
    for (const attempt of attempts) {
      expect(await store.get(attempt)).toBeUndefined();
    }
    expect(await store.get(undefined as unknown as string)).toBeUndefined();
    expect(await store.get(name)).toBeDefined();
  });

  it('does not serve temporary files of an interrupted write', async () => {
    const store = new FsAvatarStore(dir);
    await store.init();
    const tmp = `.${'b'.repeat(32)}.webp.0123456789ab.tmp`;
    await fs.writeFile(path.join(dir, tmp), 'partial');
    expect(await store.get(tmp)).toBeUndefined();
  });

  it('rejects put when the directory cannot be used, and succeeds once it can', async () => {
    await fs.mkdir(root, { recursive: true });
    const blocker = path.join(root, 'blocker');
    await fs.writeFile(blocker, 'a file where the directory should be');
    const store = new FsAvatarStore(path.join(blocker, 'avatars'));
    await expect(store.put(Buffer.from('x'), 'webp', 'image/webp')).rejects.toThrow();
    await fs.rm(blocker);
    await expect(store.put(Buffer.from('x'), 'webp', 'image/webp')).resolves.toMatch(AVATAR_FILE_NAME);
  });

  describe('delete', () => {
    it('removes a stored avatar and only it; get then finds nothing', async () => {
      const store = new FsAvatarStore(dir);
      const keep = await store.put(Buffer.from('keep'), 'webp', 'image/webp');
      const gone = await store.put(Buffer.from('gone'), 'png', 'image/png');
      await store.delete(gone);
      expect(await store.get(gone)).toBeUndefined();
      expect(await fs.readdir(dir)).toEqual([keep]);
      expect((await store.get(keep))?.data.toString()).toBe('keep');
    });

    it('is idempotent: deleting twice, or a name never stored, or before the directory exists, resolves', async () => {
      const store = new FsAvatarStore(dir);
      await expect(store.delete(`${'d'.repeat(32)}.webp`)).resolves.toBeUndefined(); // no directory yet
      const name = await store.put(Buffer.from('x'), 'webp', 'image/webp');
      await store.delete(name);
      await expect(store.delete(name)).resolves.toBeUndefined();
      await expect(Promise.all([store.delete(name), store.delete(name)])).resolves.toEqual([undefined, undefined]);
    });

    it('works across instances sharing the directory (a file saved on node A deleted by node B)', async () => {
      const a = new FsAvatarStore(dir);
      const b = new FsAvatarStore(dir);
      const name = await a.put(Buffer.from('a'), 'webp', 'image/webp');
      await b.delete(name);
      expect(await a.get(name)).toBeUndefined();
    });

    it('refuses every name it could not have chosen and touches nothing', async () => {
      const store = new FsAvatarStore(dir);
      const name = await store.put(Buffer.from('x'), 'webp', 'image/webp');
      await fs.writeFile(path.join(root, 'secret.webp'), 'secret');
      await fs.writeFile(path.join(dir, 'index.json'), '{}');
      await fs.mkdir(path.join(dir, '.index'));
      const before = (await fs.readdir(dir)).sort();
      for (const attempt of [
        '../secret.webp',
        path.join(root, 'secret.webp'),
        `./${name}`,
        `${name}/`,
        name.toUpperCase(),
        'index.json',
        '.index',
        '.',
        '..',
        '',
        undefined as unknown as string,
      ]) {
        await expect(store.delete(attempt)).rejects.toThrow(/not an avatar file name/);
      }
      expect((await fs.readdir(dir)).sort()).toEqual(before);
      expect(await fs.readFile(path.join(root, 'secret.webp'), 'utf8')).toBe('secret');
    });

    it('rejects when the file cannot be removed', async () => {
      const store = new FsAvatarStore(dir);
      await store.init();
      // a directory with an avatar's name: unlink fails with EISDIR/EPERM, even as root
      const name = `${'e'.repeat(32)}.webp`;
      await fs.mkdir(path.join(dir, name));
      await expect(store.delete(name)).rejects.toThrow();
    });
  });

  it('rejects an unknown extension', async () => {
    const store = new FsAvatarStore(dir);
    await expect(
      store.put(Buffer.from('x'), 'svg' as unknown as 'png', 'image/svg+xml'),
    ).rejects.toThrow(/extension/);
  });
});

describe('avatarFileNameOf', () => {
  const file = `${'c'.repeat(32)}.webp`;

  it('finds the file name in our own URLs, whatever trailing slashes PUBLIC_URL has', () => {
    expect(avatarFileNameOf('http://localhost:8080', `http://localhost:8080/avatars/${file}`)).toBe(file);
    expect(avatarFileNameOf('https://example.com/gw//', avatarUrl('https://example.com/gw//', file))).toBe(file);
  });

  it.each([
    ['the authorization server\'s avatar', 'https://auth.example.test/avatars/frank.png'],
    ['another host with a valid name', `https://evil.example/avatars/${file}`],
    ['our host, another path', `http://localhost:8080/other/${file}`],
    ['more segments', `http://localhost:8080/avatars/x/${file}`],
    ['traversal', 'http://localhost:8080/avatars/../index.json'],
    ['an index file', 'http://localhost:8080/avatars/index.json'],
    ['a query string', `http://localhost:8080/avatars/${file}?x=1`],
    ['an upper-case name', `http://localhost:8080/avatars/${file.toUpperCase()}`],
    ['the empty string', ''],
  ])('is undefined for %s', (_what, url) => {
    expect(avatarFileNameOf('http://localhost:8080', url)).toBeUndefined();
  });
});

describe('avatarUrl', () => {
  it('joins PUBLIC_URL and the file name', () => {
    const file = `${'c'.repeat(32)}.webp`;
    expect(avatarUrl('http://localhost:8080', file)).toBe(`http://localhost:8080/avatars/${file}`);
    expect(avatarUrl('https://chat.example.com/', file)).toBe(`https://chat.example.com/avatars/${file}`);
    expect(avatarUrl('https://example.com/gw//', file)).toBe(`https://example.com/gw/avatars/${file}`);
  });
});

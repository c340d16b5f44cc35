/**
 * docs/protocol.md "SAVE_AVATAR" and "GET /avatars/<file>": upload, re-encoding, serving, the new URL
 * everywhere (USER_UPDATE_MESSAGE, userList, CONNECT, across reconnects and restarts), the
 * error codes, and the bounds against hostile clients (AVATAR_MAX_PIXELS, AVATAR_CONCURRENCY,
 * AVATAR_SAVES_PER_MINUTE, one stored file per user).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ENGINES, sharedAvatarDir, type Deployment } from '../../support/deployment';
import { chat, isConnect, isDisconnect } from '../../support/frames';
import { freePort } from '../../support/free-port';
import { rawGet } from '../../support/http';
import type { Frame, TestClient } from '../../support/ws-client';
import { expectChatWorks, ID, profileOf, protocolScope, QUIET_MS, T } from './harness';

jest.setTimeout(20_000);

async function png(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 200, g: 30, b: 90, alpha: 1 } } })
    .png()
    .toBuffer();
}

/** A JPEG with EXIF metadata (to check that it is stripped). */
async function jpegWithExif(): Promise<Buffer> {
  return sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 10, g: 120, b: 200 } } })
    .jpeg()
    .withExif({ IFD0: { Copyright: 'secret-exif-marker', ImageDescription: 'secret-exif-marker' } })
    .toBuffer();
}

function save(imageBase64: unknown): Frame {
  return { type: 'SAVE_AVATAR', serverData: { imageBase64 } };
}

function avatarError(errorCode: string): Frame {
  return { type: 'SAVE_AVATAR', status: 'ERROR', error: { errorCode, message: expect.any(String) } };
}

const isSaveAvatar = (f: Frame) => f.type === 'SAVE_AVATAR';

/** The index of each engine lives beside the avatars: index.json (memory), .index/ (Redis). */
const INDEX_ENTRIES = new Set(['index.json', '.index']);

/** Everything in the avatar directory but the index (temporary files included). */
function storedFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !INDEX_ENTRIES.has(name))
    .sort();
}

const fileOf = (url: string): string => new URL(url).pathname.replace(/^\/avatars\//, '');

/** The AVATAR_DIR every node of the deployment shares. */
const avatarDirOf = (dep: Deployment): string => dep.nodes[0].env.AVATAR_DIR;

/** Saves an image and returns the URL of the SUCCESS (fails on anything else). */
async function saveOk(client: TestClient, image: Buffer): Promise<string> {
  client.send(save(image.toString('base64')));
  const reply = await client.next(isSaveAvatar, 10_000);
  expect(reply).toEqual({ type: 'SAVE_AVATAR', status: 'SUCCESS', serverData: { avatar: expect.any(String) } });
  return reply.serverData.avatar as string;
}

describe.each(ENGINES)('SAVE_AVATAR (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());
  const dirs: { remove(): void }[] = [];
  afterAll(() => dirs.forEach((d) => d.remove()));

  it('stores a PNG, answers its absolute URL under PUBLIC_URL and serves a re-encoded image of at most 512x512', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
    const image = await png(800, 600);
    alice.send(save(image.toString('base64')));
    const reply = await alice.next(isSaveAvatar, 10_000);
    expect(reply).toEqual({ type: 'SAVE_AVATAR', status: 'SUCCESS', serverData: { avatar: expect.any(String) } });
    const url: string = reply.serverData.avatar;
    const publicUrl = dep.nodes[0].env.PUBLIC_URL;
    expect(url.startsWith(`${publicUrl}/avatars/`)).toBe(true);
    expect(new URL(url).href).toBe(url); // absolute

    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^image\/(webp|png)$/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const body = Buffer.from(await res.arrayBuffer());
    const meta = await sharp(body).metadata();
    expect(['webp', 'png']).toContain(meta.format);
    expect(res.headers.get('content-type')).toBe(`image/${meta.format}`);
    expect(meta.width).toBeLessThanOrEqual(512);
    expect(meta.height).toBeLessThanOrEqual(512);
    expect(meta.width! / meta.height!).toBeCloseTo(800 / 600, 1); // fitted, not cropped
    // Every node serves it.
    for (let i = 0; i < dep.nodes.length; i++) {
      expect((await fetch(`${dep.httpUrl(i)}${new URL(url).pathname}`)).status).toBe(200);
    }

    // Everyone else is told; the uploader is not.
    for (const client of [bob, carol]) {
      expect(await client.nextOfType('USER_UPDATE_MESSAGE')).toEqual({
        type: 'USER_UPDATE_MESSAGE',
        serverData: { userId: ID.alice, avatar: url },
      });
    }
    await alice.expectSilence(QUIET_MS, (f) => f.type === 'USER_UPDATE_MESSAGE');
  });

  it('strips metadata and accepts JPEG input', async () => {
    const dep = await scope.deployment(engine);
    const [alice] = await scope.loginAll(dep, [T.alice]);
    const image = await jpegWithExif();
    expect((await sharp(image).metadata()).exif).toBeDefined();
    alice.send(save(image.toString('base64')));
    const reply = await alice.next(isSaveAvatar, 10_000);
    expect(reply.status).toBe('SUCCESS');
    const body = Buffer.from(await (await fetch(reply.serverData.avatar)).arrayBuffer());
    const meta = await sharp(body).metadata();
    expect(meta.exif).toBeUndefined();
    expect(body.includes('secret-exif-marker')).toBe(false);
    expect(meta.width).toBe(64);
  });

  it('the new URL wins over the auth server\'s avatar: userList and CONNECT of later logins, and the online profile', async () => {
    const dep = await scope.deployment(engine);
    // frank's auth-server profile has an avatar.
    expect(profileOf(ID.frank).avatar).not.toBe('');
    const [frank, alice] = await scope.loginAll(dep, [T.frank, T.alice]);
    frank.send(save(`data:image/png;base64,${(await png(40, 40)).toString('base64')}`));
    const url: string = (await frank.next(isSaveAvatar, 10_000)).serverData.avatar;
    expect(url).not.toBe(profileOf(ID.frank).avatar);
    await alice.nextOfType('USER_UPDATE_MESSAGE');

    // While frank is online: a newcomer's userList has the new URL.
    const { client: carol, auth: carolAuth } = await scope.loginWithAuth(dep.wsUrl(2), T.carol);
    expect(carolAuth.serverData.userList.find((u: { userId: string }) => u.userId === ID.frank)).toEqual({ ...profileOf(ID.frank), avatar: url });

    // frank reconnects: his own userList entry and the CONNECT broadcast carry the new URL.
    await frank.close();
    await alice.next((f) => f.type === 'USER_CONNECTION_MESSAGE' && f.serverData.userId === ID.frank);
    const { auth } = await scope.loginWithAuth(dep.wsUrl(3), T.frank);
    expect(auth.serverData.userList.find((u: { userId: string }) => u.userId === ID.frank)).toEqual({ ...profileOf(ID.frank), avatar: url });
    for (const client of [alice, carol]) {
      expect((await client.next(isConnect(ID.frank))).serverData).toEqual({ connectionStatus: 'CONNECT', ...profileOf(ID.frank), avatar: url });
    }
  });

  it('a second upload replaces the first everywhere', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    alice.send(save((await png(30, 30)).toString('base64')));
    const first: string = (await alice.next(isSaveAvatar, 10_000)).serverData.avatar;
    alice.send(save((await png(31, 31)).toString('base64')));
    const second: string = (await alice.next(isSaveAvatar, 10_000)).serverData.avatar;
    expect(second).not.toBe(first);
    expect((await bob.nextOfType('USER_UPDATE_MESSAGE')).serverData.avatar).toBe(first);
    expect((await bob.nextOfType('USER_UPDATE_MESSAGE')).serverData.avatar).toBe(second);
    const { auth } = await scope.loginWithAuth(dep.wsUrl(2), T.carol);
    expect(auth.serverData.userList.find((u: { userId: string }) => u.userId === ID.alice).avatar).toBe(second);
  });

  // A restart of the whole deployment (in cluster mode with a new, empty Redis: the avatar
  // survives through the shared store on disk).
  it('survives a restart of the gateway with the same AVATAR_DIR and PUBLIC_URL', async () => {
    const shared = sharedAvatarDir();
    dirs.push(shared);
    const port = await freePort();
    const env = { AVATAR_DIR: shared.dir, PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}/` };
    const auth = await scope.authServer();
    const first = await scope.deployment(engine, { ...env, AUTH_SERVER_URL: auth.url });
    const alice = await scope.login(first.wsUrl(0), T.alice);
    alice.send(save((await png(100, 100)).toString('base64')));
    const url: string = (await alice.next(isSaveAvatar, 10_000)).serverData.avatar;
    expect(url.startsWith(`http://127.0.0.1:${port}/avatars/`)).toBe(true); // no double slash
    await alice.close();
    await scope.stop(first);

    const second = await scope.deployment(engine, { ...env, AUTH_SERVER_URL: auth.url });
    const { auth: authFrame } = await scope.loginWithAuth(second.wsUrl(0), T.alice);
    expect(authFrame.serverData.userList).toEqual([{ ...profileOf(ID.alice), avatar: url }]);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^image\//);
  });

  describe('errors', () => {
    it('an image over AVATAR_MAX_BYTES gets "1" (checked before decoding), and changes nothing', async () => {
      const dep = await scope.deployment(engine, { AVATAR_MAX_BYTES: '1000' });
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      // Larger than AVATAR_MAX_BYTES, within MAX_FRAME_BYTES (derived from it: ~66 KB).
      const image = await sharp({ create: { width: 40, height: 40, channels: 3, background: '#123456' } })
        .png({ compressionLevel: 0 })
        .toBuffer();
      expect(image.length).toBeGreaterThan(1000);
      alice.send(save(image.toString('base64')));
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('1'));
      // Garbage that is too large is "too large", not "invalid": the size is checked first.
      alice.send(save('!'.repeat(1400)));
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('1'));
      // Under the limit: stored.
      const small = await png(8, 8);
      expect(small.length).toBeLessThanOrEqual(1000);
      alice.send(save(small.toString('base64')));
      expect((await alice.next(isSaveAvatar, 10_000)).status).toBe('SUCCESS');
      // Exactly AVATAR_MAX_BYTES is not too large: it is judged as an image ("2" for these bytes).
      alice.send(save(Buffer.alloc(1000, 0x41).toString('base64')));
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('2'));
      alice.send(save(Buffer.alloc(1001, 0x41).toString('base64')));
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('1'));
      await bob.nextOfType('USER_UPDATE_MESSAGE');
      await bob.expectSilence(QUIET_MS, (f) => f.type === 'USER_UPDATE_MESSAGE');
      expect(bob.all('USER_UPDATE_MESSAGE')).toHaveLength(1);
    });

    it.each<[string, () => Promise<unknown>]>([
      ['plain text', async () => Buffer.from('hello, I am not an image').toString('base64')],
      ['an SVG', async () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>').toString('base64')],
      ['a truncated PNG', async () => (await png(200, 200)).subarray(0, 60).toString('base64')],
      ['a PNG with corrupt pixel data', async () => {
        const image = await png(64, 64);
        const broken = Buffer.from(image);
        broken.fill(0x00, 45, image.length - 20);
        return broken.toString('base64');
      }],
      ['invalid base64', async () => 'iVBORw0K$$$not base64***'],
      ['URL-safe base64', async () => (await png(16, 16)).toString('base64url')],
      ['an empty string', async () => ''],
      ['a number', async () => 12345],
      ['null', async () => null],
      ['a data: URI with nothing after it', async () => 'data:image/png;base64,'],
    ])('%s gets "2"', async (_what, makeInput) => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      alice.send(save(await makeInput()));
      expect(await alice.next(isSaveAvatar, 10_000)).toEqual(avatarError('2'));
      // No USER_UPDATE went out: the next frame bob gets is alice's following chat.
      alice.send(chat('after the error'));
      expect(await bob.next()).toMatchObject({ type: 'CHAT_MESSAGE', serverData: { message: 'after the error' } });
      // The connection stays usable and the avatar unchanged.
      const { auth } = await scope.loginWithAuth(dep.wsUrl(2), T.carol);
      expect(auth.serverData.userList.find((u: { userId: string }) => u.userId === ID.alice).avatar).toBe('');
    });

    it('a missing imageBase64 or serverData gets "2"', async () => {
      const dep = await scope.deployment(engine);
      const [alice] = await scope.loginAll(dep, [T.alice]);
      alice.send({ type: 'SAVE_AVATAR', serverData: {} });
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('2'));
      alice.send({ type: 'SAVE_AVATAR' });
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('2'));
    });

    it('accepts base64 without padding and with a data: URI prefix', async () => {
      const dep = await scope.deployment(engine);
      const [alice] = await scope.loginAll(dep, [T.alice]);
      let image = await png(10, 10);
      while (image.toString('base64').endsWith('=') === false) image = Buffer.concat([image, Buffer.from([0])]);
      alice.send(save(image.toString('base64').replace(/=+$/, '')));
      expect((await alice.next(isSaveAvatar, 10_000)).status).toBe('SUCCESS');
      alice.send(save(`data:image/png;base64,${(await png(12, 12)).toString('base64')}`));
      expect((await alice.next(isSaveAvatar, 10_000)).status).toBe('SUCCESS');
    });
  });

  describe('hostile clients (issue 10)', () => {
    it('a 6300x6300 PNG of ~130 KB is "2" at once, refused on its header: no decode, no jump of the node\'s memory', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const bomb = await sharp({ create: { width: 6300, height: 6300, channels: 3, background: { r: 200, g: 30, b: 90 } } })
        .png({ compressionLevel: 9 })
        .toBuffer();
      // 40 M pixels (over AVATAR_MAX_PIXELS = 4096 x 4096) in far fewer bytes than AVATAR_MAX_BYTES
      expect(bomb.length).toBeLessThan(200_000);
      const frame = JSON.stringify(save(bomb.toString('base64')));

      // The nodes run in this process: its RSS is the node's. Sample it while the request runs.
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 1);
      const started = performance.now();
      alice.send(frame);
      const reply = await alice.next(isSaveAvatar, 10_000);
      const ms = performance.now() - started;
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);

      expect(reply).toEqual({ type: 'SAVE_AVATAR', status: 'ERROR', error: { errorCode: '2', message: 'image dimensions too large' } });
      // Decoding it costs ~40 MB of RSS and tens of ms, even for one colour.
      expect((peak - before) / 2 ** 20).toBeLessThan(15);
      expect(ms).toBeLessThan(250);
      // Nothing stored, nobody told.
      await expectChatWorks(alice, ID.alice, [bob]);
      expect(bob.all('USER_UPDATE_MESSAGE')).toEqual([]);
      expect(storedFiles(avatarDirOf(dep))).toEqual([]);
    });

    it('the 7th SAVE_AVATAR of a user within a minute is "4", on any node, invalid images counted; nobody is told of it', async () => {
      const dep = await scope.deployment(engine); // AVATAR_SAVES_PER_MINUTE = 6
      const [bob] = await scope.loginAll(dep, [T.bob]);
      let alice = await scope.login(dep.wsUrl(1), T.alice);
      await bob.next(isConnect(ID.alice));
      const image = await png(20, 20);

      // 1, 2: invalid images count too (a flood of them is bounded as well)
      alice.send(save('not base64 at all!'));
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('2'));
      alice.send(save(Buffer.from('hello, I am not an image').toString('base64')));
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('2'));
      // 3, 4 on node 1
      await saveOk(alice, image);
      await saveOk(alice, image);
      // 5, 6 after a reconnect on node 0 (the quota is the deployment's, not the node's)
      await alice.close();
      await bob.next(isDisconnect(ID.alice));
      alice = await scope.login(dep.wsUrl(0), T.alice);
      await saveOk(alice, image);
      const sixth = await saveOk(alice, image);
      await bob.next((f) => f.type === 'USER_UPDATE_MESSAGE' && f.serverData.avatar === sixth);

      // 7: a valid image, refused without being decoded
      alice.send(save(image.toString('base64')));
      expect(await alice.next(isSaveAvatar)).toEqual({
        type: 'SAVE_AVATAR',
        status: 'ERROR',
        error: { errorCode: '4', message: expect.any(String) },
      });
      // An 8th as well (refused attempts do not let anything through).
      alice.send(save(image.toString('base64')));
      expect(await alice.next(isSaveAvatar)).toEqual(avatarError('4'));
      // No USER_UPDATE for them: bob's next frame from alice is her chat (same path, same order).
      await expectChatWorks(alice, ID.alice, [bob]);
      expect(bob.all('USER_UPDATE_MESSAGE')).toHaveLength(4);
      expect(bob.all('USER_UPDATE_MESSAGE').at(-1)?.serverData.avatar).toBe(sixth);
      // Her avatar is still the 6th; another user's quota is his own.
      const { auth } = await scope.loginWithAuth(dep.wsUrl(2), T.carol);
      expect(auth.serverData.userList.find((u: { userId: string }) => u.userId === ID.alice).avatar).toBe(sixth);
      await saveOk(bob, image);
    });

    it('100 saves by one user leave exactly one avatar file: the one the last SUCCESS named', async () => {
      const dep = await scope.deployment(engine, { AVATAR_SAVES_PER_MINUTE: '1000', RATE_LIMIT_BURST: '1000' });
      const [alice] = await scope.loginAll(dep, [T.alice]);
      const image = await png(16, 16);
      const urls: string[] = [];
      for (let i = 0; i < 100; i++) urls.push(await saveOk(alice, image));
      expect(new Set(urls).size).toBe(100);
      // The handler of a connection's frame ends before its next frame runs: after this round
      // trip, the replaced file of the last save is gone too.
      await expectChatWorks(alice, ID.alice);
      const last = urls[urls.length - 1];
      expect(storedFiles(avatarDirOf(dep))).toEqual([fileOf(last)]);
      expect((await fetch(last)).status).toBe(200);
      expect((await fetch(urls[0])).status).toBe(404);
      expect((await fetch(urls[98])).status).toBe(404);
    });

    it('saves alternating between a connection on node 0 and a reconnect on node 1 still leave one file', async () => {
      const dep = await scope.deployment(engine, { AVATAR_SAVES_PER_MINUTE: '100' });
      const [bob] = await scope.loginAll(dep, [T.bob]);
      const urls: string[] = [];
      for (let round = 0; round < 6; round++) {
        const alice = await scope.login(dep.wsUrl(round % 2), T.alice);
        urls.push(await saveOk(alice, await png(10 + round, 10)));
        await expectChatWorks(alice, ID.alice); // its handler (and its delete) is over
        // the file saved by the other node in the previous round is gone already
        expect(storedFiles(avatarDirOf(dep))).toEqual([fileOf(urls[round])]);
        await alice.close();
        await bob.next(isDisconnect(ID.alice));
      }
      for (const url of urls.slice(0, -1)) {
        for (let i = 0; i < dep.nodes.length; i++) expect((await fetch(`${dep.httpUrl(i)}${new URL(url).pathname}`)).status).toBe(404);
      }
      const { auth } = await scope.loginWithAuth(dep.wsUrl(0), T.alice);
      expect(auth.serverData.userList.find((u: { userId: string }) => u.userId === ID.alice).avatar).toBe(urls[5]);
    });

    it('"3" when the store cannot write: nothing changes, nobody is told; it works again once the directory is back', async () => {
      const shared = sharedAvatarDir();
      dirs.push(shared);
      // A directory of its own that the test can take away (as root, permission bits would not stop a write).
      const avatarDir = join(shared.dir, 'avatars');
      const dep = await scope.deployment(engine, { AVATAR_DIR: avatarDir });
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const first = await saveOk(alice, await png(12, 12));
      await bob.nextOfType('USER_UPDATE_MESSAGE');

      rmSync(avatarDir, { recursive: true });
      writeFileSync(avatarDir, 'a file where the avatar directory was');
      alice.send(save((await png(13, 13)).toString('base64')));
      expect(await alice.next(isSaveAvatar, 10_000)).toEqual(avatarError('3'));
      await expectChatWorks(alice, ID.alice, [bob]);
      expect(bob.all('USER_UPDATE_MESSAGE')).toHaveLength(1);
      const { auth } = await scope.loginWithAuth(dep.wsUrl(2), T.carol);
      expect(auth.serverData.userList.find((u: { userId: string }) => u.userId === ID.alice).avatar).toBe(first);

      rmSync(avatarDir);
      mkdirSync(avatarDir);
      const second = await saveOk(alice, await png(14, 14));
      await expectChatWorks(alice, ID.alice);
      expect(storedFiles(avatarDir)).toEqual([fileOf(second)]);
    });

    it('"3" when the index cannot be written: the new file is deleted (no orphan), the previous avatar stays', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const first = await saveOk(alice, await png(12, 12));
      await bob.nextOfType('USER_UPDATE_MESSAGE');
      const dir = avatarDirOf(dep);
      // Break the index only: the memory engine's index.json becomes a directory (the rename
      // onto it fails), the Redis engine's .index/ directory becomes a file.
      if (engine === 'memory') {
        rmSync(join(dir, 'index.json'));
        mkdirSync(join(dir, 'index.json'));
      } else {
        rmSync(join(dir, '.index'), { recursive: true });
        writeFileSync(join(dir, '.index'), 'not a directory');
      }
      alice.send(save((await png(13, 13)).toString('base64')));
      expect(await alice.next(isSaveAvatar, 10_000)).toEqual(avatarError('3'));
      await expectChatWorks(alice, ID.alice, [bob]);
      expect(bob.all('USER_UPDATE_MESSAGE')).toHaveLength(1);
      expect(storedFiles(dir)).toEqual([fileOf(first)]);
      expect((await fetch(first)).status).toBe(200);
    });

    it('AVATAR_CONCURRENCY=1: two users uploading at once on one node both succeed, the second after waiting its turn', async () => {
      const dep = await scope.deployment(engine, { AVATAR_CONCURRENCY: '1' });
      const alice = await scope.login(dep.wsUrl(0), T.alice);
      const bob = await scope.login(dep.wsUrl(0), T.bob);
      // Exactly AVATAR_MAX_PIXELS (4096 x 4096): accepted, and its decode takes a while.
      const [a, b] = await Promise.all([
        sharp({ create: { width: 4096, height: 4096, channels: 3, background: '#203040' } }).png({ compressionLevel: 9 }).toBuffer(),
        sharp({ create: { width: 4096, height: 4096, channels: 3, background: '#405060' } }).png({ compressionLevel: 9 }).toBuffer(),
      ]);
      const waitingLines = () => dep.logs().filter((line) => line.includes('avatar decode waiting for a free slot')).length;
      const waitingBefore = waitingLines();
      alice.send(save(a.toString('base64')));
      bob.send(save(b.toString('base64')));
      const [ra, rb] = await Promise.all([alice.next(isSaveAvatar, 10_000), bob.next(isSaveAvatar, 10_000)]);
      expect(ra.status).toBe('SUCCESS');
      expect(rb.status).toBe('SUCCESS');
      expect(waitingLines() - waitingBefore).toBe(1);
      for (const url of [ra.serverData.avatar, rb.serverData.avatar]) {
        const meta = await sharp(Buffer.from(await (await fetch(url)).arrayBuffer())).metadata();
        expect([meta.width, meta.height]).toEqual([512, 512]);
      }
    });
  });

  describe('GET /avatars', () => {
    it.each([
      '/avatars/../../etc/passwd',
      '/avatars/..%2F..%2Fetc%2Fpasswd',
      '/avatars/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/avatars/0123456789abcdef0123456789abcdef.webp',
      '/avatars/0123456789abcdef0123456789abcdef.png',
      '/avatars/index.json',
      '/avatars/.hidden',
    ])('%s is 404 and leaks nothing', async (path) => {
      const dep = await scope.deployment(engine);
      const res = await rawGet(dep.httpUrl(0), path);
      expect(res.status).toBe(404);
      expect(res.body.toString()).not.toMatch(/root:|\/bin\/|[a-f0-9]{32}\.(webp|png)/);
    });
  });
});

/**
 * PROTOCOL.md "SAVE_AVATAR" and "GET /avatars/<file>": upload, re-encoding, serving, the new URL
 * everywhere (USER_UPDATE_MESSAGE, userList, CONNECT, across reconnects and restarts), and the
 * error codes.
 */
import sharp from 'sharp';
import { ENGINES, sharedAvatarDir } from '../../support/deployment';
import { freePort } from '../../support/free-port';
import type { Frame } from '../../support/ws-client';
import { ID, isConnect, profileOf, QUIET_MS, rawGet, Scope, T } from './harness';

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

describe.each(ENGINES)('SAVE_AVATAR (%s engine)', (engine) => {
  const scope = new Scope();
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
    const { client: carol, auth: carolAuth } = await scope.login(dep.wsUrl(2), T.carol);
    expect(carolAuth.serverData.userList.find((u: { userId: string }) => u.userId === ID.frank)).toEqual({ ...profileOf(ID.frank), avatar: url });

    // frank reconnects: his own userList entry and the CONNECT broadcast carry the new URL.
    await frank.close();
    await alice.next((f) => f.type === 'USER_CONNECTION_MESSAGE' && f.serverData.userId === ID.frank);
    const { auth } = await scope.login(dep.wsUrl(3), T.frank);
    expect(auth.serverData.userList.find((u: { userId: string }) => u.userId === ID.frank)).toEqual({ ...profileOf(ID.frank), avatar: url });
    for (const client of [alice, carol]) {
      expect((await client.next((f) => isConnect(f, ID.frank))).serverData).toEqual({ connectionStatus: 'CONNECT', ...profileOf(ID.frank), avatar: url });
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
    const { auth } = await scope.login(dep.wsUrl(2), T.carol);
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
    const { client: alice } = await scope.login(first.wsUrl(0), T.alice);
    alice.send(save((await png(100, 100)).toString('base64')));
    const url: string = (await alice.next(isSaveAvatar, 10_000)).serverData.avatar;
    expect(url.startsWith(`http://127.0.0.1:${port}/avatars/`)).toBe(true); // no double slash
    await alice.close();
    await scope.stop(first);

    const second = await scope.deployment(engine, { ...env, AUTH_SERVER_URL: auth.url });
    const { auth: authFrame } = await scope.login(second.wsUrl(0), T.alice);
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
      alice.send({ type: 'CHAT_MESSAGE', serverData: { message: 'after the error' } });
      expect(await bob.next()).toMatchObject({ type: 'CHAT_MESSAGE', serverData: { message: 'after the error' } });
      // The connection stays usable and the avatar unchanged.
      const { auth } = await scope.login(dep.wsUrl(2), T.carol);
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

import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';

import { AvatarController } from './avatar.controller';
import { AVATAR_STORE } from './avatar-store';
import { FsAvatarStore } from './fs-avatar-store';

describe('AvatarController (GET /avatars/:file)', () => {
  let dir: string;
  let store: FsAvatarStore;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'avatar-http-'));
    store = new FsAvatarStore(path.join(dir, 'avatars'));
    const moduleRef = await Test.createTestingModule({
      controllers: [AvatarController],
      providers: [{ provide: AVATAR_STORE, useValue: store }],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as AddressInfo;
    base = `http://127.0.0.1:${address.port}`;
  });

  afterAll(async () => {
    await app?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('serves a stored avatar with its type and the safety and caching headers', async () => {
    const data = Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 fake', 'latin1');
    const name = await store.put(data, 'webp', 'image/webp');
    const res = await fetch(`${base}/avatars/${name}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'");
    expect(res.headers.get('content-length')).toBe(String(data.length));
    expect(Buffer.from(await res.arrayBuffer())).toEqual(data);
  });

  it('serves PNG avatars as image/png', async () => {
    const name = await store.put(Buffer.from('png'), 'png', 'image/png');
    const res = await fetch(`${base}/avatars/${name}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
  });

  it('answers HEAD without a body', async () => {
    const name = await store.put(Buffer.from('head'), 'webp', 'image/webp');
    const res = await fetch(`${base}/avatars/${name}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it.each([
    `${'d'.repeat(32)}.webp`,
    'nope',
    '..%2F..%2Fetc%2Fpasswd',
    '..%2fsecret.webp',
    'index.json',
  ])('answers 404 for %s', async (file) => {
    await fs.writeFile(path.join(dir, 'secret.webp'), 'secret');
    const res = await fetch(`${base}/avatars/${file}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ statusCode: 404, message: 'avatar not found' });
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).not.toMatch(/immutable/);
  });
});

import { Logger } from '@nestjs/common';
import sharp from 'sharp';
import { FakeClient } from '../../test/support/fake-client';
import { strictMock } from '../../test/support/strict-mock';
import type { GatewayConfig } from '../config/gateway-config';
import type { InboundFrame } from '../messaging/client';
import type { Messenger } from '../messaging/messenger';
import type { PresenceService } from '../presence/presence.service';
import { AvatarError } from '../protocol/errors';
import { AvatarErrorCode, type UserProfile } from '../protocol/protocol';
import type { AvatarIndex } from './avatar-index';
import type { AvatarStore } from './avatar-store';
import { AvatarService } from './avatar.service';

const PUBLIC_URL = 'https://chat.example.com';
const FILE = '0123456789abcdef0123456789abcdef.webp';
const URL = `${PUBLIC_URL}/avatars/${FILE}`;
const MAX_BYTES = 64 * 1024;

async function avatarErrorOf(promise: Promise<unknown>): Promise<AvatarError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AvatarError) return err;
    throw err;
  }
  throw new Error('expected an AvatarError, nothing was thrown');
}

describe('AvatarService', () => {
  let png: Buffer;
  let log: string[];
  let put: jest.Mock<Promise<string>, [Buffer, 'webp' | 'png', string]>;
  let indexSet: jest.Mock<Promise<void>, [string, string]>;
  let updateProfile: jest.Mock<Promise<void>, [string, Partial<UserProfile>]>;
  let broadcast: jest.Mock<void, [object | string, string?]>;
  let service: AvatarService;
  let client: FakeClient;

  const save = (serverData: unknown): InboundFrame => ({ type: 'SAVE_AVATAR', serverData });

  /** A jest.fn typed like method F that records its name in `log` before running impl. */
  function logged<F extends (...args: never[]) => unknown>(
    name: string,
    impl: (...args: Parameters<F>) => ReturnType<F>,
  ): jest.Mock<ReturnType<F>, Parameters<F>> {
    return jest.fn((...args: Parameters<F>) => {
      log.push(name);
      return impl(...args);
    });
  }

  beforeAll(async () => {
    Logger.overrideLogger(false);
    png = await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
  });

  beforeEach(() => {
    log = [];
    put = logged<AvatarStore['put']>('store.put', async () => FILE);
    indexSet = logged<AvatarIndex['set']>('index.set', async () => undefined);
    updateProfile = logged<PresenceService['updateProfile']>('presence.updateProfile', async () => undefined);
    broadcast = logged<Messenger['broadcast']>('broadcast', () => undefined);
    service = new AvatarService(
      strictMock<AvatarStore>({ put }, 'store'),
      strictMock<AvatarIndex>({ set: indexSet }, 'index'),
      strictMock<PresenceService>({ updateProfile }, 'presence'),
      strictMock<Messenger>({ broadcast }, 'messenger'),
      strictMock<GatewayConfig>({ avatarMaxBytes: MAX_BYTES, publicUrl: PUBLIC_URL }, 'config'),
    );
    client = new FakeClient('alice');
    const send = client.send.bind(client);
    client.send = (frame) => {
      log.push('send');
      send(frame);
    };
  });

  it('re-encodes, stores, indexes, updates the profile, answers with the URL and tells the others', async () => {
    await service.handleSaveAvatar(client, save({ imageBase64: png.toString('base64') }));

    expect(put).toHaveBeenCalledTimes(1);
    const [data, ext, contentType] = put.mock.calls[0];
    expect(ext).toBe('webp');
    expect(contentType).toBe('image/webp');
    const stored = await sharp(data).metadata();
    expect(stored.format).toBe('webp');
    expect([stored.width, stored.height]).toEqual([8, 6]);

    expect(indexSet).toHaveBeenCalledWith('alice', URL);
    expect(updateProfile).toHaveBeenCalledWith('alice', { avatar: URL });
    expect(client.frames).toEqual([{ type: 'SAVE_AVATAR', status: 'SUCCESS', serverData: { avatar: URL } }]);
    expect(broadcast).toHaveBeenCalledTimes(1);
    const [frame, except] = broadcast.mock.calls[0];
    expect(typeof frame === 'string' ? JSON.parse(frame) : frame).toEqual({ type: 'USER_UPDATE_MESSAGE', serverData: { userId: 'alice', avatar: URL } });
    expect(except).toBe('alice');
    // the URL is durable before anyone is told about it
    expect(log).toEqual(['store.put', 'index.set', 'presence.updateProfile', 'send', 'broadcast']);
  });

  it('accepts a data: URI prefix', async () => {
    await service.handleSaveAvatar(client, save({ imageBase64: `data:image/png;base64,${png.toString('base64')}` }));
    expect(client.frames).toEqual([{ type: 'SAVE_AVATAR', status: 'SUCCESS', serverData: { avatar: URL } }]);
  });

  it('refuses an image over AVATAR_MAX_BYTES with "1", before decoding or storing anything', async () => {
    const tooLarge = Buffer.alloc(MAX_BYTES + 1, 0x41).toString('base64');
    const err = await avatarErrorOf(service.handleSaveAvatar(client, save({ imageBase64: tooLarge })));
    expect(err.code).toBe(AvatarErrorCode.TOO_LARGE);
    expect(log).toEqual([]);
  });

  it.each<[string, () => unknown]>([
    ['no serverData', () => undefined],
    ['no imageBase64', () => ({})],
    ['a numeric imageBase64', () => ({ imageBase64: 42 })],
    ['invalid base64', () => ({ imageBase64: 'not base64 at all!' })],
    ['base64 of text, not an image', () => ({ imageBase64: Buffer.from('hello, I am not a PNG').toString('base64') })],
    ['a truncated PNG', () => ({ imageBase64: png.subarray(0, png.length - 20).toString('base64') })],
  ])('refuses %s with "2" and stores nothing', async (_case, serverData) => {
    const err = await avatarErrorOf(service.handleSaveAvatar(client, save(serverData())));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    expect(log).toEqual([]);
  });

  it('answers "3" when the store fails: nothing indexed, sent or broadcast', async () => {
    put.mockImplementationOnce(async () => {
      log.push('store.put');
      throw new Error('disk full');
    });
    const err = await avatarErrorOf(service.handleSaveAvatar(client, save({ imageBase64: png.toString('base64') })));
    expect(err.code).toBe(AvatarErrorCode.STORE_FAILED);
    expect(err.message).not.toContain('disk full');
    expect(log).toEqual(['store.put']);
  });

  it('answers "3" when the index fails: the profile is not changed and nobody is told', async () => {
    indexSet.mockImplementationOnce(async () => {
      log.push('index.set');
      throw new Error('index write failed');
    });
    const err = await avatarErrorOf(service.handleSaveAvatar(client, save({ imageBase64: png.toString('base64') })));
    expect(err.code).toBe(AvatarErrorCode.STORE_FAILED);
    expect(log).toEqual(['store.put', 'index.set']);
  });

  it('still succeeds when the online profile cannot be updated (the index has the avatar)', async () => {
    updateProfile.mockRejectedValueOnce(new Error('redis down'));
    await service.handleSaveAvatar(client, save({ imageBase64: png.toString('base64') }));
    expect(client.frames).toEqual([{ type: 'SAVE_AVATAR', status: 'SUCCESS', serverData: { avatar: URL } }]);
    expect(broadcast).toHaveBeenCalledTimes(1);
  });
});

import { Logger } from '@nestjs/common';
import sharp from 'sharp';
import { rejectionOf } from '../../test/support/errors';
import { joinedClient, logSends, type FakeConnection } from '../../test/support/fake-client';
import { callLogger, strictMock } from '../../test/support/strict-mock';
import { flushPromises } from '../../test/support/time';
import type { AvatarIndex, QuotaStore } from '../engine/engine.ports';
import { Messenger } from '../messaging/messenger';
import { AvatarError } from '../protocol/errors';
import { AvatarErrorCode, MessageType, type UserProfile } from '../protocol/protocol';
import type { SessionService } from '../session/session.service';
import * as avatarImage from './avatar-image';
import type { AvatarStore } from './avatar-store';
import type { AvatarOptions } from './avatar.options';
import { AVATAR_QUOTA_WINDOW_MS, AvatarService } from './avatar.service';
import type { SaveAvatarDto } from './dto/save-avatar.dto';

const PUBLIC_URL = 'https://chat.example.com';
const FILE = '0123456789abcdef0123456789abcdef.webp';
const URL = `${PUBLIC_URL}/avatars/${FILE}`;
const OLD_FILE = 'fedcba9876543210fedcba9876543210.png';
const OLD_URL = `${PUBLIC_URL}/avatars/${OLD_FILE}`;
const MAX_BYTES = 64 * 1024;
const SAVES_PER_MINUTE = 6;

const avatarErrorOf = (promise: Promise<unknown>): Promise<AvatarError> => rejectionOf(AvatarError, promise);

describe('AvatarService', () => {
  let png: Buffer;
  let log: string[];
  let take: jest.Mock<Promise<boolean>, [string, number, number]>;
  let put: jest.Mock<Promise<string>, [Buffer, 'webp' | 'png', string]>;
  let remove: jest.Mock<Promise<void>, [string]>;
  let indexSet: jest.Mock<Promise<string | undefined>, [string, string]>;
  let updateProfile: jest.Mock<Promise<void>, [string, Partial<UserProfile>]>;
  let alice: FakeConnection;
  let client: FakeConnection['client'];

  /** A SAVE_AVATAR as the handler gets it (its DTO leaves serverData to the avatar pipeline). */
  const save = (serverData: unknown): SaveAvatarDto => ({ type: MessageType.SAVE_AVATAR, serverData });
  const savePng = (): SaveAvatarDto => save({ imageBase64: png.toString('base64') });
  const success = { type: 'SAVE_AVATAR', status: 'SUCCESS', serverData: { avatar: URL } };

  /** A jest.fn typed like method F that records its name in `log` before running impl. */
  const logged = callLogger(() => log);

  function service(config: Partial<AvatarOptions> = {}): AvatarService {
    return new AvatarService(
      strictMock<AvatarStore>({ put, delete: remove }, 'store'),
      strictMock<AvatarIndex>({ set: indexSet }, 'index'),
      strictMock<QuotaStore>({ take }, 'quotas'),
      strictMock<SessionService>({ updateProfile }, 'sessions'),
      strictMock<AvatarOptions>(
        {
          avatarMaxBytes: MAX_BYTES,
          publicUrl: PUBLIC_URL,
          avatarMaxPixels: 16_777_216,
          avatarConcurrency: 2,
          avatarSavesPerMinute: SAVES_PER_MINUTE,
          ...config,
        },
        'options',
      ),
    );
  }

  beforeAll(async () => {
    Logger.overrideLogger(false);
    png = await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
  });

  beforeEach(() => {
    log = [];
    take = logged<QuotaStore['take']>('quota.take', async () => true);
    put = logged<AvatarStore['put']>('store.put', async () => FILE);
    remove = logged<AvatarStore['delete']>('store.delete', async () => undefined);
    indexSet = logged<AvatarIndex['set']>('index.set', async () => undefined);
    updateProfile = logged<SessionService['updateProfile']>('sessions.updateProfile', async () => undefined);
    alice = joinedClient('alice');
    client = alice.client;
    logSends(client, log);
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('counts the attempt, re-encodes, stores, indexes, updates the profile everywhere (which tells the others), then answers with the URL', async () => {
    await service().saveAvatar(client, savePng());

    expect(take).toHaveBeenCalledWith('avatar-saves:alice', SAVES_PER_MINUTE, AVATAR_QUOTA_WINDOW_MS);
    expect(AVATAR_QUOTA_WINDOW_MS).toBe(60_000);
    expect(put).toHaveBeenCalledTimes(1);
    const [data, ext, contentType] = put.mock.calls[0];
    expect(ext).toBe('webp');
    expect(contentType).toBe('image/webp');
    const stored = await sharp(data).metadata();
    expect(stored.format).toBe('webp');
    expect([stored.width, stored.height]).toEqual([8, 6]);

    expect(indexSet).toHaveBeenCalledWith('alice', URL);
    expect(updateProfile).toHaveBeenCalledWith('alice', { avatar: URL });
    expect(alice.transport.frames).toEqual([success]);
    // the URL is durable before anyone is told about it; a first avatar replaces no file
    expect(log).toEqual(['quota.take', 'store.put', 'index.set', 'sessions.updateProfile', 'send']);
  });

  it('does not broadcast itself: USER_UPDATE_MESSAGE is the session core\'s, sent by updateProfile with the changed field', async () => {
    // No Messenger among its collaborators: the avatar feature reaches the others only through SessionService.
    const collaborators = Reflect.getMetadata('design:paramtypes', AvatarService) as unknown[];
    expect(collaborators).toHaveLength(5);
    expect(collaborators).not.toContain(Messenger);
    await service().saveAvatar(client, savePng());
    expect(updateProfile).toHaveBeenCalledTimes(1);
    expect(updateProfile.mock.calls[0]).toEqual(['alice', { avatar: URL }]);
    expect(alice.transport.frames).toEqual([success]); // the uploader gets its SUCCESS only
  });

  it('accepts a data: URI prefix', async () => {
    await service().saveAvatar(client, save({ imageBase64: `data:image/png;base64,${png.toString('base64')}` }));
    expect(alice.transport.frames).toEqual([success]);
  });

  it('refuses an image over AVATAR_MAX_BYTES with "1", before decoding or storing anything', async () => {
    const tooLarge = Buffer.alloc(MAX_BYTES + 1, 0x41).toString('base64');
    const err = await avatarErrorOf(service().saveAvatar(client, save({ imageBase64: tooLarge })));
    expect(err.code).toBe(AvatarErrorCode.TOO_LARGE);
    expect(log).toEqual(['quota.take']);
  });

  it.each<[string, () => unknown]>([
    ['no serverData', () => undefined],
    ['no imageBase64', () => ({})],
    ['a numeric imageBase64', () => ({ imageBase64: 42 })],
    ['invalid base64', () => ({ imageBase64: 'not base64 at all!' })],
    ['base64 of text, not an image', () => ({ imageBase64: Buffer.from('hello, I am not a PNG').toString('base64') })],
    ['a truncated PNG', () => ({ imageBase64: png.subarray(0, png.length - 20).toString('base64') })],
  ])('refuses %s with "2" and stores nothing (the attempt still counts)', async (_case, serverData) => {
    const err = await avatarErrorOf(service().saveAvatar(client, save(serverData())));
    expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
    expect(log).toEqual(['quota.take']);
  });

  describe('AVATAR_MAX_PIXELS', () => {
    it('refuses an image whose width x height exceeds it with "2", and stores nothing', async () => {
      // 8 x 6 = 48 pixels: far below the library's own default, so only the configured value refuses it
      const err = await avatarErrorOf(service({ avatarMaxPixels: 47 }).saveAvatar(client, savePng()));
      expect(err.code).toBe(AvatarErrorCode.INVALID_IMAGE);
      expect(log).toEqual(['quota.take']);
    });

    it('accepts an image of exactly AVATAR_MAX_PIXELS', async () => {
      await service({ avatarMaxPixels: 48 }).saveAvatar(client, savePng());
      expect(alice.transport.frames).toEqual([success]);
    });

    it('hands the configured value to the decoder', async () => {
      const reencode = jest.spyOn(avatarImage, 'reencodeAvatar');
      await service({ avatarMaxPixels: 1234 }).saveAvatar(client, save({ imageBase64: png.toString('base64') })).catch(() => undefined);
      expect(reencode).toHaveBeenCalledWith(expect.any(Buffer), expect.objectContaining({ maxPixels: 1234 }));
    });
  });

  describe('AVATAR_SAVES_PER_MINUTE', () => {
    it('over the quota: "4" before anything is decoded, stored or sent', async () => {
      take.mockImplementation(async () => {
        log.push('quota.take');
        return false;
      });
      const reencode = jest.spyOn(avatarImage, 'reencodeAvatar');
      // a valid image, an invalid one and an over-size one: all "4" (the quota is checked first)
      for (const frame of [savePng(), save({ imageBase64: 'not base64!' }), save({ imageBase64: Buffer.alloc(MAX_BYTES + 1).toString('base64') })]) {
        const err = await avatarErrorOf(service().saveAvatar(client, frame));
        expect(err.code).toBe(AvatarErrorCode.TOO_MANY_UPLOADS);
        expect(err.message).toMatch(/too many/);
      }
      expect(reencode).not.toHaveBeenCalled();
      expect(log).toEqual(['quota.take', 'quota.take', 'quota.take']);
      expect(alice.transport.frames).toEqual([]);
    });

    it('allows the upload when the quota cannot be checked (shared state unreachable), logged at debug', async () => {
      take.mockRejectedValueOnce(new Error('redis down'));
      const debug = jest.spyOn(Logger.prototype, 'debug');
      await service().saveAvatar(client, savePng());
      expect(alice.transport.frames).toEqual([success]);
      expect(debug).toHaveBeenCalledWith(expect.objectContaining({ err: 'Error: redis down' }), 'avatar quota unavailable: upload allowed');
    });

    it('the quota is per user', async () => {
      await service().saveAvatar(joinedClient('bob').client, savePng());
      expect(take).toHaveBeenCalledWith('avatar-saves:bob', SAVES_PER_MINUTE, 60_000);
    });
  });

  describe('one stored avatar per user', () => {
    it('deletes the replaced file once the index and the online profile name the new URL', async () => {
      indexSet.mockImplementation(async () => {
        log.push('index.set');
        return OLD_URL;
      });
      await service().saveAvatar(client, savePng());
      expect(remove).toHaveBeenCalledWith(OLD_FILE);
      expect(log).toEqual(['quota.take', 'store.put', 'index.set', 'sessions.updateProfile', 'send', 'store.delete']);
    });

    it.each([
      ['the authorization server\'s avatar', 'https://auth.example.test/avatars/frank.png'],
      ['a URL under another PUBLIC_URL', `https://old.example.com/avatars/${OLD_FILE}`],
      ['a URL of ours that names no avatar file', `${PUBLIC_URL}/avatars/index.json`],
      ['the new URL itself', URL],
    ])('never touches %s', async (_what, previous) => {
      indexSet.mockResolvedValueOnce(previous);
      await service().saveAvatar(client, savePng());
      expect(remove).not.toHaveBeenCalled();
      expect(alice.transport.frames).toEqual([success]);
    });

    it('keeps the replaced file when the online profile could not be updated (it may still name it)', async () => {
      indexSet.mockResolvedValueOnce(OLD_URL);
      updateProfile.mockRejectedValueOnce(new Error('redis down'));
      await service().saveAvatar(client, savePng());
      expect(alice.transport.frames).toEqual([success]);
      expect(remove).not.toHaveBeenCalled();
    });

    it('a failed delete is logged, not reported to the client', async () => {
      indexSet.mockResolvedValueOnce(OLD_URL);
      remove.mockRejectedValueOnce(new Error('EACCES'));
      const warn = jest.spyOn(Logger.prototype, 'warn');
      await expect(service().saveAvatar(client, savePng())).resolves.toBeUndefined();
      expect(alice.transport.frames).toEqual([success]);
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ file: OLD_FILE, err: 'Error: EACCES' }), 'replaced avatar not deleted');
    });
  });

  describe('"3": the avatar could not be stored', () => {
    it('when the store fails: nothing indexed, sent, told or deleted', async () => {
      put.mockImplementationOnce(async () => {
        log.push('store.put');
        throw new Error('disk full');
      });
      const err = await avatarErrorOf(service().saveAvatar(client, savePng()));
      expect(err.code).toBe(AvatarErrorCode.STORE_FAILED);
      expect(err.message).not.toContain('disk full');
      expect(log).toEqual(['quota.take', 'store.put']);
    });

    it('when the index fails: the new file is deleted (no orphan), the profile is not changed and nobody is told', async () => {
      indexSet.mockImplementationOnce(async () => {
        log.push('index.set');
        throw new Error('index write failed');
      });
      const err = await avatarErrorOf(service().saveAvatar(client, savePng()));
      expect(err.code).toBe(AvatarErrorCode.STORE_FAILED);
      expect(log).toEqual(['quota.take', 'store.put', 'index.set', 'store.delete']);
      expect(remove).toHaveBeenCalledWith(FILE);
    });

    it('when the index fails and so does the delete: still "3", the delete failure only logged', async () => {
      indexSet.mockRejectedValueOnce(new Error('index write failed'));
      remove.mockRejectedValueOnce(new Error('EIO'));
      const warn = jest.spyOn(Logger.prototype, 'warn');
      const err = await avatarErrorOf(service().saveAvatar(client, savePng()));
      expect(err.code).toBe(AvatarErrorCode.STORE_FAILED);
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ file: FILE }), 'unindexed avatar not deleted');
    });
  });

  it('still succeeds when the online profile cannot be updated (the index has the avatar), logged', async () => {
    updateProfile.mockRejectedValueOnce(new Error('redis down'));
    const warn = jest.spyOn(Logger.prototype, 'warn');
    await service().saveAvatar(client, savePng());
    expect(alice.transport.frames).toEqual([success]);
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ err: 'Error: redis down' }), 'online profile not updated (the index has the avatar)');
  });

  describe('AVATAR_CONCURRENCY', () => {
    /** Replaces the decoder by one whose calls the test finishes, recording starts and ends. */
    function controlledDecoder(): { events: string[]; finish: (i: number) => void } {
      const events: string[] = [];
      const gates: (() => void)[] = [];
      let n = 0;
      jest.spyOn(avatarImage, 'reencodeAvatar').mockImplementation(() => {
        const i = n++;
        events.push(`start ${i}`);
        return new Promise((resolve) => {
          gates[i] = () => {
            events.push(`end ${i}`);
            resolve({ data: Buffer.from('webp'), ext: 'webp', contentType: 'image/webp' });
          };
        });
      });
      return { events, finish: (i) => gates[i]() };
    }

    it('decodes at most AVATAR_CONCURRENCY images at once; the others wait their turn, in order', async () => {
      const { events, finish } = controlledDecoder();
      const svc = service({ avatarConcurrency: 2 });
      const clients = ['u0', 'u1', 'u2', 'u3'].map((id) => joinedClient(id));
      const saves = clients.map((c) => svc.saveAvatar(c.client, savePng()));
      await flushPromises();
      expect(events).toEqual(['start 0', 'start 1']);
      finish(1);
      await flushPromises();
      expect(events).toEqual(['start 0', 'start 1', 'end 1', 'start 2']);
      finish(0);
      await flushPromises();
      expect(events.slice(4)).toEqual(['end 0', 'start 3']);
      finish(2);
      finish(3);
      await Promise.all(saves);
      for (const c of clients) expect(c.transport.frames).toEqual([success]);
    });

    it('a decode that fails frees its slot for the next one', async () => {
      const svc = service({ avatarConcurrency: 1 });
      const bad = svc.saveAvatar(client, save({ imageBase64: Buffer.from('GIF89a not really').toString('base64') }));
      const good = svc.saveAvatar(joinedClient('bob').client, savePng());
      expect((await avatarErrorOf(bad)).code).toBe(AvatarErrorCode.INVALID_IMAGE);
      await expect(good).resolves.toBeUndefined();
    });

    it('the decoder runs within a slot only (nothing after it holds one)', async () => {
      const { events, finish } = controlledDecoder();
      let releasePut!: () => void;
      put.mockImplementationOnce(() => new Promise((resolve) => (releasePut = () => resolve(FILE))));
      const svc = service({ avatarConcurrency: 1 });
      const first = svc.saveAvatar(client, savePng());
      const second = svc.saveAvatar(joinedClient('bob').client, savePng());
      await flushPromises();
      finish(0);
      await flushPromises();
      // the first is stuck in store.put: the second decodes meanwhile
      expect(events).toEqual(['start 0', 'end 0', 'start 1']);
      finish(1);
      releasePut();
      await Promise.all([first, second]);
    });
  });
});

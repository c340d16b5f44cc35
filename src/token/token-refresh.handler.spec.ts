/**
 * TokenRefreshHandler, the @SubscribeMessage('TOKEN_REFRESH_MESSAGE') handler (docs/protocol.md,
 * "Token lifecycle"): SUCCESS with the new expiresAt (or none) and the connection holds the new
 * token; invalid or another user's token: ERROR "2", then 4401 and the session leaves;
 * unavailable: ERROR "3", the connection keeps its old token and expiry; a changed profile goes
 * out through the session core with the changed fields only, a saved avatar winning over the
 * authorization server's, a field changed online and not at the authorization server untouched.
 */
import type { IncomingMessage } from 'node:http';
import { Logger } from '@nestjs/common';
import { makeProfile } from '../../test/support/factories';
import { strictMock } from '../../test/support/strict-mock';
import type { TokenCheck } from '../auth/token-verifier';
import type { TokenService } from '../auth/token.service';
import type { AvatarIndex } from '../engine/engine.ports';
import { ChatClient, type Transport } from '../messaging/chat-client';
import { MessageType, type UserProfile } from '../protocol/protocol';
import type { SessionService } from '../session/session.service';
import type { TokenRefreshDto } from './dto/token-refresh.dto';
import type { TokenLifecycle, TokenEvent } from './token-lifecycle.service';
import { TokenRefreshHandler } from './token-refresh.handler';

const ALICE = Object.freeze(makeProfile('1', { nickname: 'alice', avatar: 'http://auth.example/alice.png' }));
const frame = (authToken: string): TokenRefreshDto => ({ type: MessageType.TOKEN_REFRESH, serverData: { authToken } });

interface Recorded extends Transport {
  written: string[];
  closes: [number, string][];
  open: boolean;
}

function transport(): Recorded {
  const t: Recorded = {
    written: [],
    closes: [],
    open: true,
    get isOpen() {
      return t.open;
    },
    write(text: string) {
      t.written.push(text);
      return true;
    },
    writeBroadcast: () => undefined,
    probe: () => Promise.resolve(true),
    close(code: number, reason: string) {
      t.closes.push([code, reason]);
      t.open = false;
    },
    drop() {
      t.open = false;
    },
  };
  return t;
}

describe('TokenRefreshHandler', () => {
  let verify: jest.Mock<Promise<TokenCheck>, [string]>;
  let updateProfile: jest.Mock<Promise<void>, [string, Partial<UserProfile>]>;
  let savedAvatar: jest.Mock<Promise<string | undefined>, [string]>;
  let track: jest.Mock;
  let closeUnauthorized: jest.Mock<Promise<void>, [ChatClient, string]>;
  let events: TokenEvent[];
  let handler: TokenRefreshHandler;
  let client: ChatClient;
  let t: Recorded;

  /** alice logged in with `old-token` (expiring at 1000); her online profile is `online`. */
  function loggedIn(online: UserProfile = ALICE): void {
    t = transport();
    client = new ChatClient(t, {} as IncomingMessage);
    client.authenticate(ALICE, { token: 'old-token', expiresAt: 1000 });
    client.beginJoin(Object.freeze({ ...online }));
    client.completeJoin('{}');
    t.written.length = 0;
  }

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    verify = jest.fn<Promise<TokenCheck>, [string]>();
    updateProfile = jest.fn<Promise<void>, [string, Partial<UserProfile>]>(() => Promise.resolve());
    savedAvatar = jest.fn<Promise<string | undefined>, [string]>(() => Promise.resolve(undefined));
    track = jest.fn();
    events = [];
    closeUnauthorized = jest.fn((c: ChatClient, reason: string) => {
      c.close(4401, reason);
      return Promise.resolve();
    });
    handler = new TokenRefreshHandler(
      strictMock<TokenService>({ verify }, 'tokens'),
      strictMock<TokenLifecycle>({ track, closeUnauthorized, count: jest.fn((e: TokenEvent) => void events.push(e)) }, 'lifecycle'),
      strictMock<SessionService>({ updateProfile }, 'sessions'),
      strictMock<AvatarIndex>({ get: savedAvatar }, 'avatars'),
    );
    loggedIn();
  });

  it('SUCCESS with the new expiresAt: the connection holds the new token, its expiry moved', async () => {
    verify.mockResolvedValue({ outcome: 'valid', profile: ALICE, expiresAt: 5000 });
    await expect(handler.refresh(client, frame('new-token'))).resolves.toEqual({
      type: 'TOKEN_REFRESH_MESSAGE',
      status: 'SUCCESS',
      serverData: { expiresAt: '5000' },
    });
    expect(verify).toHaveBeenCalledWith('new-token');
    expect([client.token, client.tokenExpiresAt]).toEqual(['new-token', 5000]);
    expect(track).toHaveBeenCalledWith(client);
    expect(updateProfile).not.toHaveBeenCalled();
    expect(events).toEqual(['refreshed']);
  });

  it('SUCCESS without expiresAt when the new token does not expire', async () => {
    verify.mockResolvedValue({ outcome: 'valid', profile: ALICE });
    await expect(handler.refresh(client, frame('forever'))).resolves.toEqual({ type: 'TOKEN_REFRESH_MESSAGE', status: 'SUCCESS', serverData: {} });
    expect(client.tokenExpiresAt).toBeUndefined();
  });

  it('an invalid token: ERROR "2", then 4401; the old token is not kept as current', async () => {
    verify.mockResolvedValue({ outcome: 'invalid' });
    await expect(handler.refresh(client, frame('bad-token'))).resolves.toBeUndefined();
    expect(t.written.map((w) => JSON.parse(w))).toEqual([
      { type: 'TOKEN_REFRESH_MESSAGE', status: 'ERROR', error: { errorCode: '2', message: 'token not found or invalid' } },
    ]);
    expect(closeUnauthorized).toHaveBeenCalledWith(client, 'token not found or invalid');
    expect(t.closes).toEqual([[4401, 'token not found or invalid']]);
    expect(events).toEqual(['refresh_invalid']);
  });

  it("another user's token: ERROR \"2\", then 4401", async () => {
    verify.mockResolvedValue({ outcome: 'valid', profile: makeProfile('2'), expiresAt: 5000 });
    await handler.refresh(client, frame('bobs-token'));
    expect(JSON.parse(t.written[0])).toEqual({ type: 'TOKEN_REFRESH_MESSAGE', status: 'ERROR', error: { errorCode: '2', message: 'token of another user' } });
    expect(t.closes).toEqual([[4401, 'token not found or invalid']]);
    expect(client.token).toBe('old-token');
    expect(track).not.toHaveBeenCalled();
  });

  it('the authorization server unavailable: ERROR "3", the connection kept with its old token and expiry', async () => {
    verify.mockResolvedValue({ outcome: 'unavailable', reason: 'HTTP 503' });
    await expect(handler.refresh(client, frame('new-token'))).resolves.toEqual({
      type: 'TOKEN_REFRESH_MESSAGE',
      status: 'ERROR',
      error: { errorCode: '3', message: 'authorization server unavailable, try again later' },
    });
    expect([client.isOpen, client.token, client.tokenExpiresAt]).toEqual([true, 'old-token', 1000]);
    expect(track).not.toHaveBeenCalled();
    expect(events).toEqual(['refresh_unavailable']);
  });

  it('answers nothing to a connection closed while its new token was checked', async () => {
    verify.mockImplementation(async () => {
      client.close(1000, 'bye');
      return { outcome: 'invalid' };
    });
    await expect(handler.refresh(client, frame('x'))).resolves.toBeUndefined();
    expect(t.written).toEqual([]);
    expect(closeUnauthorized).not.toHaveBeenCalled();
  });

  describe('a changed profile', () => {
    it('is told to everyone with the changed fields only', async () => {
      verify.mockResolvedValue({ outcome: 'valid', profile: { ...ALICE, nickname: 'alice2', status: 'new status' } });
      await handler.refresh(client, frame('new-token'));
      expect(updateProfile).toHaveBeenCalledWith('1', { nickname: 'alice2', status: 'new status' });
      expect(client.user).toEqual({ ...ALICE, nickname: 'alice2', status: 'new status' });
    });

    it("never resets a saved avatar (SAVE_AVATAR wins over the authorization server's)", async () => {
      loggedIn({ ...ALICE, avatar: 'http://gw/avatars/saved.webp' });
      savedAvatar.mockResolvedValue('http://gw/avatars/saved.webp');
      verify.mockResolvedValue({ outcome: 'valid', profile: { ...ALICE, avatar: 'http://auth.example/alice-2.png', nickname: 'alice2' } });
      await handler.refresh(client, frame('new-token'));
      expect(savedAvatar).toHaveBeenCalledWith('1');
      expect(updateProfile).toHaveBeenCalledWith('1', { nickname: 'alice2' });
    });

    it("takes the authorization server's new avatar when the user saved none", async () => {
      verify.mockResolvedValue({ outcome: 'valid', profile: { ...ALICE, avatar: 'http://auth.example/alice-2.png' } });
      await handler.refresh(client, frame('new-token'));
      expect(updateProfile).toHaveBeenCalledWith('1', { avatar: 'http://auth.example/alice-2.png' });
    });

    it('keeps the online avatar when the saved avatars cannot be read', async () => {
      savedAvatar.mockRejectedValue(new Error('redis down'));
      verify.mockResolvedValue({ outcome: 'valid', profile: { ...ALICE, avatar: 'http://auth.example/alice-2.png' } });
      await handler.refresh(client, frame('new-token'));
      expect(updateProfile).not.toHaveBeenCalled();
    });

    it('leaves a field changed online (and not by the authorization server) as it is', async () => {
      loggedIn({ ...ALICE, status: 'set by the backend' });
      verify.mockResolvedValue({ outcome: 'valid', profile: ALICE });
      await handler.refresh(client, frame('new-token'));
      expect(updateProfile).not.toHaveBeenCalled();
    });

    it('still answers SUCCESS when the shared profile could not be written', async () => {
      updateProfile.mockRejectedValue(new Error('redis down'));
      verify.mockResolvedValue({ outcome: 'valid', profile: { ...ALICE, nickname: 'alice2' }, expiresAt: 9000 });
      await expect(handler.refresh(client, frame('new-token'))).resolves.toMatchObject({ status: 'SUCCESS', serverData: { expiresAt: '9000' } });
    });
  });
});

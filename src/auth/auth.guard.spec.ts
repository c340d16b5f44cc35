import type { IncomingMessage } from 'node:http';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { makeProfile } from '../../test/support/factories';
import { strictMock } from '../../test/support/strict-mock';
import { ChatClient, type Transport } from '../messaging/chat-client';
import { AuthError } from '../protocol/errors';
import { HANDSHAKE_LOGIN } from '../protocol/inbound';
import { MessageType, type UserProfile } from '../protocol/protocol';
import { AuthGuard } from './auth.guard';
import type { TokenCheck } from './token-verifier';
import type { TokenService } from './token.service';

const ALICE: UserProfile = Object.freeze(makeProfile('1', { nickname: 'alice' }));
const TOKEN = 'alice-secret-token';

/** A transport that is open until told otherwise and accepts every write. */
function fakeTransport(): Transport & { open: boolean } {
  return {
    open: true,
    get isOpen() {
      return this.open;
    },
    write: () => true,
    writeBroadcast: () => undefined,
    probe: () => Promise.resolve(true),
    close() {
      this.open = false;
    },
    drop() {
      this.open = false;
    },
  };
}

function upgrade(headers: Record<string, string> = {}, url = '/ws'): IncomingMessage {
  return { headers, url } as unknown as IncomingMessage;
}

const base64url = (text: string) => Buffer.from(text).toString('base64url');

/** The context Nest hands a guard of a ws handler: [client, data, pattern]. */
function wsContext(client: ChatClient, data: unknown, pattern: string = MessageType.AUTH): ExecutionContextHost {
  const context = new ExecutionContextHost([client, data, pattern]);
  context.setType('ws');
  return context;
}

describe('AuthGuard', () => {
  let verify: jest.Mock<Promise<TokenCheck>, [string]>;

  function guard(allowQueryToken = false, tokens: TokenService = strictMock<TokenService>({ verify }, 'tokens')): AuthGuard {
    return new AuthGuard(tokens, { allowQueryToken });
  }

  /** A guard whose TokenService must not be asked at all. */
  const noTokenCheck = () => guard(false, strictMock<TokenService>({}, 'tokens'));

  /** The AuthError canActivate throws or rejects with (failing the test for anything else). */
  async function refusal(run: () => boolean | Promise<boolean>): Promise<AuthError> {
    try {
      await run();
    } catch (err) {
      if (err instanceof AuthError) return err;
      throw err;
    }
    throw new Error('the guard let the login through');
  }

  beforeEach(() => {
    verify = jest.fn((_token: string) => Promise.resolve<TokenCheck>({ outcome: 'valid', profile: ALICE }));
  });

  describe('outside a login', () => {
    it.each([MessageType.CHAT, MessageType.AUTH, 'MY_OWN_TYPE'])('lets a joined client through on %s without any token check', async (pattern) => {
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      client.authenticate(ALICE);
      client.beginJoin(ALICE);
      client.completeJoin('{}');
      await expect(Promise.resolve(noTokenCheck().canActivate(wsContext(client, { type: pattern }, pattern)))).resolves.toBe(true);
    });

    it.each([MessageType.CHAT, MessageType.DIALOG, 'MY_OWN_TYPE'])('refuses %s before login (no token check)', async (pattern) => {
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      expect(noTokenCheck().canActivate(wsContext(client, { type: pattern }, pattern))).toBe(false);
      client.authenticate(ALICE); // verified but not joined yet: still refused
      expect(noTokenCheck().canActivate(wsContext(client, { type: pattern }, pattern))).toBe(false);
      client.beginJoin(ALICE);
      expect(noTokenCheck().canActivate(wsContext(client, { type: pattern }, pattern))).toBe(false);
    });

    it('refuses the login of a client that is already closed (no token check)', () => {
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      client.close(1000, 'bye');
      expect(noTokenCheck().canActivate(wsContext(client, HANDSHAKE_LOGIN))).toBe(false);
    });

    it('lets through a login whose user is already verified (no second check)', async () => {
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      client.authenticate(ALICE);
      await expect(Promise.resolve(noTokenCheck().canActivate(wsContext(client, HANDSHAKE_LOGIN)))).resolves.toBe(true);
    });
  });

  describe('handshake login (HANDSHAKE_LOGIN): the token of the upgrade request', () => {
    it.each<[string, Record<string, string>, string]>([
      ['the authToken header', { authtoken: TOKEN }, '/ws'],
      ['an authToken.<base64url> subprotocol', { 'sec-websocket-protocol': `mpgp.v1, authToken.${base64url(TOKEN)}` }, '/ws'],
      ['the header before a subprotocol', { authtoken: TOKEN, 'sec-websocket-protocol': `authToken.${base64url('other')}` }, '/ws?authToken=third'],
    ])('reads %s', async (_case, headers, url) => {
      const client = new ChatClient(fakeTransport(), upgrade(headers, url));
      await expect(guard().canActivate(wsContext(client, HANDSHAKE_LOGIN))).resolves.toBe(true);
      expect(verify.mock.calls).toEqual([[TOKEN]]);
      expect(client.user).toBe(ALICE);
    });

    it('reads the upgrade request once, and the client keeps nothing of it afterwards (an idle connection holds no headers)', async () => {
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      expect(client.request).toBeDefined();
      await expect(guard().canActivate(wsContext(client, HANDSHAKE_LOGIN))).resolves.toBe(true);
      expect(client.request).toBeUndefined();
      expect(client.token).toBe(TOKEN);
    });

    it('reads the query only when ALLOW_QUERY_TOKEN', async () => {
      const client = new ChatClient(fakeTransport(), upgrade({}, `/ws?authToken=${encodeURIComponent(TOKEN)}`));
      await expect(guard(true).canActivate(wsContext(client, HANDSHAKE_LOGIN))).resolves.toBe(true);
      expect(verify.mock.calls).toEqual([[TOKEN]]);

      const other = new ChatClient(fakeTransport(), upgrade({}, `/ws?authToken=${encodeURIComponent(TOKEN)}`));
      const err = await refusal(() => guard(false, strictMock<TokenService>({}, 'tokens')).canActivate(wsContext(other, HANDSHAKE_LOGIN)));
      expect(err).toMatchObject({ code: '2', close: 4401, why: 'no token' });
      expect(other.user).toBeUndefined();
    });

    it.each<[string, Record<string, string>, string]>([
      ['a subprotocol that is not base64url (standard base64 "+")', { 'sec-websocket-protocol': 'mpgp.v1, authToken.YWxp+2U' }, 'subprotocol'],
      ['a subprotocol that decodes to nothing', { 'sec-websocket-protocol': 'authToken.' }, 'subprotocol'],
      ['an empty header', { authtoken: '' }, 'header'],
    ])('refuses %s as error "2" (4401) without asking the authorization server', async (_case, headers, source) => {
      const client = new ChatClient(fakeTransport(), upgrade(headers));
      const err = await refusal(() => noTokenCheck().canActivate(wsContext(client, HANDSHAKE_LOGIN)));
      expect(err).toMatchObject({ code: '2', close: 4401, message: 'token not found or invalid', why: `malformed token in ${source}` });
    });

    it('refuses a request without a token as error "2"', async () => {
      const client = new ChatClient(fakeTransport(), upgrade({ 'sec-websocket-protocol': 'mpgp.v1' }));
      const err = await refusal(() => noTokenCheck().canActivate(wsContext(client, HANDSHAKE_LOGIN)));
      expect(err).toMatchObject({ code: '2', close: 4401, why: 'no token' });
    });
  });

  describe('frame login: the token of the AUTH_MESSAGE frame', () => {
    it('reads serverData.authToken (not the upgrade request)', async () => {
      const client = new ChatClient(fakeTransport(), upgrade({}));
      const frame = { type: MessageType.AUTH, serverData: { authToken: TOKEN } };
      await expect(guard().canActivate(wsContext(client, frame))).resolves.toBe(true);
      expect(verify.mock.calls).toEqual([[TOKEN]]);
      expect(client.user).toBe(ALICE);
    });

    it.each<[string, unknown]>([
      ['no serverData', { type: MessageType.AUTH }],
      ['a null serverData', { type: MessageType.AUTH, serverData: null }],
      ['a string serverData', { type: MessageType.AUTH, serverData: TOKEN }],
      ['no authToken', { type: MessageType.AUTH, serverData: {} }],
      ['a numeric authToken', { type: MessageType.AUTH, serverData: { authToken: 42 } }],
      ['an object authToken', { type: MessageType.AUTH, serverData: { authToken: { value: TOKEN } } }],
      ['an empty authToken', { type: MessageType.AUTH, serverData: { authToken: '' } }],
      ['no frame at all', undefined],
    ])('refuses a frame with %s as a missing token, error "2" (4401), without a check', async (_case, frame) => {
      const client = new ChatClient(fakeTransport(), upgrade({}));
      const err = await refusal(() => noTokenCheck().canActivate(wsContext(client, frame)));
      expect(err).toMatchObject({ code: '2', close: 4401, message: 'token not found or invalid', why: 'AUTH_MESSAGE without a token' });
    });
  });

  describe('the outcome of the check', () => {
    it('attaches the verified user to the client and lets the login through', async () => {
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      await expect(guard().canActivate(wsContext(client, HANDSHAKE_LOGIN))).resolves.toBe(true);
      expect(client.user).toBe(ALICE);
      expect(client.userId).toBe('1');
      expect(client.isJoined).toBe(false); // joining is the session core's job
    });

    it('refuses an invalid token with error "2" and close 4401', async () => {
      verify.mockResolvedValue({ outcome: 'invalid' });
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      const err = await refusal(() => guard().canActivate(wsContext(client, HANDSHAKE_LOGIN)));
      expect(err).toMatchObject({ code: '2', close: 4401, message: 'token not found or invalid', why: 'token rejected' });
      expect(client.user).toBeUndefined();
    });

    it('refuses with error "3" and close 1013 when the authorization server is unavailable, the reason only in why', async () => {
      verify.mockResolvedValue({ outcome: 'unavailable', reason: 'HTTP 503' });
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      const err = await refusal(() => guard().canActivate(wsContext(client, HANDSHAKE_LOGIN)));
      expect(err).toMatchObject({ code: '3', close: 1013, message: 'authorization server unavailable, try again later', why: 'auth server: HTTP 503' });
      expect(err.message).not.toContain('503');
      expect(client.user).toBeUndefined();
    });

    it.each<[string, TokenCheck | undefined, Record<string, string>, unknown]>([
      ['invalid', { outcome: 'invalid' }, { authtoken: TOKEN }, HANDSHAKE_LOGIN],
      ['unavailable', { outcome: 'unavailable', reason: 'timeout' }, { authtoken: TOKEN }, HANDSHAKE_LOGIN],
      ['malformed', undefined, { 'sec-websocket-protocol': `authToken.${base64url(TOKEN)}=` }, HANDSHAKE_LOGIN],
      ['frame without a string token', undefined, {}, { type: MessageType.AUTH, serverData: { authToken: [TOKEN] } }],
    ])('never puts the token in an AuthError (%s)', async (_case, check, headers, data) => {
      if (check) verify.mockResolvedValue(check);
      const client = new ChatClient(fakeTransport(), upgrade(headers));
      const err = await refusal(() => guard().canActivate(wsContext(client, data)));
      const text = JSON.stringify({ message: err.message, why: err.why, stack: err.stack });
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(base64url(TOKEN));
    });

    it('refuses a client that closed while its token was being checked', async () => {
      // Let through, the login's next step (SessionService.join) would throw "join before the
      // token was verified", logged as a handler failure for every client that goes away during
      // CHECK_TOKEN.
      let answer!: (check: TokenCheck) => void;
      verify.mockReturnValue(new Promise<TokenCheck>((resolve) => (answer = resolve)));
      const client = new ChatClient(fakeTransport(), upgrade({ authtoken: TOKEN }));
      const pending = guard().canActivate(wsContext(client, HANDSHAKE_LOGIN));
      client.closed(); // the peer went away meanwhile
      answer({ outcome: 'valid', profile: ALICE });
      let outcome: unknown;
      try {
        outcome = await pending;
      } catch (err) {
        outcome = err;
      }
      expect(outcome).toBe(false);
      expect(client.user).toBeUndefined();
    });
  });
});

/**
 * The typed client and the token lifecycle, against a REAL gateway and a real HTTP authorization
 * server whose tokens expire when the test says (test/e2e/token/token-auth-server.ts): the expiry
 * learnt from AUTH SUCCESS and from each refresh, `tokenExpiring` `refreshBeforeMs` ahead of it,
 * `refreshToken()` resolving with the new expiry (and the new token used by later reconnects),
 * its refusals ("2": closed with 4401 and no reconnect; "3": kept), the close of an expired
 * token without reconnect, and no automatic reconnect after a kick (4403).
 */
import { makeProfile } from '../../test/support/factories';
import { serverFrameProblem } from '../../test/support/contract';
import { startGateway, type TestGateway } from '../../test/support/gateway';
import { sleep } from '../../test/support/time';
import { startTokenAuthServer, type TokenAuthServer } from '../../test/e2e/token/token-auth-server';
import { ConnectionRegistry } from '../messaging/connection-registry';
import type { TokenRefreshErrorCode as ProtocolTokenRefreshErrorCode } from '../protocol/protocol';
import { SessionService } from '../session/session.service';
import { ChatClient, ChatClientError, type ChatClientEvents, type ChatClientOptions } from './chat-client';
import { createNodeChatClient } from './node';
import type { TokenRefreshErrorCode } from './types';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameErrorCodes: Same<TokenRefreshErrorCode, `${ProtocolTokenRefreshErrorCode}`> = true;

const FAST = { baseDelayMs: 20, maxDelayMs: 200 };
const ALICE = makeProfile('cl-alice', { nickname: 'alice' });

jest.setTimeout(15_000);

describe('ChatClient: tokens that expire', () => {
  let gw: TestGateway;
  let auth: TokenAuthServer;
  let clients: ChatClient[] = [];
  let problems: string[] = [];

  beforeAll(async () => {
    auth = await startTokenAuthServer();
    gw = await startGateway({ AUTH_SERVER_URL: auth.url, AUTH_TIMEOUT_MS: '1000', AUTH_BREAKER_THRESHOLD: '1000000', LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await gw.close();
    await auth.close();
  });

  afterEach(async () => {
    auth.setDown(false);
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
    expect(problems).toEqual([]);
    problems = [];
  });

  function client(token: string, options: Partial<ChatClientOptions> = {}): ChatClient {
    const c = createNodeChatClient({ url: gw.wsUrl, token, reconnect: FAST, ...options });
    c.on('frame', (frame) => {
      const problem = serverFrameProblem(frame);
      if (problem) problems.push(problem);
    });
    clients.push(c);
    return c;
  }

  function next<K extends keyof ChatClientEvents>(c: ChatClient, event: K, timeoutMs = 4000): Promise<ChatClientEvents[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${String(event)} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = c.on(event, (payload) => {
        clearTimeout(timer);
        off();
        resolve(payload);
      });
    });
  }

  /** What a promise rejected with (fails the test when it resolves). */
  async function rejection(promise: Promise<unknown>): Promise<ChatClientError> {
    try {
      await promise;
    } catch (err) {
      if (err instanceof ChatClientError) return err;
      throw err;
    }
    throw new Error('resolved');
  }

  it('has the protocol\'s TOKEN_REFRESH error codes (compile time)', () => {
    expect(sameErrorCodes).toBe(true);
  });

  it('learns the expiry at login and emits tokenExpiring refreshBeforeMs ahead of it', async () => {
    const expiresAt = Date.now() + 1500;
    const alice = client(auth.issue(ALICE, expiresAt), { refreshBeforeMs: 1000 });
    const expiring = next(alice, 'tokenExpiring');
    const result = await alice.connect();
    // The time left when the client learnt the expiry (less than 1500 ms on a busy machine).
    const leftAtLogin = expiresAt - Date.now();
    expect(result.expiresAt).toBe(expiresAt);
    expect(alice.tokenExpiresAt).toBe(expiresAt);
    const event = await expiring;
    expect(event.expiresAt).toBe(expiresAt);
    // Not 1000 ms ahead (that is less than twice refreshBeforeMs): halfway through the time left
    // at login, so at most half of it ahead (later if the timer fires late), never sooner.
    expect(leftAtLogin).toBeLessThan(2 * 1000);
    expect(event.inMs).toBeLessThanOrEqual(leftAtLogin / 2 + 5);
    expect(event.inMs).toBeGreaterThan(0);
  });

  it('emits tokenExpiring refreshBeforeMs ahead when the lifetime allows it', async () => {
    // Long enough that even a slow login leaves more than twice refreshBeforeMs (else: halfway).
    const expiresAt = Date.now() + 3000;
    const alice = client(auth.issue(ALICE, expiresAt), { refreshBeforeMs: 500 });
    const expiring = next(alice, 'tokenExpiring');
    await alice.connect();
    const event = await expiring;
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt - 500 - 20);
    expect(event.inMs).toBeLessThanOrEqual(500);
    expect(event.inMs).toBeGreaterThan(100); // (a busy machine may fire the timer a little late)
  });

  it('a token shorter-lived than refreshBeforeMs is not refreshed in a loop: one tokenExpiring per token, halfway', async () => {
    const alice = client(auth.issue(ALICE, Date.now() + 1200), { refreshBeforeMs: 30_000 });
    const events: ChatClientEvents['tokenExpiring'][] = [];
    alice.on('tokenExpiring', (e) => {
      events.push(e);
      void alice.refreshToken(auth.issue(ALICE, Date.now() + 1200));
    });
    await alice.connect();
    await sleep(1000);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events.length).toBeLessThanOrEqual(2);
    expect(events[0].inMs).toBeGreaterThan(400);
    expect(alice.state).toBe('open');
  });

  it('refreshToken() resolves with the new expiry; the connection outlives the old one, and tokenExpiring follows the new one', async () => {
    const oldExpiry = Date.now() + 1200;
    const alice = client(auth.issue(ALICE, oldExpiry), { refreshBeforeMs: 200 });
    await alice.connect();
    const newExpiry = Date.now() + 2500;
    const refreshed = next(alice, 'tokenRefreshed');
    await expect(alice.refreshToken(auth.issue(ALICE, newExpiry))).resolves.toBe(newExpiry);
    expect(await refreshed).toEqual({ expiresAt: newExpiry });
    expect(alice.tokenExpiresAt).toBe(newExpiry);
    const expiring: ChatClientEvents['tokenExpiring'][] = [];
    alice.on('tokenExpiring', (e) => expiring.push(e));
    await sleep(oldExpiry + 300 - Date.now());
    expect(alice.state).toBe('open');
    expect(expiring).toEqual([]); // not for the old expiry
    await sleep(newExpiry - 100 - Date.now());
    expect(expiring).toEqual([expect.objectContaining({ expiresAt: newExpiry })]);
  });

  it('a refresh to a token without expiry resolves undefined and stops the expiry events', async () => {
    const alice = client(auth.issue(ALICE, Date.now() + 60_000));
    await alice.connect();
    await expect(alice.refreshToken(auth.issue(ALICE))).resolves.toBeUndefined();
    expect(alice.tokenExpiresAt).toBeUndefined();
  });

  it('reconnects with the newest token', async () => {
    const first = auth.issue(ALICE);
    const second = auth.issue(ALICE);
    const alice = client(first);
    await alice.connect();
    await alice.refreshToken(second);
    const again = next(alice, 'auth');
    gw.app.get(ConnectionRegistry).get(ALICE.userId)!.drop(); // 1006: the client reconnects
    await again;
    // The gateway's new connection logged in with the refreshed token.
    expect(gw.app.get(ConnectionRegistry).get(ALICE.userId)!.token).toBe(second);
  });

  it('a refused token rejects TOKEN_REJECTED "2"; the gateway closes with 4401 and the client does not reconnect', async () => {
    const alice = client(auth.issue(ALICE));
    await alice.connect();
    const closed = next(alice, 'close');
    const err = await rejection(alice.refreshToken('no-such-token'));
    expect([err.code, err.details.errorCode]).toEqual(['TOKEN_REJECTED', '2']);
    expect(await closed).toMatchObject({ code: 4401, willReconnect: false });
    expect(alice.state).toBe('closed');
  });

  it('an unavailable authorization server rejects TOKEN_REJECTED "3"; the connection and its token stay', async () => {
    const expiresAt = Date.now() + 60_000;
    const alice = client(auth.issue(ALICE, expiresAt));
    await alice.connect();
    auth.setDown(true);
    const err = await rejection(alice.refreshToken(auth.issue(ALICE)));
    expect([err.code, err.details.errorCode]).toEqual(['TOKEN_REJECTED', '3']);
    expect(alice.state).toBe('open');
    expect(alice.tokenExpiresAt).toBe(expiresAt);
  });

  it('refuses a refresh it cannot send', async () => {
    const alice = client(auth.issue(ALICE));
    expect((await rejection(alice.refreshToken(auth.issue(ALICE)))).code).toBe('NOT_CONNECTED');
    await alice.connect();
    expect((await rejection(alice.refreshToken(''))).code).toBe('INVALID_ARGUMENT');
  });

  it('an expired token ends the client: close 4401 "token expired", no reconnect', async () => {
    const alice = client(auth.issue(ALICE, Date.now() + 800));
    await alice.connect();
    const reconnecting = jest.fn();
    alice.on('reconnecting', reconnecting);
    expect(await next(alice, 'close', 3000)).toEqual({ code: 4401, reason: 'token expired', willReconnect: false });
    await sleep(200);
    expect(reconnecting).not.toHaveBeenCalled();
    expect(alice.state).toBe('closed');
  });

  it('a kick by the application\'s backend (4403) ends the client: no automatic reconnect', async () => {
    const alice = client(auth.issue(ALICE));
    await alice.connect();
    const reconnecting = jest.fn();
    alice.on('reconnecting', reconnecting);
    const closed = next(alice, 'close');
    await expect(gw.app.get(SessionService).kick(ALICE.userId, 'banned', 1000)).resolves.toBe(true);
    expect(await closed).toEqual({ code: 4403, reason: 'banned', willReconnect: false });
    await sleep(200);
    expect(reconnecting).not.toHaveBeenCalled();
    expect(alice.state).toBe('closed');
  });
});

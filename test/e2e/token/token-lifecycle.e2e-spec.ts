/**
 * docs/protocol.md "Token lifecycle", against the real app (one node, and two nodes on Redis) and a
 * real HTTP authorization server whose tokens the test issues with the expiresAt it wants
 * (./token-auth-server.ts): a token that expires mid-session (4401 `token expired`, DISCONNECT to
 * everyone else), one refreshed in time (stays past its old expiry), a refresh with another
 * user's or an invalid token (ERROR "2", 4401, DISCONNECT), a refresh while the authorization
 * server is down (ERROR "3", kept, the old expiry still holds), a refreshed profile
 * (USER_UPDATE_MESSAGE with the changed fields; a saved avatar wins), the re-check closing a
 * revoked token's connection (`token revoked`) and keeping connections while the server is
 * unavailable, spread over its interval, and a cached answer never used past expiresAt.
 * Lifetimes are short (1-2 s), so every wait is bounded.
 */
import sharp from 'sharp';
import { makeProfile } from '../../support/factories';
import { ENGINES, type Deployment, type EngineKind } from '../../support/deployment';
import { authError, chat, frameError, isChat, isConnect, isDisconnect, isType } from '../../support/frames';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import { closedWithin, type Frame, type TestClient } from '../../support/ws-client';
import { startTokenAuthServer, type TokenAuthServer } from './token-auth-server';

jest.setTimeout(20_000);

/** Bounds with room for a loaded machine; a huge breaker threshold keeps the "down" tests independent. */
const ENV: Record<string, string> = {
  AUTH_TIMEOUT_MS: '1500',
  AUTH_DEADLINE_MS: '2000',
  DELIVERY_TIMEOUT_MS: '2000',
  AUTH_BREAKER_THRESHOLD: '1000000',
};
const QUIET_MS = 300;

const ALICE = makeProfile('lc-alice', { nickname: 'alice' });
const BOB = makeProfile('lc-bob', { nickname: 'bob' });
const CAROL = makeProfile('lc-carol', { nickname: 'carol' });

const refresh = (authToken: string): Frame => ({ type: 'TOKEN_REFRESH_MESSAGE', serverData: { authToken } });
const isRefreshAnswer = isType('TOKEN_REFRESH_MESSAGE');
const isUserUpdate = isType('USER_UPDATE_MESSAGE');

async function pngBase64(): Promise<string> {
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#c33' } }).png().toBuffer();
  return png.toString('base64');
}

/** The close of a client, with the time it was seen. */
async function closeOf(client: TestClient, withinMs: number): Promise<{ code: number; reason: string; at: number }> {
  const info = await closedWithin(client, withinMs);
  return { ...info, at: Date.now() };
}

describe.each(ENGINES)('token lifecycle (%s engine)', (engine: EngineKind) => {
  const scope = new Scope({ env: ENV });
  let auth: TokenAuthServer;
  afterEach(() => scope.closeAll());

  async function deployment(env: Record<string, string> = {}): Promise<Deployment> {
    auth = scope.track(await startTokenAuthServer(), 'server');
    return scope.deployment(engine, { AUTH_SERVER_URL: auth.url, ...env });
  }

  it('a token that expires mid-session: AUTH SUCCESS told its expiresAt, then 4401 "token expired" at it and DISCONNECT to everyone else', async () => {
    const dep = await deployment();
    // bob first: he sees alice come, so her DISCONNECT is owed to him whatever the logins cost.
    const { client: bob, auth: bobAuth } = await scope.loginWithAuth(dep.wsUrl(1), auth.issue(BOB));
    expect(Object.keys(bobAuth.serverData).sort()).toEqual(['userId', 'userList']); // no expiry: no expiresAt
    const expiresAt = Date.now() + 2500;
    const { client: alice, auth: aliceAuth } = await scope.loginWithAuth(dep.wsUrl(0), auth.issue(ALICE, expiresAt));
    const closedAt = alice.closed.then(() => Date.now());
    expect(aliceAuth.serverData.expiresAt).toBe(String(expiresAt));
    await bob.next(isConnect(ALICE.userId));
    expect(await closedWithin(alice, 5000)).toEqual({ code: 4401, reason: 'token expired' });
    expect(await closedAt).toBeGreaterThanOrEqual(expiresAt - 20);
    expect(await closedAt).toBeLessThan(expiresAt + 1000);
    expect(await bob.next(isDisconnect(ALICE.userId), 2000)).toEqual({
      type: 'USER_CONNECTION_MESSAGE',
      serverData: { connectionStatus: 'DISCONNECT', userId: ALICE.userId },
    });
    // bob's token does not expire: he stays.
    await bob.expectSilence(QUIET_MS, isDisconnect());
    expect(bob.closeInfo).toBeUndefined();
  });

  it('refreshed in time: SUCCESS with the new expiresAt, and the connection stays past its old expiry', async () => {
    const dep = await deployment();
    // Room for two logins and a refresh on a loaded machine before the old expiry.
    const oldExpiry = Date.now() + 2500;
    const [alice, bob] = await scope.loginAll(dep, [auth.issue(ALICE, oldExpiry), auth.issue(BOB)]);
    const newExpiry = Date.now() + 10_000;
    alice.send(refresh(auth.issue(ALICE, newExpiry)));
    expect(await alice.next(isRefreshAnswer)).toEqual({ type: 'TOKEN_REFRESH_MESSAGE', status: 'SUCCESS', serverData: { expiresAt: String(newExpiry) } });
    await sleep(oldExpiry + 500 - Date.now());
    expect(alice.closeInfo).toBeUndefined();
    alice.send(chat('still here'));
    await bob.next(isChat('still here'));
    expect(bob.all('USER_CONNECTION_MESSAGE').filter(isDisconnect(ALICE.userId))).toEqual([]);
  });

  it('a refresh to a token without expiry: SUCCESS without expiresAt, and no expiry any more', async () => {
    const dep = await deployment();
    const oldExpiry = Date.now() + 2000;
    const alice = await scope.login(dep.wsUrl(0), auth.issue(ALICE, oldExpiry));
    alice.send(refresh(auth.issue(ALICE)));
    expect(await alice.next(isRefreshAnswer)).toEqual({ type: 'TOKEN_REFRESH_MESSAGE', status: 'SUCCESS', serverData: {} });
    await sleep(oldExpiry + 400 - Date.now());
    expect(alice.closeInfo).toBeUndefined();
  });

  it("refreshed with another user's token: ERROR \"2\", then 4401, and DISCONNECT to everyone else", async () => {
    const dep = await deployment();
    const bobToken = auth.issue(BOB);
    const [alice, bob] = await scope.loginAll(dep, [auth.issue(ALICE, Date.now() + 60_000), bobToken]);
    alice.send(refresh(bobToken));
    expect(await alice.next(isRefreshAnswer)).toEqual({
      type: 'TOKEN_REFRESH_MESSAGE',
      status: 'ERROR',
      error: { errorCode: '2', message: expect.any(String) },
    });
    expect(await closedWithin(alice, 3000)).toEqual({ code: 4401, reason: 'token not found or invalid' });
    await bob.next(isDisconnect(ALICE.userId), 2000);
    expect(bob.closeInfo).toBeUndefined();
  });

  it('refreshed with an invalid token: ERROR "2", then 4401', async () => {
    const dep = await deployment();
    const alice = await scope.login(dep.wsUrl(0), auth.issue(ALICE));
    alice.send(refresh('no-such-token'));
    expect(await alice.next(isRefreshAnswer)).toMatchObject({ status: 'ERROR', error: { errorCode: '2' } });
    expect((await closedWithin(alice, 3000)).code).toBe(4401);
  });

  it('the authorization server down during a refresh: ERROR "3", the connection kept, and its old expiry still holds', async () => {
    const dep = await deployment();
    const oldExpiry = Date.now() + 2500;
    const [alice, bob] = await scope.loginAll(dep, [auth.issue(ALICE, oldExpiry), auth.issue(BOB)]);
    const fresh = auth.issue(ALICE, Date.now() + 60_000);
    auth.setDown(true);
    alice.send(refresh(fresh));
    expect(await alice.next(isRefreshAnswer)).toEqual({
      type: 'TOKEN_REFRESH_MESSAGE',
      status: 'ERROR',
      error: { errorCode: '3', message: expect.any(String) },
    });
    expect(auth.requestsFor(fresh)).toBe(1);
    alice.send(chat('kept'));
    await bob.next(isChat('kept'));
    const closed = await closeOf(alice, 4000);
    expect({ code: closed.code, reason: closed.reason }).toEqual({ code: 4401, reason: 'token expired' });
    expect(closed.at).toBeGreaterThanOrEqual(oldExpiry - 20);
    await bob.next(isDisconnect(ALICE.userId), 2000);
  });

  it('a refresh whose profile changed: USER_UPDATE_MESSAGE with the changed fields to everyone else, and in later online lists', async () => {
    const dep = await deployment();
    const [alice, bob] = await scope.loginAll(dep, [auth.issue(ALICE), auth.issue(BOB)]);
    alice.send(refresh(auth.issue({ ...ALICE, nickname: 'alice-renamed', status: 'back soon' })));
    expect(await alice.next(isRefreshAnswer)).toMatchObject({ status: 'SUCCESS' });
    expect(await bob.next(isUserUpdate)).toEqual({
      type: 'USER_UPDATE_MESSAGE',
      serverData: { userId: ALICE.userId, nickname: 'alice-renamed', status: 'back soon' },
    });
    await alice.expectSilence(QUIET_MS, isUserUpdate); // not to the user itself
    const { auth: carolAuth } = await scope.loginWithAuth(dep.wsUrl(1), auth.issue(CAROL));
    expect(carolAuth.serverData.userList).toContainEqual({ ...ALICE, nickname: 'alice-renamed', status: 'back soon' });
  });

  it("a refresh never resets a saved avatar: only the other changed fields go out", async () => {
    const dep = await deployment();
    const [alice, bob] = await scope.loginAll(dep, [auth.issue(ALICE), auth.issue(BOB)]);
    alice.send({ type: 'SAVE_AVATAR', serverData: { imageBase64: await pngBase64() } });
    const saved = (await alice.nextOfType('SAVE_AVATAR')).serverData.avatar as string;
    expect((await bob.next(isUserUpdate)).serverData).toEqual({ userId: ALICE.userId, avatar: saved });
    alice.send(refresh(auth.issue({ ...ALICE, avatar: 'https://auth.example.test/alice-new.png', status: 'new status' })));
    expect(await alice.next(isRefreshAnswer)).toMatchObject({ status: 'SUCCESS' });
    expect((await bob.next(isUserUpdate)).serverData).toEqual({ userId: ALICE.userId, status: 'new status' });
    const { auth: carolAuth } = await scope.loginWithAuth(dep.wsUrl(0), auth.issue(CAROL));
    expect(carolAuth.serverData.userList).toContainEqual({ ...ALICE, avatar: saved, status: 'new status' });
  });

  it('the re-check closes a revoked token\'s connection with 4401 "token revoked" (DISCONNECT to everyone else) and keeps the others', async () => {
    const dep = await deployment({ AUTH_RECHECK_INTERVAL_MS: '400', AUTH_CACHE_TTL_MS: '0' });
    const aliceToken = auth.issue(ALICE);
    const [alice, bob] = await scope.loginAll(dep, [aliceToken, auth.issue(BOB)]);
    await sleep(500);
    expect(alice.closeInfo).toBeUndefined(); // re-checked and still valid
    auth.revoke(aliceToken);
    expect(await closedWithin(alice, 3000)).toEqual({ code: 4401, reason: 'token revoked' });
    await bob.next(isDisconnect(ALICE.userId), 2000);
    await sleep(500);
    expect(bob.closeInfo).toBeUndefined();
  });

  it('the re-check keeps every connection while the authorization server is unavailable', async () => {
    const dep = await deployment({ AUTH_RECHECK_INTERVAL_MS: '300', AUTH_CACHE_TTL_MS: '0' });
    const aliceToken = auth.issue(ALICE);
    const [alice, bob] = await scope.loginAll(dep, [aliceToken, auth.issue(BOB)]);
    auth.setDown(true);
    const before = auth.requestsFor(aliceToken);
    await sleep(1200);
    expect(auth.requestsFor(aliceToken) - before).toBeGreaterThanOrEqual(2); // checked, answered 503
    expect([alice.closeInfo, bob.closeInfo]).toEqual([undefined, undefined]);
    alice.send(chat('kept while down'));
    await bob.next(isChat('kept while down'));
    auth.setDown(false);
  });

  it('the re-check checks the token the connection holds now: after a refresh, revoking the old token changes nothing, revoking the new one closes with 4401 "token revoked"', async () => {
    const dep = await deployment({ AUTH_RECHECK_INTERVAL_MS: '300', AUTH_CACHE_TTL_MS: '0' });
    const oldToken = auth.issue(ALICE);
    const [alice, bob] = await scope.loginAll(dep, [oldToken, auth.issue(BOB)]);
    const newToken = auth.issue(ALICE);
    alice.send(refresh(newToken));
    expect(await alice.next(isRefreshAnswer)).toMatchObject({ status: 'SUCCESS' });
    auth.revoke(oldToken);
    // Two more checks of the new token: a whole round of the re-check has passed since the revocation.
    const checked = auth.requestsFor(newToken);
    await eventually(() => auth.requestsFor(newToken) >= checked + 2, 4000, 'two re-checks of the new token');
    expect(alice.closeInfo).toBeUndefined();
    alice.send(chat('held by the new token'));
    await bob.next(isChat('held by the new token'));
    auth.revoke(newToken);
    expect(await closedWithin(alice, 3000)).toEqual({ code: 4401, reason: 'token revoked' });
    await bob.next(isDisconnect(ALICE.userId), 2000);
  });
});

describe('token lifecycle (one node)', () => {
  const scope = new Scope({ env: ENV });
  let auth: TokenAuthServer;
  afterEach(() => scope.closeAll());

  async function gateway(env: Record<string, string> = {}) {
    auth = scope.track(await startTokenAuthServer(), 'server');
    return scope.gateway({ AUTH_SERVER_URL: auth.url, ...env });
  }

  it('the re-check is spread over its interval (one check at a time, not all at once), sharing the cache', async () => {
    const gw = await gateway({ AUTH_RECHECK_INTERVAL_MS: '1000', AUTH_CACHE_TTL_MS: '0' });
    const users = ['s1', 's2', 's3', 's4', 's5'].map((id) => makeProfile(`lc-${id}`));
    const tokens = users.map((u) => auth.issue(u));
    for (const token of tokens) await scope.login(gw.wsUrl, token);
    const start = Date.now();
    await sleep(2300);
    // The first CHECK_TOKEN of each token was its login; the re-checks follow.
    const rechecks = tokens.flatMap((t) => auth.arrivals(t).slice(1)).filter((at) => at >= start).sort((a, b) => a - b);
    expect(rechecks.length).toBeGreaterThanOrEqual(5);
    const firstRound = rechecks.slice(0, 5);
    expect(firstRound[4] - firstRound[0]).toBeGreaterThanOrEqual(500); // spread, 200 ms apart
    const gaps = firstRound.slice(1).map((at, i) => at - firstRound[i]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(100);
  });

  it('the re-check goes through the cache: within AUTH_CACHE_TTL_MS the authorization server is not asked again', async () => {
    const gw = await gateway({ AUTH_RECHECK_INTERVAL_MS: '200', AUTH_CACHE_TTL_MS: '60000' });
    const token = auth.issue(ALICE);
    await scope.login(gw.wsUrl, token);
    await sleep(700);
    expect(auth.requestsFor(token)).toBe(1);
  });

  it('a cached answer is never used past its expiresAt: the token is asked again, and refused', async () => {
    const gw = await gateway({ AUTH_CACHE_TTL_MS: '60000' });
    const expiresAt = Date.now() + 1000;
    const token = auth.issue(ALICE, expiresAt);
    const first = await scope.login(gw.wsUrl, token);
    await first.close();
    await sleep(100);
    const second = await scope.login(gw.wsUrl, token); // within the lifetime: from the cache
    expect(auth.requestsFor(token)).toBe(1);
    await closedWithin(second, 3000); // (its expiry closes it)
    await sleep(expiresAt + 50 - Date.now());
    // The authorization server still answers SUCCESS with the same, now past, expiresAt.
    const third = await scope.attempt(gw.wsUrl, token);
    expect(third.auth).toEqual(authError('2'));
    expect((await closedWithin(third.client, 3000)).code).toBe(4401);
    expect(auth.requestsFor(token)).toBe(2);
  });

  it('a malformed expiresAt makes the login "3" (1013): an expiry is never ignored', async () => {
    const gw = await gateway();
    for (const expiresAt of ['soon', '1.5e12', null]) {
      const { client, auth: frame } = await scope.attempt(gw.wsUrl, auth.issue(ALICE, expiresAt));
      expect(frame).toEqual(authError('3'));
      expect((await closedWithin(client, 3000)).code).toBe(1013);
    }
  });

  it('an expiresAt already past at login is "2" (4401)', async () => {
    const gw = await gateway();
    const { client, auth: frame } = await scope.attempt(gw.wsUrl, auth.issue(ALICE, Date.now() - 1));
    expect(frame).toEqual(authError('2'));
    expect((await closedWithin(client, 3000)).code).toBe(4401);
  });

  it('a TOKEN_REFRESH_MESSAGE without a token is an invalid frame (INVALID_MESSAGE), the connection kept', async () => {
    const gw = await gateway();
    const alice = await scope.login(gw.wsUrl, auth.issue(ALICE));
    for (const bad of [{ type: 'TOKEN_REFRESH_MESSAGE' }, refresh(''), { type: 'TOKEN_REFRESH_MESSAGE', serverData: { authToken: 7 } }]) {
      alice.send(bad);
      expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'TOKEN_REFRESH_MESSAGE'));
    }
    alice.send(chat('still open'));
    await alice.next(isChat('still open'));
  });

  it('a refresh is checked with the rules of a login: a cached answer is reused, a malformed expiresAt is "3" (kept), one already past is "2" (4401)', async () => {
    const gw = await gateway({ AUTH_CACHE_TTL_MS: '60000' });
    const loginToken = auth.issue(ALICE);
    const alice = await scope.login(gw.wsUrl, loginToken);
    // The token it logged in with: answered from the cache, no second CHECK_TOKEN.
    alice.send(refresh(loginToken));
    expect(await alice.next(isRefreshAnswer)).toEqual({ type: 'TOKEN_REFRESH_MESSAGE', status: 'SUCCESS', serverData: {} });
    expect(auth.requestsFor(loginToken)).toBe(1);
    // A SUCCESS with a malformed expiresAt is a reply the gateway cannot use: "3", kept.
    const malformed = auth.issue(ALICE, 'soon');
    alice.send(refresh(malformed));
    expect(await alice.next(isRefreshAnswer)).toEqual({
      type: 'TOKEN_REFRESH_MESSAGE',
      status: 'ERROR',
      error: { errorCode: '3', message: expect.any(String) },
    });
    alice.send(chat('kept after "3"'));
    await alice.next(isChat('kept after "3"'));
    // A SUCCESS whose expiresAt has already passed: the token no longer stands, "2" and 4401.
    alice.send(refresh(auth.issue(ALICE, Date.now() - 1)));
    expect(await alice.next(isRefreshAnswer)).toEqual({
      type: 'TOKEN_REFRESH_MESSAGE',
      status: 'ERROR',
      error: { errorCode: '2', message: expect.any(String) },
    });
    expect(await closedWithin(alice, 3000)).toEqual({ code: 4401, reason: 'token not found or invalid' });
  });

  it('a refresh while the circuit breaker is open is "3" at once, without a CHECK_TOKEN, and the connection is kept', async () => {
    const gw = await gateway({ AUTH_BREAKER_THRESHOLD: '2', AUTH_BREAKER_COOLDOWN_MS: '60000', AUTH_CACHE_TTL_MS: '0' });
    const alice = await scope.login(gw.wsUrl, auth.issue(ALICE));
    const bob = await scope.login(gw.wsUrl, auth.issue(BOB));
    auth.setDown(true);
    // Two refreshes the authorization server cannot answer: the circuit opens.
    for (let i = 0; i < 2; i++) {
      const fresh = auth.issue(ALICE);
      alice.send(refresh(fresh));
      expect(await alice.next(isRefreshAnswer)).toMatchObject({ status: 'ERROR', error: { errorCode: '3' } });
      expect(auth.requestsFor(fresh)).toBe(1);
    }
    // The server would answer now, but the open circuit does not ask it.
    auth.setDown(false);
    const unasked = auth.issue(ALICE);
    alice.send(refresh(unasked));
    expect(await alice.next(isRefreshAnswer)).toMatchObject({ status: 'ERROR', error: { errorCode: '3' } });
    expect(auth.requestsFor(unasked)).toBe(0);
    alice.send(chat('kept while the circuit is open'));
    await bob.next(isChat('kept while the circuit is open'));
    expect(alice.closeInfo).toBeUndefined();
  });

  it('a token over AUTH_TOKEN_MAX_BYTES in a refresh is "2" without a CHECK_TOKEN', async () => {
    const gw = await gateway({ AUTH_TOKEN_MAX_BYTES: '64' });
    const alice = await scope.login(gw.wsUrl, auth.issue(ALICE));
    const long = 'x'.repeat(65);
    alice.send(refresh(long));
    expect(await alice.next(isRefreshAnswer)).toMatchObject({ status: 'ERROR', error: { errorCode: '2' } });
    expect((await closedWithin(alice, 3000)).code).toBe(4401);
    expect(auth.requestsFor(long)).toBe(0);
  });

  it('counts expiries, revocations and refreshes in gateway_token_events_total, and never logs a token', async () => {
    const gw = await gateway({ AUTH_RECHECK_INTERVAL_MS: '300', AUTH_CACHE_TTL_MS: '0' });
    const expiring = auth.issue(ALICE, Date.now() + 800);
    const revoked = auth.issue(BOB);
    const refreshedTo = auth.issue(CAROL, Date.now() + 60_000);
    const alice = await scope.login(gw.wsUrl, expiring);
    const bob = await scope.login(gw.wsUrl, revoked);
    const carol = await scope.login(gw.wsUrl, auth.issue(CAROL));
    carol.send(refresh(refreshedTo));
    await carol.next(isRefreshAnswer);
    auth.revoke(revoked);
    await closedWithin(alice, 3000);
    await closedWithin(bob, 3000);
    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/gateway_token_events_total\{event="expired"\} 1/);
    expect(metrics).toMatch(/gateway_token_events_total\{event="revoked"\} 1/);
    expect(metrics).toMatch(/gateway_token_events_total\{event="refreshed"\} 1/);
    const logs = gw.logs.join('\n');
    for (const token of [expiring, revoked, refreshedTo]) expect(logs).not.toContain(token);
    expect(logs).toMatch(/token expired: closed/);
    expect(logs).toMatch(/token revoked: closed/);
  });
});

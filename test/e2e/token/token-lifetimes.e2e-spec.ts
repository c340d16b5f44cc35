/**
 * Token lifetimes of the reference authorization server and of the built-in demo users (README,
 * "Token lifetimes"): a user with `tokenTtlMs` has time-windowed tokens `<token>~<issuedAt>`; the
 * gateway learns their expiresAt through CHECK_TOKEN, tells it in AUTH SUCCESS and in the refresh
 * answer, and closes the connection with 4401 `token expired` unless a fresh windowed token
 * comes in time. The user's own token still never expires.
 */
import { makeUser } from '../../support/factories';
import { isDisconnect, isType } from '../../support/frames';
import { Scope } from '../../support/scope';
import { sleep } from '../../support/time';
import { closedWithin } from '../../support/ws-client';

jest.setTimeout(15_000);

const TTL = 1500;
const ann = { ...makeUser('ann', { token: 'ann-token-Lf3', userId: 'lf-ann' }), tokenTtlMs: TTL };
const ben = makeUser('ben', { token: 'ben-token-Lf3', userId: 'lf-ben' });
const isRefreshAnswer = isType('TOKEN_REFRESH_MESSAGE');

describe('time-windowed tokens of the reference authorization server', () => {
  const scope = new Scope({ users: [ann, ben], ownAuthServer: true });
  afterEach(() => scope.closeAll());

  it('a windowed token expires at issuedAt + tokenTtlMs; fresh windowed tokens keep the connection', async () => {
    const gw = await scope.gateway();
    const issuedAt = Date.now();
    const { client, auth } = await scope.loginWithAuth(gw.wsUrl, `${ann.token}~${issuedAt}`);
    expect(auth.serverData.expiresAt).toBe(String(issuedAt + TTL));
    const watcher = await scope.login(gw.wsUrl, ben.token);
    // Refreshed twice, each time before the current expiry: alive well past the first one.
    for (let i = 0; i < 2; i++) {
      await sleep(TTL / 2);
      const fresh = Date.now();
      client.send({ type: 'TOKEN_REFRESH_MESSAGE', serverData: { authToken: `${ann.token}~${fresh}` } });
      expect(await client.next(isRefreshAnswer)).toEqual({ type: 'TOKEN_REFRESH_MESSAGE', status: 'SUCCESS', serverData: { expiresAt: String(fresh + TTL) } });
    }
    expect(Date.now()).toBeGreaterThan(issuedAt + TTL);
    expect(client.closeInfo).toBeUndefined();
    // Then no more refreshes: it expires.
    expect(await closedWithin(client, TTL + 2000)).toEqual({ code: 4401, reason: 'token expired' });
    await watcher.next(isDisconnect(ann.profile.userId), 2000);
  });

  it("a user's own token never expires (no expiresAt), and an expired windowed token is refused", async () => {
    const gw = await scope.gateway();
    const { auth } = await scope.loginWithAuth(gw.wsUrl, ann.token);
    expect(auth.serverData).not.toHaveProperty('expiresAt');
    const late = await scope.attempt(gw.wsUrl, `${ben.token}~${Date.now()}`); // ben has no tokenTtlMs
    expect(late.auth).toMatchObject({ status: 'ERROR', error: { errorCode: '2' } });
    const expired = await scope.attempt(gw.wsUrl, `${ann.token}~${Date.now() - TTL - 10}`);
    expect(expired.auth).toMatchObject({ status: 'ERROR', error: { errorCode: '2' } });
  });
});

describe('time-windowed tokens of the built-in demo users (no AUTH_SERVER_URL)', () => {
  const scope = new Scope();
  afterEach(() => scope.closeAll());

  it('alice-token~<issuedAt> lives two minutes: one issued 119 s ago closes with 4401 "token expired" within about a second', async () => {
    const gw = await scope.gateway();
    const issuedAt = Date.now() - 119_000;
    const { client, auth } = await scope.loginWithAuth(gw.wsUrl, `alice-token~${issuedAt}`);
    expect(auth.serverData.expiresAt).toBe(String(issuedAt + 120_000));
    expect(await closedWithin(client, 3000)).toEqual({ code: 4401, reason: 'token expired' });
  });
});

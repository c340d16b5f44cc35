import { makeUsers } from '../../support/factories';
import { isDisconnect } from '../../support/frames';
import { Scope } from '../../support/scope';
import { sleep } from '../../support/time';
import { closedWithin } from '../../support/ws-client';
/**
 * The authorization server as a dependency, against the programmable fake CHECK_TOKEN server:
 * AUTH_TIMEOUT_MS bounds a hanging server, SUCCESS answers are cached for AUTH_CACHE_TTL_MS (and
 * never beyond), invalid answers only as AUTH_INVALID_CACHE_MS allows (see hostile-auth for their
 * reuse), "unavailable" ones never, concurrent checks of one token share one request, and the
 * circuit breaker fails fast without calling the server until one probe decides.
 */

const scope = new Scope();
afterEach(() => scope.closeAll());

const users = makeUsers('ad1', 'ad2', 'ad3', 'ad4', 'ad5');
const [u1, u2, u3, u4, u5] = users;

/** Attempts a login and reports the AUTH answer, the close code and how long the answer took. */
async function attempt(url: string, token: string): Promise<{ status: string; errorCode?: string; close?: number; ms: number }> {
  const started = Date.now();
  const { client, auth } = await scope.attempt(url, token);
  const ms = Date.now() - started;
  if (auth.status === 'SUCCESS') return { status: 'SUCCESS', ms };
  const closed = await closedWithin(client, 3000);
  return { status: auth.status, errorCode: auth.error?.errorCode, close: closed.code, ms };
}

describe('authorization server as a dependency', () => {
  it('AUTH_TIMEOUT_MS bounds a server that never answers: error "3" and 1013 within about the timeout', async () => {
    const auth = await scope.fakeAuthServer({ users, mode: 'hang' });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, AUTH_TIMEOUT_MS: '300' });
    const result = await attempt(gw.wsUrl, u1.token);
    expect(result).toMatchObject({ status: 'ERROR', errorCode: '3', close: 1013 });
    expect(result.ms).toBeGreaterThanOrEqual(250);
    // Well under the 3000 ms default, with room for a busy machine's handshake.
    expect(result.ms).toBeLessThan(2500);
    expect(auth.requests).toBe(1);
  });

  it('AUTH_CACHE_TTL_MS: a second login within the TTL makes no request; after the TTL the server is asked again', async () => {
    const TTL = 2000;
    const auth = await scope.fakeAuthServer({ users });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, AUTH_CACHE_TTL_MS: String(TTL) });
    const observer = await scope.login(gw.wsUrl, u2.token);
    auth.resetRequests();

    const firstCheckAt = Date.now();
    const first = await scope.login(gw.wsUrl, u1.token);
    expect(auth.requests).toBe(1);
    await first.close();
    await observer.next(isDisconnect(u1.profile.userId));

    const second = await scope.login(gw.wsUrl, u1.token);
    expect(Date.now() - firstCheckAt).toBeLessThan(TTL);
    expect(auth.requests).toBe(1);
    await second.close();
    await observer.next(isDisconnect(u1.profile.userId));

    // Past the TTL the cached answer is not used, even though the token is the same: the
    // server now rejects it and the login fails accordingly.
    await sleep(Math.max(0, firstCheckAt + TTL + 150 - Date.now()));
    await auth.setMode('error-status');
    const third = await attempt(gw.wsUrl, u1.token);
    expect(auth.requests).toBe(2);
    expect(third).toMatchObject({ status: 'ERROR', errorCode: '2', close: 4401 });
  });

  it('with AUTH_INVALID_CACHE_MS=0 invalid tokens are asked every time; "unavailable" answers are never cached', async () => {
    const auth = await scope.fakeAuthServer({ users });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, AUTH_CACHE_TTL_MS: '60000', AUTH_INVALID_CACHE_MS: '0' });
    for (let i = 1; i <= 2; i++) {
      expect(await attempt(gw.wsUrl, 'tok-not-a-user-Zq9Xv7Lm')).toMatchObject({ status: 'ERROR', errorCode: '2', close: 4401 });
      expect(auth.requests).toBe(i);
    }
    // An "unavailable" outcome is not remembered either: once the server answers, the token works.
    await auth.setMode('status500');
    expect(await attempt(gw.wsUrl, u1.token)).toMatchObject({ status: 'ERROR', errorCode: '3', close: 1013 });
    await auth.setMode('normal');
    await scope.login(gw.wsUrl, u1.token);
    expect(auth.requests).toBe(4);
  });

  it('single-flight: concurrent logins with one token make exactly one CHECK_TOKEN request', async () => {
    const auth = await scope.fakeAuthServer({ users, mode: 'slow', delayMs: 1000 });
    // No cache at all: only single-flight can merge the requests.
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, AUTH_CACHE_TTL_MS: '0' });
    const results = await Promise.all(Array.from({ length: 5 }, () => attempt(gw.wsUrl, u1.token)));
    expect(auth.requests).toBe(1);
    // One connection wins the session, the duplicates are refused with "1".
    expect(results.filter((r) => r.status === 'SUCCESS')).toHaveLength(1);
    expect(results.filter((r) => r.errorCode === '1' && r.close === 4409)).toHaveLength(4);

    // Different tokens are not merged.
    auth.resetRequests();
    const others = await Promise.all([u2, u3, u4].map((u) => attempt(gw.wsUrl, u.token)));
    expect(others.every((r) => r.status === 'SUCCESS')).toBe(true);
    expect(auth.requests).toBe(3);
  });

  describe('circuit breaker (AUTH_BREAKER_THRESHOLD=3, AUTH_BREAKER_COOLDOWN_MS=500)', () => {
    const ENV = { AUTH_BREAKER_THRESHOLD: '3', AUTH_BREAKER_COOLDOWN_MS: '500' };

    async function openCircuit(url: string, auth: { requests: number }): Promise<void> {
      for (const u of [u1, u2, u3]) {
        expect(await attempt(url, u.token)).toMatchObject({ status: 'ERROR', errorCode: '3', close: 1013 });
      }
      expect(auth.requests).toBe(3);
    }

    it('after 3 failures fails fast with "3"/1013 without calling the server; after the cooldown one probe goes through and its success closes the circuit', async () => {
      const auth = await scope.fakeAuthServer({ users, mode: 'status500' });
      const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, ...ENV });
      await openCircuit(gw.wsUrl, auth);

      // Open: fails at once (a request would hang for AUTH_TIMEOUT_MS), nothing reaches the server.
      await auth.setMode('hang');
      const fast = await attempt(gw.wsUrl, u4.token);
      expect(fast).toMatchObject({ status: 'ERROR', errorCode: '3', close: 1013 });
      expect(fast.ms).toBeLessThan(1000);
      expect(auth.requests).toBe(3);

      // After the cooldown: one probe. Concurrent logins meanwhile still fail fast.
      await sleep(600);
      await auth.setMode('slow', { delayMs: 1500 });
      const concurrent = await Promise.all([u1, u2, u3].map((u) => attempt(gw.wsUrl, u.token)));
      expect(auth.requests).toBe(4);
      expect(concurrent.filter((r) => r.status === 'SUCCESS')).toHaveLength(1);
      const failedFast = concurrent.filter((r) => r.status !== 'SUCCESS');
      expect(failedFast).toHaveLength(2);
      for (const r of failedFast) {
        expect(r).toMatchObject({ errorCode: '3', close: 1013 });
        expect(r.ms).toBeLessThan(1000);
      }

      // The probe succeeded: the circuit is closed, logins reach the server again.
      await auth.setMode('normal');
      await scope.login(gw.wsUrl, u5.token);
      expect(auth.requests).toBe(5);
    });

    it('a failed probe reopens the circuit for another cooldown', async () => {
      const auth = await scope.fakeAuthServer({ users, mode: 'status500' });
      const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, ...ENV });
      await openCircuit(gw.wsUrl, auth);

      await sleep(600);
      expect(await attempt(gw.wsUrl, u4.token)).toMatchObject({ status: 'ERROR', errorCode: '3', close: 1013 });
      expect(auth.requests).toBe(4);
      // Reopened: fails fast again without a request, even though the server is fine now.
      await auth.setMode('normal');
      const fast = await attempt(gw.wsUrl, u4.token);
      expect(fast).toMatchObject({ status: 'ERROR', errorCode: '3', close: 1013 });
      expect(auth.requests).toBe(4);

      await sleep(600);
      await scope.login(gw.wsUrl, u4.token);
      expect(auth.requests).toBe(5);
      await scope.login(gw.wsUrl, u5.token);
      expect(auth.requests).toBe(6);
    });

    it('while open, a login answered from the cache still succeeds (and makes no request)', async () => {
      const auth = await scope.fakeAuthServer({ users });
      const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, AUTH_CACHE_TTL_MS: '60000', ...ENV });
      const observer = await scope.login(gw.wsUrl, u5.token);
      const cached = await scope.login(gw.wsUrl, u4.token);
      await cached.close();
      await observer.next(isDisconnect(u4.profile.userId));
      await auth.setMode('status500');
      auth.resetRequests();
      await openCircuit(gw.wsUrl, auth);
      await scope.login(gw.wsUrl, u4.token);
      expect(auth.requests).toBe(3);
    });

    it('a hanging server counts as failing too (timeouts open the circuit)', async () => {
      const auth = await scope.fakeAuthServer({ users, mode: 'hang' });
      const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, AUTH_TIMEOUT_MS: '1000', ...ENV });
      await openCircuit(gw.wsUrl, auth);
      const fast = await attempt(gw.wsUrl, u4.token);
      expect(fast).toMatchObject({ status: 'ERROR', errorCode: '3', close: 1013 });
      expect(fast.ms).toBeLessThan(600);
      expect(auth.requests).toBe(3);
    });
  });
});

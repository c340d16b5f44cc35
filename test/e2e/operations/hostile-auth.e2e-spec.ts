/**
 * Hostile clients against the authorization server (issue 10), on the real app:
 * - tokens the authorization server refuses for their size (HTTP 413) are invalid ("2"/4401) and
 *   can never open the circuit breaker, so logins of real users keep working;
 * - a token over AUTH_TOKEN_MAX_BYTES is invalid without any CHECK_TOKEN;
 * - a flood of random tokens never puts more than AUTH_MAX_IN_FLIGHT CHECK_TOKENs in flight;
 * - a repeated invalid token costs one CHECK_TOKEN per AUTH_INVALID_CACHE_MS; "3" is never reused.
 */
import { randomBytes } from 'node:crypto';
import { makeUsers } from '../../support/factories';
import { authWith } from '../../support/frames';
import type { TestGateway } from '../../support/gateway';
import { metricValue, scrape } from '../../support/metrics';
import { Scope } from '../../support/scope';
import { sleep } from '../../support/time';
import { closedWithin, type Frame, type TestClient } from '../../support/ws-client';

// Generous: the flood test opens 1,100 connections, which a loaded 2-core machine takes a while to do.
jest.setTimeout(120_000);

const scope = new Scope();
afterEach(() => scope.closeAll());

const users = makeUsers('ha1', 'ha2', 'ha3', 'ha4');

interface Outcome {
  status: string;
  errorCode?: string;
  close?: number;
}

/** A token that occurs nowhere by chance: `tag` + random hex, padded with `fill` to `bytes` UTF-8 bytes. */
function hostileToken(bytes: number, fill = 'x'): string {
  const head = `hostile-${randomBytes(12).toString('hex')}-`;
  const fillBytes = Buffer.byteLength(fill, 'utf8');
  const token = head + fill.repeat(Math.floor((bytes - head.length) / fillBytes));
  return token + 'y'.repeat(bytes - Buffer.byteLength(token, 'utf8'));
}

async function outcomeOf(client: TestClient): Promise<Outcome> {
  const auth: Frame = await client.nextOfType('AUTH_MESSAGE', 10_000);
  if (auth.status === 'SUCCESS') return { status: 'SUCCESS' };
  const closed = await closedWithin(client, 5000);
  return { status: String(auth.status), errorCode: auth.error?.errorCode, close: closed.code };
}

/** Offers the token in the first frame (the only way a 70 KB token fits: a header that size is refused). */
async function offerInFrame(url: string, token: string): Promise<Outcome> {
  const client = await scope.connect(url);
  client.send(authWith(token));
  return outcomeOf(client);
}

async function offerInHeader(url: string, token: string): Promise<Outcome> {
  return outcomeOf(await scope.connect(url, { token }));
}

async function offerInSubprotocol(url: string, token: string): Promise<Outcome> {
  const encoded = Buffer.from(token, 'utf8').toString('base64url');
  return outcomeOf(await scope.connect(url, { protocols: ['mpgp.v1', `authToken.${encoded}`] }));
}

async function authChecks(gw: TestGateway, result: string): Promise<number> {
  return metricValue((await scrape(gw)).samples, 'gateway_auth_checks_total', { result });
}

/** No log line and no metric of the gateway holds any of these token fragments. */
async function expectNoLeak(gw: TestGateway, fragments: string[]): Promise<void> {
  const metrics = (await scrape(gw)).text;
  expect(gw.logs.length).toBeGreaterThan(0);
  for (const fragment of fragments) {
    expect(gw.logs.filter((line) => line.includes(fragment))).toEqual([]);
    expect(metrics.includes(fragment)).toBe(false);
  }
}

const INVALID: Outcome = { status: 'ERROR', errorCode: '2', close: 4401 };

describe('hostile clients and the authorization server', () => {
  it('five 70 KB tokens answered 413 are "2"/4401 and do not open the breaker: a real user logs in right after, twice over', async () => {
    const auth = await scope.authServer(users); // the reference server: a body over 64 KiB gets 413
    const gw = await scope.gateway({
      AUTH_SERVER_URL: auth.url,
      // Raised so that these tokens really reach the authorization server.
      AUTH_TOKEN_MAX_BYTES: '1048576',
      // Another limit (a pre-auth frame bigger than this closes with 1009) must not stop them first.
      PRE_AUTH_MAX_FRAME_BYTES: '262144',
    });
    const fragments: string[] = [];
    for (const [round, user] of [users[0], users[1]].entries()) {
      // Five, the default AUTH_BREAKER_THRESHOLD: were a 413 "unavailable", the circuit would open.
      const tokens = Array.from({ length: 5 }, () => hostileToken(70 * 1024));
      fragments.push(...tokens.map((t) => t.slice(0, 40)));
      const before = auth.requests;
      const results = await Promise.all(tokens.map((t) => offerInFrame(gw.wsUrl, t)));
      expect(results).toEqual(Array<Outcome>(5).fill(INVALID));
      expect(auth.requests - before).toBe(5); // each one really went out (and was refused with 413)

      // A user whose answer is not cached (a cached one would log in with the circuit open too).
      await scope.login(gw.wsUrl, user.token);
      expect(auth.requests - before).toBe(6);
      expect(await authChecks(gw, 'invalid')).toBe(5 * (round + 1));
    }
    expect(await authChecks(gw, 'unavailable')).toBe(0);
    expect(await authChecks(gw, 'circuit_open')).toBe(0);
    expect(await authChecks(gw, 'valid')).toBe(2);
    await expectNoLeak(gw, fragments);
  });

  it('with the default AUTH_TOKEN_MAX_BYTES (4096), a 5 KB token is "2"/4401 and the authorization server sees no request', async () => {
    const auth = await scope.fakeAuthServer({ users });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url });
    const header = hostileToken(5 * 1024);
    const frame = hostileToken(5 * 1024);
    const subprotocol = hostileToken(5 * 1024);
    // Fewer characters than the limit, more bytes: 2,049 two-byte characters are 4,098 bytes.
    const multiByte = hostileToken(4098, 'é');
    expect(multiByte.length).toBeLessThan(4096);
    expect(await offerInHeader(gw.wsUrl, header)).toEqual(INVALID);
    expect(await offerInFrame(gw.wsUrl, frame)).toEqual(INVALID);
    expect(await offerInSubprotocol(gw.wsUrl, subprotocol)).toEqual(INVALID);
    expect(await offerInFrame(gw.wsUrl, multiByte)).toEqual(INVALID);
    expect(auth.requests).toBe(0);
    expect(await authChecks(gw, 'too_long')).toBe(4);

    // The bound is the limit itself: exactly 4096 bytes (here in two-byte characters) is asked.
    const atLimit = hostileToken(4096, 'é');
    expect(Buffer.byteLength(atLimit, 'utf8')).toBe(4096);
    expect(await offerInFrame(gw.wsUrl, atLimit)).toEqual(INVALID);
    expect(auth.requests).toBe(1);
    expect(JSON.parse(auth.lastRequest!.body)).toEqual({ type: 'CHECK_TOKEN', authToken: atLimit });
    await scope.login(gw.wsUrl, users[0].token);
    await expectNoLeak(gw, [header, frame, subprotocol, multiByte, atLimit].map((t) => t.slice(0, 40)));
  });

  it('1,100 random tokens offered at once: never more than AUTH_MAX_IN_FLIGHT CHECK_TOKENs in flight, each attempt answered "2" or "3", a real user logs in afterwards', async () => {
    const MAX_IN_FLIGHT = 8;
    const TOTAL = 1100;
    const BATCH = 275;
    // 8 requests of 50 ms: 160 answers a second. Within AUTH_TIMEOUT_MS=1500 about 240 of a batch
    // of 275 get a slot; the rest wait too long and get "3" (the gateway's own overload).
    const auth = await scope.fakeAuthServer({ users, mode: 'slow', delayMs: 50 });
    const gw = await scope.gateway({
      AUTH_SERVER_URL: auth.url,
      AUTH_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
      AUTH_TIMEOUT_MS: '1500',
      LOG_LEVEL: 'warn',
    });
    const counts = new Map<string, number>();
    const started = Date.now();
    for (let offset = 0; offset < TOTAL; offset += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, TOTAL - offset) }, async () => {
        const outcome = await offerInHeader(gw.wsUrl, `rnd-${randomBytes(16).toString('base64url')}`);
        const key = `${outcome.errorCode}/${outcome.close}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      });
      await Promise.all(batch);
      expect(auth.maxInFlight).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    }
    const elapsed = Date.now() - started;
    // Every attempt got an AUTH_MESSAGE: "2" (asked, refused) or "3" (waited too long for a slot).
    const twos = counts.get('2/4401') ?? 0;
    const threes = counts.get('3/1013') ?? 0;
    expect([...counts.keys()].filter((k) => k !== '2/4401' && k !== '3/1013')).toEqual([]);
    expect(twos + threes).toBe(TOTAL);
    // The bound held, and was reached (the load was real).
    expect(auth.maxInFlight).toBe(MAX_IN_FLIGHT);
    expect(auth.requests).toBeGreaterThanOrEqual(twos);
    expect(auth.requests).toBeLessThanOrEqual(TOTAL);
    // Checks that waited too long for a slot are the gateway's own overload, counted as such, and
    // not the breaker's business: however many, the circuit stays closed.
    expect(await authChecks(gw, 'overloaded')).toBe(threes);
    expect(await authChecks(gw, 'circuit_open')).toBe(0);
    // A real user still logs in (slowly answered, but through).
    const before = auth.requests;
    await scope.login(gw.wsUrl, users[2].token);
    expect(auth.requests).toBe(before + 1);
    expect(await authChecks(gw, 'circuit_open')).toBe(0);
    expect(elapsed).toBeLessThan(60_000);
  });

  it('the same invalid token offered 20 times within AUTH_INVALID_CACHE_MS costs one CHECK_TOKEN; after it expires, one more; "3" is never reused', async () => {
    const INVALID_CACHE_MS = 3000;
    const auth = await scope.fakeAuthServer({ users });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, AUTH_INVALID_CACHE_MS: String(INVALID_CACHE_MS) });
    const token = hostileToken(64);
    const firstAt = Date.now();
    expect(await offerInHeader(gw.wsUrl, token)).toEqual(INVALID);
    expect(auth.requests).toBe(1);
    // One after the other, so that single-flight cannot be what merges them.
    for (let i = 1; i < 20; i++) expect(await offerInHeader(gw.wsUrl, token)).toEqual(INVALID);
    const window = Date.now() - firstAt;
    if (window >= INVALID_CACHE_MS) throw new Error(`20 attempts took ${window} ms: too slow to test a ${INVALID_CACHE_MS} ms window`);
    expect(auth.requests).toBe(1);
    expect(await authChecks(gw, 'invalid_cached')).toBe(19);

    await sleep(Math.max(0, firstAt + INVALID_CACHE_MS + 200 - Date.now()));
    expect(await offerInHeader(gw.wsUrl, token)).toEqual(INVALID);
    expect(auth.requests).toBe(2);

    // "3" is not reused: each attempt asks again, and once the server answers the user logs in.
    await auth.setMode('status500');
    for (let i = 0; i < 2; i++) {
      expect(await offerInHeader(gw.wsUrl, users[3].token)).toEqual({ status: 'ERROR', errorCode: '3', close: 1013 });
    }
    expect(auth.requests).toBe(4);
    await auth.setMode('normal');
    await scope.login(gw.wsUrl, users[3].token);
    expect(auth.requests).toBe(5);
    await expectNoLeak(gw, [token.slice(0, 40)]);
  });
});

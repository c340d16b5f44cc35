import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpException, UnauthorizedException } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { ApiKeyGuard, ApiKeyRing, bearerKey, KeyFailureBudget } from './api-key.guard';

const KEY_A = 'first-api-key-0123456789';
const KEY_B = 'second-key-abcdefghijklmnopqrstuvwxyz';
const KEY_C = 'third-key-ZYXWVUTSRQPO';

/** A timingSafeEqual that records what it was asked to compare. */
function recordingEqual() {
  const calls: [Buffer, Buffer][] = [];
  const equal = jest.fn((a: Buffer, b: Buffer) => {
    calls.push([a, b]);
    return timingSafeEqual(a, b);
  });
  return { equal, calls };
}

/** A request from `address` with `headers`; the headers the guard sets on the response go to `responseHeaders`. */
function httpContext(headers: Record<string, string>, address = '10.0.0.1', responseHeaders: Record<string, string> = {}): ExecutionContextHost {
  const req = { headers, socket: { remoteAddress: address } } as unknown as IncomingMessage;
  const res = { setHeader: (name: string, value: string) => (responseHeaders[name] = value) };
  const host = new ExecutionContextHost([req, res, () => undefined]);
  host.setType('http');
  return host;
}

describe('ApiKeyRing', () => {
  it('accepts every key and nothing else', () => {
    const ring = new ApiKeyRing([KEY_A, KEY_B, KEY_C]);
    for (const key of [KEY_A, KEY_B, KEY_C]) expect(ring.accepts(key)).toBe(true);
    for (const other of [undefined, '', KEY_A.slice(0, -1), `${KEY_A}x`, KEY_A.toUpperCase(), ` ${KEY_A}`, 'x'.repeat(10_000), `${KEY_A},${KEY_B}`]) {
      expect(ring.accepts(other)).toBe(false);
    }
  });

  it.each([
    ['no key', undefined],
    ['an empty key', ''],
    ['a short wrong key', 'abc'],
    ['a long wrong key', 'k'.repeat(4096)],
    ['a wrong key of the same length as a key', KEY_B.replace(/.$/, '!')],
    ['the first key', KEY_A],
    ['the last key', KEY_C],
  ])('%s: one constant-time comparison of 32-byte digests per key, every key, whatever matched', (_what, presented) => {
    const { equal, calls } = recordingEqual();
    const ring = new ApiKeyRing([KEY_A, KEY_B, KEY_C], equal);
    ring.accepts(presented);
    expect(equal).toHaveBeenCalledTimes(3);
    for (const [a, b] of calls) {
      expect(a).toHaveLength(32);
      expect(b).toHaveLength(32);
    }
    // The same candidate digest against each key's digest, in order: no key is skipped.
    expect(new Set(calls.map(([a]) => a.toString('hex'))).size).toBe(1);
    expect(calls.map(([, b]) => b.toString('hex'))).toEqual(
      [KEY_A, KEY_B, KEY_C].map((k) => createHash('sha256').update(k).digest('hex')),
    );
  });

  it('the key presented never reaches the comparison itself, only its digest', () => {
    const { calls, equal } = recordingEqual();
    new ApiKeyRing([KEY_A], equal).accepts(KEY_A);
    expect(calls[0][0].includes(Buffer.from(KEY_A))).toBe(false);
    expect(calls[0][1].includes(Buffer.from(KEY_A))).toBe(false);
  });

  it('refuses to exist without a key', () => {
    expect(() => new ApiKeyRing([])).toThrow('at least one key');
  });
});

describe('bearerKey', () => {
  it.each([
    [`Bearer ${KEY_A}`, KEY_A],
    [`bearer ${KEY_A}`, KEY_A],
    [`BEARER   ${KEY_A}   `, KEY_A],
    [undefined, undefined],
    ['', undefined],
    ['Bearer', undefined],
    ['Bearer ', undefined],
    [KEY_A, undefined],
    [`Basic ${KEY_A}`, undefined],
    [`Bearer ${KEY_A} extra`, undefined],
    [`Bearer\t${KEY_A}`, undefined],
  ])('%j -> %j', (header, key) => {
    expect(bearerKey(header)).toBe(key);
  });

  it('reads a 32 KiB header of spaces in linear time', () => {
    const started = performance.now();
    expect(bearerKey(`Bearer ${' '.repeat(32768)}x ${' '.repeat(32768)}y`)).toBeUndefined();
    // Linear: well under a millisecond; a backtracking pattern would take seconds (32768^2 steps).
    expect(performance.now() - started).toBeLessThan(250);
  });
});

describe('KeyFailureBudget', () => {
  it('allows a burst of perMinute wrong keys, then one per 60/perMinute s', () => {
    const budget = new KeyFailureBudget(6);
    let now = 1_000_000;
    for (let i = 0; i < 6; i++) {
      expect(budget.waitMs('a', now)).toBe(0);
      budget.fail('a', now);
    }
    expect(budget.waitMs('a', now)).toBe(10_000);
    now += 4_000;
    expect(budget.waitMs('a', now)).toBe(6_000);
    now += 6_000;
    expect(budget.waitMs('a', now)).toBe(0);
    budget.fail('a', now);
    expect(budget.waitMs('a', now)).toBe(10_000);
  });

  it('counts each address on its own, and forgets an address whose budget is full again', () => {
    const budget = new KeyFailureBudget(2);
    budget.fail('a', 0);
    budget.fail('a', 0);
    expect(budget.waitMs('a', 0)).toBeGreaterThan(0);
    expect(budget.waitMs('b', 0)).toBe(0);
    expect(budget.size).toBe(1);
    expect(budget.waitMs('a', 60_000)).toBe(0);
    expect(budget.size).toBe(0);
  });

  it('remembers at most maxAddresses, forgetting the oldest', () => {
    const budget = new KeyFailureBudget(1, 3);
    for (const address of ['a', 'b', 'c', 'd']) budget.fail(address, 0);
    expect(budget.size).toBe(3);
    expect(budget.waitMs('a', 0)).toBe(0);
    expect(budget.waitMs('d', 0)).toBeGreaterThan(0);
  });
});

describe('ApiKeyGuard', () => {
  const guard = new ApiKeyGuard({ keys: [KEY_A, KEY_B], keyFailuresPerMinute: 1_000_000 });

  it('lets a request with `Authorization: Bearer <key>` through', () => {
    expect(guard.canActivate(httpContext({ authorization: `Bearer ${KEY_B}` }))).toBe(true);
  });

  it.each([
    ['no Authorization header', {}],
    ['an unknown key', { authorization: `Bearer ${KEY_C}` }],
    ['another scheme', { authorization: `Basic ${Buffer.from(`u:${KEY_A}`).toString('base64')}` }],
    ['the key in another header', { authtoken: KEY_A }],
  ])('%s: UnauthorizedException', (_what, headers) => {
    expect(() => guard.canActivate(httpContext(headers))).toThrow(UnauthorizedException);
  });
});

describe('ApiKeyGuard: API_KEY_FAILURES_PER_MINUTE', () => {
  it('answers 429 with Retry-After to an address past its wrong keys, even with a right key; other addresses are served', () => {
    const guard = new ApiKeyGuard({ keys: [KEY_A], keyFailuresPerMinute: 3 });
    for (let i = 0; i < 3; i++) expect(() => guard.canActivate(httpContext({ authorization: `Bearer ${KEY_C}` }, '10.0.0.9'))).toThrow(UnauthorizedException);
    for (const authorization of [`Bearer ${KEY_C}`, `Bearer ${KEY_A}`]) {
      const responseHeaders: Record<string, string> = {};
      let thrown: unknown;
      try {
        guard.canActivate(httpContext({ authorization }, '10.0.0.9', responseHeaders));
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(HttpException);
      expect((thrown as HttpException).getStatus()).toBe(429);
      expect((thrown as HttpException).getResponse()).toEqual({ error: expect.stringMatching(/^too many wrong API keys from this address: retry in \d+ s$/) });
      expect(Number(responseHeaders['Retry-After'])).toBeGreaterThanOrEqual(1);
      expect(Number(responseHeaders['Retry-After'])).toBeLessThanOrEqual(20);
    }
    expect(guard.canActivate(httpContext({ authorization: `Bearer ${KEY_A}` }, '10.0.0.10'))).toBe(true);
  });

  it('a right key costs nothing: any number of them', () => {
    const guard = new ApiKeyGuard({ keys: [KEY_A], keyFailuresPerMinute: 1 });
    for (let i = 0; i < 50; i++) expect(guard.canActivate(httpContext({ authorization: `Bearer ${KEY_A}` }))).toBe(true);
  });
});

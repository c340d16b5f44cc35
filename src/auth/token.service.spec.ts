import { Logger } from '@nestjs/common';
import { makeProfile } from '../../test/support/factories';
import { strictMock } from '../../test/support/strict-mock';
import { deferred, type Deferred } from '../../test/support/time';
import type { Counter, Histogram } from 'prom-client';
import type { GatewayConfig } from '../config/gateway-config';
import type { MetricsService } from '../observability/metrics.service';
import { MAX_INVALID_ENTRIES, TokenService } from './token.service';
import type { TokenCheck, TokenVerifier } from './token-verifier';

const valid = (userId: string): TokenCheck => ({ outcome: 'valid', profile: makeProfile(userId) });
const INVALID: TokenCheck = { outcome: 'invalid' };
const DOWN: TokenCheck = { outcome: 'unavailable', reason: 'HTTP 503' };

const TTL = 30_000;
const THRESHOLD = 3;
const COOLDOWN = 5_000;
const INVALID_TTL = 3_000;
const MAX_BYTES = 64;
const AUTH_TIMEOUT = 3_000;
const OVERLOADED: TokenCheck = { outcome: 'unavailable', reason: 'overloaded' };
const CIRCUIT_OPEN: TokenCheck = { outcome: 'unavailable', reason: 'circuit open' };

/** Lets every pending promise callback run (a slot handed over resumes its check in a microtask). */
const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe('TokenService', () => {
  let clock: number;
  let verify: jest.Mock<Promise<TokenCheck>, [string]>;
  let service: TokenService;
  let authChecksInc: jest.Mock;
  let stopTimer: jest.Mock;

  /** The `result` labels counted on gateway_auth_checks_total, in order. */
  const counted = () => authChecksInc.mock.calls.map(([labels]) => (labels as { result: string }).result);

  function create(overrides: Partial<GatewayConfig> = {}): TokenService {
    const config = strictMock<GatewayConfig>(
      {
        authCacheTtlMs: TTL,
        authBreakerThreshold: THRESHOLD,
        authBreakerCooldownMs: COOLDOWN,
        authTokenMaxBytes: MAX_BYTES,
        authInvalidCacheMs: INVALID_TTL,
        authMaxInFlight: 64,
        authTimeoutMs: AUTH_TIMEOUT,
        ...overrides,
      },
      'config',
    );
    const verifier = strictMock<TokenVerifier>({ verify }, 'verifier');
    const metrics = strictMock<MetricsService>(
      {
        authChecks: strictMock<Counter<'result'>>({ inc: authChecksInc }, 'authChecks'),
        authCheckDuration: strictMock<Histogram>({ startTimer: jest.fn(() => stopTimer) }, 'authCheckDuration'),
      },
      'metrics',
    );
    const created = new TokenService(verifier, config, metrics);
    created.now = () => clock;
    return created;
  }

  /** Makes THRESHOLD consecutive unavailable checks (distinct tokens), which opens the circuit. */
  async function openCircuit(): Promise<void> {
    verify.mockResolvedValue(DOWN);
    for (let i = 0; i < THRESHOLD; i++) await expect(service.verify(`down-${i}`)).resolves.toEqual(DOWN);
    expect(service.circuitOpen).toBe(true);
    verify.mockReset();
  }

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    clock = 1_000_000;
    verify = jest.fn<Promise<TokenCheck>, [string]>();
    authChecksInc = jest.fn();
    stopTimer = jest.fn(() => 0);
    service = create();
  });

  describe('single flight', () => {
    it('shares one verifier call between concurrent checks of one token', async () => {
      const answer = deferred<TokenCheck>();
      verify.mockReturnValueOnce(answer.promise);
      const first = service.verify('tok');
      const second = service.verify('tok');
      const third = service.verify('tok');
      expect(verify).toHaveBeenCalledTimes(1);
      expect(verify).toHaveBeenCalledWith('tok');
      answer.resolve(valid('u1'));
      await expect(Promise.all([first, second, third])).resolves.toEqual([valid('u1'), valid('u1'), valid('u1')]);
      expect(verify).toHaveBeenCalledTimes(1);
    });

    it('shares an invalid answer too, and asks again once its reuse has expired', async () => {
      const answer = deferred<TokenCheck>();
      verify.mockReturnValueOnce(answer.promise).mockResolvedValueOnce(INVALID);
      const both = Promise.all([service.verify('bad'), service.verify('bad')]);
      answer.resolve(INVALID);
      await expect(both).resolves.toEqual([INVALID, INVALID]);
      expect(verify).toHaveBeenCalledTimes(1);
      clock += INVALID_TTL;
      await expect(service.verify('bad')).resolves.toEqual(INVALID);
      expect(verify).toHaveBeenCalledTimes(2);
    });

    it('shares the wait for a slot too: concurrent checks of a queued token make one request', async () => {
      service = create({ authMaxInFlight: 1 });
      const first = deferred<TokenCheck>();
      verify.mockReturnValueOnce(first.promise).mockResolvedValueOnce(valid('u2'));
      const busy = service.verify('tok-1');
      const queued = [service.verify('tok-2'), service.verify('tok-2'), service.verify('tok-2')];
      expect(verify).toHaveBeenCalledTimes(1);
      first.resolve(valid('u1'));
      await expect(busy).resolves.toEqual(valid('u1'));
      await expect(Promise.all(queued)).resolves.toEqual([valid('u2'), valid('u2'), valid('u2')]);
      expect(verify).toHaveBeenCalledTimes(2);
      expect(verify).toHaveBeenLastCalledWith('tok-2');
    });

    it('makes separate calls for different tokens', async () => {
      verify.mockImplementation(async (token) => valid(`user-of-${token}`));
      const [a, b] = await Promise.all([service.verify('tok-a'), service.verify('tok-b')]);
      expect(verify).toHaveBeenCalledTimes(2);
      expect(verify.mock.calls.map(([t]) => t).sort()).toEqual(['tok-a', 'tok-b']);
      expect(a).toEqual(valid('user-of-tok-a'));
      expect(b).toEqual(valid('user-of-tok-b'));
    });
  });

  describe('cache', () => {
    it('reuses a SUCCESS for AUTH_CACHE_TTL_MS and not beyond', async () => {
      verify.mockResolvedValue(valid('u1'));
      await expect(service.verify('tok')).resolves.toEqual(valid('u1'));
      clock += TTL - 1;
      await expect(service.verify('tok')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(1);
      clock += 1;
      await expect(service.verify('tok')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(2);
    });

    it('sweeps expired answers of both caches without their tokens coming again (an idle node keeps none)', async () => {
      const sizes = () => {
        const internals = service as unknown as { cache: Map<string, unknown>; invalidCache: Map<string, unknown> };
        return [internals.cache.size, internals.invalidCache.size];
      };
      verify.mockImplementation((token) => Promise.resolve(token.startsWith('bad') ? INVALID : valid(token)));
      for (const token of ['a', 'b', 'bad-1']) await service.verify(token);
      clock += 1000;
      for (const token of ['c', 'bad-2']) await service.verify(token);
      expect(sizes()).toEqual([3, 2]);
      service.sweepExpired();
      expect(sizes()).toEqual([3, 2]);
      clock += INVALID_TTL - 1000; // bad-1 expires, bad-2 is 1 s from it
      service.sweepExpired();
      expect(sizes()).toEqual([3, 1]);
      clock += TTL - INVALID_TTL; // a and b expire, c is 1 s from it
      service.sweepExpired();
      expect(sizes()).toEqual([1, 0]);
      await expect(service.verify('c')).resolves.toEqual(valid('c')); // still cached
      expect(verify).toHaveBeenCalledTimes(5);
    });

    it('a sweep walks from the oldest answer to the first live one, no further: one cut short by its expiresAt goes once the older ones have', async () => {
      const internals = service as unknown as { cache: Map<string, unknown> };
      verify.mockImplementation((token) => Promise.resolve(token === 'short' ? { ...valid('short'), expiresAt: clock + 5000 } : valid(token)));
      await service.verify('long');
      await service.verify('short');
      clock += 5000;
      service.sweepExpired();
      expect(internals.cache.size).toBe(2); // behind 'long', which is live
      await service.verify('short'); // never reused past its expiresAt: asked again
      expect(verify).toHaveBeenCalledTimes(3);
      clock += TTL - 5000;
      service.sweepExpired();
      expect(internals.cache.size).toBe(0);
    });

    it('sweeps on its own every AUTH_CACHE_TTL_MS or AUTH_INVALID_CACHE_MS, whichever is shorter, and stops with the module', () => {
      jest.useFakeTimers();
      try {
        const sweep = jest.spyOn(service, 'sweepExpired');
        service.onModuleInit();
        jest.advanceTimersByTime(INVALID_TTL * 3);
        expect(sweep).toHaveBeenCalledTimes(3);
        service.onModuleDestroy();
        jest.advanceTimersByTime(INVALID_TTL * 3);
        expect(sweep).toHaveBeenCalledTimes(3);
        expect(jest.getTimerCount()).toBe(0);
      } finally {
        jest.useRealTimers();
      }
    });

    it('starts no sweeper when neither cache keeps anything (both TTLs 0)', () => {
      jest.useFakeTimers();
      try {
        const none = create({ authCacheTtlMs: 0, authInvalidCacheMs: 0 });
        none.onModuleInit();
        expect(jest.getTimerCount()).toBe(0);
        none.onModuleDestroy();
      } finally {
        jest.useRealTimers();
      }
    });

    it('hands out the verified profile frozen: it is shared by the cache and every login of the token', async () => {
      verify.mockResolvedValue(valid('u1'));
      const first = await service.verify('tok');
      const second = await service.verify('tok');
      if (first.outcome !== 'valid' || second.outcome !== 'valid') throw new Error('expected valid');
      expect(second.profile).toBe(first.profile);
      expect(Object.isFrozen(first.profile)).toBe(true);
    });

    it('does not cache an invalid answer in the SUCCESS cache, nor when AUTH_INVALID_CACHE_MS=0', async () => {
      service = create({ authInvalidCacheMs: 0 });
      verify.mockResolvedValueOnce(INVALID).mockResolvedValueOnce(valid('u1'));
      await expect(service.verify('tok')).resolves.toEqual(INVALID);
      await expect(service.verify('tok')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(2);
      expect((service as unknown as { invalidCache: Map<string, unknown> }).invalidCache.size).toBe(0);
    });

    it('does not cache an unavailable answer (neither cache)', async () => {
      verify.mockResolvedValueOnce(DOWN).mockResolvedValueOnce(DOWN).mockResolvedValueOnce(valid('u1'));
      await expect(service.verify('tok')).resolves.toEqual(DOWN);
      await expect(service.verify('tok')).resolves.toEqual(DOWN);
      await expect(service.verify('tok')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(3);
      expect(counted()).toEqual(['unavailable', 'unavailable', 'valid']);
    });

    it('caches nothing when AUTH_CACHE_TTL_MS=0', async () => {
      service = create({ authCacheTtlMs: 0 });
      verify.mockResolvedValue(valid('u1'));
      await service.verify('tok');
      await service.verify('tok');
      expect(verify).toHaveBeenCalledTimes(2);
      expect((service as unknown as { cache: Map<string, unknown> }).cache.size).toBe(0);
    });

    it('keys the cache and the in-flight checks by something other than the raw token', async () => {
      const token = 'super-secret-token-value';
      const answer = deferred<TokenCheck>();
      verify.mockReturnValueOnce(answer.promise);
      const pending = service.verify(token);
      const inFlightKeys = [...(service as unknown as { inFlight: Map<string, unknown> }).inFlight.keys()];
      expect(inFlightKeys).toHaveLength(1);
      answer.resolve(valid('u1'));
      await pending;
      const cacheKeys = [...(service as unknown as { cache: Map<string, unknown> }).cache.keys()];
      expect(cacheKeys).toHaveLength(1);
      verify.mockResolvedValueOnce(INVALID);
      await service.verify(`${token}-revoked`);
      const invalidKeys = [...(service as unknown as { invalidCache: Map<string, unknown> }).invalidCache.keys()];
      expect(invalidKeys).toHaveLength(1);
      for (const key of [...inFlightKeys, ...cacheKeys, ...invalidKeys]) {
        expect(key).not.toContain(token);
        expect(token).not.toContain(key);
      }
    });

    it('keys by a digest of the token: one fixed-length key per token, whatever its length, the same for the same token', async () => {
      const cacheKeys = () => [...(service as unknown as { cache: Map<string, unknown> }).cache.keys()];
      const short = 'a';
      const long = 'b'.repeat(MAX_BYTES);
      verify.mockResolvedValueOnce(valid('u1')).mockResolvedValueOnce(valid('u2'));
      await service.verify(short);
      await service.verify(long);
      await service.verify(short); // from the cache: its key again
      expect(verify).toHaveBeenCalledTimes(2);
      const [shortKey, longKey] = cacheKeys();
      expect(cacheKeys()).toHaveLength(2);
      expect(shortKey).not.toBe(longKey);
      expect(shortKey.length).toBe(longKey.length);
      expect(longKey.length).toBeLessThan(long.length);
    });
  });

  describe('metrics', () => {
    it('counts outcomes by result and times only real checks', async () => {
      verify.mockResolvedValueOnce(valid('u1')).mockResolvedValueOnce(INVALID);
      await service.verify('good');
      await service.verify('good');
      await service.verify('bad');
      expect(counted()).toEqual(['valid', 'cached', 'invalid']);
      expect(stopTimer).toHaveBeenCalledTimes(2);
    });

    it('counts fail-fast answers as circuit_open', async () => {
      await openCircuit();
      authChecksInc.mockClear();
      await service.verify('x');
      expect(counted()).toEqual(['circuit_open']);
    });
  });

  describe('circuit breaker', () => {
    it(`stays closed below AUTH_BREAKER_THRESHOLD consecutive failures`, async () => {
      verify.mockResolvedValue(DOWN);
      for (let i = 0; i < THRESHOLD - 1; i++) await service.verify(`down-${i}`);
      expect(service.circuitOpen).toBe(false);
      verify.mockResolvedValue(valid('u1'));
      await expect(service.verify('tok')).resolves.toEqual(valid('u1'));
    });

    it('fails fast without calling the verifier once open', async () => {
      await openCircuit();
      await expect(service.verify('another')).resolves.toEqual({ outcome: 'unavailable', reason: 'circuit open' });
      clock += COOLDOWN - 1;
      await expect(service.verify('another')).resolves.toMatchObject({ outcome: 'unavailable' });
      expect(verify).not.toHaveBeenCalled();
    });

    it('still answers cached tokens while open', async () => {
      verify.mockResolvedValueOnce(valid('u1'));
      await service.verify('cached');
      await openCircuit();
      await expect(service.verify('cached')).resolves.toEqual(valid('u1'));
      expect(verify).not.toHaveBeenCalled();
    });

    it('lets exactly one probe through after the cooldown; concurrent others fail fast', async () => {
      await openCircuit();
      clock += COOLDOWN;
      const probe = deferred<TokenCheck>();
      verify.mockReturnValueOnce(probe.promise);
      const probing = service.verify('probe');
      const others = await Promise.all([service.verify('other-1'), service.verify('other-2')]);
      expect(others).toEqual([
        { outcome: 'unavailable', reason: 'circuit open' },
        { outcome: 'unavailable', reason: 'circuit open' },
      ]);
      expect(verify).toHaveBeenCalledTimes(1);
      expect(verify).toHaveBeenCalledWith('probe');
      probe.resolve(valid('u1'));
      await expect(probing).resolves.toEqual(valid('u1'));
    });

    it('a concurrent check of the probe token itself shares the probe', async () => {
      await openCircuit();
      clock += COOLDOWN;
      const probe = deferred<TokenCheck>();
      verify.mockReturnValueOnce(probe.promise);
      const a = service.verify('probe');
      const b = service.verify('probe');
      probe.resolve(valid('u1'));
      await expect(Promise.all([a, b])).resolves.toEqual([valid('u1'), valid('u1')]);
      expect(verify).toHaveBeenCalledTimes(1);
    });

    it('closes when the probe succeeds: calls go through again', async () => {
      await openCircuit();
      clock += COOLDOWN;
      verify.mockResolvedValueOnce(valid('u1'));
      await expect(service.verify('probe')).resolves.toEqual(valid('u1'));
      expect(service.circuitOpen).toBe(false);
      verify.mockResolvedValueOnce(valid('u2')).mockResolvedValueOnce(INVALID);
      await expect(Promise.all([service.verify('t2'), service.verify('t3')])).resolves.toEqual([valid('u2'), INVALID]);
      expect(verify).toHaveBeenCalledTimes(3);
    });

    it('closes when the probe answers invalid (the server answered)', async () => {
      await openCircuit();
      clock += COOLDOWN;
      verify.mockResolvedValueOnce(INVALID).mockResolvedValueOnce(valid('u2'));
      await expect(service.verify('probe')).resolves.toEqual(INVALID);
      await expect(service.verify('t2')).resolves.toEqual(valid('u2'));
      expect(verify).toHaveBeenCalledTimes(2);
    });

    it('reopens for another cooldown when the probe fails', async () => {
      await openCircuit();
      clock += COOLDOWN;
      verify.mockResolvedValueOnce(DOWN);
      await expect(service.verify('probe-1')).resolves.toEqual(DOWN);
      expect(verify).toHaveBeenCalledTimes(1);

      clock += COOLDOWN - 1;
      await expect(service.verify('t')).resolves.toEqual({ outcome: 'unavailable', reason: 'circuit open' });
      expect(verify).toHaveBeenCalledTimes(1);

      clock += 1;
      verify.mockResolvedValueOnce(valid('u1'));
      await expect(service.verify('probe-2')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(2);
      expect(verify).toHaveBeenLastCalledWith('probe-2');
    });

    it('counts an invalid answer as a success (it resets the count)', async () => {
      verify
        .mockResolvedValueOnce(DOWN)
        .mockResolvedValueOnce(DOWN)
        .mockResolvedValueOnce(INVALID)
        .mockResolvedValueOnce(DOWN)
        .mockResolvedValueOnce(DOWN)
        .mockResolvedValueOnce(valid('u1'));
      for (const token of ['a', 'b', 'c', 'd', 'e']) await service.verify(token);
      expect(service.circuitOpen).toBe(false);
      await expect(service.verify('f')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(6);
    });

    it('counts a verifier that rejects as unavailable', async () => {
      verify.mockRejectedValue(new Error('boom'));
      for (let i = 0; i < THRESHOLD; i++) {
        await expect(service.verify(`t${i}`)).resolves.toMatchObject({ outcome: 'unavailable' });
      }
      expect(service.circuitOpen).toBe(true);
      verify.mockReset();
      await expect(service.verify('next')).resolves.toEqual({ outcome: 'unavailable', reason: 'circuit open' });
      expect(verify).not.toHaveBeenCalled();
    });

    it('answers a rejected verifier call with a reason that does not carry the error text', async () => {
      verify.mockRejectedValueOnce(new Error('token=abc leaked'));
      const check = await service.verify('abc');
      expect(check.outcome).toBe('unavailable');
      expect(JSON.stringify(check)).not.toContain('leaked');
    });
  });

  describe('token length (AUTH_TOKEN_MAX_BYTES, in UTF-8 bytes)', () => {
    /** Asserts that `token` was refused as invalid without any request and without entering a cache. */
    async function refusedUnasked(token: string): Promise<void> {
      await expect(service.verify(token)).resolves.toEqual(INVALID);
      expect(verify).not.toHaveBeenCalled();
      expect(stopTimer).not.toHaveBeenCalled();
      const internals = service as unknown as { inFlight: Map<string, unknown>; invalidCache: Map<string, unknown> };
      expect(internals.inFlight.size).toBe(0);
      expect(internals.invalidCache.size).toBe(0);
    }

    it('a token of exactly AUTH_TOKEN_MAX_BYTES is checked; one byte more is invalid without a request', async () => {
      verify.mockResolvedValue(valid('u1'));
      const atLimit = 'a'.repeat(MAX_BYTES);
      await expect(service.verify(atLimit)).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledWith(atLimit);
      verify.mockClear();
      stopTimer.mockClear();
      authChecksInc.mockClear();
      await refusedUnasked(`${atLimit}a`);
      expect(counted()).toEqual(['too_long']);
    });

    it.each([
      ['2-byte', 'é', 2],
      ['3-byte', '€', 3],
      ['4-byte (a surrogate pair, two UTF-16 units)', '😀', 4],
    ])('counts bytes, not characters: %s characters', async (_what, char, bytes) => {
      const fits = char.repeat(MAX_BYTES / bytes) + 'x'.repeat(MAX_BYTES % bytes);
      expect(Buffer.byteLength(fits, 'utf8')).toBe(MAX_BYTES);
      verify.mockResolvedValue(INVALID);
      await expect(service.verify(fits)).resolves.toEqual(INVALID);
      expect(verify).toHaveBeenCalledTimes(1);
      verify.mockClear();
      stopTimer.mockClear();
      service = create();
      const over = `${fits}x`;
      expect(over.length).toBeLessThan(MAX_BYTES); // fewer characters than the limit, more bytes
      expect(Buffer.byteLength(over, 'utf8')).toBe(MAX_BYTES + 1);
      await refusedUnasked(over);
    });

    it('a token far over the limit (1 MB) is refused the same way', async () => {
      await refusedUnasked('t'.repeat(1024 * 1024));
      expect(counted()).toEqual(['too_long']);
    });

    it('is checked before the circuit breaker: an oversized token is "invalid" even while the circuit is open', async () => {
      await openCircuit();
      authChecksInc.mockClear();
      await expect(service.verify('z'.repeat(MAX_BYTES + 1))).resolves.toEqual(INVALID);
      expect(counted()).toEqual(['too_long']);
    });
  });

  describe('invalid answers (AUTH_INVALID_CACHE_MS)', () => {
    it('reuses an invalid answer for AUTH_INVALID_CACHE_MS and not beyond', async () => {
      verify.mockResolvedValue(INVALID);
      await expect(service.verify('bad')).resolves.toEqual(INVALID);
      for (let i = 0; i < 19; i++) {
        clock += 100;
        await expect(service.verify('bad')).resolves.toEqual(INVALID);
      }
      clock = 1_000_000 + INVALID_TTL - 1;
      await expect(service.verify('bad')).resolves.toEqual(INVALID);
      expect(verify).toHaveBeenCalledTimes(1);
      clock += 1;
      await expect(service.verify('bad')).resolves.toEqual(INVALID);
      expect(verify).toHaveBeenCalledTimes(2);
      expect(counted()).toEqual(['invalid', ...Array<string>(20).fill('invalid_cached'), 'invalid']);
      expect(stopTimer).toHaveBeenCalledTimes(2);
    });

    it('once expired, the server decides again: a token that became valid logs in', async () => {
      verify.mockResolvedValueOnce(INVALID).mockResolvedValueOnce(valid('u1'));
      await service.verify('fresh');
      clock += INVALID_TTL;
      await expect(service.verify('fresh')).resolves.toEqual(valid('u1'));
      clock += 1;
      await expect(service.verify('fresh')).resolves.toEqual(valid('u1')); // now from the SUCCESS cache
      expect(verify).toHaveBeenCalledTimes(2);
    });

    it('reuses only the answer for that token: another token is still asked', async () => {
      verify.mockResolvedValueOnce(INVALID).mockResolvedValueOnce(valid('u1'));
      await service.verify('bad');
      await expect(service.verify('good')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(2);
    });

    it('answers a remembered invalid token while the circuit is open (from the cache, no request)', async () => {
      verify.mockResolvedValueOnce(INVALID);
      await service.verify('bad');
      await openCircuit();
      authChecksInc.mockClear();
      await expect(service.verify('bad')).resolves.toEqual(INVALID);
      expect(verify).not.toHaveBeenCalled();
      expect(counted()).toEqual(['invalid_cached']);
    });

    it(`keeps at most ${MAX_INVALID_ENTRIES} remembered answers: a flood of random tokens does not grow memory`, async () => {
      verify.mockResolvedValue(INVALID);
      const size = () => (service as unknown as { invalidCache: Map<string, unknown> }).invalidCache.size;
      for (let i = 0; i < MAX_INVALID_ENTRIES + 50; i++) await service.verify(`random-${i}`);
      expect(size()).toBeLessThanOrEqual(MAX_INVALID_ENTRIES);
      expect(size()).toBeGreaterThan(MAX_INVALID_ENTRIES / 2);
      // The newest answers are the ones kept.
      verify.mockClear();
      await service.verify(`random-${MAX_INVALID_ENTRIES + 49}`);
      expect(verify).not.toHaveBeenCalled();
      // Expired answers are swept as new ones come: memory shrinks once a flood is over.
      clock += INVALID_TTL;
      await service.verify('one-more');
      expect(size()).toBe(1);
    });
  });

  describe('invalid outcomes never open the circuit', () => {
    it('no number of invalid, oversized or remembered-invalid tokens opens it', async () => {
      verify.mockResolvedValue(INVALID);
      for (let i = 0; i < THRESHOLD * 4; i++) {
        await expect(service.verify(`bad-${i}`)).resolves.toEqual(INVALID);
        await expect(service.verify(`bad-${i}`)).resolves.toEqual(INVALID);
        await expect(service.verify('x'.repeat(MAX_BYTES + 1 + i))).resolves.toEqual(INVALID);
      }
      expect(service.circuitOpen).toBe(false);
      expect(verify).toHaveBeenCalledTimes(THRESHOLD * 4);
      verify.mockResolvedValue(valid('u1'));
      await expect(service.verify('good')).resolves.toEqual(valid('u1'));
    });

    it('the same series of answers as "unavailable" does open it (the threshold is live)', async () => {
      verify.mockResolvedValue(DOWN);
      for (let i = 0; i < THRESHOLD; i++) await service.verify(`bad-${i}`);
      expect(service.circuitOpen).toBe(true);
    });
  });

  describe('CHECK_TOKEN requests in flight (AUTH_MAX_IN_FLIGHT)', () => {
    const MAX = 2;
    let answers: Map<string, Deferred<TokenCheck>>;
    const pendingTimers = () => jest.getTimerCount();
    const waitingCount = () => (service as unknown as { waiting: Set<unknown> }).waiting.size;

    /** Tracks whether a promise has settled, without awaiting it. */
    function watch<T>(promise: Promise<T>): { settled: boolean; value?: T } {
      const state: { settled: boolean; value?: T } = { settled: false };
      void promise.then((value) => {
        state.settled = true;
        state.value = value;
      });
      return state;
    }

    beforeEach(() => {
      jest.useFakeTimers();
      service = create({ authMaxInFlight: MAX });
      answers = new Map();
      // Every request hangs until the test answers it through `answers`.
      verify.mockImplementation((token) => {
        const d = deferred<TokenCheck>();
        answers.set(token, d);
        return d.promise;
      });
    });
    afterEach(() => jest.useRealTimers());

    it('the N+1th check waits; it gets the slot as soon as one frees, oldest first', async () => {
      const a = service.verify('a');
      const b = service.verify('b');
      const c = watch(service.verify('c'));
      const d = watch(service.verify('d'));
      await flush();
      expect(verify.mock.calls.map(([t]) => t)).toEqual(['a', 'b']);
      expect(waitingCount()).toBe(2);

      answers.get('b')!.resolve(INVALID);
      await expect(b).resolves.toEqual(INVALID);
      await flush();
      expect(verify.mock.calls.map(([t]) => t)).toEqual(['a', 'b', 'c']);
      expect(c.settled).toBe(false);

      answers.get('a')!.resolve(valid('u1'));
      await expect(a).resolves.toEqual(valid('u1'));
      await flush();
      expect(verify.mock.calls.map(([t]) => t)).toEqual(['a', 'b', 'c', 'd']);
      answers.get('c')!.resolve(valid('u3'));
      answers.get('d')!.resolve(INVALID);
      await flush();
      expect(c).toEqual({ settled: true, value: valid('u3') });
      expect(d).toEqual({ settled: true, value: INVALID });
      expect(waitingCount()).toBe(0);
      expect(pendingTimers()).toBe(0); // the waits' timers were cleared when they got their slot
    });

    it('never has more than AUTH_MAX_IN_FLIGHT requests outstanding, whatever the load', async () => {
      let outstanding = 0;
      let peak = 0;
      verify.mockImplementation(async () => {
        outstanding++;
        peak = Math.max(peak, outstanding);
        await Promise.resolve();
        outstanding--;
        return INVALID;
      });
      const all = Promise.all(Array.from({ length: 50 }, (_, i) => service.verify(`flood-${i}`)));
      await flush();
      await expect(all).resolves.toHaveLength(50);
      expect(verify).toHaveBeenCalledTimes(50);
      expect(peak).toBe(MAX);
    });

    it('a check that got no slot within AUTH_TIMEOUT_MS is "unavailable" (overloaded), without any request', async () => {
      void service.verify('a');
      void service.verify('b');
      const late = watch(service.verify('late'));
      await flush();
      jest.advanceTimersByTime(AUTH_TIMEOUT - 1);
      await flush();
      expect(late.settled).toBe(false);
      jest.advanceTimersByTime(1);
      await flush();
      expect(late).toEqual({ settled: true, value: OVERLOADED });
      expect(verify.mock.calls.map(([t]) => t)).toEqual(['a', 'b']);
      expect(counted()).toEqual(['overloaded']);
      expect(waitingCount()).toBe(0);
      expect(stopTimer).not.toHaveBeenCalled();
      // Not remembered: once a slot is free, the same token is asked.
      answers.get('a')!.resolve(INVALID);
      await flush();
      const again = service.verify('late');
      await flush();
      expect(verify).toHaveBeenLastCalledWith('late');
      answers.get('late')!.resolve(valid('u9'));
      await expect(again).resolves.toEqual(valid('u9'));
    });

    it('overloaded checks never open the circuit, however many', async () => {
      void service.verify('a');
      void service.verify('b');
      const late = Array.from({ length: THRESHOLD * 3 }, (_, i) => service.verify(`late-${i}`));
      await flush();
      jest.advanceTimersByTime(AUTH_TIMEOUT);
      await expect(Promise.all(late)).resolves.toEqual(Array<TokenCheck>(THRESHOLD * 3).fill(OVERLOADED));
      expect(service.circuitOpen).toBe(false);
      // Nor do they reset the count of the server's own failures: they say nothing about it.
      answers.get('a')!.resolve(DOWN);
      answers.get('b')!.resolve(DOWN);
      await flush();
      verify.mockResolvedValueOnce(DOWN);
      await service.verify('c');
      expect(service.circuitOpen).toBe(true);
    });

    it('checks waiting when the circuit opens fail fast when they get a slot, without a request', async () => {
      service = create({ authMaxInFlight: 1, authBreakerThreshold: 1 });
      const first = service.verify('a');
      const queued = [service.verify('q1'), service.verify('q2')];
      await flush();
      answers.get('a')!.resolve(DOWN);
      await expect(first).resolves.toEqual(DOWN);
      await expect(Promise.all(queued)).resolves.toEqual([CIRCUIT_OPEN, CIRCUIT_OPEN]);
      expect(verify.mock.calls.map(([t]) => t)).toEqual(['a']);
      expect(counted()).toEqual(['unavailable', 'circuit_open', 'circuit_open']);
      expect(waitingCount()).toBe(0);
      expect(pendingTimers()).toBe(0);
      // The slot is free again: after the cooldown the probe goes out at once.
      clock += COOLDOWN;
      const probe = service.verify('probe');
      await flush();
      expect(verify).toHaveBeenLastCalledWith('probe');
      answers.get('probe')!.resolve(valid('u1'));
      await expect(probe).resolves.toEqual(valid('u1'));
      expect(service.circuitOpen).toBe(false);
    });

    it('a verifier that rejects frees its slot', async () => {
      service = create({ authMaxInFlight: 1 });
      verify.mockRejectedValueOnce(new Error('boom'));
      await expect(service.verify('a')).resolves.toMatchObject({ outcome: 'unavailable' });
      verify.mockResolvedValueOnce(valid('u2'));
      await expect(service.verify('b')).resolves.toEqual(valid('u2'));
    });

    it('on shutdown, waiting checks resolve at once and leave no timer behind', async () => {
      void service.verify('a');
      void service.verify('b');
      const waiting = [service.verify('w1'), service.verify('w2')];
      await flush();
      expect(pendingTimers()).toBe(2);
      service.onModuleDestroy();
      await expect(Promise.all(waiting)).resolves.toEqual([OVERLOADED, OVERLOADED]);
      expect(pendingTimers()).toBe(0);
      expect(waitingCount()).toBe(0);
    });
  });
});

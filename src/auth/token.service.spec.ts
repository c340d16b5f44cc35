import { Logger } from '@nestjs/common';
import { strictMock } from '../../test/support/strict-mock';
import type { Counter, Histogram } from 'prom-client';
import type { GatewayConfig } from '../config/gateway-config';
import type { MetricsService } from '../observability/metrics.service';
import type { UserProfile } from '../protocol/protocol';
import { TokenService } from './token.service';
import type { TokenCheck, TokenVerifier } from './token-verifier';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const profile = (userId: string): UserProfile => ({
  userId,
  nickname: `nick-${userId}`,
  avatar: '',
  language: 'en',
  status: '',
  lastOnline: '',
  registerDate: '',
});
const valid = (userId: string): TokenCheck => ({ outcome: 'valid', profile: profile(userId) });
const INVALID: TokenCheck = { outcome: 'invalid' };
const DOWN: TokenCheck = { outcome: 'unavailable', reason: 'HTTP 503' };

const TTL = 30_000;
const THRESHOLD = 3;
const COOLDOWN = 5_000;

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
      { authCacheTtlMs: TTL, authBreakerThreshold: THRESHOLD, authBreakerCooldownMs: COOLDOWN, ...overrides },
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

    it('shares an invalid answer too, but asks again afterwards', async () => {
      const answer = deferred<TokenCheck>();
      verify.mockReturnValueOnce(answer.promise).mockResolvedValueOnce(INVALID);
      const both = Promise.all([service.verify('bad'), service.verify('bad')]);
      answer.resolve(INVALID);
      await expect(both).resolves.toEqual([INVALID, INVALID]);
      await expect(service.verify('bad')).resolves.toEqual(INVALID);
      expect(verify).toHaveBeenCalledTimes(2);
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

    it('hands out the verified profile frozen: it is shared by the cache and every login of the token', async () => {
      verify.mockResolvedValue(valid('u1'));
      const first = await service.verify('tok');
      const second = await service.verify('tok');
      if (first.outcome !== 'valid' || second.outcome !== 'valid') throw new Error('expected valid');
      expect(second.profile).toBe(first.profile);
      expect(Object.isFrozen(first.profile)).toBe(true);
    });

    it('does not cache an invalid answer', async () => {
      verify.mockResolvedValueOnce(INVALID).mockResolvedValueOnce(valid('u1'));
      await expect(service.verify('tok')).resolves.toEqual(INVALID);
      await expect(service.verify('tok')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(2);
    });

    it('does not cache an unavailable answer', async () => {
      verify.mockResolvedValueOnce(DOWN).mockResolvedValueOnce(valid('u1'));
      await expect(service.verify('tok')).resolves.toEqual(DOWN);
      await expect(service.verify('tok')).resolves.toEqual(valid('u1'));
      expect(verify).toHaveBeenCalledTimes(2);
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
      for (const key of [...inFlightKeys, ...cacheKeys]) {
        expect(key).not.toContain(token);
        expect(token).not.toContain(key);
      }
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
});

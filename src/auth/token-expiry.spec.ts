/**
 * Token expiry on the auth side (docs/protocol.md, "Token lifecycle", "CHECK_TOKEN"): CHECK_TOKEN's
 * `serverData.expiresAt` read strictly (malformed = unavailable "3"), a SUCCESS already past its
 * expiresAt is invalid ("2"), a cached answer is never reused after it; AuthGuard hands the
 * token and its expiry to the client (memory only) and announces it to TokenHolders; the demo
 * verifier's time-windowed tokens carry their expiry.
 */
import type { IncomingMessage } from 'node:http';
import { Logger } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import type { Counter, Histogram } from 'prom-client';
import { makeProfile } from '../../test/support/factories';
import { strictMock } from '../../test/support/strict-mock';
import type { GatewayConfig } from '../config/gateway-config';
import { ChatClient, type Transport } from '../messaging/chat-client';
import type { MetricsService } from '../observability/metrics.service';
import { HANDSHAKE_LOGIN } from '../protocol/inbound';
import { MessageType } from '../protocol/protocol';
import { AuthGuard } from './auth.guard';
import { DemoTokenVerifier } from './demo-token-verifier';
import { classifyReply } from './http-token-verifier';
import { TokenHolders } from './token-holders';
import { parseExpiresAt, type TokenCheck, type TokenVerifier } from './token-verifier';
import { TokenService } from './token.service';

const PROFILE = makeProfile('u1');
const success = (serverData: unknown) => JSON.stringify({ type: 'CHECK_TOKEN', status: 'SUCCESS', serverData });

beforeAll(() => Logger.overrideLogger(false));

describe('parseExpiresAt', () => {
  it('reads Unix ms as a decimal string', () => {
    expect(parseExpiresAt('1736933400000')).toBe(1736933400000);
    expect(parseExpiresAt('0')).toBe(0);
    expect(parseExpiresAt('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('is undefined when absent', () => {
    expect(parseExpiresAt(undefined)).toBeUndefined();
  });

  it.each([
    ['a number', 1736933400000],
    ['null', null],
    ['an empty string', ''],
    ['a signed value', '-1'],
    ['a plus sign', '+1736933400000'],
    ['a fraction', '1736933400000.5'],
    ['an exponent', '1.7e12'],
    ['spaces', ' 1736933400000'],
    ['an ISO date', '2025-01-15T09:30:00.000Z'],
    ['more than 16 digits', '12345678901234567'],
    ['beyond a safe integer', '9007199254740993'],
    ['an object', { ms: 1 }],
  ])('is null (malformed) for %s', (_what, value) => {
    expect(parseExpiresAt(value)).toBeNull();
  });
});

describe('classifyReply with expiresAt', () => {
  it('carries a valid expiresAt as a number', () => {
    expect(classifyReply(200, success({ ...PROFILE, expiresAt: '1736933400000' }))).toEqual({ outcome: 'valid', profile: PROFILE, expiresAt: 1736933400000 });
  });

  it('has no expiresAt when the server gave none', () => {
    const check = classifyReply(200, success(PROFILE));
    expect(check).toEqual({ outcome: 'valid', profile: PROFILE });
    expect('expiresAt' in check).toBe(false);
  });

  it.each([['a number', 1736933400000], ['null', null], ['garbage', 'soon'], ['a fraction', '1.5']])(
    'makes a SUCCESS with %s as expiresAt unavailable (the safe reading: never ignore an expiry)',
    (_what, expiresAt) => {
      expect(classifyReply(200, success({ ...PROFILE, expiresAt }))).toEqual({ outcome: 'unavailable', reason: 'SUCCESS with a malformed expiresAt' });
    },
  );

  it('leaves a past expiresAt to TokenService (valid here: the verifier has no clock)', () => {
    expect(classifyReply(200, success({ ...PROFILE, expiresAt: '1' }))).toEqual({ outcome: 'valid', profile: PROFILE, expiresAt: 1 });
  });
});

describe('TokenService and expiresAt', () => {
  const TTL = 30_000;
  let clock: number;
  let verify: jest.Mock<Promise<TokenCheck>, [string]>;
  let results: string[];
  let service: TokenService;

  beforeEach(() => {
    clock = 1_000_000;
    results = [];
    verify = jest.fn<Promise<TokenCheck>, [string]>();
    const config = strictMock<GatewayConfig>(
      {
        authCacheTtlMs: TTL,
        authBreakerThreshold: 3,
        authBreakerCooldownMs: 5000,
        authTokenMaxBytes: 4096,
        authInvalidCacheMs: 3000,
        authMaxInFlight: 64,
        authTimeoutMs: 3000,
      },
      'config',
    );
    const metrics = strictMock<MetricsService>(
      {
        authChecks: strictMock<Counter<'result'>>({ inc: jest.fn((labels: { result: string }) => void results.push(labels.result)) as never }, 'authChecks'),
        authCheckDuration: strictMock<Histogram>({ startTimer: jest.fn(() => () => 0) }, 'authCheckDuration'),
      },
      'metrics',
    );
    service = new TokenService(strictMock<TokenVerifier>({ verify }, 'verifier'), config, metrics);
    service.now = () => clock;
  });

  it('reuses a SUCCESS until its expiresAt, never after, even within AUTH_CACHE_TTL_MS', async () => {
    verify.mockResolvedValue({ outcome: 'valid', profile: PROFILE, expiresAt: clock + 1000 });
    await expect(service.verify('t')).resolves.toMatchObject({ outcome: 'valid', expiresAt: clock + 1000 });
    clock += 999;
    await expect(service.verify('t')).resolves.toMatchObject({ outcome: 'valid' });
    expect(verify).toHaveBeenCalledTimes(1);
    clock += 1; // now == expiresAt: the cached answer no longer stands
    verify.mockResolvedValue({ outcome: 'invalid' });
    await expect(service.verify('t')).resolves.toEqual({ outcome: 'invalid' });
    expect(verify).toHaveBeenCalledTimes(2);
    expect(results).toEqual(['valid', 'cached', 'invalid']);
  });

  it('reuses a SUCCESS with a far expiresAt for AUTH_CACHE_TTL_MS only', async () => {
    verify.mockResolvedValue({ outcome: 'valid', profile: PROFILE, expiresAt: clock + 10 * TTL });
    await service.verify('t');
    clock += TTL;
    await service.verify('t');
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it('makes a SUCCESS whose expiresAt has passed invalid ("2"), and remembers it as invalid', async () => {
    verify.mockResolvedValue({ outcome: 'valid', profile: PROFILE, expiresAt: clock });
    await expect(service.verify('old')).resolves.toEqual({ outcome: 'invalid' });
    await expect(service.verify('old')).resolves.toEqual({ outcome: 'invalid' });
    expect(verify).toHaveBeenCalledTimes(1);
    expect(results).toEqual(['invalid', 'invalid_cached']);
  });

  it('counts an expired SUCCESS as an answer of the server (the breaker does not open)', async () => {
    verify.mockResolvedValue({ outcome: 'unavailable', reason: 'HTTP 503' });
    await service.verify('a');
    await service.verify('b');
    verify.mockResolvedValue({ outcome: 'valid', profile: PROFILE, expiresAt: 1 });
    await service.verify('c');
    verify.mockResolvedValue({ outcome: 'unavailable', reason: 'HTTP 503' });
    await service.verify('d');
    expect(service.circuitOpen).toBe(false);
  });
});

describe('AuthGuard hands the token and its expiry to the client', () => {
  const transport = (): Transport => ({
    isOpen: true,
    write: () => true,
    writeBroadcast: () => undefined,
    probe: () => Promise.resolve(true),
    close: () => undefined,
    drop: () => undefined,
  });
  const request = (headers: Record<string, string>) => ({ headers, url: '/ws' }) as unknown as IncomingMessage;
  const context = (client: ChatClient, data: unknown) => {
    const host = new ExecutionContextHost([client, data, MessageType.AUTH]);
    host.setType('ws');
    return host;
  };

  it.each([
    ['with an expiry', { outcome: 'valid', profile: PROFILE, expiresAt: 1736933400000 } as TokenCheck, 1736933400000],
    ['without one', { outcome: 'valid', profile: PROFILE } as TokenCheck, undefined],
  ])('a valid token %s: kept on the client, announced to TokenHolders', async (_what, check, expiresAt) => {
    const holders = new TokenHolders();
    const announced: ChatClient[] = [];
    holders.listen((c) => void announced.push(c));
    const guard = new AuthGuard(strictMock<TokenService>({ verify: jest.fn(() => Promise.resolve(check)) }, 'tokens'), { allowQueryToken: false }, holders);
    const client = new ChatClient(transport(), request({ authtoken: 'secret-header-token' }));
    await expect(guard.canActivate(context(client, HANDSHAKE_LOGIN))).resolves.toBe(true);
    expect(client.token).toBe('secret-header-token');
    expect(client.tokenExpiresAt).toBe(expiresAt);
    expect(announced).toEqual([client]);
  });

  it('the token of an AUTH_MESSAGE frame too', async () => {
    const guard = new AuthGuard(strictMock<TokenService>({ verify: jest.fn(() => Promise.resolve<TokenCheck>({ outcome: 'valid', profile: PROFILE })) }, 'tokens'), {
      allowQueryToken: false,
    });
    const client = new ChatClient(transport(), request({}));
    await guard.canActivate(context(client, { type: MessageType.AUTH, serverData: { authToken: 'frame-token' } }));
    expect(client.token).toBe('frame-token');
  });

  it('announces nothing for a refused token', async () => {
    const holders = new TokenHolders();
    const listener = jest.fn();
    holders.listen(listener);
    const guard = new AuthGuard(strictMock<TokenService>({ verify: jest.fn(() => Promise.resolve<TokenCheck>({ outcome: 'invalid' })) }, 'tokens'), { allowQueryToken: false }, holders);
    const client = new ChatClient(transport(), request({ authtoken: 'bad' }));
    await expect(Promise.resolve(guard.canActivate(context(client, HANDSHAKE_LOGIN)))).rejects.toThrow();
    expect(client.token).toBeUndefined();
    expect(listener).not.toHaveBeenCalled();
  });
});

describe('TokenHolders', () => {
  const client = { id: 'c-1' } as ChatClient;

  it('calls its listener; nothing without one; the listener can be removed', () => {
    const holders = new TokenHolders();
    holders.accepted(client); // no listener: nothing
    const listener = jest.fn();
    const stop = holders.listen(listener);
    holders.accepted(client);
    expect(listener).toHaveBeenCalledWith(client);
    stop();
    holders.accepted(client);
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it('a throwing listener never fails the login', () => {
    const holders = new TokenHolders();
    holders.listen(() => {
      throw new Error('boom');
    });
    expect(() => holders.accepted(client)).not.toThrow();
  });
});

describe('DemoTokenVerifier: time-windowed demo tokens', () => {
  const verifier = new DemoTokenVerifier(strictMock<Logger>({ warn: jest.fn() }, 'logger'));
  const now = 1_800_000_000_000;
  verifier.now = () => now;

  it('a bare demo token never expires', async () => {
    await expect(verifier.verify('alice-token')).resolves.toEqual({ outcome: 'valid', profile: expect.objectContaining({ userId: '1' }) });
    expect(await verifier.verify('alice-token')).not.toHaveProperty('expiresAt');
  });

  it('`<token>~<issuedAt>` is valid for the user\'s tokenTtlMs (120 s for the demo users), with its expiresAt', async () => {
    await expect(verifier.verify(`alice-token~${now - 1000}`)).resolves.toEqual({
      outcome: 'valid',
      profile: expect.objectContaining({ userId: '1' }),
      expiresAt: now - 1000 + 120_000,
    });
    await expect(verifier.verify(`alice-token~${now - 120_000}`)).resolves.toEqual({ outcome: 'invalid' });
    await expect(verifier.verify(`nobody~${now}`)).resolves.toEqual({ outcome: 'invalid' });
  });
});

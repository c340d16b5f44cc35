/**
 * TokenLifecycle (docs/protocol.md, "Token lifecycle"): connections announced by AuthGuard
 * (TokenHolders) are followed only when there is something to do (an expiry, or the re-check on);
 * an expiry closes with 4401 `token expired` and the session leaves with 4401 (DISCONNECT); a
 * refresh moves the expiry; the re-check (AUTH_RECHECK_INTERVAL_MS) spreads its checks over the
 * interval through TokenService, closes "2" with 4401 `token revoked`, keeps "3", takes a valid
 * answer's expiry, ignores an answer about a token the connection no longer holds.
 */
import type { IncomingMessage } from 'node:http';
import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { makeProfile } from '../../test/support/factories';
import { strictMock } from '../../test/support/strict-mock';
import { flushPromises } from '../../test/support/time';
import { TokenHolders } from '../auth/token-holders';
import type { TokenCheck } from '../auth/token-verifier';
import type { TokenService } from '../auth/token.service';
import { ChatClient, type Transport } from '../messaging/chat-client';
import type { MetricsService } from '../observability/metrics.service';
import type { SessionService } from '../session/session.service';
import { TokenLifecycle } from './token-lifecycle.service';

const T0 = 1_800_000_000_000;

interface Recorded extends Transport {
  closes: [number, string][];
  open: boolean;
}

function transport(): Recorded {
  const t: Recorded = {
    closes: [],
    open: true,
    get isOpen() {
      return t.open;
    },
    write: () => true,
    writeBroadcast: () => undefined,
    probe: () => Promise.resolve(true),
    close(code: number, reason: string) {
      t.closes.push([code, reason]);
      t.open = false;
    },
    drop() {
      t.open = false;
    },
  };
  return t;
}

describe('TokenLifecycle', () => {
  let holders: TokenHolders;
  let verify: jest.Mock<Promise<TokenCheck>, [string]>;
  let leave: jest.Mock<Promise<void>, [ChatClient, number?]>;
  let registry: Registry;
  let lifecycle: TokenLifecycle;

  function create(authRecheckIntervalMs = 0): TokenLifecycle {
    const created = new TokenLifecycle(
      holders,
      strictMock<TokenService>({ verify }, 'tokens'),
      strictMock<SessionService>({ leave }, 'sessions'),
      strictMock<MetricsService>({ registry }, 'metrics'),
      { authRecheckIntervalMs },
    );
    created.onModuleInit();
    return created;
  }

  /** A logged-in client of user `userId` holding `token` (expiring at `expiresAt`), announced by AuthGuard. */
  function login(userId: string, token: string, expiresAt?: number, join = true): { client: ChatClient; t: Recorded } {
    const t = transport();
    const client = new ChatClient(t, {} as IncomingMessage);
    const profile = makeProfile(userId);
    client.authenticate(profile, expiresAt === undefined ? { token } : { token, expiresAt });
    if (join) {
      client.beginJoin(profile);
      client.completeJoin('{}');
    }
    holders.accepted(client);
    return { client, t };
  }

  async function counted(event: string): Promise<number> {
    const metric = await registry.getSingleMetric('gateway_token_events_total')!.get();
    return metric.values.find((v) => v.labels.event === event)?.value ?? 0;
  }

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    holders = new TokenHolders();
    verify = jest.fn<Promise<TokenCheck>, [string]>();
    leave = jest.fn<Promise<void>, [ChatClient, number?]>(() => Promise.resolve());
    registry = new Registry();
  });

  afterEach(() => {
    lifecycle?.onModuleDestroy();
    jest.useRealTimers();
  });

  describe('expiry', () => {
    beforeEach(() => {
      lifecycle = create();
    });

    it('closes with 4401 "token expired" when expiresAt passes, and the session leaves with 4401 (DISCONNECT)', async () => {
      const { client, t } = login('1', 'tok-1', T0 + 1000);
      expect(lifecycle.scheduled).toBe(1);
      jest.advanceTimersByTime(999);
      expect(t.closes).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(t.closes).toEqual([[4401, 'token expired']]);
      expect(leave).toHaveBeenCalledWith(client, 4401);
      expect(lifecycle.size).toBe(0);
      expect(await counted('expired')).toBe(1);
    });

    it('one timer for every connection, each closed at its own expiry', () => {
      const clients = Array.from({ length: 50 }, (_, i) => login(String(i), `tok-${i}`, T0 + 100 * (50 - i)));
      expect(jest.getTimerCount()).toBe(1);
      jest.advanceTimersByTime(100);
      expect(clients.filter((c) => c.t.closes.length > 0).map((c) => c.client.userId)).toEqual(['49']);
      jest.advanceTimersByTime(4900);
      expect(clients.every((c) => c.t.closes.length === 1)).toBe(true);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('follows nothing for a token without expiry while the re-check is off (no cost per connection)', () => {
      login('1', 'forever');
      expect(lifecycle.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('a refresh moves the expiry (later, or away)', () => {
      const { client, t } = login('1', 'tok-1', T0 + 1000);
      client.renewCredential({ token: 'tok-2', expiresAt: T0 + 5000 });
      lifecycle.track(client);
      jest.advanceTimersByTime(4999);
      expect(t.closes).toEqual([]);
      client.renewCredential({ token: 'tok-3' });
      lifecycle.track(client);
      jest.advanceTimersByTime(60_000);
      expect(t.closes).toEqual([]);
      expect(lifecycle.scheduled).toBe(0);
    });

    it('a refresh of an untracked connection with an expiry starts following it', () => {
      const { client, t } = login('1', 'forever');
      client.renewCredential({ token: 'tok-2', expiresAt: T0 + 100 });
      lifecycle.track(client);
      jest.advanceTimersByTime(100);
      expect(t.closes).toEqual([[4401, 'token expired']]);
    });

    it('forgets a connection once its socket is gone: nothing happens at its expiry', () => {
      const { client, t } = login('1', 'tok-1', T0 + 1000);
      t.open = false;
      client.closed();
      expect(lifecycle.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
      jest.advanceTimersByTime(2000);
      expect(t.closes).toEqual([]);
      expect(leave).not.toHaveBeenCalled();
    });

    it('closeUnauthorized: 4401 with the reason, the session leaves, the entry goes; a leave that fails is logged only', async () => {
      const { client, t } = login('1', 'tok-1', T0 + 1000);
      leave.mockRejectedValueOnce(new Error('redis down'));
      await lifecycle.closeUnauthorized(client, 'token not found or invalid');
      expect(t.closes).toEqual([[4401, 'token not found or invalid']]);
      expect(lifecycle.size).toBe(0);
      await lifecycle.closeUnauthorized(client, 'again');
      expect(t.closes).toHaveLength(1);
    });
  });

  describe('re-check (AUTH_RECHECK_INTERVAL_MS)', () => {
    it('is off at 0: no timer, no check', () => {
      lifecycle = create(0);
      login('1', 'tok-1');
      jest.advanceTimersByTime(60_000);
      expect(verify).not.toHaveBeenCalled();
    });

    it('checks every live connection once per interval, spread over it, sharing TokenService', async () => {
      lifecycle = create(1000);
      for (let i = 0; i < 4; i++) login(String(i), `tok-${i}`);
      const times: number[] = [];
      verify.mockImplementation((token) => {
        times.push(Date.now() - T0);
        return Promise.resolve<TokenCheck>({ outcome: 'valid', profile: makeProfile(token.slice(4)) });
      });
      // The walk started at T0 with nobody to check; the four are picked up by the next round,
      // which starts at T0 + 1000 and checks one every 250 ms.
      jest.advanceTimersByTime(1999);
      await flushPromises();
      expect(verify.mock.calls.map(([token]) => token)).toEqual(['tok-0', 'tok-1', 'tok-2', 'tok-3']);
      expect(times).toEqual([1000, 1250, 1500, 1750]);
      jest.advanceTimersByTime(1000);
      expect(times).toEqual([1000, 1250, 1500, 1750, 2000, 2250, 2500, 2750]);
      expect(jest.getTimerCount()).toBe(1);
    });

    it('"2" closes with 4401 "token revoked" (DISCONNECT); "3" keeps the connection', async () => {
      lifecycle = create(100);
      const revoked = login('1', 'revoked-token');
      const kept = login('2', 'kept-token');
      verify.mockImplementation((token) =>
        Promise.resolve<TokenCheck>(token === 'revoked-token' ? { outcome: 'invalid' } : { outcome: 'unavailable', reason: 'HTTP 503' }),
      );
      jest.advanceTimersByTime(200);
      await flushPromises();
      expect(revoked.t.closes).toEqual([[4401, 'token revoked']]);
      expect(leave).toHaveBeenCalledWith(revoked.client, 4401);
      expect(kept.t.closes).toEqual([]);
      expect(kept.client.isOpen).toBe(true);
      expect(await counted('revoked')).toBe(1);
      expect(await counted('recheck_unavailable')).toBeGreaterThanOrEqual(1);
    });

    it("a valid answer brings the token's current expiry", async () => {
      lifecycle = create(100);
      const { client, t } = login('1', 'tok-1', T0 + 60_000);
      verify.mockResolvedValue({ outcome: 'valid', profile: makeProfile('1'), expiresAt: T0 + 500 });
      jest.advanceTimersByTime(150);
      await flushPromises();
      expect(client.tokenExpiresAt).toBe(T0 + 500);
      expect(client.token).toBe('tok-1');
      jest.advanceTimersByTime(400);
      expect(t.closes).toEqual([[4401, 'token expired']]);
    });

    it('a valid answer naming another user is a revocation', async () => {
      lifecycle = create(100);
      const { t } = login('1', 'tok-1');
      verify.mockResolvedValue({ outcome: 'valid', profile: makeProfile('2') });
      jest.advanceTimersByTime(150);
      await flushPromises();
      expect(t.closes).toEqual([[4401, 'token revoked']]);
    });

    it('ignores an answer about a token the connection no longer holds (refreshed meanwhile)', async () => {
      lifecycle = create(100);
      let answer!: (check: TokenCheck) => void;
      verify.mockImplementation(() => new Promise<TokenCheck>((resolve) => (answer = resolve)));
      const { client, t } = login('1', 'old-token');
      jest.advanceTimersByTime(100);
      expect(verify).toHaveBeenCalledWith('old-token');
      client.renewCredential({ token: 'new-token' });
      answer({ outcome: 'invalid' });
      await flushPromises();
      expect(t.closes).toEqual([]);
    });

    it('skips a connection that is not logged in yet', () => {
      lifecycle = create(100);
      login('1', 'tok-1', undefined, false);
      jest.advanceTimersByTime(1000);
      expect(verify).not.toHaveBeenCalled();
    });

    it('onModuleDestroy stops the walk and the expiries', () => {
      lifecycle = create(100);
      login('1', 'tok-1', T0 + 10_000);
      expect(jest.getTimerCount()).toBe(2);
      lifecycle.onModuleDestroy();
      expect(jest.getTimerCount()).toBe(0);
      holders.accepted(login('2', 'tok-2', T0 + 100).client);
      expect(lifecycle.size).toBe(0);
    });
  });
});

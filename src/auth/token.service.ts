import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { AUTH_OPTIONS, type AuthOptions } from './auth.options';
import { MetricsService } from '../observability/metrics.service';
import { TOKEN_VERIFIER, type TokenCheck, type TokenVerifier } from './token-verifier';

interface CachedCheck {
  check: TokenCheck & { outcome: 'valid' };
  expiresAt: number;
}

/** A check waiting for a CHECK_TOKEN slot; `settle` hands it the slot (true) or gives up (false). */
interface SlotWaiter {
  settle(granted: boolean): void;
  timer: NodeJS.Timeout;
}

const MAX_CACHE_ENTRIES = 100_000;
/** Bound on remembered "invalid" answers: a flood of random tokens must not grow memory without end. */
export const MAX_INVALID_ENTRIES = 100_000;

/**
 * Deletes the entries of a cache kept in insertion order from its oldest, while they have expired:
 * it stops at the first live one.
 */
function dropExpiredHead<V>(cache: Map<string, V>, expiresAt: (value: V) => number, now: number): void {
  for (const [key, value] of cache) {
    if (expiresAt(value) > now) return;
    cache.delete(key);
  }
}

const INVALID: TokenCheck = Object.freeze({ outcome: 'invalid' });
const CIRCUIT_OPEN: TokenCheck = Object.freeze({ outcome: 'unavailable', reason: 'circuit open' });
const OVERLOADED: TokenCheck = Object.freeze({ outcome: 'unavailable', reason: 'overloaded' });

/**
 * The authorization server as a dependency, guarded against hostile clients:
 * - a token over AUTH_TOKEN_MAX_BYTES (UTF-8) is invalid at once: no hash, no request;
 * - concurrent checks of one token share one request; SUCCESS answers are reused for at most
 *   AUTH_CACHE_TTL_MS and never after the token's own `expiresAt`, "invalid" answers for at most
 *   AUTH_INVALID_CACHE_MS, "unavailable" never (both caches keyed by a SHA-256 of the token, never
 *   the token itself, and bounded in size); a SUCCESS whose `expiresAt` has passed is "invalid";
 * - at most AUTH_MAX_IN_FLIGHT CHECK_TOKEN requests at once; further checks wait in FIFO order,
 *   and one that got no slot within AUTH_TIMEOUT_MS is "unavailable" (reason `overloaded`);
 * - a circuit breaker fails fast after AUTH_BREAKER_THRESHOLD consecutive "unavailable" answers
 *   of the authorization server, until one probe, AUTH_BREAKER_COOLDOWN_MS later, succeeds. Only
 *   the server's own failures count: not an invalid token, whatever its size, nor this gateway's
 *   queue being full.
 */
@Injectable()
export class TokenService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(TokenService.name);
  private readonly cache = new Map<string, CachedCheck>();
  /** Token hash -> until when its "invalid" answer may be reused. Insertion order is expiry order. */
  private readonly invalidCache = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<TokenCheck>>();
  /** CHECK_TOKEN requests holding a slot (at most AUTH_MAX_IN_FLIGHT). */
  private active = 0;
  /** Checks waiting for a slot, oldest first (a Set: FIFO with O(1) removal on timeout). */
  private readonly waiting = new Set<SlotWaiter>();
  private consecutiveFailures = 0;
  private openUntil = 0;
  private probing = false;
  private sweeper?: NodeJS.Timeout;

  constructor(
    @Inject(TOKEN_VERIFIER) private readonly verifier: TokenVerifier,
    @Inject(AUTH_OPTIONS) private readonly config: AuthOptions,
    private readonly metrics: MetricsService,
  ) {}

  /** The clock (replaceable in unit tests). */
  now: () => number = Date.now;

  /** Whether the circuit is open now (logins that miss the cache fail fast). */
  get circuitOpen(): boolean {
    return this.consecutiveFailures >= this.config.authBreakerThreshold;
  }

  verify(token: string): Promise<TokenCheck> {
    // First, before hashing: an oversized token costs neither a hash nor a request. (A UTF-16
    // code unit is at least one UTF-8 byte, so a long string is refused without being measured.)
    const maxBytes = this.config.authTokenMaxBytes;
    if (token.length > maxBytes || Buffer.byteLength(token, 'utf8') > maxBytes) {
      this.metrics.authChecks.inc({ result: 'too_long' });
      return Promise.resolve(INVALID);
    }
    const key = createHash('sha256').update(token).digest('base64url');
    const now = this.now();
    const cached = this.cache.get(key);
    if (cached) {
      if (cached.expiresAt > now) {
        this.metrics.authChecks.inc({ result: 'cached' });
        return Promise.resolve(cached.check);
      }
      this.cache.delete(key);
    }
    const invalidUntil = this.invalidCache.get(key);
    if (invalidUntil !== undefined) {
      if (invalidUntil > now) {
        this.metrics.authChecks.inc({ result: 'invalid_cached' });
        return Promise.resolve(INVALID);
      }
      this.invalidCache.delete(key);
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const admission = this.admit(now);
    if (admission === 'refuse') {
      this.metrics.authChecks.inc({ result: 'circuit_open' });
      return Promise.resolve(CIRCUIT_OPEN);
    }
    const request = this.check(key, token, admission === 'probe');
    this.inFlight.set(key, request);
    return request;
  }

  /**
   * Expired answers are swept every AUTH_CACHE_TTL_MS (at least every second), not only when their
   * token comes again: an idle node keeps no entry (a 43-character key and two objects, ~180 bytes)
   * per connection that logged in long ago.
   */
  onModuleInit(): void {
    const every = Math.max(1000, Math.min(this.config.authCacheTtlMs || Infinity, this.config.authInvalidCacheMs || Infinity));
    if (!Number.isFinite(every)) return;
    this.sweeper = setInterval(() => this.sweepExpired(), every);
    this.sweeper.unref();
  }

  /**
   * Drops the expired answers at the old end of both caches, up to the first live one: amortized
   * O(1) per answer, never a walk over a full cache on the event loop. (A SUCCESS answer cut short
   * by its token's expiresAt may wait behind an older live one, at most AUTH_CACHE_TTL_MS; it is
   * never reused meanwhile.) @internal (the sweeper's tick; called directly in unit tests)
   */
  sweepExpired(): void {
    const now = this.now();
    dropExpiredHead(this.cache, (entry) => entry.expiresAt, now);
    dropExpiredHead(this.invalidCache, (until) => until, now);
  }

  /** Resolves every waiting check as unavailable and drops its timer (the app is closing). */
  onModuleDestroy(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const waiter of this.waiting) {
      clearTimeout(waiter.timer);
      waiter.settle(false);
    }
    this.waiting.clear();
  }

  /** What the circuit breaker lets a check do now; `probe` marks the one check let through. */
  private admit(now: number): 'go' | 'probe' | 'refuse' {
    if (!this.circuitOpen) return 'go';
    if (now < this.openUntil || this.probing) return 'refuse';
    this.probing = true;
    return 'probe';
  }

  /** One CHECK_TOKEN request, once a slot is free; shared through `inFlight` by every caller. */
  private async check(key: string, token: string, probe: boolean): Promise<TokenCheck> {
    const immediate = this.active < this.config.authMaxInFlight;
    if (immediate) this.active++;
    else if (!(await this.waitForSlot())) {
      // This gateway's own queue, not the authorization server: no count toward the breaker.
      // (A probe finds the slot its failed predecessor freed, so it should never end here; if it
      // did, the next check after the cooldown probes instead.)
      this.inFlight.delete(key);
      if (probe) this.probing = false;
      this.metrics.authChecks.inc({ result: 'overloaded' });
      return OVERLOADED;
    }
    try {
      // The circuit opened while this check waited: it fails fast, as it would have on arrival,
      // instead of sending a queue's worth of requests to a server that just failed. (The check
      // that opened it freed a slot, so the whole queue drains here at once; the next new check
      // after the cooldown is the probe.)
      if (!immediate && !probe && this.circuitOpen) {
        this.inFlight.delete(key);
        this.metrics.authChecks.inc({ result: 'circuit_open' });
        return CIRCUIT_OPEN;
      }
      const stopTimer = this.metrics.authCheckDuration.startTimer();
      let check: TokenCheck;
      try {
        check = await this.verifier.verify(token);
      } catch {
        check = { outcome: 'unavailable', reason: 'verifier failed' };
      }
      stopTimer();
      return this.record(key, check, probe);
    } finally {
      this.releaseSlot();
    }
  }

  private waitForSlot(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter: SlotWaiter = {
        settle: resolve,
        timer: setTimeout(() => {
          this.waiting.delete(waiter);
          resolve(false);
        }, this.config.authTimeoutMs),
      };
      waiter.timer.unref();
      this.waiting.add(waiter);
    });
  }

  /** Hands the slot to the oldest waiting check, or frees it. */
  private releaseSlot(): void {
    for (const next of this.waiting) {
      this.waiting.delete(next);
      clearTimeout(next.timer);
      next.settle(true);
      return;
    }
    this.active--;
  }

  private record(key: string, check: TokenCheck, probe: boolean): TokenCheck {
    this.inFlight.delete(key);
    if (probe) this.probing = false;
    if (check.outcome === 'unavailable') {
      this.metrics.authChecks.inc({ result: check.outcome });
      this.consecutiveFailures++;
      if (this.circuitOpen) {
        if (probe || this.consecutiveFailures === this.config.authBreakerThreshold) {
          this.logger.warn(`authorization server unavailable (${check.reason}): circuit open for ${this.config.authBreakerCooldownMs} ms`);
        }
        this.openUntil = this.now() + this.config.authBreakerCooldownMs;
      }
      return check;
    }
    // The server answered (valid or invalid): it is up.
    if (this.circuitOpen) this.logger.log('authorization server answers again: circuit closed');
    this.consecutiveFailures = 0;
    const now = this.now();
    // A SUCCESS whose expiresAt has already passed: the token no longer stands ("2").
    if (check.outcome === 'valid' && check.expiresAt !== undefined && check.expiresAt <= now) {
      this.metrics.authChecks.inc({ result: 'invalid' });
      this.rememberInvalid(key);
      return INVALID;
    }
    this.metrics.authChecks.inc({ result: check.outcome });
    if (check.outcome === 'invalid') {
      this.rememberInvalid(key);
      return check;
    }
    // A verified profile is shared from here on (cache, presence): a value, never changed in place.
    Object.freeze(check.profile);
    if (this.config.authCacheTtlMs > 0) {
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.evictExpired();
      if (this.cache.size < MAX_CACHE_ENTRIES) {
        // Never reused after the token's own expiry.
        const until = Math.min(now + this.config.authCacheTtlMs, check.expiresAt ?? Infinity);
        this.cache.set(key, { check, expiresAt: until });
      }
    }
    return check;
  }

  private rememberInvalid(key: string): void {
    const ttl = this.config.authInvalidCacheMs;
    if (ttl <= 0) return;
    const now = this.now();
    // One TTL for all: the oldest entries expire first, so this sweep of the expired ones stops at
    // the first live entry (amortized O(1) per insertion; memory shrinks as a flood ends).
    dropExpiredHead(this.invalidCache, (until) => until, now);
    // Still full of live entries: drop the oldest tenth rather than grow without bound.
    if (this.invalidCache.size >= MAX_INVALID_ENTRIES) {
      let drop = Math.ceil(MAX_INVALID_ENTRIES / 10);
      for (const k of this.invalidCache.keys()) {
        if (drop-- <= 0) break;
        this.invalidCache.delete(k);
      }
    }
    this.invalidCache.delete(key); // re-inserted at the end: insertion order stays expiry order
    this.invalidCache.set(key, now + ttl);
  }

  private evictExpired(): void {
    const now = this.now();
    for (const [key, entry] of this.cache) if (entry.expiresAt <= now) this.cache.delete(key);
    // Still full of live entries: drop the oldest tenth rather than grow without bound.
    if (this.cache.size >= MAX_CACHE_ENTRIES) {
      let drop = Math.ceil(MAX_CACHE_ENTRIES / 10);
      for (const key of this.cache.keys()) {
        if (drop-- <= 0) break;
        this.cache.delete(key);
      }
    }
  }
}

import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { MetricsService } from '../observability/metrics.service';
import { TOKEN_VERIFIER, type TokenCheck, type TokenVerifier } from './token-verifier';

interface CachedCheck {
  check: TokenCheck & { outcome: 'valid' };
  expiresAt: number;
}

const MAX_CACHE_ENTRIES = 100_000;

/**
 * The authorization server as a dependency: concurrent checks of one token share one request,
 * SUCCESS answers are reused for at most AUTH_CACHE_TTL_MS (keyed by a SHA-256 of the token, never
 * the token itself), and a circuit breaker fails fast after AUTH_BREAKER_THRESHOLD consecutive
 * "unavailable" outcomes until one probe, AUTH_BREAKER_COOLDOWN_MS later, succeeds.
 */
@Injectable()
export class TokenService {
  private readonly logger = new Logger(TokenService.name);
  private readonly cache = new Map<string, CachedCheck>();
  private readonly inFlight = new Map<string, Promise<TokenCheck>>();
  private consecutiveFailures = 0;
  private openUntil = 0;
  private probing = false;

  constructor(
    @Inject(TOKEN_VERIFIER) private readonly verifier: TokenVerifier,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** The clock (replaceable in unit tests). */
  now: () => number = Date.now;

  /** Whether the circuit is open now (logins that miss the cache fail fast). */
  get circuitOpen(): boolean {
    return this.consecutiveFailures >= this.config.authBreakerThreshold;
  }

  verify(token: string): Promise<TokenCheck> {
    const key = createHash('sha256').update(token).digest('base64url');
    const cached = this.cache.get(key);
    const now = this.now();
    if (cached) {
      if (cached.expiresAt > now) {
        this.metrics.authChecks.inc({ result: 'cached' });
        return Promise.resolve(cached.check);
      }
      this.cache.delete(key);
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    if (this.circuitOpen) {
      if (now < this.openUntil || this.probing) {
        this.metrics.authChecks.inc({ result: 'circuit_open' });
        return Promise.resolve({ outcome: 'unavailable', reason: 'circuit open' });
      }
      this.probing = true;
    }
    const stopTimer = this.metrics.authCheckDuration.startTimer();
    const request = this.verifier.verify(token).then(
      (check) => this.record(key, check),
      () => this.record(key, { outcome: 'unavailable', reason: 'verifier failed' }),
    );
    this.inFlight.set(key, request);
    return request.then((check) => {
      stopTimer();
      return check;
    });
  }

  private record(key: string, check: TokenCheck): TokenCheck {
    this.inFlight.delete(key);
    this.metrics.authChecks.inc({ result: check.outcome });
    const wasProbe = this.probing;
    this.probing = false;
    if (check.outcome === 'unavailable') {
      this.consecutiveFailures++;
      if (this.circuitOpen) {
        if (wasProbe || this.consecutiveFailures === this.config.authBreakerThreshold) {
          this.logger.warn(`authorization server unavailable (${check.reason}): circuit open for ${this.config.authBreakerCooldownMs} ms`);
        }
        this.openUntil = this.now() + this.config.authBreakerCooldownMs;
      }
      return check;
    }
    if (this.circuitOpen) this.logger.log('authorization server answers again: circuit closed');
    this.consecutiveFailures = 0;
    // A verified profile is shared from here on (cache, presence): a value, never changed in place.
    if (check.outcome === 'valid') Object.freeze(check.profile);
    if (check.outcome === 'valid' && this.config.authCacheTtlMs > 0) {
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.evictExpired();
      if (this.cache.size < MAX_CACHE_ENTRIES) {
        this.cache.set(key, { check, expiresAt: this.now() + this.config.authCacheTtlMs });
      }
    }
    return check;
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

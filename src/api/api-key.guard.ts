import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpException, HttpStatus, Inject, Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { ApiErrorBody } from './api-errors';
import { API_OPTIONS, type ApiOptions } from './api.options';

/** Compares two equal-length buffers in constant time (node's crypto.timingSafeEqual). */
export type ConstantTimeEqual = (a: Buffer, b: Buffer) => boolean;

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The Server API's keys. A presented key is hashed (SHA-256) and its digest compared with every
 * key's digest, each with crypto.timingSafeEqual, always all of them and whatever the presented
 * key's length: fixed-length digests, no early exit, so the time taken says nothing about which
 * key is closest, how long the keys are, or whether one matched. A missing key takes the same
 * path (the digest of the empty string, then the same comparisons).
 */
export class ApiKeyRing {
  private readonly digests: readonly Buffer[];

  constructor(
    keys: readonly string[],
    private readonly equal: ConstantTimeEqual = timingSafeEqual,
  ) {
    if (keys.length === 0) throw new Error('the Server API needs at least one key');
    this.digests = keys.map(digest);
  }

  /** True when `presented` is one of the keys. */
  accepts(presented: string | undefined): boolean {
    const candidate = digest(presented ?? '');
    let matches = 0;
    for (const key of this.digests) matches |= this.equal(candidate, key) ? 1 : 0;
    return matches === 1 && presented !== undefined;
  }
}

const BEARER = /^Bearer[ ]+([^ ]+)[ ]*$/i;

/** The key of `Authorization: Bearer <key>`; undefined when the header is missing or not of that form. */
export function bearerKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return BEARER.exec(header)?.[1];
}

/** How many addresses the failure budget remembers at most (the oldest is forgotten first). */
export const FAILURE_ADDRESSES_MAX = 10_000;

/**
 * Wrong API keys per client address: a token bucket of `perMinute` tokens refilled at `perMinute`
 * a minute; each wrong key takes one. An address with no token left is refused every request
 * (429, its key not even compared) until one is back, so a guesser gets `perMinute` guesses a
 * minute, and a right key tells it nothing during the wait. Requests with a right key cost nothing.
 * One node's count: N nodes allow N times as many guesses. Memory: at most FAILURE_ADDRESSES_MAX
 * addresses; a full bucket is not kept.
 */
export class KeyFailureBudget {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly maxAddresses = FAILURE_ADDRESSES_MAX,
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** Milliseconds until `address` may present a key again; 0: now. */
  waitMs(address: string, now: number): number {
    const bucket = this.buckets.get(address);
    if (!bucket) return 0;
    const tokens = this.refill(address, bucket, now);
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) / this.perMs);
  }

  /** `address` presented a wrong key. */
  fail(address: string, now: number): void {
    let bucket = this.buckets.get(address);
    if (bucket) this.refill(address, bucket, now);
    else {
      if (this.buckets.size >= this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: this.perMinute, at: now };
    }
    bucket.tokens -= 1;
    this.buckets.set(address, bucket);
  }

  /** Addresses remembered (for tests). */
  get size(): number {
    return this.buckets.size;
  }

  private refill(address: string, bucket: { tokens: number; at: number }, now: number): number {
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.perMs);
    bucket.at = now;
    if (bucket.tokens >= this.perMinute) this.buckets.delete(address);
    return bucket.tokens;
  }
}

/**
 * 401 for a request without one of the Server API's keys (`Authorization: Bearer <key>`); 429
 * with `Retry-After` for an address that presented too many wrong ones (API_KEY_FAILURES_PER_MINUTE).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: ApiKeyRing;
  private readonly failures: KeyFailureBudget;

  constructor(@Inject(API_OPTIONS) options: Pick<ApiOptions, 'keys' | 'keyFailuresPerMinute'>) {
    this.keys = new ApiKeyRing(options.keys);
    this.failures = new KeyFailureBudget(options.keyFailuresPerMinute);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const req = http.getRequest<IncomingMessage>();
    const address = req.socket.remoteAddress ?? '';
    const now = Date.now();
    const waitMs = this.failures.waitMs(address, now);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      http.getResponse<ServerResponse>().setHeader('Retry-After', String(seconds));
      throw new HttpException({ error: `too many wrong API keys from this address: retry in ${seconds} s` } satisfies ApiErrorBody, HttpStatus.TOO_MANY_REQUESTS);
    }
    if (!this.keys.accepts(bearerKey(req.headers.authorization))) {
      this.failures.fail(address, now);
      throw new UnauthorizedException('missing or unknown API key');
    }
    return true;
  }
}

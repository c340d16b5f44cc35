import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
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

/** 401 for a request without one of the Server API's keys (`Authorization: Bearer <key>`). */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: ApiKeyRing;

  constructor(@Inject(API_OPTIONS) options: Pick<ApiOptions, 'keys'>) {
    this.keys = new ApiKeyRing(options.keys);
  }

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<IncomingMessage>();
    if (!this.keys.accepts(bearerKey(req.headers.authorization))) throw new UnauthorizedException('missing or unknown API key');
    return true;
  }
}

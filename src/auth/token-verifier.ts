import { UNIX_MILLIS_PATTERN, type UserProfile } from '../protocol/protocol';

/** The answer to "whose token is this?". */
export type TokenCheck =
  /**
   * `expiresAt` (Unix ms): the moment the token stops being valid, when the authorization server
   * said (CHECK_TOKEN SUCCESS `serverData.expiresAt`); absent: no expiry.
   */
  | { readonly outcome: 'valid'; readonly profile: UserProfile; readonly expiresAt?: number }
  /** The authorization server says the token is not valid: AUTH error "2". */
  | { readonly outcome: 'invalid' }
  /** The authorization server could not answer: AUTH error "3". `reason` is safe to log (no token). */
  | { readonly outcome: 'unavailable'; readonly reason: string };

/** Checks one token against an authorization server. Never rejects. */
export interface TokenVerifier {
  verify(token: string): Promise<TokenCheck>;
}

export const TOKEN_VERIFIER = Symbol('TOKEN_VERIFIER');

/**
 * Reads CHECK_TOKEN's `serverData.expiresAt`: Unix milliseconds as a decimal string (digits only,
 * at most 16, a safe integer). `undefined` when absent; `null` when present but malformed (a
 * number, an empty or signed string, a fraction, an exponent, null...): the caller treats that
 * reply as malformed ("unavailable"), the safe reading, since ignoring it would keep a connection
 * past an expiry the server meant to set.
 */
export function parseExpiresAt(value: unknown): number | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !UNIX_MILLIS_PATTERN.test(value)) return null;
  const ms = Number(value);
  return Number.isSafeInteger(ms) ? ms : null;
}

import type { UserProfile } from '../protocol/protocol';

/** The answer to "whose token is this?". */
export type TokenCheck =
  | { readonly outcome: 'valid'; readonly profile: UserProfile }
  /** The authorization server says the token is not valid: AUTH error "2". */
  | { readonly outcome: 'invalid' }
  /** The authorization server could not answer: AUTH error "3". `reason` is safe to log (no token). */
  | { readonly outcome: 'unavailable'; readonly reason: string };

/** Checks one token against an authorization server. Never rejects. */
export interface TokenVerifier {
  verify(token: string): Promise<TokenCheck>;
}

export const TOKEN_VERIFIER = Symbol('TOKEN_VERIFIER');

import { CloseCodes } from './types';

/**
 * Close codes after which the client reconnects (with exponential backoff and full jitter):
 * the server going away (1001), a lost connection (1006, also every network error and refused
 * upgrade), the authorization server being unavailable (1013), a missed auth deadline (4408), a
 * slow-consumer drop (4413) and flooding (4429).
 */
export const RECONNECT_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCodes.GOING_AWAY,
  CloseCodes.ABNORMAL,
  CloseCodes.TRY_AGAIN_LATER,
  CloseCodes.AUTH_DEADLINE,
  CloseCodes.SLOW_CONSUMER,
  CloseCodes.FLOODING,
]);

/**
 * Close codes after which the client never reconnects: a normal close (1000, also every close the
 * client asked for), an over-size frame (1009: a client bug, retrying repeats it), a bad token
 * (4401: the same token fails again), a kick by the application's backend (4403) and a user
 * already connected (4409). Any code in neither
 * list is treated the same way: the client reconnects only where the code says so.
 */
export const NO_RECONNECT_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCodes.NORMAL,
  CloseCodes.MESSAGE_TOO_BIG,
  CloseCodes.UNAUTHORIZED,
  CloseCodes.KICKED,
  CloseCodes.ALREADY_CONNECTED,
]);

export function shouldReconnect(closeCode: number): boolean {
  return RECONNECT_CLOSE_CODES.has(closeCode);
}

export interface BackoffOptions {
  /** First ceiling of the delay, ms (default 500). */
  baseDelayMs?: number;
  /** Largest ceiling, ms (default 30000). */
  maxDelayMs?: number;
  /** Attempts after the last successful login before giving up (default Infinity). */
  maxAttempts?: number;
}

/**
 * Exponential backoff with full jitter: the delay before retry number `attempt` (0-based) is
 * uniform in [0, min(maxDelayMs, baseDelayMs * 2^attempt)), so that clients dropped together do
 * not come back together.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseDelayMs ?? 500;
  const max = options.maxDelayMs ?? 30_000;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

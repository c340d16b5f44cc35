/**
 * Per-key quotas shared by the nodes of a deployment (for example the avatar uploads of a user:
 * AVATAR_SAVES_PER_MINUTE). In memory on a single node, in Redis in cluster mode.
 */
export interface QuotaStore {
  /**
   * Sliding window: resolves true, and counts this attempt, when fewer than `limit` attempts of
   * `key` were counted in the last `windowMs` milliseconds; false otherwise (a refused attempt is
   * not counted, so at most `limit` attempts pass in any window of `windowMs`). Rejects when the
   * shared state is unreachable: the caller decides whether to allow or refuse then.
   */
  take(key: string, limit: number, windowMs: number): Promise<boolean>;
}

export const QUOTA_STORE = Symbol('QUOTA_STORE');

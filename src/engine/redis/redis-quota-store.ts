import { randomBytes } from 'node:crypto';
import type { QuotaStore } from '../engine.ports';
import { QUOTA_TAKE } from './lua-scripts';
import type { RedisConnection } from './redis-connection';

/**
 * Quotas shared by every node: one sorted set per key (`quota:<key>`) holding the times of the
 * counted attempts, trimmed and checked by one Lua script (QUOTA_TAKE), so that racing nodes
 * never let more than `limit` attempts through in a window. The key expires `windowMs` after its
 * newest attempt: Redis memory is bounded by the keys active in the last window, at most `limit`
 * members each.
 *
 * Times are this node's clock (the deployment assumes node clocks agree, see README "Cluster
 * mode"); a skew of s ms between nodes shifts the window by at most s ms.
 * While Redis is unreachable take() rejects (within the command timeout).
 */
export class RedisQuotaStore implements QuotaStore {
  private readonly prefix = randomBytes(6).toString('base64url');
  private counter = 0;

  constructor(
    private readonly connection: RedisConnection,
    private readonly now: () => number = Date.now,
  ) {}

  async take(key: string, limit: number, windowMs: number): Promise<boolean> {
    const now = this.now();
    // Unique per attempt, also between nodes and within one millisecond.
    const member = `${now}:${this.prefix}:${(this.counter = (this.counter + 1) % Number.MAX_SAFE_INTEGER)}`;
    const reply = await QUOTA_TAKE.run(this.connection.commands, [this.connection.keys.quota(key)], [now, windowMs, limit, member]);
    return reply === 1;
  }
}

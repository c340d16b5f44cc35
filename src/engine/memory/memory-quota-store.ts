import type { QuotaStore } from '../engine.ports';

interface Window {
  /** Times of the counted attempts, oldest first. */
  times: number[];
  /** When the newest attempt leaves the window: the key may be forgotten then. */
  expiresAt: number;
}

/**
 * The quotas of one node. Memory is bounded: a key keeps at most `limit` times, and a key whose
 * window has passed is forgotten (swept at most once a second, from the least recently used
 * end of the map, stopping at the first key still alive).
 */
export class MemoryQuotaStore implements QuotaStore {
  /** Ordered by last counted attempt (a key is re-inserted each time it counts one). */
  private readonly windows = new Map<string, Window>();
  private lastSweep: number;

  constructor(private readonly now: () => number = Date.now) {
    this.lastSweep = now();
  }

  async take(key: string, limit: number, windowMs: number): Promise<boolean> {
    const now = this.now();
    this.sweep(now);
    const window = this.windows.get(key);
    const times = window?.times ?? [];
    const horizon = now - windowMs;
    let stale = 0;
    while (stale < times.length && times[stale] <= horizon) stale++;
    if (stale > 0) times.splice(0, stale);
    if (times.length >= limit) {
      if (times.length === 0) this.windows.delete(key); // limit 0: nothing to remember
      return false;
    }
    times.push(now);
    this.windows.delete(key);
    this.windows.set(key, { times, expiresAt: now + windowMs });
    return true;
  }

  /** Number of keys remembered (for tests and metrics). */
  get size(): number {
    return this.windows.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [key, window] of this.windows) {
      if (window.expiresAt > now) break;
      this.windows.delete(key);
    }
  }
}

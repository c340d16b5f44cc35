/** Window over which refused frames are counted toward closing with 4429. */
export const FLOOD_WINDOW_MS = 10_000;

export enum RateVerdict {
  ALLOW = 0,
  /** Over the limit: answer RATE_LIMITED, do not process. */
  REFUSE = 1,
  /** Refused, and more than `burst` frames were refused within the window: close with 4429. */
  FLOOD = 2,
}

/**
 * A token bucket per connection: `burst` tokens, refilled at `perSecond`; one token per data frame.
 * Refusals are remembered for FLOOD_WINDOW_MS (at most burst + 1 timestamps).
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly refusals: number[] = [];

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now: number): RateVerdict {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000);
      this.last = now;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return RateVerdict.ALLOW;
    }
    const refusals = this.refusals;
    while (refusals.length > 0 && refusals[0] <= now - FLOOD_WINDOW_MS) refusals.shift();
    refusals.push(now);
    return refusals.length > this.burst ? RateVerdict.FLOOD : RateVerdict.REFUSE;
  }
}

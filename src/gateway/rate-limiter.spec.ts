import { FLOOD_WINDOW_MS, RateLimiter, RateVerdict } from './rate-limiter';

describe('RateLimiter', () => {
  it('allows a burst, then refuses until tokens refill at the sustained rate', () => {
    const limiter = new RateLimiter(10, 5, 0);
    for (let i = 0; i < 5; i++) expect(limiter.take(0)).toBe(RateVerdict.ALLOW);
    expect(limiter.take(0)).toBe(RateVerdict.REFUSE);
    // 10 per second: one token every 100 ms
    expect(limiter.take(50)).toBe(RateVerdict.REFUSE);
    expect(limiter.take(160)).toBe(RateVerdict.ALLOW);
    expect(limiter.take(160)).toBe(RateVerdict.REFUSE);
  });

  it('never holds more than the burst, however long it was idle', () => {
    const limiter = new RateLimiter(100, 3, 0);
    let allowed = 0;
    for (let i = 0; i < 10; i++) if (limiter.take(1_000_000) === RateVerdict.ALLOW) allowed++;
    expect(allowed).toBe(3);
  });

  it('reports FLOOD once more than burst frames were refused within the window', () => {
    const limiter = new RateLimiter(1, 3, 0);
    for (let i = 0; i < 3; i++) limiter.take(0); // spend the burst
    const verdicts = [0, 1, 2, 3].map(() => limiter.take(10));
    expect(verdicts).toEqual([RateVerdict.REFUSE, RateVerdict.REFUSE, RateVerdict.REFUSE, RateVerdict.FLOOD]);
  });

  it('forgets refusals older than the window', () => {
    const limiter = new RateLimiter(0.0001, 2, 0);
    limiter.take(0);
    limiter.take(0);
    expect(limiter.take(1)).toBe(RateVerdict.REFUSE);
    expect(limiter.take(2)).toBe(RateVerdict.REFUSE);
    // the two refusals above leave the window: two more are plain refusals again
    expect(limiter.take(FLOOD_WINDOW_MS + 10)).toBe(RateVerdict.REFUSE);
    expect(limiter.take(FLOOD_WINDOW_MS + 11)).toBe(RateVerdict.REFUSE);
    expect(limiter.take(FLOOD_WINDOW_MS + 12)).toBe(RateVerdict.FLOOD);
  });
});

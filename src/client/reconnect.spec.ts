import { backoffDelay, NO_RECONNECT_CLOSE_CODES, RECONNECT_CLOSE_CODES, shouldReconnect } from './reconnect';

describe('reconnect policy', () => {
  it.each([1001, 1006, 1013, 4408, 4413, 4429])('reconnects after %i', (code) => {
    expect(shouldReconnect(code)).toBe(true);
  });

  it.each([1000, 1009, 4401, 4403, 4409])('never reconnects after %i', (code) => {
    expect(shouldReconnect(code)).toBe(false);
    expect(NO_RECONNECT_CLOSE_CODES.has(code)).toBe(true);
  });

  it.each([1002, 1003, 1005, 1008, 1011, 4000, 4999])('does not reconnect after %i, a code that does not say to', (code) => {
    expect(shouldReconnect(code)).toBe(false);
  });

  it('has no code in both lists', () => {
    for (const code of RECONNECT_CLOSE_CODES) expect(NO_RECONNECT_CLOSE_CODES.has(code)).toBe(false);
  });
});

describe('backoffDelay (exponential, full jitter)', () => {
  const options = { baseDelayMs: 100, maxDelayMs: 1000 };

  it('doubles the ceiling per attempt up to maxDelayMs', () => {
    const top = () => 0.999999;
    expect([0, 1, 2, 3, 4, 5, 50].map((a) => backoffDelay(a, options, top))).toEqual([99, 199, 399, 799, 999, 999, 999]);
  });

  it('draws the whole range from 0 (full jitter)', () => {
    expect(backoffDelay(3, options, () => 0)).toBe(0);
    expect(backoffDelay(3, options, () => 0.5)).toBe(400);
    const samples = Array.from({ length: 2000 }, () => backoffDelay(2, options));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThan(400);
    // Spread over the range, not clustered at the ceiling.
    expect(samples.filter((s) => s < 200).length).toBeGreaterThan(800);
    expect(samples.filter((s) => s >= 200).length).toBeGreaterThan(800);
  });

  it('defaults to 500 ms doubling to 30 s', () => {
    expect(backoffDelay(0, {}, () => 0.999999)).toBe(499);
    expect(backoffDelay(20, {}, () => 0.999999)).toBe(29_999);
  });
});

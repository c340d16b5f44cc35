import { MemoryQuotaStore } from './memory-quota-store';

describe('MemoryQuotaStore', () => {
  let now: number;
  let store: MemoryQuotaStore;

  beforeEach(() => {
    now = 1_000_000;
    store = new MemoryQuotaStore(() => now);
  });

  async function takeN(key: string, n: number, limit: number, windowMs: number): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let i = 0; i < n; i++) out.push(await store.take(key, limit, windowMs));
    return out;
  }

  it('lets `limit` attempts through in a window and refuses the next ones', async () => {
    expect(await takeN('u1', 8, 6, 60_000)).toEqual([true, true, true, true, true, true, false, false]);
  });

  it('keys are independent', async () => {
    expect(await takeN('u1', 3, 2, 60_000)).toEqual([true, true, false]);
    expect(await takeN('u2', 3, 2, 60_000)).toEqual([true, true, false]);
  });

  it('is a sliding window: each attempt frees its place exactly windowMs after it was counted', async () => {
    await store.take('u', 3, 60_000); // t = 0
    now += 20_000;
    await store.take('u', 3, 60_000); // t = 20 s
    now += 20_000;
    await store.take('u', 3, 60_000); // t = 40 s
    now += 19_999; // t = 59.999 s: all three still inside
    expect(await store.take('u', 3, 60_000)).toBe(false);
    now += 1; // t = 60 s: the first one left the window, one place
    expect(await store.take('u', 3, 60_000)).toBe(true);
    expect(await store.take('u', 3, 60_000)).toBe(false);
    now += 20_000; // t = 80 s: the one of t = 20 s left
    expect(await store.take('u', 3, 60_000)).toBe(true);
    expect(await store.take('u', 3, 60_000)).toBe(false);
  });

  it('does not count refused attempts: a client hammering the limit gets through once the window slides', async () => {
    expect(await takeN('u', 2, 2, 1000)).toEqual([true, true]);
    for (let i = 0; i < 9; i++) {
      now += 100;
      expect(await store.take('u', 2, 1000)).toBe(false);
    }
    now += 100; // 1000 ms after the first two
    expect(await takeN('u', 3, 2, 1000)).toEqual([true, true, false]);
  });

  it('a limit of 0 refuses everything and remembers nothing', async () => {
    expect(await takeN('u', 3, 0, 60_000)).toEqual([false, false, false]);
    expect(store.size).toBe(0);
  });

  it('forgets keys whose window has passed (bounded memory)', async () => {
    for (let i = 0; i < 1000; i++) await store.take(`user-${i}`, 6, 60_000);
    expect(store.size).toBe(1000);
    now += 30_000;
    await store.take('late', 6, 60_000);
    expect(store.size).toBe(1001); // all still inside their window
    now += 30_000; // the first 1000 keys' windows have passed, not the late one's
    await store.take('another', 6, 60_000);
    expect(store.size).toBe(2);
    // a forgotten key starts afresh
    expect(await takeN('user-0', 7, 6, 60_000)).toEqual([true, true, true, true, true, true, false]);
  });

  it('keeps at most `limit` times per key however many attempts come', async () => {
    const times = (key: string) => (store as unknown as { windows: Map<string, { times: number[] }> }).windows.get(key)?.times.length;
    for (let i = 0; i < 10_000; i++) await store.take('flood', 6, 60_000);
    expect(times('flood')).toBe(6);
  });
});

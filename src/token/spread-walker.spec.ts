/**
 * SpreadWalker: the re-check's walk over the connections, every item once per interval, spread
 * evenly over it on one timer (never one timer per item, never all at once), over a live
 * collection (removed items skipped, added ones picked up).
 */
import type { SchedulerClock } from './expiry-scheduler';
import { MIN_STEP_MS, SpreadWalker } from './spread-walker';

class ManualClock implements SchedulerClock {
  time = 0;
  private nextId = 1;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  /** The most timers pending at once. */
  maxPending = 0;

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, fn });
    this.maxPending = Math.max(this.maxPending, this.timers.size);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].fn();
    }
    this.time = end;
  }
}

describe('SpreadWalker', () => {
  let clock: ManualClock;
  let items: Map<string, string>;
  let visits: { item: string; at: number }[];

  const walker = (intervalMs: number) => new SpreadWalker(items, intervalMs, (item: string) => void visits.push({ item, at: clock.time }), clock);
  const fill = (n: number) => {
    for (let i = 0; i < n; i++) items.set(`c${i}`, `c${i}`);
  };

  beforeEach(() => {
    clock = new ManualClock();
    items = new Map();
    visits = [];
  });

  it('visits every item once per interval, evenly spread, on one timer', () => {
    fill(10);
    walker(1000).start();
    clock.advance(999);
    expect(visits.map((v) => v.item)).toEqual([...items.keys()]);
    expect(visits.map((v) => v.at)).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
    expect(clock.maxPending).toBe(1);
    clock.advance(1000);
    expect(visits).toHaveLength(20);
    expect(visits.slice(10).map((v) => v.at)).toEqual([1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900]);
  });

  it('with many items: batches at most 100 ticks a second, never all at once', () => {
    fill(1000);
    walker(1000).start();
    clock.advance(999);
    expect(visits).toHaveLength(1000);
    const perTick = new Map<number, number>();
    for (const v of visits) perTick.set(v.at, (perTick.get(v.at) ?? 0) + 1);
    expect(perTick.size).toBe(1000 / MIN_STEP_MS);
    expect(Math.max(...perTick.values())).toBe(10);
    const times = [...perTick.keys()];
    expect(times[1] - times[0]).toBe(MIN_STEP_MS);
    expect(clock.maxPending).toBe(1);
  });

  it('skips an item removed during the round and picks up one added', () => {
    fill(4);
    walker(400).start(); // c0 at 0, c1 at 100, c2 at 200, c3 at 300
    clock.advance(50);
    items.delete('c2');
    items.set('late', 'late');
    clock.advance(349);
    expect(visits.map((v) => v.item)).toEqual(['c0', 'c1', 'c3', 'late']);
    clock.advance(400);
    expect(visits.slice(4).map((v) => v.item)).toEqual(['c0', 'c1', 'c3', 'late']);
  });

  it('with nothing to visit, looks again each interval', () => {
    walker(500).start();
    clock.advance(1200);
    expect(visits).toEqual([]);
    expect(clock.timers.size).toBe(1);
    items.set('x', 'x');
    clock.advance(500);
    expect(visits.map((v) => v.item)).toEqual(['x']);
  });

  it('stop() ends the walk and its timer', () => {
    fill(3);
    const w = walker(300);
    w.start();
    clock.advance(50);
    w.stop();
    expect(clock.timers.size).toBe(0);
    clock.advance(5000);
    expect(visits.map((v) => v.item)).toEqual(['c0']);
  });

  it('a visit that throws does not stop the walk', () => {
    fill(3);
    new SpreadWalker(
      items,
      300,
      (item: string) => {
        visits.push({ item, at: clock.time });
        throw new Error('boom');
      },
      clock,
    ).start();
    clock.advance(299);
    expect(visits).toHaveLength(3);
  });

  it('refuses an interval of 0 (0 means "never": no walker at all)', () => {
    expect(() => walker(0)).toThrow(/interval above 0/);
  });
});

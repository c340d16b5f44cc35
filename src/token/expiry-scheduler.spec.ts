/**
 * ExpiryScheduler: one schedule for many deadlines (a min-heap on a single timer). One timer at
 * most whatever the number of entries, expiries in deadline order, removal and moves (earlier and
 * later), lazy re-arming, deadlines beyond setTimeout's 32-bit range, a throwing handler.
 */
import { ExpiryScheduler, MAX_TIMER_DELAY_MS, type ExpiryEntry, type SchedulerClock } from './expiry-scheduler';

/** A manual clock: timers fire only when the test advances time. */
class ManualClock implements SchedulerClock {
  time = 1_000_000;
  private nextId = 1;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  /** Every delay a timer was set with. */
  readonly delays: number[] = [];

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.delays.push(ms);
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward, firing due timers in order. */
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

describe('ExpiryScheduler', () => {
  let clock: ManualClock;
  let expired: string[];
  let scheduler: ExpiryScheduler<string>;

  beforeEach(() => {
    clock = new ManualClock();
    expired = [];
    scheduler = new ExpiryScheduler<string>((item) => void expired.push(item), clock);
  });

  function add(item: string, inMs: number): ExpiryEntry<string> {
    const entry = scheduler.entry(item);
    scheduler.schedule(entry, clock.time + inMs);
    return entry;
  }

  it('runs on one timer, whatever the number of entries', () => {
    for (let i = 0; i < 1000; i++) add(`c${i}`, 1000 + ((i * 7919) % 5000));
    expect(scheduler.size).toBe(1000);
    expect(clock.timers.size).toBe(1);
    expect(scheduler.armed).toBe(true);
    clock.advance(2000);
    expect(clock.timers.size).toBe(1);
    clock.advance(5000);
    expect(expired).toHaveLength(1000);
    expect(clock.timers.size).toBe(0);
    expect(scheduler.armed).toBe(false);
  });

  it('expires entries in deadline order, each once, at its deadline and not before', () => {
    add('c', 300);
    add('a', 100);
    add('b', 200);
    add('a2', 100);
    clock.advance(99);
    expect(expired).toEqual([]);
    clock.advance(1);
    expect(expired.sort()).toEqual(['a', 'a2']);
    clock.advance(150);
    expect(expired).toEqual(['a', 'a2', 'b']);
    clock.advance(1000);
    expect(expired).toEqual(['a', 'a2', 'b', 'c']);
    expect(scheduler.size).toBe(0);
  });

  it('heap order holds through many random adds, moves and removals', () => {
    const entries: ExpiryEntry<string>[] = [];
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 300; i++) entries.push(add(`e${i}`, Math.floor(rand() * 10_000)));
    const removed = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const e = entries[Math.floor(rand() * entries.length)];
      if (rand() < 0.5) {
        scheduler.cancel(e);
        removed.add(e.item);
      } else {
        scheduler.schedule(e, clock.time + Math.floor(rand() * 10_000));
        removed.delete(e.item);
      }
    }
    const deadlines = new Map(entries.map((e) => [e.item, e.at]));
    expect(clock.timers.size).toBe(1);
    clock.advance(20_000);
    const order = expired.map((item) => deadlines.get(item)!);
    expect(expired).toHaveLength(300 - removed.size);
    expect(new Set(expired).size).toBe(expired.length);
    expect(expired.some((item) => removed.has(item))).toBe(false);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('a removed entry never expires; removing the last entry stops the timer', () => {
    const a = add('a', 100);
    const b = add('b', 200);
    scheduler.cancel(a);
    scheduler.cancel(a); // twice: harmless
    expect(a.index).toBe(-1);
    clock.advance(150);
    expect(expired).toEqual([]);
    scheduler.cancel(b);
    expect(clock.timers.size).toBe(0);
    clock.advance(1000);
    expect(expired).toEqual([]);
  });

  it('a moved entry expires at its new deadline only (later: a refresh; earlier: a re-check)', () => {
    const a = add('a', 100);
    add('b', 500);
    scheduler.schedule(a, clock.time + 1000); // moved later: the armed timer fires, finds nothing, re-arms
    clock.advance(200);
    expect(expired).toEqual([]);
    expect(clock.timers.size).toBe(1);
    clock.advance(300);
    expect(expired).toEqual(['b']);
    scheduler.schedule(a, clock.time + 50); // moved earlier: re-armed at once
    expect(clock.timers.size).toBe(1);
    clock.advance(50);
    expect(expired).toEqual(['b', 'a']);
  });

  it('re-arms only when the earliest deadline moves earlier', () => {
    add('a', 1000);
    expect(clock.delays).toEqual([1000]);
    add('b', 2000);
    add('c', 1500);
    expect(clock.delays).toEqual([1000]);
    add('d', 10);
    expect(clock.delays).toEqual([1000, 10]);
    expect(clock.timers.size).toBe(1);
  });

  it('expires at once an entry scheduled in the past', () => {
    add('late', -5);
    expect(clock.delays).toEqual([0]);
    clock.advance(0);
    expect(expired).toEqual(['late']);
  });

  it('reaches a deadline beyond setTimeout\'s 32-bit range in steps', () => {
    add('far', MAX_TIMER_DELAY_MS + 1000);
    expect(clock.delays).toEqual([MAX_TIMER_DELAY_MS]);
    clock.advance(MAX_TIMER_DELAY_MS);
    expect(expired).toEqual([]);
    expect(clock.delays).toEqual([MAX_TIMER_DELAY_MS, 1000]);
    clock.advance(1000);
    expect(expired).toEqual(['far']);
  });

  it('a throwing handler does not stop the other expiries', () => {
    scheduler = new ExpiryScheduler<string>((item) => {
      expired.push(item);
      if (item === 'a') throw new Error('boom');
    }, clock);
    add('a', 10);
    add('b', 10);
    add('c', 20);
    clock.advance(20);
    expect(expired).toEqual(expect.arrayContaining(['a', 'b', 'c']));
  });

  it('clear() unschedules everything and stops the timer', () => {
    const a = add('a', 10);
    add('b', 20);
    scheduler.clear();
    expect([scheduler.size, a.index, clock.timers.size, scheduler.nextAt]).toEqual([0, -1, 0, undefined]);
    clock.advance(100);
    expect(expired).toEqual([]);
  });

  it('uses an unref\'d real timer by default (a pending expiry does not keep the process alive)', () => {
    jest.useFakeTimers();
    try {
      const real = new ExpiryScheduler<string>((item) => void expired.push(item));
      real.schedule(real.entry('x'), Date.now() + 1000);
      expect(jest.getTimerCount()).toBe(1);
      jest.advanceTimersByTime(1000);
      expect(expired).toEqual(['x']);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });
});

import type { SchedulerClock } from './expiry-scheduler';

/** Ticks of a round are at least this far apart: at most 100 wake-ups a second, whatever the number of items. */
export const MIN_STEP_MS = 10;

/** What the walker visits: a live collection (a Map's values, say), read as it is at each tick. */
export interface Walkable<T> {
  readonly size: number;
  values(): Iterator<T>;
}

const realClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Visits every item of a collection once per `intervalMs`, spread evenly over the interval, on
 * one timer: a round starts every `intervalMs`; with n items it makes min(n, intervalMs /
 * MIN_STEP_MS) ticks, `intervalMs / ticks` apart, each visiting the next ceil(n / ticks) items of
 * a live iterator (items removed meanwhile are skipped, items added may be visited in this round
 * or the next). Never one timer per item, never all items at once (unless the interval allows only
 * one tick). Used for the token re-check (AUTH_RECHECK_INTERVAL_MS).
 */
export class SpreadWalker<T> {
  private timer: unknown;
  private roundStart = 0;
  private iterator?: Iterator<T>;
  private ticks = 0;
  private tick = 0;
  private batch = 0;
  private stopped = true;

  constructor(
    private readonly items: Walkable<T>,
    private readonly intervalMs: number,
    private readonly visit: (item: T) => void,
    private readonly clock: SchedulerClock = realClock,
  ) {
    if (!(intervalMs > 0)) throw new Error('SpreadWalker needs an interval above 0');
  }

  /** Starts the rounds: the first one now. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.beginRound(this.clock.now());
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.iterator = undefined;
  }

  private beginRound(start: number): void {
    this.roundStart = start;
    const n = this.items.size;
    if (n === 0) {
      this.iterator = undefined;
      this.at(start + this.intervalMs, () => this.beginRound(this.clock.now()));
      return;
    }
    this.iterator = this.items.values();
    this.ticks = Math.max(1, Math.min(n, Math.floor(this.intervalMs / MIN_STEP_MS)));
    this.batch = Math.ceil(n / this.ticks);
    this.tick = 0;
    this.step();
  }

  /** One tick: the next batch of the round, then the next tick (or the next round). */
  private step(): void {
    const iterator = this.iterator;
    let done = !iterator;
    for (let i = 0; i < this.batch && iterator; i++) {
      const next = iterator.next();
      if (next.done) {
        done = true;
        break;
      }
      try {
        this.visit(next.value);
      } catch {
        // one item's visit failing must not stop the walk (it logs what it can)
      }
    }
    this.tick++;
    if (done || this.tick >= this.ticks) {
      this.iterator = undefined;
      this.at(this.roundStart + this.intervalMs, () => this.beginRound(this.clock.now()));
      return;
    }
    // From now, not from the round's start: a late tick (a blocked event loop) delays the rest of
    // the round instead of making the next ticks catch up at once.
    this.at(this.clock.now() + this.intervalMs / this.ticks, () => this.step());
  }

  private at(when: number, fn: () => void): void {
    if (this.stopped) return;
    const delay = Math.max(0, when - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) fn();
    }, delay);
  }
}

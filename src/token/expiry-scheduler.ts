/**
 * Deadlines of many items on one timer: a binary min-heap ordered by deadline, and a single
 * timer armed for the earliest one. An item costs its entry (an object with its deadline and heap
 * position) and nothing else: no timer, no closure. Adding, moving and removing an entry are
 * O(log n); the timer is re-armed only when the earliest deadline moves earlier (a removed
 * earliest entry leaves the timer armed: it fires, finds nothing due and re-arms for the next).
 *
 * Used for token expiry (TokenLifecycle): one schedule for all the connections of a node.
 */

/** One scheduled item; `index` is its heap position, -1 when it is not scheduled. */
export interface ExpiryEntry<T> {
  readonly item: T;
  at: number;
  index: number;
}

/** The clock and the timer, replaceable in tests. */
export interface SchedulerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's setTimeout takes at most a signed 32-bit delay: later deadlines are reached in steps. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

const realClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    // A pending expiry must not keep the process alive.
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class ExpiryScheduler<T> {
  private readonly heap: ExpiryEntry<T>[] = [];
  private timer: unknown;
  /** The deadline the timer is armed for (Infinity: not armed). */
  private armedFor = Infinity;

  constructor(
    /** Called once per entry whose deadline has passed (it is no longer scheduled then). */
    private readonly onExpire: (item: T) => void,
    private readonly clock: SchedulerClock = realClock,
  ) {}

  /** Entries scheduled. */
  get size(): number {
    return this.heap.length;
  }

  /** The earliest deadline, if any. */
  get nextAt(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Whether the timer is armed (one timer at most, whatever the number of entries). */
  get armed(): boolean {
    return this.armedFor !== Infinity;
  }

  /** A new entry for `item`, not scheduled yet. */
  entry(item: T): ExpiryEntry<T> {
    return { item, at: Infinity, index: -1 };
  }

  /** Schedules `entry` at `at` (Unix ms), or moves it there when it is scheduled already. */
  schedule(entry: ExpiryEntry<T>, at: number): void {
    if (entry.index < 0) {
      entry.at = at;
      entry.index = this.heap.length;
      this.heap.push(entry);
      this.up(entry.index);
    } else {
      const earlier = at < entry.at;
      entry.at = at;
      if (earlier) this.up(entry.index);
      else this.down(entry.index);
    }
    this.arm();
  }

  /** Unschedules `entry` (nothing when it is not scheduled). */
  cancel(entry: ExpiryEntry<T>): void {
    const i = entry.index;
    if (i < 0) return;
    entry.index = -1;
    const last = this.heap.pop()!;
    if (i < this.heap.length) {
      this.heap[i] = last;
      last.index = i;
      this.down(i);
      this.up(last.index);
    }
    if (this.heap.length === 0) this.disarm();
  }

  /** Unschedules everything and stops the timer. */
  clear(): void {
    for (const entry of this.heap) entry.index = -1;
    this.heap.length = 0;
    this.disarm();
  }

  /** The timer fired: every entry due now expires, earliest first; then the timer is armed for the next. */
  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.clock.now();
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      const entry = this.heap[0];
      this.cancel(entry);
      try {
        this.onExpire(entry.item);
      } catch {
        // one item's handler failing must not stop the others (it logs what it can)
      }
    }
    this.arm();
  }

  private arm(): void {
    const next = this.heap[0];
    if (!next || next.at >= this.armedFor) return;
    this.disarm();
    this.armedFor = next.at;
    const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, next.at - this.clock.now()));
    this.timer = this.clock.setTimeout(() => this.fire(), delay);
  }

  private disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private up(i: number): void {
    const heap = this.heap;
    const entry = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].at <= entry.at) break;
      heap[i] = heap[parent];
      heap[i].index = i;
      i = parent;
    }
    heap[i] = entry;
    entry.index = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i];
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && heap[right].at < heap[left].at ? right : left;
      if (heap[child].at >= entry.at) break;
      heap[i] = heap[child];
      heap[i].index = i;
      i = child;
    }
    heap[i] = entry;
    entry.index = i;
  }
}

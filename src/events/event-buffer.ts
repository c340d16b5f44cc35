/**
 * A bounded FIFO of events waiting to be published: a ring that grows by doubling up to `max`
 * (nothing is allocated for the bound up front: EVENTS_BUFFER_MAX may be millions). Beyond `max`
 * the oldest entry gives way: `push` and `unshift` return how many were dropped (0 or 1).
 */
export class EventBuffer<T> {
  private ring: (T | undefined)[] = new Array<T | undefined>(16);
  private head = 0;
  private size = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`buffer bound must be a positive integer, got ${max}`);
  }

  get length(): number {
    return this.size;
  }

  /** Appends the newest entry; drops the oldest when full (returns 1 then). */
  push(item: T): number {
    let dropped = 0;
    if (this.size === this.max) {
      this.shift();
      dropped = 1;
    }
    this.grow();
    this.ring[(this.head + this.size) % this.ring.length] = item;
    this.size += 1;
    return dropped;
  }

  /**
   * Puts back an entry older than every queued one (a publish that failed): when full, it is the
   * oldest, so it is the one dropped (returns 1 then).
   */
  unshift(item: T): number {
    if (this.size === this.max) return 1;
    this.grow();
    this.head = (this.head - 1 + this.ring.length) % this.ring.length;
    this.ring[this.head] = item;
    this.size += 1;
    return 0;
  }

  /** Removes and returns the oldest entry. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.size -= 1;
    return item;
  }

  /** Empties the buffer; returns how many entries it held. */
  clear(): number {
    const n = this.size;
    this.ring = new Array<T | undefined>(16);
    this.head = 0;
    this.size = 0;
    return n;
  }

  private grow(): void {
    if (this.size < this.ring.length) return;
    const next = new Array<T | undefined>(Math.min(this.ring.length * 2, Math.max(this.max, 16)));
    for (let i = 0; i < this.size; i++) next[i] = this.ring[(this.head + i) % this.ring.length];
    this.ring = next;
    this.head = 0;
  }
}

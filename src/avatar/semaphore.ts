/**
 * A counting semaphore with a FIFO queue: at most `limit` tasks run at once; the others wait and
 * start in the order they asked. A released slot is handed straight to the oldest waiter, so a
 * newcomer never overtakes the queue. Used to bound the avatar decodes of a node
 * (AVATAR_CONCURRENCY): decoding is the costly step (CPU, memory, libuv thread pool).
 */
export class Semaphore {
  private active = 0;
  /** Waiters, oldest at `head` (an array with a moving head: O(1) enqueue and dequeue). */
  private queue: (() => void)[] = [];
  private head = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`);
  }

  /** Tasks running now. */
  get running(): number {
    return this.active;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /**
   * Resolves with a release function once a slot is held. Releasing twice is harmless (the
   * second call does nothing), so a slot can never be given back more than once.
   */
  acquire(): Promise<() => void> {
    if (this.active < this.limit && this.waiting === 0) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve) => {
      // The slot is already counted as active when this runs (see release).
      this.queue.push(() => resolve(this.releaser()));
    });
  }

  /** Runs `task` in a slot, releasing it however the task ends. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await task();
    } finally {
      release();
    }
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release();
    };
  }

  private release(): void {
    if (this.waiting > 0) {
      // Hand the slot over: `active` stays the same.
      const next = this.queue[this.head];
      this.queue[this.head] = undefined as unknown as () => void;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      next();
      return;
    }
    this.active--;
  }
}

/** What the budget needs of a connection: stop and restart reading its socket. */
export interface Pausable {
  pause(): void;
  resume(): void;
}

/** The limits of one phase of a connection. */
export interface BudgetLimits {
  /** Bytes that may arrive at once (must hold the largest frame of the phase). */
  readonly capacity: number;
  /** Sustained bytes per second. */
  readonly perSecond: number;
  /** Added to every frame's size: what a frame costs beyond its bytes (tiny frames are not free). */
  readonly frameOverhead: number;
}

/**
 * How many bytes one connection may make the gateway read, as a token bucket in bytes. A frame
 * that overdraws it is still processed, but the connection's socket stops being read until the
 * bucket is back at zero: TCP backpressure, so the client simply sends slower. Nothing is refused
 * or answered: a well-behaved client never notices, and a client that sends as fast as it can
 * costs the node no more than `perSecond` bytes of receiving, unmasking, scanning and parsing.
 */
export class InboundBudget {
  private balance: number;
  private last: number;
  private resumeTimer?: NodeJS.Timeout;

  constructor(
    private limits: BudgetLimits,
    private readonly reader: Pausable,
    now: number,
  ) {
    this.balance = limits.capacity;
    this.last = now;
  }

  /** Switches to other limits (at AUTH SUCCESS); the balance keeps what was spent. */
  setLimits(limits: BudgetLimits, now: number): void {
    this.refill(now);
    this.balance += limits.capacity - this.limits.capacity;
    this.limits = limits;
  }

  /** Spends a frame of `bytes`; pauses the socket when the bucket is overdrawn. */
  charge(bytes: number, now: number): void {
    this.refill(now);
    this.balance -= bytes + this.limits.frameOverhead;
    if (this.balance < 0 && !this.resumeTimer) {
      this.reader.pause();
      const waitMs = Math.ceil((-this.balance * 1000) / this.limits.perSecond);
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = undefined;
        this.reader.resume();
      }, waitMs);
      this.resumeTimer.unref();
    }
  }

  /** True while the socket is paused. */
  get paused(): boolean {
    return this.resumeTimer !== undefined;
  }

  /** Reads the socket again now (a pong must get through), whatever the balance. */
  release(): void {
    if (!this.resumeTimer) return;
    clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    this.reader.resume();
  }

  /** The connection is gone: no timer is left behind. */
  stop(): void {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    if (elapsed <= 0) return;
    this.last = now;
    this.balance = Math.min(this.limits.capacity, this.balance + (elapsed * this.limits.perSecond) / 1000);
  }
}

import { Status, type DeliveryStatus } from '../../protocol/protocol';
import { DedupState, type DedupStore } from '../engine.ports';

interface Entry {
  state: DedupState.DELIVERED | DedupState.PENDING;
  /** For DELIVERED: when it may be forgotten. */
  expiresAt: number;
  waiters: ((status: DeliveryStatus) => void)[];
}

/**
 * Client message ids of one node. Delivered ids are remembered for the dedup window; memory is
 * bounded by the window (expired entries are swept as time passes).
 */
export class MemoryDedupStore implements DedupStore {
  private readonly entries = new Map<string, Entry>();
  private lastSweep: number;

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastSweep = now();
  }

  async reserve(senderId: string, messageId: string): Promise<DedupState> {
    const key = this.key(senderId, messageId);
    const now = this.now();
    this.sweep(now);
    const entry = this.entries.get(key);
    if (entry && (entry.state === DedupState.PENDING || entry.expiresAt > now)) return entry.state;
    this.entries.set(key, { state: DedupState.PENDING, expiresAt: Infinity, waiters: [] });
    return DedupState.NEW;
  }

  async settle(senderId: string, messageId: string, status: DeliveryStatus): Promise<void> {
    const key = this.key(senderId, messageId);
    const entry = this.entries.get(key);
    if (!entry) return;
    const waiters = entry.waiters;
    if (status === Status.SUCCESS && this.windowMs > 0) {
      // Re-inserted so that the map stays ordered by expiry and sweeping can stop early.
      this.entries.delete(key);
      this.entries.set(key, { state: DedupState.DELIVERED, expiresAt: this.now() + this.windowMs, waiters: [] });
    } else {
      this.entries.delete(key);
    }
    for (const wake of waiters) wake(status);
  }

  outcome(senderId: string, messageId: string, timeoutMs: number): Promise<DeliveryStatus> {
    const entry = this.entries.get(this.key(senderId, messageId));
    if (!entry) return Promise.resolve(Status.ERROR);
    if (entry.state === DedupState.DELIVERED) return Promise.resolve(Status.SUCCESS);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(Status.ERROR), timeoutMs);
      entry.waiters.push((status) => {
        clearTimeout(timer);
        resolve(status);
      });
    });
  }

  /** Number of remembered ids (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  private key(senderId: string, messageId: string): string {
    return `${senderId}\u0000${messageId}`;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [key, entry] of this.entries) {
      if (entry.state === DedupState.PENDING) continue;
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }
}

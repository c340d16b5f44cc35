import { Status, type DeliveryStatus } from '../../protocol/protocol';
import { DedupState, type DedupStore } from '../engine.ports';
import { DEDUP_RESERVE } from './lua-scripts';
import type { RedisConnection } from './redis-connection';

export interface RedisDedupOptions {
  /** DEDUP_WINDOW_MS: how long a delivered id is remembered. */
  windowMs: number;
  /**
   * Bound on a pending reservation: an attempt whose node died before settling is forgotten
   * after this long (a repeat is then a new attempt). Must exceed the longest attempt.
   */
  pendingTtlMs: number;
  /** How long a SUCCESS is kept for the waiters of outcome() when the window is 0 (default 5 s). */
  successGraceMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * (sender, messageId) memory shared by the nodes: one key per id.
 *   P  pending (SET NX semantics inside a script, PX pendingTtlMs)
 *   D  delivered, PX windowMs
 *   S  delivered with a window of 0: not remembered for dedup, kept briefly for outcome()
 * ERROR deletes the key (a repeat is a new attempt). outcome() polls the key.
 */
export class RedisDedupStore implements DedupStore {
  constructor(
    private readonly connection: RedisConnection,
    private readonly options: RedisDedupOptions,
  ) {}

  async reserve(senderId: string, messageId: string): Promise<DedupState> {
    const reply = await DEDUP_RESERVE.run(this.connection.commands, [this.key(senderId, messageId)], [this.options.pendingTtlMs]);
    if (reply === 'D') return DedupState.DELIVERED;
    if (reply === 'P') return DedupState.PENDING;
    return DedupState.NEW;
  }

  async settle(senderId: string, messageId: string, status: DeliveryStatus): Promise<void> {
    const key = this.key(senderId, messageId);
    const redis = this.connection.commands;
    if (status !== Status.SUCCESS) {
      await redis.del(key);
    } else if (this.options.windowMs > 0) {
      await redis.set(key, 'D', 'PX', this.options.windowMs);
    } else {
      await redis.set(key, 'S', 'PX', this.options.successGraceMs ?? 5000);
    }
  }

  async outcome(senderId: string, messageId: string, timeoutMs: number): Promise<DeliveryStatus> {
    const key = this.key(senderId, messageId);
    const deadline = Date.now() + timeoutMs;
    let pause = 20;
    for (;;) {
      let value: string | null;
      try {
        value = await this.connection.commands.get(key);
      } catch {
        return Status.ERROR;
      }
      if (value === 'D' || value === 'S') return Status.SUCCESS;
      if (value !== 'P') return Status.ERROR; // settled ERROR (or the pending attempt was forgotten)
      const left = deadline - Date.now();
      if (left <= 0) return Status.ERROR;
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, 250);
    }
  }

  private key(senderId: string, messageId: string): string {
    return this.connection.keys.dedup(senderId, messageId);
  }
}

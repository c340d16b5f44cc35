import { Injectable } from '@nestjs/common';
import type { DeliveryStatus } from '../protocol/protocol';
import type { ChatClient } from './chat-client';

/**
 * The local connection table of this node: the logged-in (or joining) client of each user, and
 * the outbound port through which feature services reach clients on this node, by user or all of
 * them. Broadcast frames are encoded once.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly byUser = new Map<string, ChatClient>();

  /** Makes a client reachable by its user id. */
  register(client: ChatClient): void {
    this.byUser.set(client.userId, client);
  }

  /** Removes the client if it is still the one registered for its user. */
  unregister(client: ChatClient): void {
    if (this.byUser.get(client.userId) === client) this.byUser.delete(client.userId);
  }

  get(userId: string): ChatClient | undefined {
    return this.byUser.get(userId);
  }

  /** Number of logged-in (or joining) clients on this node. */
  get size(): number {
    return this.byUser.size;
  }

  /** Sends a serialized frame to every client of this node, except one user's. */
  broadcastLocal(frame: string, exceptUserId?: string): void {
    if (this.byUser.size === 0) return;
    const bytes = Buffer.from(frame); // encoded once, not once per receiver
    for (const client of this.byUser.values()) {
      if (client.userId !== exceptUserId) client.sendBroadcast(frame, bytes);
    }
  }

  /**
   * Hands a serialized frame to a user's client on this node and calls `done` with the outcome of
   * the write; false (and `done` never called) when the user is not here.
   */
  deliverLocal(userId: string, frame: string, done: (status: DeliveryStatus) => void): boolean {
    const client = this.byUser.get(userId);
    if (!client) return false;
    client.deliver(frame, done);
    return true;
  }
}

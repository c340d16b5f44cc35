import { Injectable } from '@nestjs/common';
import type { RegisteredConnection, SendResult } from './client';

/**
 * The local connection table of this node, and the outbound port through which feature services
 * reach clients on this node: by user, or all of them. Broadcast frames are serialized once.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly byUser = new Map<string, RegisteredConnection>();

  /** Makes an authenticated connection reachable by its user id. */
  register(connection: RegisteredConnection): void {
    this.byUser.set(connection.userId, connection);
  }

  /** Removes the connection if it is still the one registered for its user. */
  unregister(connection: RegisteredConnection): void {
    if (this.byUser.get(connection.userId) === connection) this.byUser.delete(connection.userId);
  }

  get(userId: string): RegisteredConnection | undefined {
    return this.byUser.get(userId);
  }

  /** Number of authenticated connections on this node. */
  get size(): number {
    return this.byUser.size;
  }

  users(): IterableIterator<RegisteredConnection> {
    return this.byUser.values();
  }

  /** Sends a serialized frame to every joined connection of this node, except one user's. */
  broadcastLocal(frame: string, exceptUserId?: string): void {
    if (this.byUser.size === 0) return;
    const bytes = Buffer.from(frame); // encoded once, not once per receiver
    for (const connection of this.byUser.values()) {
      if (connection.userId !== exceptUserId) connection.sendEncoded(frame, bytes);
    }
  }

  /**
   * Hands a serialized frame to a user's connection on this node and calls `done` with the
   * outcome of the write; false (and `done` never called) when the user is not here.
   */
  deliverLocal(userId: string, frame: string, done: (result: SendResult) => void): boolean {
    const connection = this.byUser.get(userId);
    if (!connection) return false;
    connection.sendConfirmed(frame, done);
    return true;
  }
}

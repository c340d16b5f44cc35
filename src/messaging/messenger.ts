import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { CLUSTER_BUS, PRESENCE_REGISTRY, type ClusterBus, type PresenceRegistry } from '../engine/engine.ports';
import { Status, type DeliveryStatus } from '../protocol/protocol';
import { SendResult } from './client';
import { ConnectionRegistry } from './connection-registry';

/**
 * The outbound port of the feature services: reaches users anywhere in the deployment, on this
 * node through the connection registry, on other nodes through the cluster bus.
 */
@Injectable()
export class Messenger implements OnModuleInit {
  constructor(
    private readonly connections: ConnectionRegistry,
    @Inject(CLUSTER_BUS) private readonly bus: ClusterBus,
    @Inject(PRESENCE_REGISTRY) private readonly presence: PresenceRegistry,
  ) {}

  onModuleInit(): void {
    this.bus.onBroadcast((event) => this.connections.broadcastLocal(event.frame, event.exceptUserId));
    this.bus.onDeliver(async (request) => {
      const result = this.connections.deliverLocal(request.userId, request.frame);
      return result && (await result) === SendResult.OK ? Status.SUCCESS : Status.ERROR;
    });
  }

  /** Sends a frame to every authenticated client of the deployment, except one user. */
  broadcast(frame: object | string, exceptUserId?: string): void {
    const data = typeof frame === 'string' ? frame : JSON.stringify(frame);
    this.connections.broadcastLocal(data, exceptUserId);
    this.bus.publish({ frame: data, exceptUserId });
  }

  /**
   * Hands a frame to a user's live connection wherever it is. SUCCESS only when it was written to
   * that connection without an error; ERROR when the user is offline, the write failed, or the
   * user's node did not answer within `timeoutMs`.
   */
  async deliver(userId: string, frame: string, timeoutMs: number): Promise<DeliveryStatus> {
    const local = this.connections.deliverLocal(userId, frame);
    if (local) return (await local) === SendResult.OK ? Status.SUCCESS : Status.ERROR;
    const session = await this.presence.locate(userId);
    if (!session || session.nodeId === this.bus.nodeId) {
      // A session of this node with no local connection is on its way out: the user is not reachable.
      return Status.ERROR;
    }
    return this.bus.deliver(session.nodeId, { userId, frame }, timeoutMs);
  }
}

import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { CLUSTER_BUS, type ClusterBus } from '../engine/engine.ports';
import type { ServerFrame } from '../protocol/frames';
import { Status, type DeliveryStatus } from '../protocol/protocol';
import { ConnectionRegistry } from './connection-registry';
import { RemoteRoutes } from './remote-routes';

/** Called once with the outcome of a delivery. */
export type DeliveryCallback = (status: DeliveryStatus) => void;

/**
 * The outbound port of the feature services: reaches users anywhere in the deployment, on this
 * node through the connection registry, on other nodes through the cluster bus.
 */
@Injectable()
export class Messenger implements OnModuleInit {
  constructor(
    private readonly connections: ConnectionRegistry,
    @Inject(CLUSTER_BUS) private readonly bus: ClusterBus,
    private readonly routes: RemoteRoutes,
  ) {}

  onModuleInit(): void {
    this.bus.onBroadcast((event) => this.connections.broadcastLocal(event.frame, event.exceptUserId));
    this.bus.onDeliver(
      (request) =>
        new Promise<DeliveryStatus>((resolve) => {
          if (!this.connections.deliverLocal(request.userId, request.frame, resolve)) resolve(Status.ERROR);
        }),
    );
  }

  /** Sends a frame to every authenticated client of the deployment, except one user. */
  broadcast(frame: ServerFrame | string, exceptUserId?: string): void {
    const data = typeof frame === 'string' ? frame : JSON.stringify(frame);
    this.connections.broadcastLocal(data, exceptUserId);
    this.bus.publish({ frame: data, exceptUserId });
  }

  /**
   * Hands a frame to a user's live connection wherever it is, and calls `done` exactly once:
   * SUCCESS only when it was written to that connection without an error; ERROR when the user is
   * offline, the write failed, the shared state could not be read, or the user's node did not
   * answer within `timeoutMs`. A user on this node is served without a promise or a lookup (the
   * hot path of a one-node deployment); `done` may then run before this returns. A user on another
   * node is reached through RemoteRoutes (the node of their session, remembered).
   */
  deliver(userId: string, frame: string, timeoutMs: number, done: DeliveryCallback): void {
    if (!this.connections.deliverLocal(userId, frame, done)) this.routes.deliver(userId, frame, timeoutMs, done);
  }
}

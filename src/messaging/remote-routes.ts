import { performance } from 'node:perf_hooks';
import { Inject, Injectable, Logger, type Provider } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { CLUSTER_BUS, PRESENCE_REGISTRY, RemoteOutcome, type ClusterBus, type PresenceRegistry } from '../engine/engine.ports';
import { Status, type DeliveryStatus } from '../protocol/protocol';

/** The slice of the configuration the routes read. */
export interface RemoteRoutesOptions {
  /** REMOTE_ROUTES_MAX: how many idle routes (users on other nodes) are remembered; 0 remembers none. */
  readonly remoteRoutesMax: number;
}

export const REMOTE_ROUTES_OPTIONS = Symbol('REMOTE_ROUTES_OPTIONS');

export const remoteRoutesOptionsProvider: Provider = {
  provide: REMOTE_ROUTES_OPTIONS,
  inject: [GATEWAY_CONFIG],
  useFactory: ({ remoteRoutesMax }: GatewayConfig): RemoteRoutesOptions => ({ remoteRoutesMax }),
};

/** A delivery to a user on another node, until its outcome is known. */
interface Delivery {
  readonly frame: string;
  /** performance.now() by which the outcome must be known (DELIVERY_TIMEOUT_MS after it was handed in). */
  readonly deadline: number;
  readonly done: (status: DeliveryStatus) => void;
  /** The node that refused it (the route was stale): it is sent once more, never twice, and not there. */
  refusedBy?: string;
  /** The lane's generation it was last sent under. */
  generation: number;
}

/** The deliveries of this node to one remote user. */
class Lane {
  /** The node of the user's session, as last found (a hint: that node says whether it delivered). */
  node: string | undefined;
  /** Deliveries published to `node` in this generation whose outcome is not known yet. */
  inFlight = 0;
  /**
   * Counts the routes given up on after a node did not answer: deliveries still in flight on an
   * older generation are answered without a retry (ERROR unless delivered), and nothing waits for them.
   */
  generation = 0;
  /** A registry read (locate) is running for this lane. */
  locating = false;
  /** Deliveries refused on a stale route, in their order: sent again before any in `waiting`. */
  retries: Delivery[] | undefined;
  /** Deliveries that wait for the route, in the order they were handed in. */
  waiting: Delivery[] | undefined;

  constructor(readonly userId: string) {}

  get idle(): boolean {
    return this.inFlight === 0 && !this.locating && this.retries === undefined && this.waiting === undefined;
  }
}

/**
 * Deliveries to users on other nodes (docs/protocol.md, "DELIVERY_MESSAGE"; "Cluster mode"). The
 * node of a user's session is read from the registry once and remembered, so that a dialog to a
 * user on another node costs one PUBLISH instead of a registry read and a PUBLISH (a Redis round
 * trip less on the way, and a command less per dialog).
 *
 * A remembered route is a hint, never trusted for an outcome: the node it names answers whether
 * it wrote the frame to the user's connection. When it refuses (the user left it, perhaps for
 * another node) or is gone, the route is forgotten and the delivery goes through the registry
 * again, once; when it does not answer (DELIVERY_TIMEOUT_MS) the outcome is ERROR as before, since
 * it may have delivered.
 *
 * Order (one sender's dialogs to one receiver arrive in the order sent): deliveries to one user
 * are published in the order they were handed in, on the node's one command connection. While the
 * route is being read, or deliveries sent on a route that turned out stale are not all answered,
 * later deliveries wait; then the refused ones are sent again in their order, before the ones
 * that waited. A node that does not answer is not waited for: its route is given up on, and what
 * is still in flight there is answered without a retry (so that it cannot overtake later dialogs).
 *
 * Memory: one Lane per remote user this node delivers to, at most REMOTE_ROUTES_MAX idle ones
 * (the oldest idle one is dropped first; lanes with deliveries in progress are never dropped); a
 * receiver found nowhere (offline, or any id a client makes up) leaves no lane behind.
 */
@Injectable()
export class RemoteRoutes {
  private readonly logger = new Logger(RemoteRoutes.name);
  private readonly lanes = new Map<string, Lane>();

  constructor(
    @Inject(CLUSTER_BUS) private readonly bus: ClusterBus,
    @Inject(PRESENCE_REGISTRY) private readonly presence: PresenceRegistry,
    @Inject(REMOTE_ROUTES_OPTIONS) private readonly options: RemoteRoutesOptions,
  ) {}

  /** Remembered routes and lanes in use (for tests and metrics). */
  get size(): number {
    return this.lanes.size;
  }

  /**
   * Hands a frame to `userId`'s connection on the node of their session and calls `done` exactly
   * once: SUCCESS only when that node wrote it without an error; ERROR when the user is offline
   * (or only leaving this node), the registry cannot be read, or no node delivered it within
   * `timeoutMs`.
   */
  deliver(userId: string, frame: string, timeoutMs: number, done: (status: DeliveryStatus) => void): void {
    const lane = this.laneOf(userId);
    const delivery: Delivery = { frame, deadline: performance.now() + timeoutMs, done, generation: 0 };
    // A known route has nothing waiting: retries and waiting exist only while `node` is unknown.
    if (lane.node !== undefined) {
      this.send(lane, delivery, lane.node);
      return;
    }
    (lane.waiting ??= []).push(delivery);
    this.locate(lane);
  }

  private laneOf(userId: string): Lane {
    let lane = this.lanes.get(userId);
    if (lane) return lane;
    lane = new Lane(userId);
    this.lanes.set(userId, lane);
    if (this.lanes.size > this.options.remoteRoutesMax) this.dropOldestIdle(lane);
    return lane;
  }

  /** Drops the oldest idle lane (not `keep`), if one is found among the oldest few. */
  private dropOldestIdle(keep: Lane): void {
    let looked = 0;
    for (const lane of this.lanes.values()) {
      if (lane !== keep && lane.idle) {
        this.lanes.delete(lane.userId);
        return;
      }
      if (++looked >= 16) return; // the busy ones are few; the map shrinks again as they settle
    }
  }

  /** Reads the user's node once nothing is in flight on the old route, then sends what waited. */
  private locate(lane: Lane): void {
    if (lane.locating || lane.inFlight > 0) return;
    const batch = lane.retries ? (lane.waiting ? lane.retries.concat(lane.waiting) : lane.retries) : lane.waiting;
    if (!batch) return;
    lane.retries = lane.waiting = undefined;
    lane.locating = true;
    lane.node = undefined;
    this.presence.locate(lane.userId).then(
      (session) => this.located(lane, batch, session && session.nodeId !== this.bus.nodeId ? session.nodeId : undefined),
      (err: unknown) => {
        this.logger.warn({ err: String(err) }, 'delivery failed: shared state unavailable');
        this.located(lane, batch, undefined);
      },
    );
  }

  /**
   * The registry answered: the batch (and what came meanwhile) goes to `node`, or fails (the user is
   * offline, or only on this node, leaving it: not reachable).
   */
  private located(lane: Lane, batch: Delivery[], node: string | undefined): void {
    lane.locating = false;
    if (node === undefined) {
      for (const delivery of batch) delivery.done(Status.ERROR);
      // What came during the read gets a read of its own: the user may have come online meanwhile.
      if (lane.waiting) this.locate(lane);
      // No route to remember: a lane is not kept for a user found nowhere (any receiver id a client sends).
      else if (lane.idle) this.lanes.delete(lane.userId);
      return;
    }
    lane.node = node;
    for (const delivery of batch) {
      // That node has just refused it: the user is not there.
      if (delivery.refusedBy === node) delivery.done(Status.ERROR);
      else this.send(lane, delivery, node);
    }
    const waiting = lane.waiting;
    lane.waiting = undefined;
    if (waiting) for (const delivery of waiting) this.send(lane, delivery, node);
    this.forgetIfIdle(lane);
  }

  private send(lane: Lane, delivery: Delivery, node: string): void {
    const timeoutMs = delivery.deadline - performance.now();
    if (timeoutMs <= 0) {
      delivery.done(Status.ERROR);
      return;
    }
    lane.inFlight++;
    delivery.generation = lane.generation;
    void this.bus.deliver(node, { userId: lane.userId, frame: delivery.frame }, timeoutMs).then((outcome) => this.settled(lane, delivery, node, outcome));
  }

  private settled(lane: Lane, delivery: Delivery, node: string, outcome: RemoteOutcome): void {
    if (delivery.generation !== lane.generation) {
      // Its route was given up on (that node did not answer) and later dialogs have moved on:
      // sent again now, it could overtake them. Answered as it is.
      delivery.done(outcome === RemoteOutcome.DELIVERED ? Status.SUCCESS : Status.ERROR);
      return;
    }
    lane.inFlight--;
    switch (outcome) {
      case RemoteOutcome.DELIVERED:
        delivery.done(Status.SUCCESS);
        break;
      case RemoteOutcome.REFUSED:
      case RemoteOutcome.UNREACHABLE:
        // Not delivered: the user is not (or no longer) on that node. Where now?
        if (lane.node === node) lane.node = undefined;
        if (delivery.refusedBy !== undefined) delivery.done(Status.ERROR);
        else {
          delivery.refusedBy = node;
          (lane.retries ??= []).push(delivery);
        }
        break;
      default:
        // No answer: it may have been delivered, so it is never sent again. That node may be stalled:
        // the next dialogs read the registry at once instead of waiting for the others in flight
        // there (up to DELIVERY_TIMEOUT_MS), which are then answered as they come, never sent again.
        if (lane.node === node) lane.node = undefined;
        lane.generation++;
        lane.inFlight = 0;
        delivery.done(Status.ERROR);
    }
    if (lane.inFlight > 0) return;
    if (lane.retries || lane.waiting) this.locate(lane);
    else this.forgetIfIdle(lane);
  }

  /** With REMOTE_ROUTES_MAX=0 (or over it) an idle lane is not kept. */
  private forgetIfIdle(lane: Lane): void {
    if (this.lanes.size > this.options.remoteRoutesMax && lane.idle) this.lanes.delete(lane.userId);
  }
}

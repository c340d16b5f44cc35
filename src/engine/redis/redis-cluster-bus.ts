import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { Status, type DeliveryStatus } from '../../protocol/protocol';
import { RemoteOutcome, type BroadcastEvent, type ClusterBus, type DeliveryRequest, type NodeCommand } from '../engine.ports';
import type { NodeLinks, PeerLink } from './node-links';
import type { RedisConnection } from './redis-connection';

/**
 * Messages: one line of JSON header, a newline, then the frame verbatim (frames are not
 * re-encoded; the header never holds a raw newline since JSON escapes them).
 *
 *   broadcast channel   ["B", originNodeId, exceptUserId | null] \n frame
 *   node channel        ["D", fromNodeId, requestId, userId, deadlineUnixMs] \n frame
 *                       ["C", fromNodeId, requestId, deadlineUnixMs] \n command as JSON (NodeCommand)
 *                       ["R", requestId, "SUCCESS" | "ERROR" | "ALIVE" | "GONE"] \n
 */
type BroadcastHeader = ['B', string, string | null];
type DeliverHeader = ['D', string, string, string, number];
type CommandHeader = ['C', string, string, number];
type ReplyHeader = ['R', string, string];

/** How long past the command's own time (a probe's) a node may take to carry it out and answer. */
const PROBE_ANSWER_MARGIN_MS = 1500;

/** A request's answer when nobody subscribed to the node's channel: it was not taken. */
const NOBODY = Symbol('nobody');
type Answer = string | typeof NOBODY | undefined;

interface PendingRequest {
  /** Called once: with the answer, NOBODY when no node took the request, or undefined when no answer came. */
  resolve: (answer: Answer) => void;
  timer: NodeJS.Timeout;
  /** Sent through Redis to this node (counted in redisInFlight), or on this link. */
  redisTo?: string;
  link?: PeerLink;
}

/**
 * The cluster bus on Redis pub/sub.
 *
 * - Broadcasts: PUBLISH on one channel that every node subscribes to; a node ignores its own.
 *   At most once: a node that is not subscribed at that moment (Redis down, reconnecting)
 *   misses it, and a PUBLISH that fails is not retried (CHAT then stays on this node).
 * - Deliveries: PUBLISH on the receiving node's channel with a request id and a deadline; that
 *   node hands the frame to the local connection and answers SUCCESS/ERROR on the sender's
 *   channel (DELIVERED/REFUSED). The sender resolves UNREACHABLE when PUBLISH reaches no
 *   subscriber (the node is gone), and UNANSWERED when the PUBLISH fails or no answer comes
 *   within the timeout (delivered or not: nobody knows). DELIVERED only ever comes
 *   from the receiving node after the write to its client succeeded. A request that reaches its
 *   node after its deadline (a node that was stalled) is not delivered, so a late delivery after
 *   the sender was told ERROR is unlikely (not impossible: an answer can still be lost on the way
 *   back, after the delivery).
 * - Commands (probe, kick, profile): the same request and answer, with a deadline by which the
 *   node must start it; one that arrives later (a node that was stalled) is not carried out, so
 *   a kick or a profile change the Server API answered 503 does not happen minutes later. (A
 *   header without a deadline, from an older node, is carried out.)
 * - Order: every PUBLISH of a node goes out on its one command connection, in call order, and a
 *   node handles the messages of its channel in arrival order, handing frames to the local
 *   connection synchronously: one sender's dialogs to one receiver keep their order.
 * - Node links (NodeLinks, when NODE_LINK_HOST is set): a delivery goes on the direct link to its
 *   node instead, with the same messages, and its answer comes back on that link. A link is used
 *   only while Redis is connected (the cluster rules for an unreachable Redis stay as they are),
 *   and only when no request to that node is still in flight through Redis, so a delivery on the
 *   link never overtakes an earlier one on Redis; a link that drops leaves its requests in flight
 *   unanswered (UNANSWERED), and the next deliveries go through Redis until it is back. A delivery
 *   the link cannot queue (over its bound) is not sent, so it is REFUSED (not delivered). Commands
 *   always go through Redis.
 */
export class RedisClusterBus implements ClusterBus {
  private readonly logger = new Logger('RedisClusterBus');
  private broadcastHandler?: (event: BroadcastEvent) => void;
  private deliverHandler?: (request: DeliveryRequest) => Promise<DeliveryStatus>;
  private commandHandler?: (command: NodeCommand) => Promise<string>;
  private readonly pending = new Map<string, PendingRequest>();
  /** Deliveries handed to other nodes, by the way they went ('link' or 'redis'), for /metrics. */
  readonly deliveriesByPath = new Map<'link' | 'redis', number>([
    ['link', 0],
    ['redis', 0],
  ]);
  /** Requests published to each node and not settled yet: while any is, that node's link waits. */
  private readonly redisInFlight = new Map<string, number>();
  private sequence = 0;
  private closed = false;

  constructor(
    private readonly connection: RedisConnection,
    readonly nodeId: string = randomUUID(),
    private readonly links?: NodeLinks,
  ) {
    connection.subscribe(connection.keys.broadcastChannel, (message) => this.onBroadcastMessage(message));
    connection.subscribe(connection.keys.nodeChannel(nodeId), (message) => this.onNodeMessage(message));
    links?.setHandlers({
      onRequest: (message, reply) => this.onLinkRequest(message, reply),
      onAnswer: (message, link) => this.onLinkAnswer(message, link),
      onLinkDown: (link) => {
        for (const requestId of [...link.inFlight]) this.settle(requestId, undefined);
      },
    });
  }

  publish(event: BroadcastEvent): void {
    if (this.closed) return;
    const header: BroadcastHeader = ['B', this.nodeId, event.exceptUserId ?? null];
    this.send(this.connection.keys.broadcastChannel, `${JSON.stringify(header)}\n${event.frame}`).catch((err: unknown) =>
      this.logger.debug(`broadcast not published (other nodes miss it): ${String(err)}`),
    );
  }

  deliver(nodeId: string, request: DeliveryRequest, timeoutMs: number): Promise<RemoteOutcome> {
    const requestId = this.nextRequestId();
    const header: DeliverHeader = ['D', this.nodeId, requestId, request.userId, Date.now() + timeoutMs];
    const message = `${JSON.stringify(header)}\n${request.frame}`;
    const link = this.linkTo(nodeId);
    const path = link ? 'link' : 'redis';
    this.deliveriesByPath.set(path, this.deliveriesByPath.get(path)! + 1);
    const answer = link ? this.requestOnLink(link, requestId, message, timeoutMs) : this.request(nodeId, requestId, message, timeoutMs);
    return answer.then(remoteOutcome);
  }

  command(nodeId: string, command: NodeCommand, timeoutMs: number): Promise<string | undefined> {
    const requestId = this.nextRequestId();
    // A probe takes its own time on that node before it answers: it must start in time to.
    const startBy = timeoutMs + (command.kind === 'probe' ? PROBE_ANSWER_MARGIN_MS : 0);
    const wait = startBy + (command.kind === 'probe' ? command.timeoutMs : 0);
    const header: CommandHeader = ['C', this.nodeId, requestId, Date.now() + startBy];
    return this.request(nodeId, requestId, `${JSON.stringify(header)}\n${JSON.stringify(command)}`, wait).then((answer) =>
      typeof answer === 'string' ? answer : undefined,
    );
  }

  onCommand(handler: (command: NodeCommand) => Promise<string>): void {
    this.commandHandler = handler;
  }

  onBroadcast(handler: (event: BroadcastEvent) => void): void {
    this.broadcastHandler = handler;
  }

  onDeliver(handler: (request: DeliveryRequest) => Promise<DeliveryStatus>): void {
    this.deliverHandler = handler;
  }

  isHealthy(): Promise<boolean> {
    return this.connection.isHealthy();
  }

  /** The link to take to `nodeId` now, if any (see the class comment, "Node links"). */
  private linkTo(nodeId: string): PeerLink | undefined {
    if (!this.links || this.closed || !this.connection.connected) return undefined;
    const link = this.links.linkTo(nodeId);
    return link && !this.redisInFlight.has(nodeId) ? link : undefined;
  }

  /** Deliveries still waiting for an answer (for tests). */
  get pendingDeliveries(): number {
    return this.pending.size;
  }

  /** Every pending request resolves without an answer (ERROR, UNREACHABLE); nothing is published any more. */
  close(): void {
    this.closed = true;
    for (const requestId of [...this.pending.keys()]) this.settle(requestId, undefined);
  }

  private nextRequestId(): string {
    return (++this.sequence).toString(36);
  }

  /**
   * Publishes a request on a node's channel and resolves with that node's answer; NOBODY when
   * nobody is subscribed (the node is gone, or cut off from Redis); undefined when no answer comes
   * within `timeoutMs` or the PUBLISH fails (it may have reached Redis before the connection broke).
   */
  private request(nodeId: string, requestId: string, message: string, timeoutMs: number): Promise<Answer> {
    if (this.closed) return Promise.resolve(undefined);
    return new Promise<Answer>((resolve) => {
      this.track(requestId, timeoutMs, { resolve, redisTo: nodeId });
      this.send(this.connection.keys.nodeChannel(nodeId), message).then(
        (receivers) => {
          // Nobody subscribed to that node's channel: the node is gone (or cut off from Redis).
          if (receivers === 0) this.settle(requestId, NOBODY);
        },
        (err: unknown) => {
          this.logger.debug(`request not published: ${String(err)}`);
          this.settle(requestId, undefined);
        },
      );
    });
  }

  /** Sends a request on a link and resolves with the answer that comes back on it (see request()). */
  private requestOnLink(link: PeerLink, requestId: string, message: string, timeoutMs: number): Promise<Answer> {
    return new Promise<Answer>((resolve) => {
      this.track(requestId, timeoutMs, { resolve, link });
      if (link.send(message)) link.inFlight.add(requestId);
      else this.settle(requestId, Status.ERROR); // not sent (the link's queue is full): not delivered
    });
  }

  /** Registers a pending request, settled without an answer after `timeoutMs`; one sent through Redis counts for its node. */
  private track(requestId: string, timeoutMs: number, request: Omit<PendingRequest, 'timer'>): void {
    const timer = setTimeout(() => this.settle(requestId, undefined), timeoutMs);
    timer.unref();
    this.pending.set(requestId, { ...request, timer });
    if (request.redisTo !== undefined) this.redisInFlight.set(request.redisTo, (this.redisInFlight.get(request.redisTo) ?? 0) + 1);
  }

  private async send(channel: string, message: string): Promise<number> {
    // With the offline queue disabled this rejects at once while the connection is down.
    return this.connection.commands.publish(channel, message);
  }

  private settle(requestId: string, answer: Answer): void {
    const pending = this.pending.get(requestId);
    if (!pending) return;
    this.pending.delete(requestId);
    clearTimeout(pending.timer);
    if (pending.link) pending.link.inFlight.delete(requestId);
    if (pending.redisTo !== undefined) {
      const left = this.redisInFlight.get(pending.redisTo)! - 1;
      if (left > 0) this.redisInFlight.set(pending.redisTo, left);
      else this.redisInFlight.delete(pending.redisTo);
    }
    pending.resolve(answer);
  }

  private onBroadcastMessage(message: string): void {
    const parsed = splitMessage(message);
    const header = parsed?.header as BroadcastHeader | undefined;
    if (!parsed || !Array.isArray(header) || header[0] !== 'B' || typeof header[1] !== 'string') {
      this.logger.warn('malformed broadcast ignored');
      return;
    }
    if (header[1] === this.nodeId) return; // ours: the local clients were served by the caller
    const except = typeof header[2] === 'string' ? header[2] : undefined;
    this.broadcastHandler?.({ frame: parsed.body, exceptUserId: except });
  }

  private onNodeMessage(message: string): void {
    const parsed = splitMessage(message);
    const header = parsed?.header;
    if (!parsed || !Array.isArray(header)) {
      this.logger.warn('malformed node message ignored');
      return;
    }
    if (header[0] === 'R' && typeof header[1] === 'string') {
      const reply = header as ReplyHeader;
      this.settle(reply[1], typeof reply[2] === 'string' ? reply[2] : undefined);
      return;
    }
    if (header[0] === 'C' && typeof header[1] === 'string' && typeof header[2] === 'string') {
      const [, from, requestId, deadline] = header as CommandHeader;
      this.handleCommand(from, requestId, parsed.body, typeof deadline === 'number' ? deadline : Infinity);
      return;
    }
    if (isDeliverHeader(header)) {
      const [, from, requestId, userId, deadline] = header;
      this.handleDelivery({ userId, frame: parsed.body }, orZero(deadline), (status) => this.reply(from, requestId, status));
      return;
    }
    this.logger.warn('unknown node message ignored');
  }

  /** A message on a link this node opened: only answers to its own requests come that way. */
  private onLinkAnswer(message: string, link: PeerLink): void {
    const header = splitMessage(message)?.header;
    if (!Array.isArray(header) || header[0] !== 'R' || typeof header[1] !== 'string') {
      this.logger.warn('node link: a message that is not an answer ignored');
      return;
    }
    const reply = header as ReplyHeader;
    // Only a request sent on this link is settled by its answers.
    if (this.pending.get(reply[1])?.link === link) this.settle(reply[1], typeof reply[2] === 'string' ? reply[2] : undefined);
  }

  /** A request on a link from another node: only deliveries come that way; answered on the link. */
  private onLinkRequest(message: string, reply: (message: string) => void): void {
    const parsed = splitMessage(message);
    const header = parsed?.header;
    if (!parsed || !isDeliverHeader(header)) {
      this.logger.warn('malformed node link request ignored');
      return;
    }
    const [, , requestId, userId, deadline] = header;
    this.handleDelivery({ userId, frame: parsed.body }, orZero(deadline), (status) => {
      const answer: ReplyHeader = ['R', requestId, status];
      reply(`${JSON.stringify(answer)}\n`);
    });
  }

  private reply(to: string, requestId: string, answer: string): void {
    const reply: ReplyHeader = ['R', requestId, answer];
    this.send(this.connection.keys.nodeChannel(to), `${JSON.stringify(reply)}\n`).catch((err: unknown) =>
      this.logger.debug(`answer not published (the requester times out): ${String(err)}`),
    );
  }

  private handleCommand(from: string, requestId: string, body: string, deadline: number): void {
    // Too late: the requester has given up (nothing is known there); not carried out, no answer.
    if (Date.now() > deadline) {
      this.logger.warn('a command arrived after its deadline: not carried out');
      return;
    }
    let command: NodeCommand;
    try {
      command = JSON.parse(body) as NodeCommand;
    } catch {
      this.logger.warn('malformed command ignored');
      return;
    }
    if (!this.commandHandler) return; // the requester times out: nothing is known
    let outcome: Promise<string>;
    try {
      outcome = this.commandHandler(command);
    } catch (err) {
      outcome = Promise.reject(err);
    }
    outcome.then(
      (answer) => this.reply(from, requestId, answer),
      (err: unknown) => this.logger.warn(`command ${command.kind} failed: ${String(err)}`),
    );
  }

  private handleDelivery(request: DeliveryRequest, deadline: number, answer: (status: DeliveryStatus) => void): void {
    // Too late: the sender has already answered ERROR to its client.
    if (!this.deliverHandler || Date.now() > deadline) {
      answer(Status.ERROR);
      return;
    }
    let outcome: Promise<DeliveryStatus>;
    try {
      // Called synchronously, in arrival order: the frame is written before the next one is handled.
      outcome = this.deliverHandler(request);
    } catch {
      outcome = Promise.resolve(Status.ERROR);
    }
    outcome.then(
      (status) => answer(status === Status.SUCCESS ? Status.SUCCESS : Status.ERROR),
      () => answer(Status.ERROR),
    );
  }
}

/** A delivery's answer as its RemoteOutcome. */
function remoteOutcome(answer: Answer): RemoteOutcome {
  if (answer === Status.SUCCESS) return RemoteOutcome.DELIVERED;
  if (answer === NOBODY) return RemoteOutcome.UNREACHABLE;
  return answer === undefined ? RemoteOutcome.UNANSWERED : RemoteOutcome.REFUSED;
}

/** A deadline as sent; none (a malformed header) is 0: too late. */
function orZero(deadline: unknown): number {
  return typeof deadline === 'number' ? deadline : 0;
}

function isDeliverHeader(header: unknown): header is DeliverHeader {
  if (!Array.isArray(header) || header[0] !== 'D' || typeof header[1] !== 'string' || typeof header[2] !== 'string' || typeof header[3] !== 'string') {
    return false;
  }
  return true;
}

function splitMessage(message: string): { header: unknown; body: string } | undefined {
  const newline = message.indexOf('\n');
  if (newline < 0) return undefined;
  try {
    return { header: JSON.parse(message.slice(0, newline)), body: message.slice(newline + 1) };
  } catch {
    return undefined;
  }
}

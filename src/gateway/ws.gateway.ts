import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Inject, Logger, OnApplicationShutdown } from '@nestjs/common';
import { OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { RawData } from 'ws';
import { extractToken } from '../auth/token-extractor';
import { ChatClient } from '../messaging/chat-client';
import { HANDSHAKE_LOGIN } from '../protocol/inbound';
import { ConnectionRegistry } from '../messaging/connection-registry';
import { MetricsService } from '../observability/metrics.service';
import type { ErrorMessageFrame } from '../protocol/frames';
import { AuthError } from '../protocol/errors';
import { scanFrame } from '../protocol/frame-scan';
import { CloseCode, FrameErrorCode, MessageType, Status } from '../protocol/protocol';
import { SessionService } from '../session/session.service';
import { Admission, type ConnectionPool } from './admission';
import { GATEWAY_LIMITS, type GatewayLimits } from './gateway-limits';
import type { GatewaySocket, SocketEvents } from './gateway-socket';
import type { BudgetLimits } from './inbound-budget';
import { byteLength, frameBytes } from './inbound-frame';
import { FrameQueue, MessageRouter } from './message-router';
import { RateLimiter, RateVerdict } from './rate-limiter';
import { writeBatch } from './write-batch';
import { WsTransport, type TransportOptions } from './ws-transport';

const RATE_LIMITED_FRAME = JSON.stringify({
  type: MessageType.ERROR,
  status: Status.ERROR,
  error: { errorCode: FrameErrorCode.RATE_LIMITED, message: 'too many frames: slow down' },
} satisfies ErrorMessageFrame);

/** Close codes `ws` sends for the errors it detects (see ws/lib/receiver.js). */
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: 1007,
};

/**
 * What the gateway keeps of one open connection; its socket's events come here (GatewaySocket). It
 * is the queue where the frames of its logged-in client wait while a handler runs (it extends
 * FrameQueue rather than holding one: one object fewer per connection).
 */
class Link extends FrameQueue implements SocketEvents {
  client!: ChatClient;
  transport!: WsTransport;
  /** Created at the first frame after AUTH SUCCESS: only the data frames of a logged-in client are rate limited. */
  limiter?: RateLimiter;
  /** No token came with the upgrade: the first AUTH_MESSAGE frame may bring it (until the deadline). */
  awaitingToken = false;
  /** Its login (CHECK_TOKEN, session) has started. */
  loggingIn = false;
  deadline?: NodeJS.Timeout;
  /** It gave its place to a login (the node was full): it no longer counts toward MAX_CONNECTIONS. */
  gaveWay = false;

  constructor(readonly gateway: WsGateway) {
    super();
  }

  onSocketMessage(data: RawData, isBinary: boolean): void {
    this.gateway.onFrame(this, data, isBinary);
  }

  onSocketPong(): void {
    this.transport.onPong();
  }

  onSocketClose(code: number): void {
    this.gateway.onClose(this, code);
  }

  onSocketError(err: Error & { code?: string }): void {
    this.gateway.onSocketError(this, err);
  }

  clearDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
  }
}

/**
 * The WebSocket endpoint, thin by design: it admits connections (Admission), logs them in through
 * the AUTH_MESSAGE pipeline (AuthGuard checks the token, the session core joins), routes the frames
 * of logged-in clients to their handlers (MessageRouter) and enforces the per-connection limits
 * (rate, inbound budget, inbound queue, heartbeat, send buffer). All message logic lives in the
 * feature modules; the frames before login are not parsed beyond what finding the token needs.
 */
@WebSocketGateway({ path: '/ws' })
export class WsGateway implements OnGatewayInit, OnApplicationShutdown, ConnectionPool {
  private readonly logger = new Logger(WsGateway.name);
  private readonly open = new Set<Link>();
  /** Connections that came without a token and may still send one, oldest first. */
  private readonly tokenless = new Set<Link>();
  private givenWay = 0;
  private readonly transportOptions: TransportOptions;
  private readonly joinedBudget: BudgetLimits;
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private readonly router: MessageRouter,
    private readonly sessions: SessionService,
    private readonly metrics: MetricsService,
    connections: ConnectionRegistry,
    admission: Admission,
    @Inject(GATEWAY_LIMITS) private readonly limits: GatewayLimits,
  ) {
    admission.attach(this);
    this.transportOptions = {
      sendBufferMaxBytes: limits.sendBufferMaxBytes,
      // Before login only a token is awaited: a few small frames; after it, a steady byte rate
      // with room for one frame of the largest size.
      preAuthBudget: { capacity: 2 * limits.preAuthMaxFrameBytes, perSecond: limits.preAuthMaxFrameBytes, frameOverhead: 1024 },
      batch: limits.broadcastBatching ? writeBatch : undefined,
      countSent: (type) => metrics.countSent(type),
      onSlowConsumer: (owner) => this.dropSlowConsumer(owner as Link),
    };
    this.joinedBudget = { capacity: limits.maxFrameBytes + limits.inboundBytesPerSec, perSecond: limits.inboundBytesPerSec, frameOverhead: 64 };
    metrics.setConnectionSource(() => ({ open: this.open.size, authenticated: connections.size }));
  }

  afterInit(): void {
    this.heartbeat = setInterval(() => this.beat(), this.limits.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /**
   * Takes every upgraded socket, synchronously (GatewayWsAdapter calls it before any gateway's
   * connection hook): listeners are attached before any frame can arrive, then the login starts.
   */
  accept(socket: GatewaySocket, request: IncomingMessage): ChatClient | undefined {
    try {
      const link = new Link(this);
      link.transport = new WsTransport(socket, request.socket as Socket, this.transportOptions, link);
      link.client = new ChatClient(link.transport, request);
      // Its events ('message', 'pong', 'close', 'error') come to the link from now on, without a
      // listener each (see GatewaySocket). ws emits 'close' once; onClose ignores a repeat.
      socket.events = link;
      this.open.add(link);
      if (extractToken(request, this.limits.allowQueryToken).kind === 'none') {
        // Its token is to come in a frame: nothing of the upgrade request is needed any more.
        link.client.takeRequest();
        link.awaitingToken = true;
        this.tokenless.add(link);
        link.deadline = setTimeout(() => this.refuse(link, AuthError.deadline()), this.limits.authDeadlineMs);
        link.deadline.unref();
      } else {
        this.login(link, HANDSHAKE_LOGIN);
      }
      return link.client;
    } catch (err) {
      this.logger.error(`connection setup failed: ${err instanceof Error ? err.stack : String(err)}`);
      socket.terminate();
      return undefined;
    }
  }

  /** The ChatClient of a socket the gateway accepted (for the connection hooks of the app's gateways). */
  clientOf(socket: GatewaySocket): ChatClient | undefined {
    return (socket.events as Link | undefined)?.client;
  }

  /** Every open socket dropped at once, without a close frame (the app is closing; the drain closed them properly before). */
  terminateAll(): void {
    for (const link of this.open) link.transport.drop();
  }

  /** Open connections that count toward MAX_CONNECTIONS. */
  get openCount(): number {
    return this.open.size - this.givenWay;
  }

  /** The node is full and a login is knocking: the oldest idle token-less connection gives way. */
  makeRoom(): boolean {
    for (const link of this.tokenless) {
      this.tokenless.delete(link);
      if (link.awaitingToken && !link.loggingIn && link.client.isOpen) {
        link.gaveWay = true;
        this.givenWay++;
        this.refuse(link, AuthError.gaveWay());
        return true;
      }
    }
    return false;
  }

  /**
   * Graceful shutdown: closes every open connection with 1001, spread evenly over `windowMs` so that
   * clients do not all reconnect at once, and ends their sessions (DISCONNECT reaches the other nodes).
   * Resolves when all are closed.
   */
  async drain(windowMs: number): Promise<void> {
    const links = [...this.open];
    if (links.length === 0) return;
    this.logger.log(`draining ${links.length} connections over ${windowMs} ms`);
    const step = links.length > 1 ? windowMs / links.length : 0;
    const start = Date.now();
    for (let i = 0; i < links.length; i++) {
      const wait = start + i * step - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (!this.open.has(links[i])) continue;
      const client = links[i].client;
      client.close(CloseCode.GOING_AWAY, 'server shutting down');
      await this.sessions.leave(client, CloseCode.GOING_AWAY).catch((err: unknown) => this.logger.warn({ connId: client.id, err: String(err) }, 'leave failed'));
    }
  }

  onApplicationShutdown(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  /** Logs a connection in through the AUTH_MESSAGE pipeline (AuthGuard, then the session join). */
  private login(link: Link, data: unknown): void {
    link.loggingIn = true;
    link.awaitingToken = false;
    link.clearDeadline();
    this.router.login(link.client, data).catch((err: unknown) =>
      this.logger.error({ connId: link.client.id, err: String(err) }, 'login pipeline failed'),
    );
  }

  /** A login refused by the gateway itself (deadline, gave way): the AUTH_MESSAGE error, then the close. */
  private refuse(link: Link, error: AuthError): void {
    link.awaitingToken = false;
    link.clearDeadline();
    this.router.answer(link.client, error, MessageType.AUTH);
  }

  /** @internal (called by the connection's Link) */
  onFrame(link: Link, data: RawData, isBinary: boolean): void {
    const { client, transport } = link;
    const size = byteLength(data);
    const now = Date.now();
    if (client.isJoined && !link.limiter) {
      link.limiter = new RateLimiter(this.limits.rateLimitPerSec, this.limits.rateLimitBurst, now);
      transport.inbound.setLimits(this.joinedBudget, now);
    }
    transport.inbound.charge(size, now);
    // Closing: what it still sends is read within its budget (to reach its close frame), not looked at.
    if (!client.isOpen) return;
    if (!link.limiter) {
      if (!this.onFrameBeforeLogin(link, data, size, isBinary)) this.metrics.droppedBeforeAuth.inc();
      return;
    }
    const verdict = link.limiter.take(now);
    if (verdict !== RateVerdict.ALLOW) {
      this.metrics.rateLimited.inc();
      client.send(RATE_LIMITED_FRAME);
      if (verdict === RateVerdict.FLOOD) this.closeAndLeave(link, CloseCode.FLOODING, 'flooding');
      return;
    }
    if (!this.router.route(client, link, data, isBinary)) {
      this.metrics.rateLimited.inc();
      this.closeAndLeave(link, CloseCode.FLOODING, 'too much data queued');
    }
  }

  /**
   * A frame before AUTH SUCCESS: the token-bearing AUTH_MESSAGE when one is awaited, else
   * discarded. Nothing is parsed beyond what finding the token needs: a frame over
   * PRE_AUTH_MAX_FRAME_BYTES closes the connection (1009), one that is not awaited is not looked
   * at, and only a frame whose top-level type reads AUTH_MESSAGE (or cannot be read without
   * parsing) is parsed, once it passed the depth scan. True when it was the token frame.
   */
  private onFrameBeforeLogin(link: Link, data: RawData, size: number, isBinary: boolean): boolean {
    if (size > this.limits.preAuthMaxFrameBytes) {
      this.logger.log({ connId: link.client.id }, 'frame too large before login: closed');
      link.client.close(CloseCode.MESSAGE_TOO_BIG, 'frame too large before login');
      return false;
    }
    if (!link.awaitingToken || link.loggingIn || isBinary) return false;
    const bytes = frameBytes(data);
    const scan = scanFrame(bytes, this.limits.maxJsonDepth);
    if (scan.tooDeep || (scan.type !== MessageType.AUTH && !scan.escapedKey)) return false;
    let frame: unknown;
    try {
      frame = JSON.parse(bytes.toString());
    } catch {
      return false;
    }
    if (typeof frame !== 'object' || frame === null || (frame as { type?: unknown }).type !== MessageType.AUTH) return false;
    this.login(link, frame);
    return true;
  }

  /** Closes a logged-in connection for a limit it broke, and ends its session. */
  private closeAndLeave(link: Link, code: CloseCode, reason: string): void {
    this.logger.warn({ connId: link.client.id, closeCode: code }, `${reason}: closed`);
    link.client.close(code, reason);
    this.leave(link.client, code);
  }

  /**
   * A protocol violation detected by `ws` (it then closes the socket itself, and the close event
   * reports 1006): remember the code ws sent to the peer, for metrics and logs.
   */
  /** @internal (called by the connection's Link) */
  onSocketError(link: Link, err: Error & { code?: string }): void {
    const code = err.code !== undefined ? WS_ERROR_CLOSE_CODES[err.code] ?? 1002 : undefined;
    if (code !== undefined && link.transport.closeCode === undefined) link.transport.closeCode = code;
    this.logger.log({ connId: link.client.id, closeCode: code, err: err.code ?? err.message }, 'socket error');
  }

  /** @internal (called by the connection's Link) */
  onClose(link: Link, code: number): void {
    if (!this.open.has(link)) return;
    link.clearDeadline();
    link.clear();
    link.transport.closed();
    link.client.closed();
    this.open.delete(link);
    this.tokenless.delete(link);
    if (link.gaveWay) this.givenWay--;
    const closeCode = link.transport.closeCode ?? code;
    this.metrics.disconnects.inc({ code: String(closeCode) });
    this.logger.debug({ connId: link.client.id, closeCode }, 'closed');
    this.leave(link.client, closeCode);
  }

  private leave(client: ChatClient, code: number): void {
    this.sessions.leave(client, code).catch((err: unknown) => this.logger.error({ connId: client.id, err: String(err) }, 'leave failed'));
  }

  /** Slow consumer: a best-effort 4413, the socket cut soon after, and DISCONNECT at once. */
  private dropSlowConsumer(link: Link): void {
    if (!link.client.isOpen) return;
    this.metrics.slowConsumerDrops.inc();
    this.closeAndLeave(link, CloseCode.SLOW_CONSUMER, 'slow consumer: send buffer overflow');
    setTimeout(() => link.transport.drop(CloseCode.SLOW_CONSUMER), 1000).unref();
  }

  /** A peer that has not answered the previous ping is dropped (no close frame: it sees 1006). */
  private beat(): void {
    for (const link of this.open) {
      if (link.transport.beat()) continue;
      this.logger.log({ connId: link.client.id }, 'heartbeat missed: dropped');
      link.client.drop();
    }
  }
}

import type { IncomingMessage } from 'node:http';
import { Inject, Logger, OnApplicationShutdown } from '@nestjs/common';
import { OnGatewayConnection, OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { RawData, WebSocket } from 'ws';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { ConnectionRegistry } from '../messaging/connection-registry';
import { MetricsService } from '../observability/metrics.service';
import { PresenceService } from '../presence/presence.service';
import { CloseCode, FrameErrorCode, MessageType, Status } from '../protocol/protocol';
import { Admission, type ConnectionPool } from './admission';
import { Authenticator } from './authenticator';
import { ClientConnection, type ConnectionHooks } from './client-connection';
import { byteLength, MessageRouter } from './message-router';
import { RateVerdict } from './rate-limiter';
import { writeBatch } from './write-batch';

const RATE_LIMITED_FRAME = JSON.stringify({
  type: MessageType.ERROR,
  status: Status.ERROR,
  error: { errorCode: FrameErrorCode.RATE_LIMITED, message: 'too many frames: slow down' },
});

/** Close codes `ws` sends for the errors it detects (see ws/lib/receiver.js). */
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: 1007,
};

/**
 * The WebSocket endpoint. Thin by design: it authenticates new connections (Authenticator),
 * registers them (PresenceService), routes their frames (MessageRouter) and enforces the
 * per-connection limits (rate, heartbeat, send buffer); all message logic lives in the feature
 * modules.
 */
@WebSocketGateway({ path: '/ws' })
export class WsGateway implements OnGatewayInit, OnGatewayConnection, OnApplicationShutdown, ConnectionPool {
  private readonly logger = new Logger(WsGateway.name);
  private readonly open = new Set<ClientConnection>();
  /** Connections that came without a token and may still send one, oldest first (some may have sent it since). */
  private readonly tokenless = new Set<ClientConnection>();
  /** Connections that gave way to a login and are closing: they no longer count toward MAX_CONNECTIONS. */
  private readonly gaveWay = new Set<ClientConnection>();
  private readonly hooks: ConnectionHooks;
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private readonly authenticator: Authenticator,
    private readonly router: MessageRouter,
    private readonly presence: PresenceService,
    private readonly metrics: MetricsService,
    connections: ConnectionRegistry,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    admission: Admission,
  ) {
    admission.attach(this);
    this.hooks = {
      sendBufferMaxBytes: config.sendBufferMaxBytes,
      rateLimitPerSec: config.rateLimitPerSec,
      rateLimitBurst: config.rateLimitBurst,
      // Before login only a token is awaited: a few small frames; after it, a steady byte rate
      // with room for one frame of the largest size.
      preAuthBudget: { capacity: 2 * config.preAuthMaxFrameBytes, perSecond: config.preAuthMaxFrameBytes, frameOverhead: 1024 },
      joinedBudget: { capacity: config.maxFrameBytes + config.inboundBytesPerSec, perSecond: config.inboundBytesPerSec, frameOverhead: 64 },
      batch: config.broadcastBatching ? writeBatch : undefined,
      onSlowConsumer: (c) => this.dropSlowConsumer(c),
      countSent: (type) => metrics.countSent(type),
    };
    metrics.setConnectionSource(() => ({ open: this.open.size, authenticated: connections.size }));
  }

  afterInit(): void {
    this.heartbeat = setInterval(() => this.beat(), this.config.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** Called synchronously on every upgraded socket: listeners are attached before any frame can arrive. */
  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    try {
      const connection = new ClientConnection(socket, this.hooks);
      this.open.add(connection);
      socket.on('error', (err: Error & { code?: string }) => this.onSocketError(connection, err));
      socket.on('pong', () => connection.onPong());
      socket.on('message', (data: RawData, isBinary: boolean) => this.onFrame(connection, data, isBinary));
      socket.once('close', (code: number) => this.onClose(connection, code));
      this.authenticator.start(connection, request);
      if (connection.awaitingAuthFrame) this.tokenless.add(connection);
    } catch (err) {
      this.logger.error(`connection setup failed: ${err instanceof Error ? err.stack : String(err)}`);
      socket.terminate();
    }
  }

  /** Open connections of this node, authenticated or not. */
  get connections(): ReadonlySet<ClientConnection> {
    return this.open;
  }

  /**
   * Graceful shutdown: closes every open connection with 1001, spread evenly over `windowMs` so that
   * clients do not all reconnect at once, and ends their sessions (DISCONNECT reaches the other nodes).
   * Resolves when all are closed.
   */
  async drain(windowMs: number): Promise<void> {
    const connections = [...this.open];
    if (connections.length === 0) return;
    this.logger.log(`draining ${connections.length} connections over ${windowMs} ms`);
    const step = connections.length > 1 ? windowMs / connections.length : 0;
    const start = Date.now();
    for (let i = 0; i < connections.length; i++) {
      const wait = start + i * step - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const connection = connections[i];
      if (!this.open.has(connection)) continue;
      connection.close(CloseCode.GOING_AWAY, 'server shutting down');
      await this.presence.leave(connection).catch((err: unknown) => this.logger.warn({ connId: connection.id, err: String(err) }, 'leave failed'));
    }
  }

  onApplicationShutdown(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  private onFrame(connection: ClientConnection, data: RawData, isBinary: boolean): void {
    connection.inbound.charge(byteLength(data), Date.now());
    // Closing: what it still sends is read within its budget (to reach its close frame), not looked at.
    if (connection.closeCode !== undefined) return;
    if (!connection.authenticated) {
      // Before AUTH SUCCESS: only a token-bearing AUTH_MESSAGE counts; everything else is discarded.
      if (!this.authenticator.onFrameBeforeAuth(connection, data, isBinary)) this.metrics.droppedBeforeAuth.inc();
      return;
    }
    const verdict = connection.limiter!.take(Date.now());
    if (verdict !== RateVerdict.ALLOW) {
      this.metrics.rateLimited.inc();
      connection.send(RATE_LIMITED_FRAME);
      if (verdict === RateVerdict.FLOOD) {
        this.logger.warn({ connId: connection.id }, 'flooding: closed');
        connection.close(CloseCode.FLOODING, 'flooding');
        this.leave(connection);
      }
      return;
    }
    if (!this.router.route(connection, data, isBinary)) {
      this.logger.warn({ connId: connection.id }, 'inbound queue overflow: closed');
      this.metrics.rateLimited.inc();
      connection.close(CloseCode.FLOODING, 'too much data queued');
      this.leave(connection);
    }
  }

  /**
   * A protocol violation detected by `ws` (it then closes the socket itself, and the close event
   * reports 1006): remember the code ws sent to the peer, for metrics and logs.
   */
  private onSocketError(connection: ClientConnection, err: Error & { code?: string }): void {
    const code = err.code !== undefined ? WS_ERROR_CLOSE_CODES[err.code] ?? 1002 : undefined;
    if (code !== undefined && connection.closeCode === undefined) connection.closeCode = code;
    this.logger.log({ connId: connection.id, closeCode: code, err: err.code ?? err.message }, 'socket error');
  }

  private onClose(connection: ClientConnection, code: number): void {
    connection.closed();
    connection.queue.length = 0;
    connection.queuedBytes = 0;
    this.open.delete(connection);
    this.tokenless.delete(connection);
    this.gaveWay.delete(connection);
    const closeCode = connection.closeCode ?? code;
    this.metrics.disconnects.inc({ code: String(closeCode) });
    this.logger.debug({ connId: connection.id, closeCode }, 'closed');
    this.leave(connection);
  }

  private leave(connection: ClientConnection): void {
    this.presence.leave(connection).catch((err: unknown) => this.logger.error({ connId: connection.id, err: String(err) }, 'leave failed'));
  }

  get openCount(): number {
    return this.open.size - this.gaveWay.size;
  }

  /** The node is full and a login is knocking: the oldest idle token-less connection gives way. */
  makeRoom(): boolean {
    for (const connection of this.tokenless) {
      this.tokenless.delete(connection);
      if (connection.awaitingAuthFrame && !connection.authStarted && connection.closeCode === undefined) {
        this.gaveWay.add(connection);
        this.authenticator.giveWay(connection);
        return true;
      }
    }
    return false;
  }

  /** Slow consumer: a best-effort 4413, the socket cut soon after, and DISCONNECT at once. */
  private dropSlowConsumer(connection: ClientConnection): void {
    if (connection.closeCode !== undefined) return;
    this.metrics.slowConsumerDrops.inc();
    this.logger.warn({ connId: connection.id }, 'slow consumer: send buffer overflow, dropped');
    connection.close(CloseCode.SLOW_CONSUMER, 'send buffer overflow');
    setTimeout(() => connection.socket.terminate(), 1000).unref();
    this.leave(connection);
  }

  /** A peer that has not answered the previous ping is dropped (no close frame: it sees 1006). */
  private beat(): void {
    for (const connection of this.open) {
      if (!connection.alive) {
        this.logger.log({ connId: connection.id }, 'heartbeat missed: dropped');
        connection.terminate(1006);
        continue;
      }
      connection.alive = false;
      try {
        connection.socket.ping();
      } catch {
        // closing: the close event does the rest
      }
    }
  }
}

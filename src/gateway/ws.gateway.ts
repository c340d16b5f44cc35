import type { IncomingMessage } from 'node:http';
import { Inject, Logger, OnApplicationShutdown } from '@nestjs/common';
import { OnGatewayConnection, OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { PresenceService } from '../presence/presence.service';
import { CloseCode } from '../protocol/protocol';
import { Authenticator } from './authenticator';
import { ClientConnection } from './client-connection';
import { MessageRouter } from './message-router';

/**
 * The WebSocket endpoint. Thin by design: it authenticates new connections (Authenticator),
 * registers them (PresenceService), routes their frames (MessageRouter) and keeps them alive
 * (heartbeat); all message logic lives in the feature modules.
 */
@WebSocketGateway({ path: '/ws' })
export class WsGateway implements OnGatewayInit, OnGatewayConnection, OnApplicationShutdown {
  private readonly logger = new Logger(WsGateway.name);
  private readonly open = new Set<ClientConnection>();
  private heartbeat?: NodeJS.Timeout;
  private server?: WebSocketServer;

  constructor(
    private readonly authenticator: Authenticator,
    private readonly router: MessageRouter,
    private readonly presence: PresenceService,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  afterInit(server: WebSocketServer): void {
    this.server = server;
    this.heartbeat = setInterval(() => this.beat(), this.config.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** Called synchronously on every upgraded socket: listeners are attached before any frame can arrive. */
  handleConnection(socket: WebSocket, request: IncomingMessage): void {
    try {
      const connection = new ClientConnection(socket, this.config, (c) => this.dropSlowConsumer(c));
      this.open.add(connection);
      socket.on('pong', () => (connection.alive = true));
      socket.on('message', (data: RawData, isBinary: boolean) => this.onFrame(connection, data, isBinary));
      socket.once('close', (code: number) => this.onClose(connection, code));
      this.authenticator.start(connection, request);
    } catch (err) {
      this.logger.error(`connection setup failed: ${err instanceof Error ? err.stack : String(err)}`);
      socket.terminate();
    }
  }

  /** Open connections of this node, authenticated or not. */
  get connectionCount(): number {
    return this.open.size;
  }

  get connections(): ReadonlySet<ClientConnection> {
    return this.open;
  }

  onApplicationShutdown(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  private onFrame(connection: ClientConnection, data: RawData, isBinary: boolean): void {
    if (connection.authenticated) {
      this.router.route(connection, data, isBinary);
    } else {
      // Before AUTH SUCCESS: only a token-bearing AUTH_MESSAGE counts; everything else is discarded.
      this.authenticator.onFrameBeforeAuth(connection, data, isBinary);
    }
  }

  private onClose(connection: ClientConnection, code: number): void {
    connection.clearTimers();
    connection.queue.length = 0;
    this.open.delete(connection);
    this.logger.debug({ connId: connection.id, closeCode: connection.closeCode ?? code }, 'closed');
    this.presence.leave(connection).catch((err: unknown) => this.logger.error({ connId: connection.id, err: String(err) }, 'leave failed'));
  }

  /** Slow consumer: a best-effort 4413, the socket cut soon after, and DISCONNECT at once. */
  private dropSlowConsumer(connection: ClientConnection): void {
    if (connection.closeCode !== undefined) return;
    this.logger.warn({ connId: connection.id }, 'slow consumer: send buffer overflow, dropped');
    connection.close(CloseCode.SLOW_CONSUMER, 'send buffer overflow');
    setTimeout(() => connection.socket.terminate(), 1000).unref();
    this.presence.leave(connection).catch((err: unknown) => this.logger.error({ connId: connection.id, err: String(err) }, 'leave failed'));
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

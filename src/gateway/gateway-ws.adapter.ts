import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { GatewayConfig } from '../config/gateway-config';
import { rawHttpRefusal } from '../http/gateway-http.adapter';
import type { ChatClient } from '../messaging/chat-client';
import { PROTOCOL_SUBPROTOCOL } from '../protocol/protocol';
import { Admission } from './admission';
import { GatewaySocket } from './gateway-socket';
import { normalizeSubprotocolHeader } from './subprotocol-header';
import { WsGateway } from './ws.gateway';

const NOSNIFF = { 'X-Content-Type-Options': 'nosniff' };

/** The options a `@WebSocketGateway()` may give and still share the app's one endpoint. */
const SHARED_ENDPOINT_OPTIONS = new Set(['path', 'cors', 'transports']);

/**
 * platform-ws with the gateway's settings: one endpoint at WS_PATH on the app's port, a bounded
 * maxPayload (never ws's 100 MiB default), no compression, `mpgp.v1` selected whenever offered
 * (never a token entry), Origin and capacity checked before the upgrade.
 *
 * Every `@WebSocketGateway()` of the app shares that one endpoint: a feature module's own gateway
 * gets the same server, its `handleConnection(client)` and `handleDisconnect(client)` get the
 * ChatClient (the object its handlers get with `@ConnectedSocket()`), and its `@SubscribeMessage`
 * handlers are routed by MessageRouter (with login, rate limits and order), not bound per
 * connection. A gateway that asks for another port, path or a namespace is refused at start with
 * an error that says so.
 */
export class GatewayWsAdapter extends WsAdapter {
  private readonly log = new Logger('WebSocket');
  private server?: WebSocketServer;
  private gateway?: WsGateway;

  constructor(
    private readonly app: INestApplicationContext,
    private readonly config: GatewayConfig,
  ) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> = {}): WebSocketServer {
    this.refuseOtherEndpoints(port, options);
    if (this.server) return this.server;
    const admission = this.app.get(Admission);
    const gateway = (this.gateway = this.app.get(WsGateway));
    // Before ws reads it (the adapter's own 'upgrade' listener): a token entry that is not an HTTP
    // token is an invalid token ("2"), not an HTTP 400 (PROTOCOL.md: the upgrade succeeds whatever the token).
    (this.httpServer as Server | undefined)?.prependListener('upgrade', (request: IncomingMessage) => normalizeSubprotocolHeader(request));
    const server = super.create(port, {
      path: this.config.wsPath,
      maxPayload: this.config.maxFrameBytes,
      perMessageDeflate: false,
      // The gateway keeps the open connections (and their events come to it without listeners):
      // ws's own client set would cost every connection a 'close' listener, its closure and a set entry.
      clientTracking: false,
      WebSocket: GatewaySocket,
      handleProtocols: (protocols: Set<string>) => (protocols.has(PROTOCOL_SUBPROTOCOL) ? PROTOCOL_SUBPROTOCOL : false),
      verifyClient: (
        info: { req: IncomingMessage },
        done: (ok: boolean, status?: number, message?: string, headers?: Record<string, string>) => void,
      ) => {
        const verdict = admission.check(info.req);
        done(verdict.ok, verdict.status, verdict.message, NOSNIFF);
      },
    }) as WebSocketServer;
    // ws's own refusals (a bad Sec-WebSocket-Protocol or -Key, ...) answered here, with nosniff.
    server.on('wsClientError', (err: Error, socket: Duplex) => {
      socket.once('finish', () => socket.destroy());
      socket.end(rawHttpRefusal(400, err.message));
    });
    // The gateway takes every connection first (listeners attached before any frame can arrive),
    // before the connection hooks of any gateway run.
    server.on('connection', (socket: GatewaySocket, request: IncomingMessage) => gateway.accept(socket, request));
    this.server = server;
    return server;
  }

  /** A gateway's connection hook gets the ChatClient, not the raw socket. */
  override bindClientConnect(server: WebSocketServer, callback: (...args: unknown[]) => void): void {
    server.on('connection', (socket: GatewaySocket, request: IncomingMessage) => {
      const client = this.gateway?.clientOf(socket);
      if (client) callback(client, request);
    });
  }

  /** Frames are routed by MessageRouter (in order, after login, within the limits), never bound per connection. */
  override bindMessageHandlers(): void {
    // intentionally empty: see MessageRouter
  }

  /** A gateway's disconnect hook, called once the connection is gone, with its ChatClient. */
  override bindClientDisconnect(client: ChatClient, callback: () => void): void {
    client.onClosed(callback);
  }

  /** Closes the server and drops the sockets still open (ws keeps no client set here: clientTracking is off). */
  override async close(server: WebSocketServer): Promise<void> {
    const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    if (server === this.server) this.gateway?.terminateAll();
    await closed;
  }

  /** Socket errors are handled per connection by WsGateway (with its connection id). */
  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('error', (err) => this.log.error(err));
    return server;
  }

  private refuseOtherEndpoints(port: number, options: Record<string, unknown>): void {
    const path = options.path;
    const foreign = Object.keys(options).filter((key) => !SHARED_ENDPOINT_OPTIONS.has(key) && options[key] !== undefined);
    const otherPath = path !== undefined && path !== '/ws' && path !== this.config.wsPath;
    if (port !== 0 || otherPath || foreign.length > 0) {
      throw new Error(
        `@WebSocketGateway(${port !== 0 ? `${port}, ` : ''}${JSON.stringify(options)}): this app serves one WebSocket endpoint, ` +
          `${this.config.wsPath} (WS_PATH) on the app's port, shared by every gateway; declare the gateway with ` +
          '`@WebSocketGateway()` (no port, path or namespace) and its `@SubscribeMessage` handlers join the protocol\'s message types',
      );
    }
  }
}

import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { rawHttpRefusal } from '../http/gateway-http.adapter';
import type { GatewayConfig } from '../config/gateway-config';
import { PROTOCOL_SUBPROTOCOL } from '../protocol/protocol';
import { Admission } from './admission';

const NOSNIFF = { 'X-Content-Type-Options': 'nosniff' };

/**
 * platform-ws with the gateway's settings: the path from WS_PATH, a bounded maxPayload (never ws's
 * 100 MiB default), no compression, `mpgp.v1` selected whenever offered (never a token entry),
 * Origin and capacity checked before the upgrade. The gateway reads frames itself (see
 * MessageRouter), so the adapter binds no per-connection observable pipelines.
 */
export class GatewayWsAdapter extends WsAdapter {
  private readonly log = new Logger('WebSocket');

  constructor(
    private readonly app: INestApplicationContext,
    private readonly config: GatewayConfig,
  ) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> = {}): WebSocketServer {
    const admission = this.app.get(Admission);
    const wsOptions = {
      ...options,
      path: this.config.wsPath,
      maxPayload: this.config.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: true,
      handleProtocols: (protocols: Set<string>) => (protocols.has(PROTOCOL_SUBPROTOCOL) ? PROTOCOL_SUBPROTOCOL : false),
      verifyClient: (
        info: { req: IncomingMessage },
        done: (ok: boolean, status?: number, message?: string, headers?: Record<string, string>) => void,
      ) => {
        const verdict = admission.check(info.req);
        done(verdict.ok, verdict.status, verdict.message, NOSNIFF);
      },
    };
    const server = super.create(port, wsOptions) as WebSocketServer;
    // ws's own refusals (a bad Sec-WebSocket-Protocol or -Key, ...) answered here, with nosniff.
    server.on('wsClientError', (err: Error, socket: Duplex) => {
      socket.once('finish', () => socket.destroy());
      socket.end(rawHttpRefusal(400, err.message));
    });
    return server;
  }

  /** Frames are read by the gateway itself, in order, one connection at a time. */
  override bindMessageHandlers(): void {
    // intentionally empty: see MessageRouter
  }

  /**
   * WsGateway has no handleDisconnect: it listens for 'close' on each socket itself. Nest's
   * binding would keep one more closure and listener per connection, for nothing.
   */
  override bindClientDisconnect(): void {
    // intentionally empty: see WsGateway.handleConnection
  }

  /** Socket errors are handled per connection by WsGateway (with its connection id). */
  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('error', (err) => this.log.error(err));
    return server;
  }
}

import { createRequire } from 'node:module';
import type * as WsModule from 'ws';
import type { RawData } from 'ws';

/**
 * The `ws` package @nestjs/platform-ws makes its servers with (it pins a version of its own): the
 * socket class below must extend that package's WebSocket, the one its server constructs.
 */
const ws = createRequire(require.resolve('@nestjs/platform-ws'))('ws') as typeof WsModule;

/** Who gets the events of a socket the gateway accepted. */
export interface SocketEvents {
  onSocketMessage(data: RawData, isBinary: boolean): void;
  onSocketPong(): void;
  onSocketClose(code: number): void;
  onSocketError(err: Error & { code?: string }): void;
}

/**
 * The WebSocket class of the gateway's server (ws's `WebSocket` option): `ws`'s own, whose
 * 'message', 'pong', 'close' and 'error' events go straight to the gateway's record of the
 * connection, with no listener on the socket. Four listeners cost every connection a dictionary of
 * 256 bytes for as long as it is open (its `_events`), with no listener it keeps the small empty
 * one; at 10,000 idle connections that is 2 MiB. Listeners anyone else adds still get every event.
 */
export class GatewaySocket extends ws.WebSocket {
  /** Set by the gateway when it accepts the socket (synchronously, before any frame is read). */
  events?: SocketEvents = undefined;

  /**
   * Two arguments at most: no event of `ws`'s WebSocket carries more ('message': data, isBinary;
   * 'close': code, reason). Fixed, so that a frame costs no rest-argument array on its way in.
   */
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const events = this.events;
    if (events !== undefined) {
      switch (event) {
        case 'message':
          events.onSocketMessage(a as RawData, b as boolean);
          break;
        case 'pong':
          events.onSocketPong();
          break;
        case 'close':
          events.onSocketClose(a as number);
          break;
        case 'error':
          events.onSocketError(a as Error & { code?: string });
          // Handled: an 'error' without a listener must not throw (EventEmitter's rule).
          if (this.listenerCount('error') === 0) return true;
          break;
      }
    }
    return super.emit(event, a, b);
  }
}

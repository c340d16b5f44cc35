import { createServer, STATUS_CODES, type IncomingMessage, type ServerOptions, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { NestApplicationOptions } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';

export interface HttpLimits {
  /** HEADERS_TIMEOUT_MS: a request (an upgrade included) whose headers have not all arrived by then is dropped. */
  readonly headersTimeoutMs: number;
}

export const NOSNIFF_HEADER = 'X-Content-Type-Options';

/** Express middleware: every HTTP answer of the app carries `X-Content-Type-Options: nosniff`. */
export function nosniff(_req: IncomingMessage, res: ServerResponse, next: () => void): void {
  res.setHeader(NOSNIFF_HEADER, 'nosniff');
  next();
}

/**
 * Nest's Express adapter with an HTTP server that does not wait for slow headers: Node's default
 * keeps a half-sent request (an upgrade whose headers trickle in) for a minute and checks only
 * every 30 s. Node's own answers to such requests (408, 400, 431) get `nosniff` too.
 */
export class GatewayHttpAdapter extends ExpressAdapter {
  constructor(private readonly limits: HttpLimits) {
    super();
  }

  override initHttpServer(options: NestApplicationOptions): void {
    if (options?.httpsOptions) {
      super.initHttpServer(options);
    } else {
      this.setHttpServer(createServer(httpServerOptions(this.limits), this.getInstance()));
      if (options?.forceCloseConnections) (this as unknown as { trackOpenConnections(): void }).trackOpenConnections();
    }
    this.getHttpServer().on('clientError', answerClientError);
  }
}

/** The node HTTP server options of the gateway's listeners (the public one, and the Server API's). */
export function httpServerOptions(limits: HttpLimits): ServerOptions {
  const headersTimeout = limits.headersTimeoutMs;
  return {
    headersTimeout,
    requestTimeout: Math.max(300_000, headersTimeout),
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
  };
}

/**
 * The raw HTTP answer written on a socket that never reached Express (a malformed or slow request,
 * a refused upgrade): `Connection: close` and `nosniff`, the message as plain text.
 */
export function rawHttpRefusal(status: number, message = STATUS_CODES[status] ?? ''): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(message)}\r\n${NOSNIFF_HEADER}: nosniff\r\n\r\n${message}`
  );
}

/** Node's answers to requests it cannot parse or that are too slow, with nosniff (see Node's socketOnError). */
export function answerClientError(err: Error & { code?: string }, socket: Duplex & { bytesWritten?: number }): void {
  if (err.code !== 'ECONNRESET' && socket.writable && !socket.bytesWritten) {
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    socket.write(rawHttpRefusal(status));
  }
  socket.destroy(err);
}

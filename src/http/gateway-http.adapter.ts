import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
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
 * every 30 s. Refusals written on an upgrading socket (by `ws`, before any Express code runs)
 * get `nosniff` too.
 */
export class GatewayHttpAdapter extends ExpressAdapter {
  constructor(private readonly limits: HttpLimits) {
    super();
  }

  override initHttpServer(options: NestApplicationOptions): void {
    if (options?.httpsOptions) {
      super.initHttpServer(options);
    } else {
      const headersTimeout = this.limits.headersTimeoutMs;
      this.setHttpServer(
        createServer(
          {
            headersTimeout,
            requestTimeout: Math.max(300_000, headersTimeout),
            connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
          },
          this.getInstance(),
        ),
      );
      if (options?.forceCloseConnections) (this as unknown as { trackOpenConnections(): void }).trackOpenConnections();
    }
    this.getHttpServer().prependListener('upgrade', (_req: unknown, socket: Duplex) => nosniffOnRefusal(socket));
  }
}

/** Adds the nosniff header to an HTTP refusal written on an upgrading socket (never to the 101). */
export function nosniffOnRefusal(socket: Duplex): void {
  const write = socket.write;
  socket.write = function (this: Duplex, chunk: unknown, ...rest: unknown[]): boolean {
    socket.write = write; // only the first write is the HTTP answer
    if (typeof chunk === 'string' && chunk.startsWith('HTTP/1.1 ') && !chunk.startsWith('HTTP/1.1 101')) {
      const endOfStatus = chunk.indexOf('\r\n');
      if (endOfStatus > 0 && !/^x-content-type-options:/im.test(chunk)) {
        chunk = `${chunk.slice(0, endOfStatus + 2)}${NOSNIFF_HEADER}: nosniff\r\n${chunk.slice(endOfStatus + 2)}`;
      }
    }
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Duplex['write'];
}

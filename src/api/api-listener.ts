import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { answerClientError, httpServerOptions } from '../http/gateway-http.adapter';
import { MetricsService } from '../observability/metrics.service';
import { API_OPTIONS, type ApiOptions } from './api.options';

/** Marks the requests that arrived through the Server API's listener. */
const VIA_API = Symbol('viaServerApi');
/** The body of a Server API request, read (bounded) before Nest's own body parser could. */
const API_BODY = Symbol('serverApiBody');

type ApiRequest = IncomingMessage & { [VIA_API]?: true; [API_BODY]?: Buffer; route?: { path?: unknown } };

/** True when the request came in through the Server API's listener (API_HOST:API_PORT). */
export function viaApiListener(req: IncomingMessage): boolean {
  return (req as ApiRequest)[VIA_API] === true;
}

/** The body bytes of a Server API request (empty when it had none). */
export function apiBodyOf(req: IncomingMessage): Buffer {
  return (req as ApiRequest)[API_BODY] ?? EMPTY;
}

const EMPTY = Buffer.alloc(0);

/**
 * True for a path the Server API owns: `/api` and below, compared as Express's router could match
 * it (case-insensitive) and percent-decoded, so that no spelling of an API path is served publicly.
 */
export function isApiPath(url: string | undefined): boolean {
  let path = url ?? '/';
  const query = path.indexOf('?');
  if (query >= 0) path = path.slice(0, query);
  if (path.includes('%')) {
    try {
      path = decodeURIComponent(path);
    } catch {
      // not decodable: as written
    }
  }
  path = path.toLowerCase();
  return path === '/api' || path.startsWith('/api/');
}

/** The answer of a path that is not served here: what Nest answers for a route it does not have. */
function notFound(req: IncomingMessage, res: ServerResponse): void {
  writeJson(res, 404, { message: `Cannot ${req.method} ${(req.url ?? '/').split('?')[0]}`, error: 'Not Found', statusCode: 404 });
}

function writeJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.setHeader('Cache-Control', 'no-store');
  if (close) res.setHeader('Connection', 'close');
  res.end(text);
}

/**
 * The Server API's own listener: a second node HTTP server (API_HOST:API_PORT) on the same Express
 * instance as the public one, so that the API's controllers reach the same providers (sessions,
 * chat, dialogs) as the WebSocket gateway: one Nest application, two listeners. It listens once
 * the application is initialized (app.listen / app.init) and is closed with the application.
 *
 * `middleware`, installed before Nest's body parser and routes (setup-server-api.ts), keeps the
 * two apart: the public listener never serves /api (404, as for any unknown path) and the API's
 * listener serves nothing else (404: no WebSocket, no /metrics, no demo page). For API requests it
 * reads the body, at most `bodyMaxBytes` (a larger one gets 413 unread), and counts the request in
 * gateway_api_requests_total by its route template.
 */
@Injectable()
export class ApiListener implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('ServerApi');
  private server: Server | undefined;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly metrics: MetricsService,
    @Inject(API_OPTIONS) private readonly options: ApiOptions,
  ) {}

  readonly middleware = (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const api = viaApiListener(req);
    if (api !== isApiPath(req.url)) {
      if (api) this.count(req, res);
      notFound(req, res);
      return;
    }
    if (!api) {
      next();
      return;
    }
    this.count(req, res);
    this.readBody(req, res, next);
  };

  /** Where the API listens (its port is the real one when API_PORT is 0); undefined before it listens. */
  address(): { host: string; port: number } | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? { host: address.address, port: address.port } : undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.port !== 0 && this.options.port === this.options.publicPort) {
      throw new Error(`API_PORT (${this.options.port}) must differ from PORT: the Server API has a listener of its own`);
    }
    const app = this.adapterHost.httpAdapter.getInstance<(req: IncomingMessage, res: ServerResponse) => void>();
    const server = createServer(httpServerOptions(this.options), (req, res) => {
      (req as ApiRequest)[VIA_API] = true;
      app(req, res);
    });
    // No 'upgrade' listener: an upgrade request on this port is a plain request (404 here).
    server.on('clientError', answerClientError);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const { host, port } = this.address()!;
    this.logger.log(`server API listening on ${host}:${port}`);
  }

  /** Stops taking API requests; requests in flight get up to a second to finish. */
  async onModuleDestroy(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), 1000);
    force.unref();
    await closed;
    clearTimeout(force);
  }

  private count(req: IncomingMessage, res: ServerResponse): void {
    res.once('finish', () => {
      // The route template Express matched (`/api/v1/users/:userId`), never the path itself.
      const template = (req as ApiRequest).route?.path;
      const route = typeof template === 'string' ? `${req.method} ${template}` : 'unmatched';
      this.metrics.apiRequests.inc({ route, status: String(res.statusCode) });
    });
  }

  /** Reads the body into the request (bounded), so that Nest's own parser finds it consumed. */
  private readBody(req: IncomingMessage, res: ServerResponse, next: () => void): void {
    const max = this.options.bodyMaxBytes;
    const tooLarge = () =>
      writeJson(res, 413, { error: `the body is larger than ${max} bytes (${STATUS_CODES[413]})`, fields: [] }, true);
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > max) {
      tooLarge();
      return;
    }
    if (declared === undefined && req.headers['transfer-encoding'] === undefined) {
      next();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        stop();
        req.pause();
        tooLarge();
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      (req as ApiRequest)[API_BODY] = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      next();
    };
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', stop);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    // An aborted request: nothing to answer.
    req.on('error', stop);
  }
}

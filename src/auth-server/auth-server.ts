/**
 * The reference authorization server: answers CHECK_TOKEN (see docs/protocol.md, "CHECK_TOKEN") from a
 * list of users, on plain node:http.
 *
 *   POST <any path, or opts.path>   {"type":"CHECK_TOKEN","authToken":"<token>"}
 *     200 {"type":"CHECK_TOKEN","status":"SUCCESS","serverData":{the seven profile fields}}
 *         (plus "expiresAt":"<Unix ms>" for a time-windowed token, `<token>~<issuedAt>`, of a user
 *         with `tokenTtlMs` in the users file: see src/demo-users/users.ts)
 *     200 {"type":"CHECK_TOKEN","status":"ERROR","error":{"errorCode":"1","message":"token not found"}}
 *         (also for an expired time-windowed token)
 *     400 malformed request, 413 body over 64 KiB, 415 not JSON content
 *   GET|HEAD /health, /health/live, /health/ready   200 {"status":"ok"}
 *   other methods                                   405 (with Allow)
 *
 * Tokens are never logged, echoed or put in an error message.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Status, UserProfile } from '../protocol/protocol';
import { DemoUser, UserDirectory } from '../demo-users/users';

export const CHECK_TOKEN_TYPE = 'CHECK_TOKEN';
/** Largest accepted request body. */
export const MAX_BODY_BYTES = 64 * 1024;
/**
 * A body over the limit is still read and discarded up to this many bytes in all, so the 413
 * reaches the client over a connection that stays usable; beyond it the connection is closed.
 */
const MAX_DRAIN_BYTES = 1024 * 1024;
export const HEALTH_PATHS: ReadonlySet<string> = new Set(['/health', '/health/live', '/health/ready']);
/** Idle keep-alive connections are kept this long; above the usual client idle timeouts (4-5 s). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** Bound on receiving a whole request, headers included. */
const REQUEST_TIMEOUT_MS = 15_000;
/** close() waits this long for in-flight requests before it cuts their connections. */
const CLOSE_GRACE_MS = 2_000;

export interface AuthServerOptions {
  users: readonly DemoUser[];
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When set, CHECK_TOKEN is served on this path only (404 elsewhere); by default on any path. */
  path?: string;
}

export interface AuthServerHandle {
  /** A URL to POST CHECK_TOKEN to (a wildcard bind address is replaced by loopback). */
  readonly url: string;
  readonly port: number;
  /** CHECK_TOKEN requests received so far (every POST to the endpoint, malformed ones included). */
  readonly requests: number;
  /** Stops listening, lets in-flight requests finish (briefly), closes every connection. */
  close(): Promise<void>;
}

export interface JsonReply {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

function errorReply(status: number, errorCode: string, message: string, headers?: Record<string, string>): JsonReply {
  return { status, body: { status: Status.ERROR, error: { errorCode, message } }, headers };
}

/** CHECK_TOKEN SUCCESS; with `expiresAt` (Unix ms, sent as a decimal string) for a token that expires. */
export function checkTokenSuccess(profile: UserProfile, expiresAt?: number): JsonReply {
  const serverData = expiresAt === undefined ? { ...profile } : { ...profile, expiresAt: String(expiresAt) };
  return { status: 200, body: { type: CHECK_TOKEN_TYPE, status: Status.SUCCESS, serverData } };
}

export function checkTokenNotFound(): JsonReply {
  return {
    status: 200,
    body: { type: CHECK_TOKEN_TYPE, status: Status.ERROR, error: { errorCode: '1', message: 'token not found' } },
  };
}

/** The answer to a parsed CHECK_TOKEN request body, at `now` (a time-windowed token may have expired). */
export function answerCheckToken(directory: UserDirectory, request: unknown, now: number = Date.now()): JsonReply {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    return errorReply(400, 'BAD_REQUEST', 'body must be a JSON object');
  }
  const { type, authToken } = request as Record<string, unknown>;
  if (type !== CHECK_TOKEN_TYPE) {
    return errorReply(400, 'BAD_REQUEST', `"type" must be "${CHECK_TOKEN_TYPE}"`);
  }
  if (typeof authToken !== 'string') {
    return errorReply(400, 'BAD_REQUEST', '"authToken" must be a string');
  }
  const grant = directory.grant(authToken, now);
  return grant === undefined ? checkTokenNotFound() : checkTokenSuccess(grant.profile, grant.expiresAt);
}

export type BodyResult =
  | { kind: 'ok'; body: Buffer }
  /** drained: the whole body was read, so the connection may be kept alive. */
  | { kind: 'too-large'; drained: boolean }
  | { kind: 'aborted' };

/** Reads a request body of at most `limit` bytes (see MAX_DRAIN_BYTES for larger ones). */
export function readBody(req: IncomingMessage, limit: number = MAX_BODY_BYTES): Promise<BodyResult> {
  return new Promise<BodyResult>((resolve) => {
    const drainLimit = Math.max(limit, MAX_DRAIN_BYTES);
    const declared = Number(req.headers['content-length']);
    if (declared > drainLimit) {
      resolve({ kind: 'too-large', drained: false });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: BodyResult): void => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > drainLimit) {
        req.pause();
        settle({ kind: 'too-large', drained: false });
      } else if (size <= limit) {
        chunks.push(chunk);
      } else {
        chunks.length = 0;
      }
    });
    req.on('end', () => {
      settle(size > limit ? { kind: 'too-large', drained: true } : { kind: 'ok', body: Buffer.concat(chunks, size) });
    });
    req.on('error', () => settle({ kind: 'aborted' }));
    req.on('close', () => settle({ kind: 'aborted' }));
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a JSON body; `undefined` with a 400 reply when it is not UTF-8 JSON. */
export function parseJsonBody(body: Buffer): { ok: true; value: unknown } | { ok: false; reply: JsonReply } {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ok: false, reply: errorReply(400, 'BAD_REQUEST', 'body is not valid UTF-8') };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, reply: errorReply(400, 'BAD_REQUEST', 'body is not valid JSON') };
  }
}

/** A missing Content-Type, application/json and any application/*+json are accepted. */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return true;
  const mediaType = header.split(';', 1)[0].trim().toLowerCase();
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}

export function sendJson(res: ServerResponse, reply: JsonReply, closeConnection = false): void {
  const payload = Buffer.from(JSON.stringify(reply.body), 'utf8');
  res.statusCode = reply.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', payload.length);
  res.setHeader('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  if (closeConnection) res.setHeader('Connection', 'close');
  res.end(res.req.method === 'HEAD' ? undefined : payload);
}

/** The path of a request target, without its query. */
export function requestPath(req: IncomingMessage): string {
  const target = req.url ?? '/';
  const end = target.search(/[?#]/);
  return end === -1 ? target : target.slice(0, end);
}

interface HandlerState {
  directory: UserDirectory;
  path: string | undefined;
  requests: number;
  closing: boolean;
}

async function handle(state: HandlerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = requestPath(req);
  if (HEALTH_PATHS.has(path)) {
    if (req.method === 'GET' || req.method === 'HEAD') {
      sendJson(res, { status: 200, body: { status: 'ok' } }, state.closing);
    } else {
      sendJson(res, errorReply(405, 'METHOD_NOT_ALLOWED', 'use GET', { Allow: 'GET, HEAD' }), state.closing);
    }
    return;
  }
  if (state.path !== undefined && path !== state.path) {
    sendJson(res, errorReply(404, 'NOT_FOUND', `CHECK_TOKEN is served at ${state.path}`), state.closing);
    return;
  }
  if (req.method !== 'POST') {
    sendJson(res, errorReply(405, 'METHOD_NOT_ALLOWED', 'use POST', { Allow: 'POST' }), state.closing);
    return;
  }
  state.requests += 1;
  if (!isJsonContentType(req.headers['content-type'])) {
    // The body is not read: close rather than leave it on a kept-alive connection.
    sendJson(res, errorReply(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json'), true);
    return;
  }
  const result = await readBody(req, MAX_BODY_BYTES);
  if (result.kind === 'aborted') return;
  if (result.kind === 'too-large') {
    const message = `body is larger than ${MAX_BODY_BYTES} bytes`;
    sendJson(res, errorReply(413, 'PAYLOAD_TOO_LARGE', message), state.closing || !result.drained);
    return;
  }
  const parsed = parseJsonBody(result.body);
  const reply = parsed.ok ? answerCheckToken(state.directory, parsed.value) : parsed.reply;
  sendJson(res, reply, state.closing);
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export async function startAuthServer(opts: AuthServerOptions): Promise<AuthServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  const path = opts.path;
  if (path !== undefined && !path.startsWith('/')) {
    throw new Error(`auth server path must start with "/", got ${JSON.stringify(path)}`);
  }
  const state: HandlerState = { directory: new UserDirectory(opts.users), path, requests: 0, closing: false };
  const server = createServer(
    { keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS },
    (req, res) => {
      handle(state, req, res).catch(() => {
        // Unexpected: answer 500 without details (they could quote request data).
        if (!res.headersSent) sendJson(res, errorReply(500, 'INTERNAL', 'internal error'), true);
        else res.destroy();
      });
    },
  );
  // A client whose request is malformed at the HTTP level: answer 400 when possible, never crash.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  await listen(server, opts.port ?? 0, host);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${urlHost(host)}:${port}${path ?? '/'}`;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve, reject) => {
      state.closing = true;
      const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      force.unref();
      server.close((err) => {
        clearTimeout(force);
        if (err) reject(err);
        else resolve();
      });
      server.closeIdleConnections();
    });
    return closed;
  };

  return {
    url,
    port,
    get requests() {
      return state.requests;
    },
    close,
  };
}

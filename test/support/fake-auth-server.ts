/**
 * A programmable CHECK_TOKEN server for fault tests. Its url stays the same whatever the mode:
 *
 *   normal                  like the reference server (src/auth-server) with the given users
 *   slow                    like normal, after delayMs (setMode('slow', { delayMs }))
 *   down                    nothing listens on the port: connections are refused
 *   hang                    reads the request, never answers
 *   status500/401/404/418   that HTTP status, with a small body
 *   status302               302 to /redirected on this server (a client that follows it makes
 *                           a second request, visible in `requests`)
 *   garbage                 200, Content-Type application/json, a body that is not JSON
 *   success-without-userid  200 SUCCESS whose serverData has every profile field but userId
 *   error-status            200 status ERROR, whatever the token
 *   status400/408/413/429   that HTTP status, with a small body (4xx a token can cause, and the
 *                           two that mean "not now")
 *
 * Entering `down` (and close) destroys every open connection, hanging ones included.
 * `inFlight` / `maxInFlight` count requests received and not yet answered, to check a bound on
 * the load the gateway puts on its authorization server.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import {
  answerCheckToken,
  CHECK_TOKEN_TYPE,
  JsonReply,
  parseJsonBody,
  readBody,
  requestPath,
  sendJson,
} from '../../src/auth-server/auth-server';
import { DemoUser, loadUsers, UserDirectory } from '../../src/auth-server/users';
import { Status } from '../../src/protocol/protocol';

export const FAKE_AUTH_MODES = [
  'normal',
  'down',
  'hang',
  'status500',
  'status401',
  'status404',
  'status302',
  'status418',
  'garbage',
  'success-without-userid',
  'error-status',
  'slow',
  'status400',
  'status408',
  'status413',
  'status429',
] as const;
export type FakeAuthMode = (typeof FAKE_AUTH_MODES)[number];

export interface FakeAuthOptions {
  /** Default: the bundled demo users (alice-token ... dave-token). */
  users?: readonly DemoUser[];
  /** Default 'normal'. */
  mode?: FakeAuthMode;
  /** Delay of the 'slow' mode, default 1000 ms. */
  delayMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface FakeAuthServer {
  readonly url: string;
  readonly port: number;
  readonly mode: FakeAuthMode;
  /** Requests received on any path, in any mode (none arrive while down). */
  readonly requests: number;
  /** The last request received, with its body. */
  readonly lastRequest: RecordedRequest | undefined;
  /** Requests received and not yet answered (nor abandoned by the client), now. */
  readonly inFlight: number;
  /** The most requests in flight at once since start or the last `resetRequests()`. */
  readonly maxInFlight: number;
  /** Switches mode; resolves once the new mode is in effect (listening again after `down`). */
  setMode(mode: FakeAuthMode, options?: { delayMs?: number }): Promise<void>;
  /** Zeroes `requests`; `maxInFlight` starts again from the requests in flight now. */
  resetRequests(): void;
  /** Closes for good: every connection is destroyed, pending slow answers are dropped. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

function statusReply(status: number): JsonReply {
  return { status, body: { status: Status.ERROR, error: { errorCode: String(status), message: `forced ${status}` } } };
}

class FakeAuth implements FakeAuthServer {
  readonly url: string;
  requests = 0;
  lastRequest: RecordedRequest | undefined;
  inFlight = 0;
  maxInFlight = 0;
  private current: FakeAuthMode = 'normal';
  private delayMs: number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private transition: Promise<void> = Promise.resolve();

  constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly directory: UserDirectory,
    delayMs: number,
  ) {
    this.url = `http://${HOST}:${port}/`;
    this.delayMs = delayMs;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch(() => res.destroy());
    });
  }

  get mode(): FakeAuthMode {
    return this.current;
  }

  setMode(mode: FakeAuthMode, options: { delayMs?: number } = {}): Promise<void> {
    if (!FAKE_AUTH_MODES.includes(mode)) {
      return Promise.reject(new Error(`unknown fake auth mode ${JSON.stringify(mode)}`));
    }
    if (options.delayMs !== undefined) this.delayMs = options.delayMs;
    // Serialize transitions (down -> normal -> down must not interleave listen and close); one
    // that failed does not block the next.
    this.transition = this.transition.catch(() => undefined).then(async () => {
      if (this.closed) throw new Error('fake auth server is closed');
      const wasDown = this.current === 'down';
      this.current = mode;
      if (mode === 'down' && !wasDown) await this.stopListening();
      if (mode !== 'down' && wasDown) await this.listen();
    });
    return this.transition;
  }

  resetRequests(): void {
    this.requests = 0;
    this.maxInFlight = this.inFlight;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.transition.catch(() => undefined);
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.server.listening) await this.stopListening();
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, HOST, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  private stopListening(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.close((err) => (err ? reject(err) : resolve()));
      this.server.closeAllConnections();
    });
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  /**
   * Counts the request in flight until its answer is handed to the socket (`end`, before the
   * client can read it and send another request) or the exchange ends without one.
   */
  private trackInFlight(res: ServerResponse): void {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let open = true;
    const done = (): void => {
      if (!open) return;
      open = false;
      this.inFlight -= 1;
    };
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      done();
      return end(...args);
    }) as unknown as ServerResponse['end'];
    res.once('close', done);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests += 1;
    this.trackInFlight(res);
    const mode = this.current;
    const body = await readBody(req);
    if (body.kind === 'aborted') return;
    const text = body.kind === 'ok' ? body.body.toString('utf8') : '';
    this.lastRequest = { method: req.method ?? '', path: requestPath(req), headers: req.headers, body: text };
    if (body.kind === 'too-large') {
      sendJson(res, statusReply(413), true);
      return;
    }

    switch (mode) {
      case 'normal':
      case 'down': // a request that arrived just before the listener closed
        sendJson(res, this.answer(body.body));
        return;
      case 'slow':
        this.later(this.delayMs, () => {
          if (!res.destroyed) sendJson(res, this.answer(body.body));
        });
        return;
      case 'hang':
        return;
      case 'status500':
        sendJson(res, statusReply(500));
        return;
      case 'status401':
        sendJson(res, statusReply(401));
        return;
      case 'status404':
        sendJson(res, statusReply(404));
        return;
      case 'status400':
        sendJson(res, statusReply(400));
        return;
      case 'status408':
        sendJson(res, statusReply(408));
        return;
      case 'status413':
        sendJson(res, statusReply(413));
        return;
      case 'status429':
        sendJson(res, { ...statusReply(429), headers: { 'Retry-After': '1' } });
        return;
      case 'status302':
        sendJson(res, { ...statusReply(302), headers: { Location: '/redirected' } });
        return;
      case 'status418':
        res.writeHead(418, { 'Content-Type': 'text/plain; charset=utf-8' }).end("I'm a teapot");
        return;
      case 'garbage':
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('<html>this is not JSON</html>');
        return;
      case 'success-without-userid': {
        const serverData = {
          nickname: 'ghost',
          avatar: '',
          language: 'en',
          status: '',
          lastOnline: '',
          registerDate: '',
        };
        sendJson(res, { status: 200, body: { type: CHECK_TOKEN_TYPE, status: Status.SUCCESS, serverData } });
        return;
      }
      case 'error-status':
        sendJson(res, {
          status: 200,
          body: {
            type: CHECK_TOKEN_TYPE,
            status: Status.ERROR,
            error: { errorCode: '2', message: 'forced error' },
          },
        });
        return;
      default: {
        const unreachable: never = mode;
        throw new Error(`unhandled mode ${String(unreachable)}`);
      }
    }
  }

  private answer(body: Buffer): JsonReply {
    const parsed = parseJsonBody(body);
    return parsed.ok ? answerCheckToken(this.directory, parsed.value) : parsed.reply;
  }
}

export async function startFakeAuthServer(opts: FakeAuthOptions = {}): Promise<FakeAuthServer> {
  const directory = new UserDirectory(opts.users ?? loadUsers());
  const server = createServer({ keepAliveTimeout: 65_000 });
  // Bind port 0 once to get a port; it is reused by every later listen (leaving `down`).
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const fake = new FakeAuth(server, (server.address() as AddressInfo).port, directory, opts.delayMs ?? 1_000);
  if (opts.mode !== undefined && opts.mode !== 'normal') await fake.setMode(opts.mode);
  return fake;
}

/**
 * HTTP from the tests' side: requests over a fresh connection each (no keep-alive, so nothing holds
 * an app open after its test), the path sent exactly as given, and WebSocket upgrades reported at
 * the HTTP level (to read a refusal's status).
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import WebSocket from 'ws';

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as UTF-8 text. */
  body: string;
  /** The body as received. */
  bytes: Buffer;
}

export interface HttpOptions {
  /** Default GET. */
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The request fails with "client timeout" after this long (default 5 s). */
  timeoutMs?: number;
  /** The client's source address (a loopback one: 127.0.0.2, ...). */
  localAddress?: string;
}

/**
 * One request over its own connection (`Connection: close`). `url` may be a base URL with a
 * `rawPath` sent exactly as given (no client-side dot-segment normalization).
 */
export function httpRequest(url: string, options: HttpOptions = {}, rawPath?: string): Promise<HttpReply> {
  const { method = 'GET', headers = {}, body, timeoutMs = 5000, localAddress } = options;
  const { hostname, port, pathname, search } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: hostname, port, path: rawPath ?? pathname + search, method, headers: { Connection: 'close', ...headers }, agent: false, localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bytes.toString('utf8'), bytes });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: client timeout after ${timeoutMs} ms`)));
    req.end(body);
  });
}

/** A plain GET. */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<HttpReply> {
  return httpRequest(url, { headers });
}

/** A GET of `rawPath` on `baseUrl`, the path sent exactly as given (`/avatars/../etc`). */
export function rawGet(baseUrl: string, rawPath: string): Promise<HttpReply> {
  return httpRequest(baseUrl, {}, rawPath);
}

/** The HTTP status of a GET, 0 when nothing answers within `timeoutMs`. */
export function httpStatus(url: string, timeoutMs = 1000): Promise<number> {
  return httpRequest(url, { timeoutMs }).then(
    (reply) => reply.status,
    () => 0,
  );
}

export interface UpgradeOutcome {
  /** 101 when the upgrade succeeded, else the HTTP status of the refusal. */
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Attempts a WebSocket upgrade with a real `ws` client and reports how it ended at the HTTP level.
 * A successful upgrade is closed at once (without waiting for any AUTH_MESSAGE).
 */
export function tryUpgrade(url: string, headers: Record<string, string> = {}): Promise<UpgradeOutcome> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers });
        socket.terminate();
      });
    });
    socket.once('open', () => {
      resolve({ status: 101, body: '', headers: {} });
      socket.terminate();
    });
    socket.once('error', (err) => reject(err));
  });
}

/**
 * An upgrade request with the headers exactly as given: `ws` clients and browsers refuse to send a
 * subprotocol that is not an HTTP token, so such requests can only be hand-built. A successful
 * upgrade's socket is destroyed at once.
 */
export function rawUpgrade(wsUrl: string, headers: Record<string, string>): Promise<UpgradeOutcome> {
  const { hostname, port, pathname } = new URL(wsUrl);
  return new Promise((resolve, reject) => {
    const req = request({
      host: hostname,
      port,
      path: pathname,
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers });
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

export interface RawSession extends UpgradeOutcome {
  /** The text messages the server sent (unfragmented frames; what the gateway sends). */
  messages: string[];
  /** The close frame's code, if one came. */
  closeCode?: number;
}

/**
 * rawUpgrade, then (on 101) reads the server's frames until its close frame, `maxMessages` text
 * messages or `timeoutMs`: for hand-built upgrade requests that a `ws` client refuses to send.
 * Server frames are not masked.
 */
export function rawSession(wsUrl: string, headers: Record<string, string>, timeoutMs = 5000, maxMessages = Infinity): Promise<RawSession> {
  const { hostname, port, pathname } = new URL(wsUrl);
  return new Promise((resolve, reject) => {
    const req = request({
      host: hostname,
      port,
      path: pathname,
      agent: false,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...headers },
    });
    req.once('upgrade', (res, socket, head) => {
      const outcome: RawSession = { status: res.statusCode ?? 0, body: '', headers: res.headers, messages: [] };
      let buffered = head;
      const finish = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(outcome);
      };
      const timer = setTimeout(finish, timeoutMs);
      const parse = () => {
        for (;;) {
          if (buffered.length < 2) return;
          const opcode = buffered[0] & 0x0f;
          let length = buffered[1] & 0x7f;
          let offset = 2;
          if (length === 126) {
            if (buffered.length < 4) return;
            length = buffered.readUInt16BE(2);
            offset = 4;
          } else if (length === 127) {
            if (buffered.length < 10) return;
            length = Number(buffered.readBigUInt64BE(2));
            offset = 10;
          }
          if (buffered.length < offset + length) return;
          const payload = buffered.subarray(offset, offset + length);
          buffered = buffered.subarray(offset + length);
          if (opcode === 0x1) outcome.messages.push(payload.toString('utf8'));
          if (outcome.messages.length >= maxMessages) {
            finish();
            return;
          }
          if (opcode === 0x8) {
            outcome.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
            finish();
            return;
          }
        }
      };
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        parse();
      });
      socket.on('close', finish);
      socket.on('error', () => undefined);
      parse();
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers, messages: [] }));
      res.on('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

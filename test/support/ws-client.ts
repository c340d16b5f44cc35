import WebSocket from 'ws';
import { serverFrameProblem } from './contract';
import { eventually, sleep, withTimeout } from './time';

/** Frames the gateway sent that break docs/asyncapi.yaml; checked after every e2e test (test/support/e2e-setup.ts). */
const contractViolations: string[] = [];

/** Frame types a test added to the gateway (README, "Add a message type"): not in docs/asyncapi.yaml, not checked. */
const addedFrameTypes = new Set<string>();

/** Declares message types a test adds to the gateway, for the rest of the test file. */
export function allowAddedFrameTypes(...types: string[]): void {
  for (const type of types) addedFrameTypes.add(type);
}

/** Returns and clears the contract violations seen since the last call. */
export function takeContractViolations(): string[] {
  return contractViolations.splice(0, contractViolations.length);
}

/** The shortest quiet period `expectSilence` accepts. */
export const MIN_SILENCE_MS = 100;

/** A frame as the tests see it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Frame = Record<string, any>;

export interface ConnectOptions {
  /** Sent as the authToken header. */
  token?: string;
  headers?: Record<string, string>;
  protocols?: string[];
  /** Path and query after the base URL (default: the gateway's WS path as given in the URL). */
  query?: string;
  origin?: string;
  /** Skip the wait for the open event (for upgrades that are expected to fail). */
  noWait?: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * A real `ws` client that records every frame it receives and lets a test wait for the next one
 * matching a predicate. Nothing is mocked: it talks to the gateway over TCP.
 */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly rawFrames: string[] = [];
  closeInfo?: CloseInfo;
  readonly closed: Promise<CloseInfo>;
  private cursor = 0;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      const text = isBinary ? '' : data.toString();
      this.rawFrames.push(text);
      try {
        const frame = JSON.parse(text) as Frame;
        const problem = addedFrameTypes.has(frame.type as string) ? undefined : serverFrameProblem(frame);
        if (problem) contractViolations.push(`${problem}: ${text.slice(0, 300)}`);
        this.frames.push(frame);
      } catch {
        contractViolations.push(`not JSON: ${text.slice(0, 300)}`);
        this.frames.push({ unparsable: text });
      }
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.wake();
        resolve(this.closeInfo);
      });
    });
    socket.on('error', () => {
      /* surfaced through close / unexpected-response */
    });
  }

  static async connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.token !== undefined) headers.authToken = options.token;
    if (options.origin !== undefined) headers.Origin = options.origin;
    const socket = new WebSocket(url + (options.query ?? ''), options.protocols ?? [], { headers });
    const client = new TestClient(socket);
    if (options.noWait) return client;
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      socket.once('error', reject);
    });
    return client;
  }

  send(frame: Frame | string): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Waits for the next unread frame that matches (frames skipped on the way stay readable by `all`). */
  async next(match: (f: Frame) => boolean = () => true, timeoutMs = 4000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = this.cursor; i < this.frames.length; i++) {
        if (match(this.frames[i])) {
          this.cursor = i + 1;
          return this.frames[i];
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.closeInfo) {
        throw new Error(
          `no matching frame within ${timeoutMs} ms (closed: ${JSON.stringify(this.closeInfo)}); got ${JSON.stringify(this.frames.slice(this.cursor))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Next frame of a type. */
  nextOfType(type: string, timeoutMs?: number): Promise<Frame> {
    return this.next((f) => f.type === type, timeoutMs);
  }

  /** All frames received so far of a type. */
  all(type?: string): Frame[] {
    return type ? this.frames.filter((f) => f.type === type) : [...this.frames];
  }

  /**
   * Waits `ms` and asserts that no frame (matching) arrived in that time. Frames that arrived before
   * the call are not looked at. Refuses a window under MIN_SILENCE_MS: `expectSilence(0)` waits one
   * tick and proves nothing. To watch several clients, run their waits concurrently
   * (`Promise.all`) rather than chaining a second, shorter one.
   */
  async expectSilence(ms: number, match: (f: Frame) => boolean = () => true): Promise<void> {
    if (!(ms >= MIN_SILENCE_MS)) {
      throw new Error(`expectSilence(${ms}): a quiet period under ${MIN_SILENCE_MS} ms proves nothing; wait longer, or use a barrier (a frame whose echo must come first)`);
    }
    const before = this.frames.length;
    await sleep(ms);
    const extra = this.frames.slice(before).filter(match);
    if (extra.length > 0) throw new Error(`unexpected frames: ${JSON.stringify(extra)}`);
  }

  async close(): Promise<void> {
    if (this.closeInfo) return;
    this.socket.close(1000);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    if (!this.closeInfo) this.socket.terminate();
  }

  terminate(): void {
    this.socket.terminate();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** Resolves with the close of a client, or rejects after `ms` (quoting its last frames). */
export function closedWithin(client: TestClient, ms: number): Promise<CloseInfo> {
  return withTimeout(client.closed, ms, () => `the close (last frames: ${JSON.stringify(client.frames.slice(-5))})`);
}

/**
 * Waits until the client has received (at any position, read or not: its cursor does not move) a
 * frame matching `match`, or one matching each of several predicates, in any order.
 */
export async function received(
  client: TestClient,
  match: ((f: Frame) => boolean) | ((f: Frame) => boolean)[],
  timeoutMs = 4000,
  what = 'a matching frame',
): Promise<void> {
  const all = Array.isArray(match) ? match : [match];
  await eventually(() => all.every((m) => client.frames.some(m)), timeoutMs, what);
}

/** The subprotocol entry that offers a token: `authToken.<base64url of its UTF-8, no padding>`. */
export function tokenSubprotocol(token: string): string {
  return `authToken.${Buffer.from(token, 'utf8').toString('base64url')}`;
}

import { randomBytes } from 'node:crypto';
import type { WebSocket, RawData } from 'ws';
import { SendResult, type JoiningClient } from '../messaging/client';
import type { Session } from '../engine/engine.ports';
import { CloseCode, MessageType, type UserProfile } from '../protocol/protocol';
import { InboundBudget, type BudgetLimits } from './inbound-budget';
import { RateLimiter } from './rate-limiter';
import type { Corkable, WriteBatch } from './write-batch';

const OPEN = 1;
/** How long a closed connection's peer has to answer the close frame before it is dropped. */
export const CLOSE_GRACE_MS = 2000;
let sequence = 0;
const nodeTag = randomBytes(3).toString('hex');

const EMPTY_PROFILE: UserProfile = Object.freeze({
  userId: '', nickname: '', avatar: '', language: '', status: '', lastOnline: '', registerDate: '',
});

/** What a connection needs from the node: its limits and where to report. */
export interface ConnectionHooks {
  readonly sendBufferMaxBytes: number;
  readonly rateLimitPerSec: number;
  readonly rateLimitBurst: number;
  /** Inbound bytes before AUTH SUCCESS, and after. */
  readonly preAuthBudget: BudgetLimits;
  readonly joinedBudget: BudgetLimits;
  /** Where broadcast frames are coalesced per event-loop turn; undefined writes each at once. */
  readonly batch?: WriteBatch;
  onSlowConsumer(connection: ClientConnection): void;
  countSent(type: string): void;
}

/** ws sends a Buffer as a text frame with these options. */
const TEXT_FRAME = { binary: false } as const;

const TYPE_PREFIX = '{"type":"';
/** The message types with the closing quote, most frequent first (the hot path stops early). */
const OUTBOUND_TYPES = [
  MessageType.DIALOG, MessageType.DELIVERY, MessageType.CHAT, MessageType.USER_CONNECTION,
  MessageType.AUTH, MessageType.ERROR, MessageType.USER_UPDATE, MessageType.SAVE_AVATAR,
].map((type) => [type, `${type}"`] as const);

let lastFrame = '';
let lastType = '';

/**
 * The type of an outbound frame (they all start with {"type":"...), for the sent-frames metric:
 * compared in place, without slicing a string per frame; memoized for the frames of a broadcast.
 */
export function outboundType(data: string): string {
  if (data === lastFrame) return lastType;
  let type = 'other';
  if (data.startsWith(TYPE_PREFIX)) {
    for (const [name, quoted] of OUTBOUND_TYPES) {
      if (data.startsWith(quoted, TYPE_PREFIX.length)) {
        type = name;
        break;
      }
    }
  }
  lastFrame = data;
  lastType = type;
  return type;
}

/**
 * One WebSocket connection: its identity once authenticated, its inbound queue, and the only
 * place frames are written to its socket (slow consumers are dropped here).
 */
export class ClientConnection implements JoiningClient {
  /** Connection id, safe to log: node tag and a counter, nothing about the user. */
  readonly id = `${nodeTag}-${(++sequence).toString(36)}`;
  readonly openedAt = Date.now();
  userId = '';
  profile: UserProfile = EMPTY_PROFILE;
  /** AUTH SUCCESS was sent: frames are processed and broadcasts received. */
  authenticated = false;
  /** The presence session, once claimed. */
  session?: Session;
  /** No token came with the upgrade: the first AUTH_MESSAGE frame may bring it. */
  awaitingAuthFrame = false;
  /** A token is being checked (or was). */
  authStarted = false;
  authDeadline?: NodeJS.Timeout;
  /** Inbound frames wait here while an asynchronous handler of an earlier frame runs. */
  busy = false;
  readonly queue: [RawData, boolean][] = [];
  /** Bytes of the frames in `queue` (bounded by INBOUND_QUEUE_MAX_BYTES). */
  queuedBytes = 0;
  /** Answered the last ping (heartbeat). */
  alive = true;
  /** How many bytes it may make the node read (TCP backpressure beyond). */
  readonly inbound: InboundBudget;
  /** Drops a peer that does not complete the close handshake in time. */
  private closeTimer?: NodeJS.Timeout;
  /** Waiting for the next pong (duplicate-login probes). */
  private pongWaiters?: (() => void)[];
  /** Set once the gateway closed or dropped it, with the code it used. */
  closeCode?: number;
  /** Frames that arrived while joining, written right after AUTH SUCCESS. */
  private held?: { data: string; done?: (err?: Error) => void }[];
  /** Created when the connection is authenticated: only its data frames are rate limited. */
  limiter?: RateLimiter;
  /** The WriteBatch turn in which this socket was last corked. */
  private corkedTurn = 0;
  /** Bytes written to the socket since it was corked in the current turn (not backlog: they leave at the turn's end). */
  private batchedBytes = 0;

  constructor(
    readonly socket: WebSocket,
    private readonly hooks: ConnectionHooks,
  ) {
    this.inbound = new InboundBudget(hooks.preAuthBudget, socket, this.openedAt);
  }

  get joined(): boolean {
    return this.authenticated;
  }

  get isOpen(): boolean {
    return this.socket.readyState === OPEN && this.closeCode === undefined;
  }

  send(frame: object | string): void {
    const data = typeof frame === 'string' ? frame : JSON.stringify(frame);
    if (this.held) this.held.push({ data });
    else this.write(data);
  }

  sendEncoded(text: string, bytes: Buffer): void {
    if (this.held) {
      this.held.push({ data: text });
      return;
    }
    const batch = this.hooks.batch;
    if (batch && this.corkedTurn !== batch.turn && this.socket.readyState === OPEN) {
      const raw = (this.socket as unknown as { _socket?: Corkable })._socket;
      if (raw) {
        this.corkedTurn = batch.cork(raw, this.corkedTurn);
        this.batchedBytes = 0;
      }
    }
    this.write(text, undefined, bytes);
  }

  sendConfirmed(frame: string, done: (result: SendResult) => void): void {
    const callback = (err?: Error) => done(err ? SendResult.FAILED : SendResult.OK);
    if (this.held) this.held.push({ data: frame, done: callback });
    else if (!this.write(frame, callback)) done(SendResult.FAILED);
  }

  replaceProfile(profile: UserProfile): void {
    this.profile = profile;
  }

  beginJoin(profile: UserProfile): void {
    this.userId = profile.userId;
    this.profile = profile;
    this.held = [];
  }

  completeJoin(authSuccessFrame: string): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.authenticated = true;
    const now = Date.now();
    this.limiter = new RateLimiter(this.hooks.rateLimitPerSec, this.hooks.rateLimitBurst, now);
    this.inbound.setLimits(this.hooks.joinedBudget, now);
    this.write(authSuccessFrame);
    for (const { data, done } of held) {
      if (!this.write(data, done)) done?.(new Error('connection closed'));
    }
  }

  abortJoin(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const { done } of held) done?.(new Error('join aborted'));
  }

  /**
   * Closes with a close frame; the close code is remembered for metrics. A peer that has not
   * completed the close handshake within CLOSE_GRACE_MS is dropped: what it sends meanwhile is
   * still read within its inbound budget only, so a client cannot make a closing connection
   * read megabytes of junk at full speed.
   */
  close(code: CloseCode, reason: string): void {
    if (this.closeCode !== undefined) return;
    this.closeCode = code;
    this.clearTimers();
    this.socket.close(code, reason);
    this.closeTimer = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
    this.closeTimer.unref();
  }

  /** Drops without a close handshake (dead peer). */
  terminate(code: number): void {
    if (this.closeCode === undefined) this.closeCode = code;
    this.clearTimers();
    this.socket.terminate();
  }

  /** A peer that does not answer: dropped as the heartbeat drops it (the client sees 1006). */
  drop(): void {
    this.terminate(1006);
  }

  clearTimers(): void {
    if (this.authDeadline) clearTimeout(this.authDeadline);
    this.authDeadline = undefined;
  }

  /** The socket is closed: no timer of this connection is left. */
  closed(): void {
    this.clearTimers();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    this.inbound.stop();
  }

  /** A pong arrived: the peer is alive. */
  onPong(): void {
    this.alive = true;
    const waiters = this.pongWaiters;
    this.pongWaiters = undefined;
    if (waiters) for (const wake of waiters) wake();
  }

  /**
   * Pings the peer and resolves true when it answers within `timeoutMs`, false otherwise (or
   * when the connection is closed). A peer behind a half-open TCP connection never answers.
   */
  probe(timeoutMs: number): Promise<boolean> {
    if (!this.isOpen) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        const waiters = this.pongWaiters;
        const i = waiters?.indexOf(answered) ?? -1;
        if (i >= 0) waiters!.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      const answered = () => {
        clearTimeout(timer);
        resolve(this.isOpen);
      };
      (this.pongWaiters ??= []).push(answered);
      try {
        // Paused for its inbound budget, its pong would wait: read it again.
        this.inbound.release();
        this.socket.ping();
      } catch {
        // closing: the timer answers false
      }
    });
  }

  /** Writes to the socket; false (and nothing written) when it is closed or its send buffer is full. */
  private write(data: string, callback?: (err?: Error) => void, bytes?: Buffer): boolean {
    const socket = this.socket;
    if (socket.readyState !== OPEN || this.closeCode !== undefined) return false;
    // A slow consumer is one whose already-queued bytes exceed the limit: a single large frame
    // (an AUTH SUCCESS with thousands of users online) still goes through.
    // Frames corked in this turn (WriteBatch) are not a backlog: they leave at the end of the turn.
    const batch = this.hooks.batch;
    const corkedNow = batch !== undefined && this.corkedTurn === batch.turn;
    if (socket.bufferedAmount - (corkedNow ? this.batchedBytes : 0) > this.hooks.sendBufferMaxBytes) {
      this.hooks.onSlowConsumer(this);
      return false;
    }
    if (bytes) socket.send(bytes, TEXT_FRAME, callback);
    else socket.send(data, callback);
    // ws adds a frame header of at most 10 bytes (server frames are not masked).
    if (corkedNow) this.batchedBytes += (bytes ? bytes.length : Buffer.byteLength(data)) + 10;
    this.hooks.countSent(outboundType(data));
    return true;
  }
}

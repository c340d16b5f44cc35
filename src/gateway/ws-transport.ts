import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Transport } from '../messaging/chat-client';
import { MessageType } from '../protocol/protocol';
import { InboundBudget, type BudgetLimits } from './inbound-budget';
import type { WriteBatch } from './write-batch';

const OPEN = 1;
/** How long a closed connection's peer has to answer the close frame before it is dropped. */
export const CLOSE_GRACE_MS = 2000;
/** ws sends a Buffer as a text frame with these options. */
const TEXT_FRAME = { binary: false } as const;
/** ws adds a frame header of at most 10 bytes (server frames are not masked). */
const FRAME_HEADER_BYTES = 10;

/** What a transport needs from the node: its limits and where to report. */
export interface TransportOptions {
  readonly sendBufferMaxBytes: number;
  /** Inbound bytes before AUTH SUCCESS. */
  readonly preAuthBudget: BudgetLimits;
  /** Where broadcast frames are coalesced per event-loop turn; undefined writes each at once. */
  readonly batch?: WriteBatch;
  countSent(type: string): void;
  /** Its send buffer overflowed: the gateway drops it (`owner` is what the transport was created with). */
  onSlowConsumer(owner: unknown): void;
}

const TYPE_PREFIX = '{"type":"';
/** The message types with the closing quote, most frequent first (the hot path stops early). */
const OUTBOUND_TYPES = [
  MessageType.DIALOG, MessageType.DELIVERY, MessageType.CHAT, MessageType.USER_CONNECTION,
  MessageType.AUTH, MessageType.ERROR, MessageType.USER_UPDATE, MessageType.SAVE_AVATAR, MessageType.TOKEN_REFRESH,
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
 * One connection's WebSocket: the only place frames are written to a socket (slow consumers are
 * dropped here), its liveness (pings, probes), its inbound budget (the socket stops being read
 * when the client sends too much) and its close. The net socket comes from the upgrade request.
 */
export class WsTransport extends InboundBudget implements Transport {
  /** The close code the gateway used (or ws reported), once closed or dropped. */
  closeCode?: number;
  /** Answered the last heartbeat ping. */
  private alive = true;
  private pongWaiters?: (() => void)[];
  private closeTimer?: NodeJS.Timeout;
  /** The WriteBatch ticket of this socket's last cork (0: never corked). */
  private corkTicket = 0;
  /** Bytes written since it was last corked, while it still is (not backlog: they leave when the batch uncorks it). */
  private batchedBytes = 0;

  constructor(
    private readonly socket: WebSocket,
    private readonly net: Socket,
    private readonly options: TransportOptions,
    /** Who the gateway keeps for this connection (handed back on a slow consumer): no closure per connection. */
    private readonly owner: unknown,
  ) {
    // It is its connection's inbound budget too (it extends InboundBudget rather than holding one:
    // one object fewer per connection, ~70 bytes of heap for as long as it is open).
    super(options.preAuthBudget, socket, Date.now());
  }

  /** How many bytes it may make the node read (TCP backpressure beyond). */
  get inbound(): InboundBudget {
    return this;
  }

  get isOpen(): boolean {
    return this.socket.readyState === OPEN && this.closeCode === undefined;
  }

  write(text: string, done?: (err?: Error) => void): boolean {
    return this.send(text, undefined, done);
  }

  /**
   * One text frame whose payload is `parts` one after another, written to the net socket under
   * ws (frame header, then the parts, in one writev) without joining them: an AUTH SUCCESS hands
   * the cached online list to the kernel as it is, however many logins send it at once. Safe
   * beside ws's own writes because ws's Sender writes every frame synchronously here (no
   * compression, no Blob), so nothing of it can be queued behind or ahead of this frame.
   */
  writeParts(parts: readonly Buffer[], type: string): boolean {
    let length = 0;
    for (const part of parts) length += part.length;
    if (!this.admit(length)) return false;
    const net = this.net;
    net.cork();
    net.write(frameHeader(length));
    for (const part of parts) if (part.length > 0) net.write(part);
    net.uncork();
    this.options.countSent(type);
    return true;
  }

  /**
   * A broadcast frame: its whole WebSocket frame (header and payload) is made once for all the
   * receivers of `bytes` (wireFrame) and written to the net socket as it is, one write per
   * receiver (not ws's send: its per-call options and header of its own are most of what a
   * broadcast to thousands costs in JavaScript). Safe beside ws's own writes for the same reason
   * as writeParts.
   */
  writeBroadcast(text: string, bytes: Buffer): void {
    const batch = this.options.batch;
    if (batch && !batch.holds(this.corkTicket) && this.isOpen) {
      this.corkTicket = batch.cork(this.net, this.corkTicket);
      this.batchedBytes = 0;
    }
    if (!this.admit(bytes.length)) return;
    this.net.write(wireFrame(bytes));
    this.options.countSent(outboundType(text));
  }

  /** Heartbeat: false when the peer did not answer the previous ping (drop it); else pings again. */
  beat(): boolean {
    if (!this.alive) return false;
    this.alive = false;
    try {
      this.socket.ping();
    } catch {
      // closing: the close event does the rest
    }
    return true;
  }

  probe(timeoutMs: number): Promise<boolean> {
    if (!this.isOpen) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const answered = () => {
        clearTimeout(timer);
        resolve(this.isOpen);
      };
      const timer = setTimeout(() => {
        const waiters = this.pongWaiters;
        const i = waiters?.indexOf(answered) ?? -1;
        if (i >= 0) waiters!.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      (this.pongWaiters ??= []).push(answered);
      // Paused for its inbound budget, its pong would wait: read it again.
      this.inbound.release();
      try {
        this.socket.ping();
      } catch {
        // closing: the timer answers false
      }
    });
  }

  /**
   * Closes with a close frame; the code is remembered for metrics. A peer that has not completed
   * the close handshake within CLOSE_GRACE_MS is dropped: what it sends meanwhile is still read
   * within its inbound budget only, so a client cannot make a closing connection read megabytes
   * of junk at full speed.
   */
  close(code: number, reason: string): void {
    if (this.closeCode !== undefined) return;
    this.closeCode = code;
    this.socket.close(code, reason);
    this.closeTimer = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
    this.closeTimer.unref();
  }

  /** Drops without a close handshake (the client sees 1006). */
  drop(code = 1006): void {
    if (this.closeCode === undefined) this.closeCode = code;
    this.socket.terminate();
  }

  /** The socket is closed: no timer is left behind. */
  closed(): void {
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
    this.inbound.stop();
    const waiters = this.pongWaiters;
    this.pongWaiters = undefined;
    if (waiters) for (const wake of waiters) wake();
  }

  /** A pong arrived (the gateway's one 'pong' listener calls it). */
  onPong(): void {
    this.alive = true;
    const waiters = this.pongWaiters;
    this.pongWaiters = undefined;
    if (waiters) for (const wake of waiters) wake();
  }

  /** Writes to the socket; false (and nothing written) when it is closed or its send buffer is full. */
  private send(text: string, bytes?: Buffer, done?: (err?: Error) => void): boolean {
    if (!this.admit(bytes ? bytes.length : undefined, text)) return false;
    const socket = this.socket;
    if (bytes) socket.send(bytes, TEXT_FRAME, done);
    else socket.send(text, done);
    this.options.countSent(outboundType(text));
    return true;
  }

  /**
   * Whether a frame of `bytes` (or of `text`) may be written now: open, and no backlog over the
   * send buffer limit (a slow consumer is reported). A frame admitted while the socket is corked
   * by the batch is counted as part of that batch.
   */
  private admit(bytes: number | undefined, text?: string): boolean {
    const socket = this.socket;
    if (socket.readyState !== OPEN || this.closeCode !== undefined) return false;
    // A slow consumer is one whose already-queued bytes exceed the limit: a single large frame
    // (an AUTH SUCCESS with thousands of users online) still goes through. Frames held by the
    // socket's current cork (WriteBatch) are not a backlog: they leave when the batch uncorks it.
    const batch = this.options.batch;
    const corkedNow = batch !== undefined && batch.holds(this.corkTicket);
    if (socket.bufferedAmount - (corkedNow ? this.batchedBytes : 0) > this.options.sendBufferMaxBytes) {
      this.options.onSlowConsumer(this.owner);
      return false;
    }
    if (corkedNow) this.batchedBytes += (bytes ?? Buffer.byteLength(text ?? '')) + FRAME_HEADER_BYTES;
    return true;
  }
}

let lastPayload: Buffer | undefined;
let lastWire: Buffer | undefined;

/**
 * The whole unmasked text frame (header and payload) of a broadcast payload, made once for all
 * its receivers: memoized for the last payload, which every receiver of a broadcast gets in turn.
 */
export function wireFrame(payload: Buffer): Buffer {
  if (payload === lastPayload) return lastWire!;
  const header = frameHeader(payload.length);
  const wire = Buffer.allocUnsafe(header.length + payload.length);
  header.copy(wire, 0);
  payload.copy(wire, header.length);
  lastPayload = payload;
  lastWire = wire;
  return wire;
}

/** The header of an unmasked, unfragmented text frame (RFC 6455 5.2) with a payload of `length` bytes. */
export function frameHeader(length: number): Buffer {
  if (length < 126) return Buffer.from([0x81, length]);
  if (length < 65536) {
    const header = Buffer.allocUnsafe(4);
    header[0] = 0x81;
    header[1] = 126;
    header.writeUInt16BE(length, 2);
    return header;
  }
  const header = Buffer.allocUnsafe(10);
  header[0] = 0x81;
  header[1] = 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

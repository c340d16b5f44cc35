import type { Session } from '../engine/engine.ports';
import type { UserProfile } from '../protocol/protocol';

/** Outcome of handing a frame to one local connection. */
export enum SendResult {
  /** Written to the connection without an error. */
  OK = 'OK',
  /** The connection is gone or the write failed. */
  FAILED = 'FAILED',
}

/**
 * What a feature service sees of the client whose frame it handles: who it is and a way to
 * answer it. Implemented by the gateway's connection; features never touch the socket.
 */
export interface ClientHandle {
  /** Connection id: unique per connection, safe to log. */
  readonly id: string;
  readonly userId: string;
  readonly profile: UserProfile;
  /** Sends a frame (an object, serialized here, or an already serialized string). */
  send(frame: object | string): void;
  /**
   * Sends a frame already serialized and UTF-8 encoded (a broadcast encodes once for all its
   * receivers); `text` is the same frame as a string.
   */
  sendEncoded(text: string, bytes: Buffer): void;
  /**
   * Sends a frame and calls `done` once it was written (OK) or could not be (FAILED); `done` may
   * run before this returns (FAILED: the connection is closed or its send buffer is full).
   */
  sendConfirmed(frame: string, done: (result: SendResult) => void): void;
}

/** A connection in the local registry. */
export interface RegisteredConnection extends ClientHandle {
  /** True once AUTH SUCCESS was sent: it receives broadcasts from then on. */
  readonly joined: boolean;
  /** Closes the connection with a close frame. */
  close(code: number, reason: string): void;
  /** Pings the peer: true when it answers within `timeoutMs` (a half-open connection never does). */
  probe(timeoutMs: number): Promise<boolean>;
  /** Drops the connection without a close handshake (its peer does not answer). */
  drop(): void;
  /** Replaces its user's profile (a new frozen value: profiles are never changed in place). */
  replaceProfile(profile: UserProfile): void;
}

/**
 * The top-level `clientData` of a frame exactly as the client wrote it (without the whitespace
 * between tokens), when the frame has one: forwarded byte-exact, so numbers beyond a double and
 * escapes arrive as sent.
 */
export const RAW_CLIENT_DATA = Symbol('rawClientData');

/** A frame as received: a JSON object with a string `type`. */
export type InboundFrame = Record<string, unknown> & { type: string; readonly [RAW_CLIENT_DATA]?: string };

/** A message handler of a feature module. */
export type MessageHandlerFn = (client: ClientHandle, frame: InboundFrame) => void | Promise<void>;

/**
 * A connection whose token was verified, as the presence service sees it while it joins: frames
 * broadcast to it before AUTH SUCCESS is sent are held back and follow the AUTH SUCCESS.
 */
export interface JoiningClient extends RegisteredConnection {
  readonly isOpen: boolean;
  /** The presence session, set while the client holds one. */
  session?: Session;
  /** Adopts the verified identity and starts holding back broadcast frames. */
  beginJoin(profile: UserProfile): void;
  /** Sends AUTH SUCCESS, marks the client authenticated and flushes what was held back. */
  completeJoin(authSuccessFrame: string): void;
  /** Drops what was held back: the join failed. */
  abortJoin(): void;
}

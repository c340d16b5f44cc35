import type { IncomingMessage } from 'node:http';
import type { ServerFrame } from '../protocol/frames';
import { MessageType, Status, type DeliveryStatus, type UserProfile } from '../protocol/protocol';

/**
 * What a client needs of its connection: the gateway's WebSocket transport (src/gateway) owns
 * the socket, the writes (batching, the send-buffer limit), the pings and the close.
 */
export interface Transport {
  /** Open, and not closed or dropped by the gateway. */
  readonly isOpen: boolean;
  /** Writes a serialized frame; false (nothing written) when closed or over its send buffer. */
  write(text: string, done?: (err?: Error) => void): boolean;
  /** Writes a broadcast frame already UTF-8 encoded once for all its receivers (coalesced per event-loop turn). */
  writeBroadcast(text: string, bytes: Buffer): void;
  /**
   * Writes one text frame whose bytes are `parts` one after another, without joining them (an AUTH
   * SUCCESS around the cached online list); `type` is its message type. False (nothing written)
   * when closed or over its send buffer. Optional: a transport without it gets the text joined.
   */
  writeParts?(parts: readonly Buffer[], type: string): boolean;
  /** Pings the peer: true when it answers within `timeoutMs`. */
  probe(timeoutMs: number): Promise<boolean>;
  /** Closes with a close frame. */
  close(code: number, reason: string): void;
  /** Drops the connection without a close frame (the peer does not answer). */
  drop(): void;
}

/** Where a connection is in its life (docs/protocol.md, "Authentication"). */
export enum ClientState {
  /** Opened; its token is awaited or being checked. Its frames are not processed. */
  PRE_AUTH = 'PRE_AUTH',
  /** Its token is valid: its session is being claimed. Broadcasts to it are held back. */
  JOINING = 'JOINING',
  /** AUTH SUCCESS was sent: its frames are processed and it receives broadcasts. */
  JOINED = 'JOINED',
  /** Closed or closing: nothing more is sent or processed. */
  CLOSING = 'CLOSING',
}

/**
 * The token a connection holds now, and when it stops being valid (Unix ms; absent: never). Kept
 * in memory only, for the token lifecycle (re-check, refresh): never logged, sent or stored.
 */
export interface Credential {
  readonly token: string;
  readonly expiresAt?: number;
}

let sequence = 0;
const nodeTag = Math.floor(Math.random() * 0xffffff)
  .toString(16)
  .padStart(6, '0');

/**
 * One WebSocket connection, as everything above the transport sees it: the object a handler gets
 * with `@ConnectedSocket()`. Its state only moves forward (PRE_AUTH, JOINING, JOINED, CLOSING);
 * every field is read-only from outside and changed by the method that makes the transition.
 */
export class ChatClient {
  /** Connection id, safe to log: node tag and a counter, nothing about the user. */
  readonly id = `${nodeTag}-${(++sequence).toString(36)}`;
  private current = ClientState.PRE_AUTH;
  private verified?: UserProfile;
  /**
   * Its credential, in JS private fields: not even a serializer or inspect that walks the object
   * can read the token. Two fields rather than the Credential object: one object fewer per connection.
   */
  #token?: string;
  #expiresAt?: number;
  private online?: UserProfile;
  /** Frames sent to it while JOINING, written right after its AUTH SUCCESS. */
  private held?: { text: string; done?: (err?: Error) => void }[];
  /**
   * Called once the socket is gone (the disconnect hooks of the app's gateways): one function, or
   * an array once there are more (most connections have one: an array would cost each of them
   * ~180 bytes for as long as it is open).
   */
  private closedHooks?: (() => void) | (() => void)[];

  /** The upgrade request until the login takes it (takeRequest). */
  #request?: IncomingMessage;

  constructor(
    private readonly transport: Transport,
    /** The upgrade request (headers, subprotocols, URL): where a handshake token is read. */
    request: IncomingMessage,
  ) {
    this.#request = request;
  }

  /**
   * The upgrade request (headers, subprotocols, URL) until the connection's login took it
   * (undefined afterwards: an open connection keeps nothing of its upgrade; a gateway's
   * `handleConnection(client, request)` gets it as its second argument).
   */
  get request(): IncomingMessage | undefined {
    return this.#request;
  }

  /**
   * Hands the upgrade request over and forgets it: the login reads its token from it once (the
   * gateway drops it without one when the token is to come in a frame).
   */
  takeRequest(): IncomingMessage | undefined {
    const request = this.#request;
    this.#request = undefined;
    return request;
  }

  get state(): ClientState {
    return this.current;
  }

  get isOpen(): boolean {
    return this.current !== ClientState.CLOSING && this.transport.isOpen;
  }

  /** Logged in (AUTH SUCCESS sent). */
  get isJoined(): boolean {
    return this.current === ClientState.JOINED;
  }

  /** The profile the authorization server verified for its token (set by AuthGuard), if any. */
  get user(): UserProfile | undefined {
    return this.verified;
  }

  /** Its user id once its token was verified; "" before. */
  get userId(): string {
    return this.online?.userId ?? this.verified?.userId ?? '';
  }

  /** Its profile as the deployment sees it (stored avatar included) once it joins. */
  get profile(): UserProfile | undefined {
    return this.online ?? this.verified;
  }

  /** The token it holds now (memory only: never log it); undefined before its login was verified. */
  get token(): string | undefined {
    return this.#token;
  }

  /** When its token stops being valid (Unix ms), if it does. */
  get tokenExpiresAt(): number | undefined {
    return this.#expiresAt;
  }

  /** AuthGuard: the token was verified for this user (`credential`: that token and its expiry). */
  authenticate(profile: UserProfile, credential?: Credential): void {
    if (this.current !== ClientState.PRE_AUTH) return;
    this.verified = profile;
    this.#token = credential?.token;
    this.#expiresAt = credential?.expiresAt;
  }

  /**
   * A refresh (or a re-check) verified `credential` for this same user: it is the token the
   * connection holds from now on; `profile`, when given, is the authorization server's latest word
   * about the user (the online profile changes only through the session core). Nothing happens
   * once it is closing, or for another user's profile.
   */
  renewCredential(credential: Credential, profile?: UserProfile): void {
    if (this.current === ClientState.CLOSING || !this.verified) return;
    if (profile) {
      if (profile.userId !== this.verified.userId) return;
      this.verified = profile;
    }
    this.#token = credential.token;
    this.#expiresAt = credential.expiresAt;
  }

  /** The session is claimed: broadcasts are held back until the AUTH SUCCESS is written. */
  beginJoin(profile: UserProfile): void {
    if (this.current !== ClientState.PRE_AUTH) return;
    this.current = ClientState.JOINING;
    this.online = profile;
    this.held = [];
  }

  /**
   * Writes the AUTH SUCCESS (its text, or its bytes in pieces as SessionService builds it), then
   * what was held back; the client is JOINED.
   */
  completeJoin(authSuccess: string | readonly Buffer[]): void {
    if (this.current !== ClientState.JOINING) return;
    const held = this.held ?? [];
    this.held = undefined;
    this.current = ClientState.JOINED;
    if (typeof authSuccess === 'string') this.transport.write(authSuccess);
    else if (this.transport.writeParts) this.transport.writeParts(authSuccess, MessageType.AUTH);
    else this.transport.write(Buffer.concat(authSuccess).toString());
    for (const { text, done } of held) {
      if (!this.transport.write(text, done)) done?.(new Error('connection closed'));
    }
  }

  /** The join failed: what was held back is dropped. */
  abortJoin(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const { done } of held) done?.(new Error('join aborted'));
  }

  /** Its online profile changed (a new avatar, a refresh): a new frozen value. */
  replaceProfile(profile: UserProfile): void {
    this.online = profile;
  }

  send(frame: ServerFrame | string): void {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    if (this.held) this.held.push({ text });
    else this.transport.write(text);
  }

  /** A broadcast frame, encoded once for all its receivers. */
  sendBroadcast(text: string, bytes: Buffer): void {
    if (this.held) this.held.push({ text });
    else this.transport.writeBroadcast(text, bytes);
  }

  /**
   * Hands over a frame and reports whether it was written to the socket (SUCCESS) or could not
   * be (ERROR); `done` may run before this returns.
   */
  deliver(text: string, done: (status: DeliveryStatus) => void): void {
    const written = (err?: Error) => done(err ? Status.ERROR : Status.SUCCESS);
    if (this.held) this.held.push({ text, done: written });
    else if (!this.transport.write(text, written)) done(Status.ERROR);
  }

  probe(timeoutMs: number): Promise<boolean> {
    return this.transport.probe(timeoutMs);
  }

  /** Closes with a close frame (idempotent). */
  close(code: number, reason: string): void {
    if (this.current === ClientState.CLOSING) return;
    this.current = ClientState.CLOSING;
    this.abortJoin();
    this.transport.close(code, reason);
  }

  /** Drops without a close frame: its peer does not answer. */
  drop(): void {
    if (this.current === ClientState.CLOSING) return;
    this.current = ClientState.CLOSING;
    this.abortJoin();
    this.transport.drop();
  }

  /** Registers a call for when the socket is gone. */
  onClosed(hook: () => void): void {
    const hooks = this.closedHooks;
    if (hooks === undefined) this.closedHooks = hook;
    else if (typeof hooks === 'function') this.closedHooks = [hooks, hook];
    else hooks.push(hook);
  }

  /** The socket is gone (whoever closed it). */
  closed(): void {
    this.current = ClientState.CLOSING;
    this.abortJoin();
    const hooks = this.closedHooks;
    this.closedHooks = undefined;
    if (!hooks) return;
    for (const hook of typeof hooks === 'function' ? [hooks] : hooks) {
      try {
        hook();
      } catch {
        // a gateway's disconnect hook failing must not stop the others (Nest logs what it can)
      }
    }
  }
}

import { TypedEmitter } from './emitter';
import { randomMessageId, tokenSubprotocol } from './encoding';
import { backoffDelay, shouldReconnect, type BackoffOptions } from './reconnect';
import {
  CloseCodes,
  MESSAGE_ID_PATTERN,
  SUBPROTOCOL,
  type AuthErrorCode,
  type AvatarErrorCode,
  type ChatServerFrame,
  type ClientFrame,
  type DeliveryStatus,
  type ErrorMessageFrame,
  type FrameErrorCode,
  type SaveAvatarErrorFrame,
  type SaveAvatarSuccessFrame,
  type ServerFrame,
  type TokenRefreshErrorCode,
  type UserConnectionFrame,
  type UserProfile,
  type UserUpdateFrame,
  type WireError,
} from './types';

/**
 * What the client needs of a WebSocket: the intersection of the browser's WebSocket and the `ws`
 * package's, so either constructor can be passed in. Handlers are typed `(event: never) => void`
 * so that both libraries' own event types fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

/**
 * A WebSocket constructor: the browser's (which ignores the third argument) or `ws`'s (which takes
 * `{ headers }`, used for header authentication).
 */
export type WebSocketConstructorLike = new (
  url: string,
  protocols?: string | string[],
  options?: { headers?: Record<string, string> },
) => WebSocketLike;

/**
 * How the token travels:
 * - `header`: `authToken: <token>` on the upgrade request (Node with `ws`; browsers cannot).
 * - `subprotocol`: `Sec-WebSocket-Protocol: mpgp.v1, authToken.<base64url(token)>` (browsers).
 * - `frame`: a first `AUTH_MESSAGE` frame after the socket opens (the gateway's fallback).
 */
export type AuthMode = 'header' | 'subprotocol' | 'frame';

export type ConnectionState =
  /** Created, `connect()` not called yet. */
  | 'idle'
  /** The socket is opening. */
  | 'connecting'
  /** The socket is open, waiting for AUTH_MESSAGE. */
  | 'authenticating'
  /** Logged in: AUTH SUCCESS received. */
  | 'open'
  /** Lost, waiting for the backoff delay before the next attempt. */
  | 'reconnecting'
  /** Ended for good (by `close()`, a close code that says not to retry, or attempts exhausted). */
  | 'closed';

export interface ChatClientOptions {
  /** The gateway's WebSocket URL, e.g. `ws://localhost:8080/ws`. */
  url: string;
  token: string;
  /** The WebSocket constructor; default `globalThis.WebSocket` (browsers). In Node pass `ws`'s. */
  WebSocket?: WebSocketConstructorLike;
  /** Default: `header` when a constructor is passed in, `subprotocol` with `globalThis.WebSocket`. */
  auth?: AuthMode;
  /** Reconnect where the close code says so (default true), with these backoff bounds. */
  reconnect?: boolean | BackoffOptions;
  /** How long one attempt may wait for AUTH_MESSAGE after the socket was created (default 15000). */
  authTimeoutMs?: number;
  /** How long `dialog()` waits for its DELIVERY_MESSAGE, reconnects included (default 30000). */
  dialogTimeoutMs?: number;
  /** How long `saveAvatar()` waits for its answer (default 30000). */
  avatarTimeoutMs?: number;
  /** How long `refreshToken()` waits for its answer (default 15000). */
  refreshTimeoutMs?: number;
  /**
   * `tokenExpiring` is emitted this long before the token's expiry (default 30000; halfway through
   * the time left when less than twice this is left), so that the app gets a new token and calls
   * `refreshToken()` in time.
   */
  refreshBeforeMs?: number;
  /** Random source in [0, 1) for the jitter (tests). */
  random?: () => number;
}

export type ChatClientErrorCode =
  /** AUTH_MESSAGE ERROR ended the connection for good; `errorCode` and `closeCode` say why. */
  | 'AUTH_FAILED'
  /** The connection ended for good (or `close()` was called) before the request was answered. */
  | 'CLOSED'
  /** The connection dropped while a SAVE_AVATAR was in flight (its outcome is unknown). */
  | 'DISCONNECTED'
  /** A request was made while the client is not logged in and will not be. */
  | 'NOT_CONNECTED'
  | 'TIMEOUT'
  /** SAVE_AVATAR ERROR: `errorCode` "1" too large, "2" not an image, "3" not stored. */
  | 'AVATAR_REJECTED'
  /**
   * TOKEN_REFRESH_MESSAGE ERROR: `errorCode` "2" the new token was refused (the gateway then closes
   * with 4401), "3" the authorization server could not answer (the connection keeps its old token).
   */
  | 'TOKEN_REJECTED'
  /** ERROR_MESSAGE answered the request (`errorCode` INVALID_MESSAGE, RATE_LIMITED, ...). */
  | 'REQUEST_REJECTED'
  /** The arguments cannot make a valid frame; nothing was sent. */
  | 'INVALID_ARGUMENT';

export class ChatClientError extends Error {
  constructor(
    readonly code: ChatClientErrorCode,
    message: string,
    readonly details: { closeCode?: number; errorCode?: AuthErrorCode | AvatarErrorCode | FrameErrorCode | TokenRefreshErrorCode | string } = {},
  ) {
    super(message);
    this.name = 'ChatClientError';
  }
}

export interface AuthResult {
  /** The logged-in user's id. */
  userId: string;
  /** Everyone online at login, this user included. */
  userList: UserProfile[];
  /** When the login's token expires (Unix ms), if the gateway said (extension). */
  expiresAt?: number;
}

export interface DialogMessage<T = unknown> {
  messageId: string;
  sender: string;
  sendTime: string;
  clientData: T;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** True when the client will try again after `delayMs`. */
  willReconnect: boolean;
  delayMs?: number;
  /** The AUTH_MESSAGE error that preceded this close, if any. */
  authError?: WireError<AuthErrorCode>;
}

/** The client's events; every server message has its own. */
export interface ChatClientEvents {
  state: ConnectionState;
  /** AUTH_MESSAGE SUCCESS (after every successful (re)connect). */
  auth: AuthResult;
  /** AUTH_MESSAGE ERROR; a `close` follows. */
  authError: WireError<AuthErrorCode>;
  chat: ChatServerFrame['serverData'];
  dialog: DialogMessage;
  delivery: { messageId: string; status: DeliveryStatus };
  userConnection: UserConnectionFrame['serverData'];
  userUpdate: UserUpdateFrame['serverData'];
  /** The answer to this client's SAVE_AVATAR. */
  saveAvatar: SaveAvatarSuccessFrame | SaveAvatarErrorFrame;
  /** ERROR_MESSAGE: a frame of this client was refused. */
  serverError: ErrorMessageFrame;
  /** The online list changed (login, CONNECT, DISCONNECT, new avatar). */
  online: readonly UserProfile[];
  /** Every frame received, before its own event. */
  frame: ServerFrame;
  /** A frame of a type this client does not know (forward compatibility). */
  unknownFrame: { type: string; [key: string]: unknown };
  close: CloseInfo;
  reconnecting: { attempt: number; delayMs: number; closeCode: number };
  /**
   * The token expires in `inMs` (`refreshBeforeMs` ahead, or halfway through a shorter lifetime):
   * get a new token and call `refreshToken()`, or the gateway closes with 4401 `token expired`.
   */
  tokenExpiring: { expiresAt: number; inMs: number };
  /** A `refreshToken()` succeeded: the connection holds the new token; its expiry (none when undefined). */
  tokenRefreshed: { expiresAt?: number };
}

interface PendingDialog {
  messageId: string;
  data: string;
  resolve(status: DeliveryStatus): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
  /** Generation of the connection it was last sent on (0: not sent yet). */
  sentOn: number;
}

interface PendingAvatar {
  /** Undefined once it timed out: the slot stays so that later answers match their requests. */
  settle?: { resolve(url: string): void; reject(err: Error): void };
  timer?: ReturnType<typeof setTimeout>;
}

interface Waiter {
  resolve(result: AuthResult): void;
  reject(err: Error): void;
}

interface PendingRefresh {
  token: string;
  /** Undefined once it timed out: the slot stays so that later answers match their requests. */
  settle?: { resolve(expiresAt: number | undefined): void; reject(err: Error): void };
  timer?: ReturnType<typeof setTimeout>;
}

/** Unix ms as a decimal string (the gateway's `expiresAt`), or undefined. */
function readExpiresAt(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^[0-9]{1,16}$/.test(value)) return undefined;
  const ms = Number(value);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

const OPEN = 1;

/**
 * A typed client of the chat gateway for Node and browsers.
 *
 *   const client = new ChatClient({ url, token });            // browser
 *   const client = createNodeChatClient({ url, token });      // Node (src/client/node.ts)
 *   client.on('chat', (m) => ...);
 *   await client.connect();
 *   client.chat('hello');
 *   const status = await client.dialog('2', { message: 'hi' });   // 'SUCCESS' | 'ERROR'
 *   const url = await client.saveAvatar(base64);
 *
 * It keeps the online list current, matches each dialog to its DELIVERY_MESSAGE by messageId
 * (which it generates unless given one), and reconnects with exponential backoff and full jitter
 * where the close code says so; dialogs still unanswered when the connection drops are sent again
 * after the next login with the same messageId, which the gateway deduplicates.
 *
 * Tokens that expire: the client learns the expiry from AUTH SUCCESS and from each refresh,
 * emits `tokenExpiring` `refreshBeforeMs` ahead of it, and `refreshToken(newToken)` hands the
 * gateway a new token without reconnecting (later reconnects use the newest token). The token is
 * kept in memory only.
 */
export class ChatClient extends TypedEmitter<ChatClientEvents> {
  private readonly Ctor: WebSocketConstructorLike;
  private readonly authMode: AuthMode;
  private readonly backoff?: BackoffOptions;
  private readonly random: () => number;
  private socket?: WebSocketLike;
  private currentState: ConnectionState = 'idle';
  private myId?: string;
  private readonly users = new Map<string, UserProfile>();
  private readonly dialogs = new Map<string, PendingDialog>();
  private readonly avatars: PendingAvatar[] = [];
  private waiters: Waiter[] = [];
  private closeWaiters: (() => void)[] = [];
  private attempt = 0;
  private generation = 0;
  private userClosing = false;
  private authTimedOut = false;
  private lastAuthError?: WireError<AuthErrorCode>;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private authTimer?: ReturnType<typeof setTimeout>;
  /** The token the next connection offers: the given one, then the last one refreshed. */
  private token: string;
  private expiresAt?: number;
  private expiryTimer?: ReturnType<typeof setTimeout>;
  private readonly refreshes: PendingRefresh[] = [];

  constructor(private readonly options: ChatClientOptions) {
    super();
    const injected = options.WebSocket;
    const global = (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
    const Ctor = injected ?? global;
    if (!Ctor) throw new TypeError('ChatClient: no WebSocket constructor: pass options.WebSocket (in Node: the `ws` package)');
    if (typeof options.token !== 'string' || options.token.length === 0) throw new TypeError('ChatClient: token must be a non-empty string');
    this.token = options.token;
    this.Ctor = Ctor;
    this.authMode = options.auth ?? (injected ? 'header' : 'subprotocol');
    const reconnect = options.reconnect ?? true;
    this.backoff = reconnect === false ? undefined : reconnect === true ? {} : reconnect;
    this.random = options.random ?? Math.random;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The logged-in user's id (known after the first AUTH SUCCESS). */
  get userId(): string | undefined {
    return this.myId;
  }

  /** Everyone online, as last known (this user included). */
  get online(): readonly UserProfile[] {
    return [...this.users.values()];
  }

  /** When the current token expires (Unix ms), as the gateway said; undefined when it does not, or before login. */
  get tokenExpiresAt(): number | undefined {
    return this.expiresAt;
  }

  /** A user's profile if online. */
  user(userId: string): UserProfile | undefined {
    const profile = this.users.get(userId);
    return profile ? { ...profile } : undefined;
  }

  /**
   * Connects and logs in. Resolves on the first AUTH SUCCESS (after retries where the close codes
   * allow them); rejects with a ChatClientError `AUTH_FAILED` or `CLOSED` when it ends for good.
   */
  connect(): Promise<AuthResult> {
    if (this.currentState === 'open' && this.myId !== undefined) {
      return Promise.resolve({ userId: this.myId, userList: [...this.users.values()] });
    }
    const promise = new Promise<AuthResult>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.currentState === 'idle' || this.currentState === 'closed') {
      this.userClosing = false;
      this.attempt = 0;
      this.openSocket();
    }
    return promise;
  }

  /** Sends a CHAT_MESSAGE to everyone (this user included). Throws when not logged in. */
  chat(message: string): void {
    if (typeof message !== 'string' || message.length === 0) {
      throw new ChatClientError('INVALID_ARGUMENT', 'chat message must be a non-empty string');
    }
    this.sendNow({ type: 'CHAT_MESSAGE', serverData: { message } });
  }

  /**
   * Sends a private DIALOG_MESSAGE; resolves with its DELIVERY_MESSAGE status (`SUCCESS`: handed to
   * the receiver; `ERROR`: not online or not delivered). The messageId is generated unless given.
   * While the client is reconnecting the dialog waits and is sent after the next login.
   */
  dialog<T>(receiver: string, clientData: T, options: { messageId?: string } = {}): Promise<DeliveryStatus> {
    const messageId = options.messageId ?? randomMessageId();
    if (typeof receiver !== 'string' || receiver.length === 0) {
      return Promise.reject(new ChatClientError('INVALID_ARGUMENT', 'receiver must be a non-empty user id'));
    }
    if (!MESSAGE_ID_PATTERN.test(messageId)) {
      return Promise.reject(new ChatClientError('INVALID_ARGUMENT', 'messageId must be 1 to 64 characters of A-Za-z0-9_-'));
    }
    if (this.dialogs.has(messageId)) {
      return Promise.reject(new ChatClientError('INVALID_ARGUMENT', `a dialog with messageId ${messageId} is already waiting for its delivery`));
    }
    let data: string | undefined;
    try {
      data = JSON.stringify({ type: 'DIALOG_MESSAGE', clientData, serverData: { receiver, messageId } });
    } catch (err) {
      return Promise.reject(new ChatClientError('INVALID_ARGUMENT', `clientData is not JSON: ${String(err)}`));
    }
    if (clientData === undefined || data === undefined) {
      return Promise.reject(new ChatClientError('INVALID_ARGUMENT', 'clientData is required'));
    }
    if (!this.willBeOpen()) return Promise.reject(this.notConnected());
    const frame = data;
    return new Promise<DeliveryStatus>((resolve, reject) => {
      const timeoutMs = this.options.dialogTimeoutMs ?? 30_000;
      const pending: PendingDialog = {
        messageId,
        data: frame,
        resolve,
        reject,
        sentOn: 0,
        timer: setTimeout(() => {
          this.dialogs.delete(messageId);
          reject(new ChatClientError('TIMEOUT', `no DELIVERY_MESSAGE for ${messageId} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.dialogs.set(messageId, pending);
      if (this.currentState === 'open') this.sendDialog(pending);
    });
  }

  /**
   * Uploads a new avatar (standard base64, optionally a `data:image/...;base64,` URL); resolves
   * with its URL, which everyone else gets in a USER_UPDATE_MESSAGE. Rejects with
   * `AVATAR_REJECTED` (details.errorCode "1" too large, "2" not an image, "3" not stored).
   */
  saveAvatar(imageBase64: string): Promise<string> {
    if (typeof imageBase64 !== 'string' || imageBase64.length === 0) {
      return Promise.reject(new ChatClientError('INVALID_ARGUMENT', 'imageBase64 must be a non-empty string'));
    }
    try {
      this.sendNow({ type: 'SAVE_AVATAR', serverData: { imageBase64 } });
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<string>((resolve, reject) => {
      const timeoutMs = this.options.avatarTimeoutMs ?? 30_000;
      const slot: PendingAvatar = { settle: { resolve, reject } };
      slot.timer = setTimeout(() => {
        slot.settle = undefined;
        reject(new ChatClientError('TIMEOUT', `no SAVE_AVATAR answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.avatars.push(slot);
    });
  }

  /**
   * Hands the gateway a new token for this connection (TOKEN_REFRESH_MESSAGE), without reconnecting;
   * resolves with its expiry (Unix ms; undefined when it does not expire). Rejects with
   * `TOKEN_REJECTED` (details.errorCode "2": refused, the gateway closes with 4401 and the client
   * does not reconnect; "3": the authorization server could not answer, the old token still
   * holds: try again), `REQUEST_REJECTED`, `DISCONNECTED`, `TIMEOUT` or `NOT_CONNECTED`.
   * The new token is also the one later reconnects offer.
   */
  refreshToken(token: string): Promise<number | undefined> {
    if (typeof token !== 'string' || token.length === 0) {
      return Promise.reject(new ChatClientError('INVALID_ARGUMENT', 'token must be a non-empty string'));
    }
    try {
      this.sendNow({ type: 'TOKEN_REFRESH_MESSAGE', serverData: { authToken: token } });
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<number | undefined>((resolve, reject) => {
      const timeoutMs = this.options.refreshTimeoutMs ?? 15_000;
      const slot: PendingRefresh = { token, settle: { resolve, reject } };
      slot.timer = setTimeout(() => {
        slot.settle = undefined;
        reject(new ChatClientError('TIMEOUT', `no TOKEN_REFRESH_MESSAGE answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.refreshes.push(slot);
    });
  }

  /** Sends any client frame as is (for tools and tests); throws when not logged in. */
  send(frame: ClientFrame): void {
    this.sendNow(frame);
  }

  /**
   * Closes the connection with 1000 and stops reconnecting; unanswered dialogs are rejected with
   * `CLOSED`. Resolves once the socket is closed.
   */
  close(): Promise<void> {
    this.userClosing = true;
    if (this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    const socket = this.socket;
    if (!socket) {
      if (this.currentState !== 'closed' && this.currentState !== 'idle') {
        this.finish(CloseCodes.NORMAL, 'client closed', undefined);
      }
      return Promise.resolve();
    }
    const closed = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    socket.close(CloseCodes.NORMAL, 'client closed');
    return closed;
  }

  // ---- connection ----

  private openSocket(): void {
    this.reconnectTimer = undefined;
    this.authTimedOut = false;
    this.lastAuthError = undefined;
    const token = this.token;
    const protocols = this.authMode === 'subprotocol' ? [SUBPROTOCOL, tokenSubprotocol(token)] : [SUBPROTOCOL];
    const headers = this.authMode === 'header' ? { authToken: token } : undefined;
    this.setState('connecting');
    let socket: WebSocketLike;
    try {
      socket = headers ? new this.Ctor(this.options.url, protocols, { headers }) : new this.Ctor(this.options.url, protocols);
    } catch (err) {
      // A malformed URL: no retry can fix it.
      this.finish(CloseCodes.NORMAL, `cannot open ${this.options.url}: ${String(err)}`, undefined, new ChatClientError('CLOSED', String(err)));
      return;
    }
    this.socket = socket;
    const authTimeoutMs = this.options.authTimeoutMs ?? 15_000;
    this.authTimer = setTimeout(() => {
      this.authTimedOut = true;
      socket.close(CloseCodes.NORMAL, 'no AUTH_MESSAGE in time');
    }, authTimeoutMs);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.setState('authenticating');
      if (this.authMode === 'frame') socket.send(JSON.stringify({ type: 'AUTH_MESSAGE', serverData: { authToken: token } }));
    };
    socket.onmessage = (event: { data: unknown }) => {
      if (this.socket === socket) this.onData(event.data);
    };
    socket.onerror = () => {
      // A close event follows every error; the decision is made there.
    };
    socket.onclose = (event: { code: number; reason: string }) => {
      if (this.socket === socket) this.onClose(event.code, event.reason);
    };
  }

  private onClose(code: number, reason: string): void {
    this.socket = undefined;
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    this.authTimer = undefined;
    const authError = this.lastAuthError;
    this.lastAuthError = undefined;
    this.failAvatars(new ChatClientError('DISCONNECTED', `connection closed (${code}) before the avatar was answered`, { closeCode: code }));
    this.failRefreshes(new ChatClientError('DISCONNECTED', `connection closed (${code}) before the token refresh was answered`, { closeCode: code }));
    // The expiry belonged to this connection's token; the next login tells its own.
    this.setExpiry(undefined);
    // A close we asked for because no AUTH came counts as a lost connection.
    const effective = this.authTimedOut ? CloseCodes.ABNORMAL : code;
    const maxAttempts = this.backoff?.maxAttempts ?? Infinity;
    if (!this.userClosing && this.backoff && shouldReconnect(effective) && this.attempt < maxAttempts) {
      const delayMs = backoffDelay(this.attempt, this.backoff, this.random);
      this.attempt += 1;
      this.setState('reconnecting');
      this.emit('close', { code, reason, willReconnect: true, delayMs, ...(authError ? { authError } : {}) });
      this.emit('reconnecting', { attempt: this.attempt, delayMs, closeCode: code });
      this.reconnectTimer = setTimeout(() => {
        if (!this.userClosing) this.openSocket();
      }, delayMs);
      this.resolveCloseWaiters();
      return;
    }
    this.finish(code, reason, authError);
  }

  /** Ends for good: rejects whoever waits, emits `close`. */
  private finish(code: number, reason: string, authError: WireError<AuthErrorCode> | undefined, cause?: ChatClientError): void {
    this.setState('closed');
    const error =
      cause ??
      (authError
        ? new ChatClientError('AUTH_FAILED', `login refused: ${authError.message} (error ${authError.errorCode}, close ${code})`, {
            closeCode: code,
            errorCode: authError.errorCode,
          })
        : new ChatClientError('CLOSED', `connection closed (${code}${reason ? `: ${reason}` : ''})`, { closeCode: code }));
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
    for (const pending of this.dialogs.values()) {
      clearTimeout(pending.timer);
      pending.reject(error.code === 'AUTH_FAILED' ? error : new ChatClientError('CLOSED', `connection closed (${code}) before the delivery of ${pending.messageId} was known`, { closeCode: code }));
    }
    this.dialogs.clear();
    this.emit('close', { code, reason, willReconnect: false, ...(authError ? { authError } : {}) });
    this.resolveCloseWaiters();
  }

  private resolveCloseWaiters(): void {
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const w of waiters) w();
  }

  // ---- inbound ----

  private onData(data: unknown): void {
    if (typeof data !== 'string') return; // the gateway sends text frames only
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof frame !== 'object' || frame === null || typeof (frame as { type?: unknown }).type !== 'string') return;
    const f = frame as ServerFrame;
    switch (f.type) {
      case 'AUTH_MESSAGE':
        this.emit('frame', f);
        if (f.status === 'SUCCESS') this.onAuthSuccess(f.serverData.userId, f.serverData.userList, readExpiresAt(f.serverData.expiresAt));
        else {
          this.lastAuthError = f.error;
          this.emit('authError', f.error);
        }
        return;
      case 'CHAT_MESSAGE':
        this.emit('frame', f);
        this.emit('chat', f.serverData);
        return;
      case 'DIALOG_MESSAGE':
        this.emit('frame', f);
        this.emit('dialog', { ...f.serverData, clientData: f.clientData });
        return;
      case 'DELIVERY_MESSAGE': {
        this.emit('frame', f);
        const messageId = f.serverData.messageId;
        const pending = this.dialogs.get(messageId);
        if (pending) {
          this.dialogs.delete(messageId);
          clearTimeout(pending.timer);
          pending.resolve(f.status);
        }
        this.emit('delivery', { messageId, status: f.status });
        return;
      }
      case 'USER_CONNECTION_MESSAGE': {
        this.emit('frame', f);
        const data = f.serverData;
        if (data.connectionStatus === 'CONNECT') {
          const { connectionStatus: _status, ...profile } = data;
          this.users.set(profile.userId, profile);
        } else {
          this.users.delete(data.userId);
        }
        this.emit('userConnection', data);
        this.emitOnline();
        return;
      }
      case 'USER_UPDATE_MESSAGE':
        this.emit('frame', f);
        this.updateProfile(f.serverData.userId, f.serverData);
        this.emit('userUpdate', f.serverData);
        return;
      case 'SAVE_AVATAR': {
        this.emit('frame', f);
        if (f.status === 'SUCCESS' && this.myId !== undefined) this.updateProfile(this.myId, { avatar: f.serverData.avatar });
        const slot = this.avatars.shift();
        if (slot?.timer !== undefined) clearTimeout(slot.timer);
        if (f.status === 'SUCCESS') slot?.settle?.resolve(f.serverData.avatar);
        else slot?.settle?.reject(new ChatClientError('AVATAR_REJECTED', f.error.message, { errorCode: f.error.errorCode }));
        this.emit('saveAvatar', f);
        return;
      }
      case 'TOKEN_REFRESH_MESSAGE': {
        this.emit('frame', f);
        const slot = this.refreshes.shift();
        if (slot?.timer !== undefined) clearTimeout(slot.timer);
        if (f.status === 'SUCCESS') {
          const expiresAt = readExpiresAt(f.serverData.expiresAt);
          if (slot) this.token = slot.token;
          this.setExpiry(expiresAt);
          slot?.settle?.resolve(expiresAt);
          this.emit('tokenRefreshed', expiresAt === undefined ? {} : { expiresAt });
        } else {
          slot?.settle?.reject(new ChatClientError('TOKEN_REJECTED', f.error.message, { errorCode: f.error.errorCode }));
        }
        return;
      }
      case 'ERROR_MESSAGE':
        this.emit('frame', f);
        if (f.requestType === 'SAVE_AVATAR' || f.requestType === 'TOKEN_REFRESH_MESSAGE') {
          // Frames are answered in order: this refusal belongs to the oldest request of its type in flight.
          const slot = f.requestType === 'SAVE_AVATAR' ? this.avatars.shift() : this.refreshes.shift();
          if (slot?.timer !== undefined) clearTimeout(slot.timer);
          slot?.settle?.reject(new ChatClientError('REQUEST_REJECTED', f.error.message, { errorCode: f.error.errorCode }));
        }
        this.emit('serverError', f);
        return;
      default:
        this.emit('unknownFrame', frame as { type: string });
    }
  }

  private onAuthSuccess(userId: string, userList: UserProfile[], expiresAt: number | undefined): void {
    if (this.authTimer !== undefined) clearTimeout(this.authTimer);
    this.authTimer = undefined;
    this.myId = userId;
    this.setExpiry(expiresAt);
    this.attempt = 0;
    this.generation += 1;
    this.users.clear();
    for (const profile of userList) this.users.set(profile.userId, { ...profile });
    this.setState('open');
    const result: AuthResult = { userId, userList: userList.map((p) => ({ ...p })), ...(expiresAt === undefined ? {} : { expiresAt }) };
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(result);
    this.emit('auth', result);
    this.emitOnline();
    // Dialogs that waited for a connection, or whose connection dropped before their delivery:
    // sent (again) with the same messageId; the gateway answers a repeat without delivering twice.
    for (const pending of this.dialogs.values()) {
      if (pending.sentOn !== this.generation) this.sendDialog(pending);
    }
  }

  // ---- helpers ----

  /** Applies the changed fields of a USER_UPDATE_MESSAGE (or a saved avatar) to an online user. */
  private updateProfile(userId: string, changed: Partial<UserProfile>): void {
    const profile = this.users.get(userId);
    if (!profile) return;
    this.users.set(userId, { ...profile, ...changed, userId });
    this.emitOnline();
  }

  private emitOnline(): void {
    this.emit('online', this.online);
  }

  private setState(state: ConnectionState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit('state', state);
  }

  /** Will the client be logged in without another `connect()`? */
  private willBeOpen(): boolean {
    return this.currentState !== 'idle' && this.currentState !== 'closed';
  }

  private notConnected(): ChatClientError {
    return new ChatClientError('NOT_CONNECTED', `not logged in (state ${this.currentState}): call connect() first`);
  }

  private sendNow(frame: ClientFrame): void {
    const socket = this.socket;
    if (this.currentState !== 'open' || !socket || socket.readyState !== OPEN) {
      throw new ChatClientError('NOT_CONNECTED', `not logged in (state ${this.currentState})`);
    }
    socket.send(JSON.stringify(frame));
  }

  private sendDialog(pending: PendingDialog): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== OPEN) return; // sent after the next login
    pending.sentOn = this.generation;
    socket.send(pending.data);
  }

  /**
   * The token's expiry changed: `tokenExpiring` is due `refreshBeforeMs` ahead of the new one, or
   * halfway through the time left when that is less than twice `refreshBeforeMs` (a token that
   * lives shorter than `refreshBeforeMs` is not refreshed in a loop).
   */
  private setExpiry(expiresAt: number | undefined): void {
    this.expiresAt = expiresAt;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (expiresAt === undefined) return;
    const left = expiresAt - Date.now();
    const before = Math.min(this.options.refreshBeforeMs ?? 30_000, left / 2);
    const arm = (delay: number): void => {
      this.expiryTimer = setTimeout(() => {
        this.expiryTimer = undefined;
        if (this.expiresAt !== expiresAt || this.currentState !== 'open') return;
        const inMs = Math.max(0, expiresAt - Date.now());
        // Node's timers may fire a millisecond before the wall clock says they are due (and a
        // delay is capped at 2^31 - 1 ms): wait out the rest rather than announce it too early.
        if (inMs > before) arm(Math.min(2 ** 31 - 1, Math.ceil(inMs - before)));
        else this.emit('tokenExpiring', { expiresAt, inMs });
      }, delay);
    };
    arm(Math.max(0, Math.min(2 ** 31 - 1, Math.floor(left - before))));
  }

  private failRefreshes(err: ChatClientError): void {
    for (const slot of this.refreshes.splice(0)) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      slot.settle?.reject(err);
    }
  }

  private failAvatars(err: ChatClientError): void {
    for (const slot of this.avatars.splice(0)) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      slot.settle?.reject(err);
    }
  }
}

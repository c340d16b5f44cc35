/**
 * The wire contract as the client sees it: every frame the gateway sends and every frame a client
 * may send, as plain string-literal types (no enums, so `status === 'SUCCESS'` just works).
 *
 * Self-contained on purpose: the client core imports nothing outside src/client (no Node, no
 * Nest), so it bundles for browsers. src/client/chat-client.spec.ts checks at compile time that
 * these literals are exactly the values of the gateway's enums in src/protocol/protocol.ts.
 */

export const SUBPROTOCOL = 'mpgp.v1';
export const TOKEN_SUBPROTOCOL_PREFIX = 'authToken.';

export type MessageTypeName =
  | 'AUTH_MESSAGE'
  | 'CHAT_MESSAGE'
  | 'DIALOG_MESSAGE'
  | 'DELIVERY_MESSAGE'
  | 'USER_CONNECTION_MESSAGE'
  | 'USER_UPDATE_MESSAGE'
  | 'SAVE_AVATAR'
  | 'ERROR_MESSAGE';

export type Status = 'SUCCESS' | 'ERROR';
export type DeliveryStatus = Status;

/** AUTH_MESSAGE ERROR: "1" already connected (4409), "2" bad/missing token (4401, 4408), "3" auth server unavailable (1013). */
export type AuthErrorCode = '1' | '2' | '3';
/** SAVE_AVATAR ERROR: "1" too large, "2" not a valid image, "3" could not be stored. */
export type AvatarErrorCode = '1' | '2' | '3' | '4';
/** ERROR_MESSAGE codes. */
export type FrameErrorCode = 'INVALID_JSON' | 'INVALID_MESSAGE' | 'UNKNOWN_TYPE' | 'RATE_LIMITED';

/** The close codes the gateway uses. */
export const CloseCodes = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  /** Not sent by the gateway: what a client sees when the connection is lost without a close frame. */
  ABNORMAL: 1006,
  MESSAGE_TOO_BIG: 1009,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4401,
  AUTH_DEADLINE: 4408,
  ALREADY_CONNECTED: 4409,
  SLOW_CONSUMER: 4413,
  FLOODING: 4429,
} as const;

/** The seven profile fields of a user, all strings: the gateway's own type (type-only, erased in bundles). */
export type { UserProfile } from '../protocol/protocol';
import type { UserProfile } from '../protocol/protocol';

export interface WireError<C extends string = string> {
  errorCode: C;
  message: string;
}

// ---- server -> client ----

export interface AuthSuccessFrame {
  type: 'AUTH_MESSAGE';
  status: 'SUCCESS';
  serverData: { userId: string; userList: UserProfile[] };
}

export interface AuthErrorFrame {
  type: 'AUTH_MESSAGE';
  status: 'ERROR';
  error: WireError<AuthErrorCode>;
}

export interface ChatServerFrame {
  type: 'CHAT_MESSAGE';
  serverData: { message: string; sender: string; sendTime: string };
}

export interface DialogServerFrame<T = unknown> {
  type: 'DIALOG_MESSAGE';
  clientData: T;
  serverData: { messageId: string; sender: string; sendTime: string };
}

export interface DeliveryFrame {
  type: 'DELIVERY_MESSAGE';
  status: DeliveryStatus;
  serverData: { messageId: string };
}

export type UserConnectData = UserProfile & { connectionStatus: 'CONNECT' };
export interface UserDisconnectData {
  connectionStatus: 'DISCONNECT';
  userId: string;
}

export interface UserConnectionFrame {
  type: 'USER_CONNECTION_MESSAGE';
  serverData: UserConnectData | UserDisconnectData;
}

export interface UserUpdateFrame {
  type: 'USER_UPDATE_MESSAGE';
  serverData: { userId: string; avatar: string };
}

export interface SaveAvatarSuccessFrame {
  type: 'SAVE_AVATAR';
  status: 'SUCCESS';
  serverData: { avatar: string };
}

export interface SaveAvatarErrorFrame {
  type: 'SAVE_AVATAR';
  status: 'ERROR';
  error: WireError<AvatarErrorCode>;
}

export interface ErrorMessageFrame {
  type: 'ERROR_MESSAGE';
  status: 'ERROR';
  error: WireError<FrameErrorCode>;
  /** The `type` of the offending frame, when it had a string one (may be absent on RATE_LIMITED). */
  requestType?: string;
}

export type ServerFrame =
  | AuthSuccessFrame
  | AuthErrorFrame
  | ChatServerFrame
  | DialogServerFrame
  | DeliveryFrame
  | UserConnectionFrame
  | UserUpdateFrame
  | SaveAvatarSuccessFrame
  | SaveAvatarErrorFrame
  | ErrorMessageFrame;

// ---- client -> server ----

/** Only for connections that brought no token with the upgrade (the `'frame'` auth mode). */
export interface AuthTokenFrame {
  type: 'AUTH_MESSAGE';
  serverData: { authToken: string };
}

export interface ChatClientFrame {
  type: 'CHAT_MESSAGE';
  serverData: { message: string };
}

export interface DialogClientFrame<T = unknown> {
  type: 'DIALOG_MESSAGE';
  clientData: T;
  serverData: { receiver: string; messageId?: string };
}

export interface SaveAvatarClientFrame {
  type: 'SAVE_AVATAR';
  serverData: { imageBase64: string };
}

export type ClientFrame = AuthTokenFrame | ChatClientFrame | DialogClientFrame | SaveAvatarClientFrame;

/** A client-chosen dialog messageId: 1 to 64 characters of A-Za-z0-9_- (the gateway's rule). */
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The frames of the protocol, both ways, as plain types: the one source the gateway (which builds
 * what it sends from them), the typed client (src/client) and the AsyncAPI check
 * (test/contract) share. See docs/protocol.md. No runtime code and no imports beyond
 * src/protocol, so the browser bundle can use it.
 */
import type {
  AuthErrorCode as AuthErrorCodes,
  AvatarErrorCode as AvatarErrorCodes,
  FrameErrorCode as FrameErrorCodes,
  MessageType,
  Status as Statuses,
  TokenRefreshErrorCode as TokenRefreshErrorCodes,
  UserProfile,
} from './protocol';

// The values of the enums of ./protocol as string literals (`status === 'SUCCESS'` type-checks).
export type MessageTypeName = `${MessageType}`;
export type Status = `${Statuses}`;
export type DeliveryStatus = Status;
/** AUTH_MESSAGE ERROR: "1" already connected (4409), "2" bad/missing token (4401, 4408), "3" auth server unavailable (1013). */
export type AuthErrorCode = `${AuthErrorCodes}`;
/** SAVE_AVATAR ERROR: "1" too large, "2" not a valid image, "3" could not be stored, "4" too many uploads. */
export type AvatarErrorCode = `${AvatarErrorCodes}`;
/** ERROR_MESSAGE codes. */
export type FrameErrorCode = `${FrameErrorCodes}`;
/** TOKEN_REFRESH_MESSAGE ERROR: "2" invalid or another user's token (then close 4401), "3" auth server unavailable (kept). */
export type TokenRefreshErrorCode = `${TokenRefreshErrorCodes}`;

export interface WireError<C extends string = string> {
  errorCode: C;
  message: string;
}

// ---- server -> client ----

export interface AuthSuccessFrame {
  type: 'AUTH_MESSAGE';
  status: 'SUCCESS';
  /**
   * `expiresAt` (extension): when the token of this login stops being valid, Unix ms as a decimal
   * string; absent when the authorization server gave no expiry.
   */
  serverData: { userId: string; userList: UserProfile[]; expiresAt?: string };
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

/** A changed profile: `userId` and the fields that changed. */
export interface UserUpdateFrame {
  type: 'USER_UPDATE_MESSAGE';
  serverData: Partial<UserProfile> & { userId: string };
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

/** The answer to TOKEN_REFRESH_MESSAGE: the new token stands; `expiresAt` absent when it does not expire. */
export interface TokenRefreshSuccessFrame {
  type: 'TOKEN_REFRESH_MESSAGE';
  status: 'SUCCESS';
  serverData: { expiresAt?: string };
}

export interface TokenRefreshErrorFrame {
  type: 'TOKEN_REFRESH_MESSAGE';
  status: 'ERROR';
  error: WireError<TokenRefreshErrorCode>;
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
  | TokenRefreshSuccessFrame
  | TokenRefreshErrorFrame
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

/** A new token for this connection (extension): answered with TOKEN_REFRESH_MESSAGE SUCCESS or ERROR. */
export interface TokenRefreshClientFrame {
  type: 'TOKEN_REFRESH_MESSAGE';
  serverData: { authToken: string };
}

export type ClientFrame = AuthTokenFrame | ChatClientFrame | DialogClientFrame | SaveAvatarClientFrame | TokenRefreshClientFrame;

/**
 * The wire contract in one typed place: message types, error codes, close codes and the user
 * profile (docs/protocol.md); the frames built from them are in ./frames.ts. Plain TypeScript,
 * no imports: the typed client and the browser bundle use it too.
 */

export const PROTOCOL_SUBPROTOCOL = 'mpgp.v1';
export const TOKEN_SUBPROTOCOL_PREFIX = 'authToken.';
export const TOKEN_HEADER = 'authtoken';
export const TOKEN_QUERY_PARAM = 'authToken';

/** A client-chosen dialog messageId: 1 to 64 characters of A-Za-z0-9_-. */
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export enum MessageType {
  AUTH = 'AUTH_MESSAGE',
  CHAT = 'CHAT_MESSAGE',
  DIALOG = 'DIALOG_MESSAGE',
  DELIVERY = 'DELIVERY_MESSAGE',
  USER_CONNECTION = 'USER_CONNECTION_MESSAGE',
  USER_UPDATE = 'USER_UPDATE_MESSAGE',
  SAVE_AVATAR = 'SAVE_AVATAR',
  ERROR = 'ERROR_MESSAGE',
  /** A new token for a live connection (extension, docs/protocol.md "Token lifecycle"). */
  TOKEN_REFRESH = 'TOKEN_REFRESH_MESSAGE',
}

export enum Status {
  SUCCESS = 'SUCCESS',
  ERROR = 'ERROR',
}

/** errorCode of AUTH_MESSAGE ERROR. */
export enum AuthErrorCode {
  ALREADY_CONNECTED = '1',
  INVALID_TOKEN = '2',
  AUTH_UNAVAILABLE = '3',
}

/** errorCode of TOKEN_REFRESH_MESSAGE ERROR: the login's "2" and "3". */
export enum TokenRefreshErrorCode {
  /** The new token is invalid, expired or another user's: the connection is closed with 4401. */
  INVALID_TOKEN = '2',
  /** The authorization server could not answer: the connection is kept, with its old expiry. */
  AUTH_UNAVAILABLE = '3',
}

/** The reasons of the 4401 closes of a live connection whose token no longer stands. */
export const TokenCloseReason = {
  /** Its token's expiresAt passed before a refresh. */
  EXPIRED: 'token expired',
  /** The periodic re-check (AUTH_RECHECK_INTERVAL_MS) found its token invalid. */
  REVOKED: 'token revoked',
  /** A TOKEN_REFRESH_MESSAGE brought an invalid token, or another user's. */
  REFRESH_REFUSED: 'token not found or invalid',
} as const;

/** Unix milliseconds as a decimal string (at most 16 digits): what `expiresAt` and `sendTime` are. */
export const UNIX_MILLIS_PATTERN = /^[0-9]{1,16}$/;

/** errorCode of SAVE_AVATAR ERROR. */
export enum AvatarErrorCode {
  TOO_LARGE = '1',
  INVALID_IMAGE = '2',
  STORE_FAILED = '3',
  TOO_MANY_UPLOADS = '4',
}

/** errorCode of ERROR_MESSAGE. */
export enum FrameErrorCode {
  INVALID_JSON = 'INVALID_JSON',
  INVALID_MESSAGE = 'INVALID_MESSAGE',
  UNKNOWN_TYPE = 'UNKNOWN_TYPE',
  RATE_LIMITED = 'RATE_LIMITED',
  /** A guard of a handler refused the frame (an added message type's own guard). */
  FORBIDDEN = 'FORBIDDEN',
}

export enum CloseCode {
  NORMAL = 1000,
  GOING_AWAY = 1001,
  MESSAGE_TOO_BIG = 1009,
  TRY_AGAIN_LATER = 1013,
  UNAUTHORIZED = 4401,
  /** Disconnected by the application's backend (Server API). */
  KICKED = 4403,
  AUTH_DEADLINE = 4408,
  ALREADY_CONNECTED = 4409,
  SLOW_CONSUMER = 4413,
  FLOODING = 4429,
}

/** Never sent: how a connection ends without a close frame (dropped, or its node died). */
export const ABNORMAL_CLOSURE = 1006;

export enum ConnectionStatus {
  CONNECT = 'CONNECT',
  DISCONNECT = 'DISCONNECT',
}

/** The seven profile fields of a user, all strings. */
export interface UserProfile {
  userId: string;
  nickname: string;
  avatar: string;
  language: string;
  status: string;
  lastOnline: string;
  registerDate: string;
}

export const PROFILE_FIELDS = [
  'userId',
  'nickname',
  'avatar',
  'language',
  'status',
  'lastOnline',
  'registerDate',
] as const satisfies readonly (keyof UserProfile)[];

/** Builds a complete profile: every field a string, a missing or non-string one becomes "". */
export function toProfile(source: Record<string, unknown>): UserProfile {
  const out = {} as UserProfile;
  for (const field of PROFILE_FIELDS) {
    const value = source[field];
    out[field] = typeof value === 'string' ? value : '';
  }
  return out;
}

/** The outcome of handing a frame to a user's connection, anywhere: the one vocabulary (DELIVERY_MESSAGE's). */
export type DeliveryStatus = Status.SUCCESS | Status.ERROR;

/**
 * The wire contract as the client sees it: every frame the gateway sends and every frame a client
 * may send, as plain string-literal types (no enums, so `status === 'SUCCESS'` just works).
 *
 * The frame types are the protocol's own (src/protocol/frames.ts, derived from the enums of
 * src/protocol/protocol.ts): one source for the gateway, this client and the AsyncAPI check. The
 * client core imports nothing else outside src/client (no Node, no Nest), so it bundles for browsers.
 */

export { PROTOCOL_SUBPROTOCOL as SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, MESSAGE_ID_PATTERN } from '../protocol/protocol';

/** The close codes the gateway uses. */
export const CloseCodes = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  /** Not sent by the gateway: what a client sees when the connection is lost without a close frame. */
  ABNORMAL: 1006,
  MESSAGE_TOO_BIG: 1009,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4401,
  KICKED: 4403,
  AUTH_DEADLINE: 4408,
  ALREADY_CONNECTED: 4409,
  SLOW_CONSUMER: 4413,
  FLOODING: 4429,
} as const;

/** The frames both ways and the profile: the protocol's own types (type-only, erased in bundles). */
export type * from '../protocol/frames';
export type { UserProfile } from '../protocol/protocol';


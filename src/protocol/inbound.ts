/**
 * The top-level `clientData` of a frame exactly as the client wrote it (without the whitespace
 * between tokens), when the frame has one: forwarded byte-exact, so numbers beyond a double and
 * escapes arrive as sent.
 */
export const RAW_CLIENT_DATA = Symbol('rawClientData');

/** A frame as received and parsed: a JSON object with a string `type`. */
export type InboundFrame = Record<string, unknown> & { type: string; readonly [RAW_CLIENT_DATA]?: string };

/**
 * The data of a login whose token came with the upgrade request: AuthGuard reads the token from
 * the request when it sees this object (and from the frame for any other AUTH_MESSAGE).
 */
export const HANDSHAKE_LOGIN: InboundFrame = Object.freeze({ type: 'AUTH_MESSAGE' });

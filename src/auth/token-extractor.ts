import type { IncomingMessage } from 'node:http';
import { TOKEN_HEADER, TOKEN_QUERY_PARAM, TOKEN_SUBPROTOCOL_PREFIX } from '../protocol/protocol';

export type TokenSource = 'header' | 'subprotocol' | 'query';

export type ExtractedToken =
  | { readonly kind: 'token'; readonly token: string; readonly source: TokenSource }
  /** A token entry was offered but cannot be a token (bad base64url): AUTH error "2". */
  | { readonly kind: 'malformed'; readonly source: TokenSource }
  /** No token in the upgrade request: wait for an AUTH_MESSAGE frame. */
  | { readonly kind: 'none' };

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Reads the token from the upgrade request, first found wins: the `authToken` header, then an
 * `authToken.<base64url>` subprotocol entry, then (only when allowed) the `authToken` query parameter.
 */
export function extractToken(request: IncomingMessage, allowQuery: boolean): ExtractedToken {
  const header = request.headers[TOKEN_HEADER];
  if (header !== undefined) {
    const value = Array.isArray(header) ? header[0] : header;
    return value ? { kind: 'token', token: value, source: 'header' } : { kind: 'malformed', source: 'header' };
  }
  const protocols = request.headers['sec-websocket-protocol'];
  if (protocols) {
    for (const raw of protocols.split(',')) {
      const entry = raw.trim();
      if (!entry.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) continue;
      const token = decodeBase64Url(entry.slice(TOKEN_SUBPROTOCOL_PREFIX.length));
      return token === undefined ? { kind: 'malformed', source: 'subprotocol' } : { kind: 'token', token, source: 'subprotocol' };
    }
  }
  if (allowQuery && request.url && request.url.includes('?')) {
    const query = new URLSearchParams(request.url.slice(request.url.indexOf('?') + 1));
    const token = query.get(TOKEN_QUERY_PARAM);
    if (token !== null) {
      return token ? { kind: 'token', token, source: 'query' } : { kind: 'malformed', source: 'query' };
    }
  }
  return { kind: 'none' };
}

/** Strict base64url without padding; undefined when it is not that, or decodes to an empty or non-UTF-8 string. */
export function decodeBase64Url(encoded: string): string | undefined {
  if (!BASE64URL.test(encoded) || encoded.length % 4 === 1) return undefined;
  const bytes = Buffer.from(encoded, 'base64url');
  // Reject non-canonical encodings (stray bits in the last character).
  if (bytes.toString('base64url') !== encoded) return undefined;
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    const token = text.decode(bytes);
    return token.length > 0 ? token : undefined;
  } catch {
    return undefined;
  }
}

import type { IncomingMessage } from 'node:http';
import { TOKEN_SUBPROTOCOL_PREFIX } from '../protocol/protocol';

/** RFC 7230 token: what `ws` (and RFC 6455) accept as a subprotocol. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * What a token entry that is not an HTTP token becomes: still a token entry (so the token's
 * place in the order of sources is kept), but never valid base64url (`!`), so the login is refused
 * with "2" like any other entry that is not base64url.
 */
export const MALFORMED_TOKEN_ENTRY = `${TOKEN_SUBPROTOCOL_PREFIX}!`;

/**
 * PROTOCOL.md: "the upgrade succeeds whatever the token" and "an `authToken.` entry that is not
 * valid base64url counts as an invalid token". `ws` refuses with HTTP 400 a Sec-WebSocket-Protocol
 * header with any entry that is not an HTTP token (base64 padding `=`, standard base64's `/`), an
 * empty entry or one offered twice, before the gateway sees the request. So the header is
 * rewritten first: a token entry that is not an HTTP token becomes MALFORMED_TOKEN_ENTRY (the
 * login gets "2"), other entries that are not HTTP tokens are dropped (nobody can select them), as
 * are empty entries and repeats. The entries are joined with ", " (what ws parses); undefined: no
 * entry is left (the header is removed).
 */
export function normalizeSubprotocols(header: string): string | undefined {
  const kept: string[] = [];
  for (const raw of header.split(',')) {
    let entry = raw.trim();
    if (!HTTP_TOKEN.test(entry)) {
      if (!entry.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) continue;
      entry = MALFORMED_TOKEN_ENTRY;
    }
    if (!kept.includes(entry)) kept.push(entry);
  }
  return kept.length > 0 ? kept.join(', ') : undefined;
}

/** Rewrites the request's Sec-WebSocket-Protocol header in place (see normalizeSubprotocols). */
export function normalizeSubprotocolHeader(request: IncomingMessage): void {
  const header = request.headers['sec-websocket-protocol'];
  if (header === undefined) return;
  const normalized = normalizeSubprotocols(header);
  if (normalized === header) return;
  if (normalized === undefined) delete request.headers['sec-websocket-protocol'];
  else request.headers['sec-websocket-protocol'] = normalized;
}

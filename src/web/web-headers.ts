/** A Host header that can be put in a CSP source as is: a DNS name or IPv4, or an [IPv6], with an optional port. */
const SAFE_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The Content-Security-Policy of the demo page: only its own script and stylesheet (no inline
 * code, no eval), images from itself, `data:` and the avatar origin (PUBLIC_URL), and WebSocket
 * connections back to the host the page came from (`ws:` and `wss:` spelled out, since older
 * browsers do not let 'self' cover them). No frames, no forms posted anywhere, no <base>.
 */
export function demoPageCsp(host: string | undefined, publicUrl: string): string {
  const connect = ["'self'"];
  if (host && SAFE_HOST.test(host)) connect.push(`ws://${host}`, `wss://${host}`);
  const img = ["'self'", 'data:', 'blob:'];
  const avatarOrigin = originOf(publicUrl);
  if (avatarOrigin) img.push(avatarOrigin);
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src ${img.join(' ')}`,
    `connect-src ${connect.join(' ')}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function originOf(url: string): string | undefined {
  try {
    const { origin, protocol } = new URL(url);
    return protocol === 'http:' || protocol === 'https:' ? origin : undefined;
  } catch {
    return undefined;
  }
}

/** Headers on every response of the demo page, found or not. */
export function demoPageHeaders(host: string | undefined, publicUrl: string): Record<string, string> {
  return {
    'Content-Security-Policy': demoPageCsp(host, publicUrl),
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}

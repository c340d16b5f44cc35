import type { IncomingMessage } from 'node:http';
import { MALFORMED_TOKEN_ENTRY, normalizeSubprotocolHeader, normalizeSubprotocols } from './subprotocol-header';
import { decodeBase64Url } from '../auth/token-extractor';

// ws's own parser of the header: what it refuses with HTTP 400.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const wsParse: (header: string) => Set<string> = require('../../node_modules/ws/lib/subprotocol.js').parse;

describe('normalizeSubprotocols (Sec-WebSocket-Protocol before ws reads it)', () => {
  it('keeps a header of HTTP tokens as it is, in its order', () => {
    expect(normalizeSubprotocols('mpgp.v1, authToken.YWxpY2UtdG9rZW4')).toBe('mpgp.v1, authToken.YWxpY2UtdG9rZW4');
    expect(normalizeSubprotocols('a,b\t, c')).toBe('a, b, c');
  });

  it.each([
    ['base64 padding', 'mpgp.v1, authToken.YWxpY2UtdG9rZW4=', 'mpgp.v1, ' + MALFORMED_TOKEN_ENTRY],
    ["standard base64's /", 'authToken.Pz8/, mpgp.v1', MALFORMED_TOKEN_ENTRY + ', mpgp.v1'],
    ['a space inside', 'mpgp.v1, authToken.a b', 'mpgp.v1, ' + MALFORMED_TOKEN_ENTRY],
  ])('turns a token entry that is not an HTTP token (%s) into one that is never base64url', (_what, header, expected) => {
    expect(normalizeSubprotocols(header)).toBe(expected);
    expect(decodeBase64Url(MALFORMED_TOKEN_ENTRY.slice('authToken.'.length))).toBeUndefined();
  });

  it('drops other entries that are not HTTP tokens, empty entries and repeats', () => {
    expect(normalizeSubprotocols('mpgp.v1,,authToken.abcd')).toBe('mpgp.v1, authToken.abcd');
    expect(normalizeSubprotocols('mpgp.v1, authToken.abcd, mpgp.v1')).toBe('mpgp.v1, authToken.abcd');
    expect(normalizeSubprotocols('x=y, mpgp.v1,')).toBe('mpgp.v1');
    expect(normalizeSubprotocols(' , ,')).toBeUndefined();
    expect(normalizeSubprotocols('a=b')).toBeUndefined();
  });

  it('keeps the first token entry first: two bad ones become one malformed entry, a later good one stays after it', () => {
    expect(normalizeSubprotocols('authToken.a=, authToken.b=, authToken.abcd')).toBe(`${MALFORMED_TOKEN_ENTRY}, authToken.abcd`);
  });

  it.each(['mpgp.v1,,x', 'a, a', 'authToken.YQ==, mpgp.v1', 'x\u00e9, y', 'a ,b', ',', 'a=b=c, authToken./', 'mpgp.v1,\tauthToken.abc '])(
    'what it returns for %j is always accepted by ws',
    (header) => {
      const normalized = normalizeSubprotocols(header);
      if (normalized !== undefined) expect(() => wsParse(normalized)).not.toThrow();
    },
  );

  it('rewrites the request header in place, and removes it when nothing is left', () => {
    const request = (header?: string) => ({ headers: header === undefined ? {} : { 'sec-websocket-protocol': header } }) as IncomingMessage;
    const bad = request('mpgp.v1, authToken.YQ==');
    normalizeSubprotocolHeader(bad);
    expect(bad.headers['sec-websocket-protocol']).toBe(`mpgp.v1, ${MALFORMED_TOKEN_ENTRY}`);
    const empty = request(',,');
    normalizeSubprotocolHeader(empty);
    expect('sec-websocket-protocol' in empty.headers).toBe(false);
    const none = request();
    normalizeSubprotocolHeader(none);
    expect(none.headers).toEqual({});
  });
});

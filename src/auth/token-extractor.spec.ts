import type { IncomingMessage } from 'node:http';
import { decodeBase64Url, extractToken } from './token-extractor';

/** A fake upgrade request: only `headers` and `url` are read. Node lower-cases header names. */
function request(headers: Record<string, string | string[]> = {}, url = '/ws'): IncomingMessage {
  return { headers, url } as unknown as IncomingMessage;
}

const b64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

describe('extractToken', () => {
  describe('authToken header', () => {
    it('reads the token from the header', () => {
      expect(extractToken(request({ authtoken: 'tok-123' }), false)).toEqual({ kind: 'token', token: 'tok-123', source: 'header' });
    });

    it('takes the first value of a repeated header', () => {
      expect(extractToken(request({ authtoken: ['first', 'second'] }), false)).toEqual({ kind: 'token', token: 'first', source: 'header' });
    });

    it('treats an empty header as a malformed token, not as no token', () => {
      expect(extractToken(request({ authtoken: '' }), false)).toEqual({ kind: 'malformed', source: 'header' });
    });
  });

  describe('authToken.<base64url> subprotocol', () => {
    it('decodes a valid unpadded base64url entry offered beside mpgp.v1', () => {
      const token = '>>>???tök/en';
      const offered = `mpgp.v1, authToken.${b64url(token)}`;
      expect(b64url(token)).toMatch(/[-_]/); // the encoding really uses the URL-safe alphabet
      expect(extractToken(request({ 'sec-websocket-protocol': offered }), false)).toEqual({ kind: 'token', token, source: 'subprotocol' });
    });

    it.each([
      ['padding present', 'authToken.dG8='],
      ['standard-alphabet characters', 'authToken.dG+v'],
      ['a character outside base64', 'authToken.dG8*'],
      ['a non-canonical encoding (stray bits in the last character)', 'authToken.dG9'],
      ['an impossible length', 'authToken.dG9rZ'],
      ['an empty value', 'authToken.'],
      ['bytes that are not UTF-8', `authToken.${Buffer.from([0xff, 0xfe]).toString('base64url')}`],
    ])('counts %s as malformed', (_case, entry) => {
      expect(extractToken(request({ 'sec-websocket-protocol': `mpgp.v1, ${entry}` }), false)).toEqual({ kind: 'malformed', source: 'subprotocol' });
    });

    it('ignores other subprotocols', () => {
      expect(extractToken(request({ 'sec-websocket-protocol': 'mpgp.v1, chat' }), false)).toEqual({ kind: 'none' });
    });
  });

  describe('authToken query parameter', () => {
    it('is read only when allowed', () => {
      const req = request({}, '/ws?x=1&authToken=q-tok');
      expect(extractToken(req, true)).toEqual({ kind: 'token', token: 'q-tok', source: 'query' });
      expect(extractToken(req, false)).toEqual({ kind: 'none' });
    });

    it('decodes percent-encoding', () => {
      expect(extractToken(request({}, '/ws?authToken=a%2Bb%20c'), true)).toEqual({ kind: 'token', token: 'a+b c', source: 'query' });
    });

    it('treats an empty value as malformed when allowed', () => {
      expect(extractToken(request({}, '/ws?authToken='), true)).toEqual({ kind: 'malformed', source: 'query' });
    });
  });

  describe('precedence: header > subprotocol > query', () => {
    const all = {
      authtoken: 'from-header',
      'sec-websocket-protocol': `mpgp.v1, authToken.${b64url('from-subprotocol')}`,
    };

    it('prefers the header over the subprotocol and the query', () => {
      expect(extractToken(request(all, '/ws?authToken=from-query'), true)).toEqual({ kind: 'token', token: 'from-header', source: 'header' });
    });

    it('prefers the subprotocol over the query', () => {
      const { authtoken: _dropped, ...noHeader } = all;
      expect(extractToken(request(noHeader, '/ws?authToken=from-query'), true)).toEqual({
        kind: 'token',
        token: 'from-subprotocol',
        source: 'subprotocol',
      });
    });

    it('does not fall back to the query when the subprotocol entry is malformed', () => {
      const req = request({ 'sec-websocket-protocol': 'authToken.dG8=' }, '/ws?authToken=from-query');
      expect(extractToken(req, true)).toEqual({ kind: 'malformed', source: 'subprotocol' });
    });

    it('does not fall back to the subprotocol when the header is empty', () => {
      const req = request({ authtoken: '', 'sec-websocket-protocol': `authToken.${b64url('x')}` });
      expect(extractToken(req, true)).toEqual({ kind: 'malformed', source: 'header' });
    });
  });

  it('answers none when no token is offered', () => {
    expect(extractToken(request({ 'sec-websocket-protocol': 'mpgp.v1' }, '/ws?other=1'), true)).toEqual({ kind: 'none' });
    expect(extractToken(request({}, '/ws'), true)).toEqual({ kind: 'none' });
  });
});

describe('decodeBase64Url', () => {
  it('round-trips UTF-8 text', () => {
    for (const text of ['a', 'ab', 'abc', 'abcd', 'émoji 🎉', 'x'.repeat(300)]) {
      expect(decodeBase64Url(b64url(text))).toBe(text);
    }
  });
});

/**
 * docs/protocol.md "Server API": who may call it and what a malformed call gets. A missing or
 * unknown key gets 401 on every route but openapi.json, answered the same way whatever the key
 * presented (the comparison itself is the guard's unit spec), and before the body is parsed; a
 * malformed body gets 400 `{"error", "fields"}`, a non-JSON one 415, one over the bound 413; the
 * OpenAPI document is a valid OpenAPI 3 document listing every route.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { TestGateway } from '../../support/gateway';
import { isType } from '../../support/frames';
import { apiCall, apiScope, ID, KEY, OTHER_KEY, T } from './api-harness';

jest.setTimeout(20_000);

/** Every route of the API but openapi.json, with a body that would be valid (every row has 3 items: jest.each). */
const ROUTES: [method: string, path: string, body: unknown][] = [
  ['POST', '/api/v1/chat', { sender: 'x', message: 'hi' }],
  ['POST', '/api/v1/dialog', { sender: 'x', receiver: ID.bob, clientData: {} }],
  ['GET', '/api/v1/users', undefined],
  ['GET', `/api/v1/users/${ID.alice}`, undefined],
  ['POST', `/api/v1/users/${ID.alice}/disconnect`, {}],
  ['PATCH', `/api/v1/users/${ID.alice}/profile`, { nickname: 'n' }],
];

/**
 * Validates a document against the official OpenAPI schemas (@seriousme/openapi-schema-validator,
 * an ES module jest cannot load here: run in a node child process).
 */
function validateOpenApi(doc: unknown): { valid: boolean; errors?: unknown } {
  const script =
    "import { Validator } from '@seriousme/openapi-schema-validator'; let text = '';" +
    "process.stdin.on('data', (c) => (text += c)).on('end', async () => process.stdout.write(JSON.stringify(await new Validator().validate(JSON.parse(text)))));";
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: join(__dirname, '..', '..', '..'), input: JSON.stringify(doc) });
  return JSON.parse(out.toString('utf8')) as { valid: boolean; errors?: unknown };
}

/** The default body bound: MAX_MESSAGE_FRAME_BYTES + DIALOG_MAX_BYTES. */
const BODY_MAX_BYTES = 65_536 + 16_384;

describe('Server API access', () => {
  const scope = apiScope();
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await scope.gateway();
  });
  afterAll(() => scope.closeAll());

  describe('401: a missing or unknown key', () => {
    const UNAUTHORIZED = { error: 'missing or unknown API key' };

    it.each(ROUTES)('%s %s without a key, with a wrong key or a client token: 401, nothing done', async (method, path, body) => {
      const alice = await scope.login(gw.wsUrl, T.alice);
      for (const options of [{ key: null }, { key: 'wrong-key-0123456789abcdef' }, { key: T.alice }, { authorization: `Basic ${Buffer.from(`x:${KEY}`).toString('base64')}` }]) {
        const reply = await apiCall(gw, method, path, { ...options, body });
        expect(reply.status).toBe(401);
        expect(reply.json).toEqual(UNAUTHORIZED);
        expect(reply.headers['www-authenticate']).toMatch(/^Bearer /);
      }
      await alice.expectSilence(200);
      expect(alice.closeInfo).toBeUndefined();
      await alice.close();
    });

    it('every key of API_KEYS is accepted, with the scheme in any case; anything around the key is refused', async () => {
      for (const authorization of [`Bearer ${KEY}`, `Bearer ${OTHER_KEY}`, `bearer ${KEY}`, `BEARER   ${KEY}  `]) {
        expect((await apiCall(gw, 'GET', '/api/v1/users', { authorization })).status).toBe(200);
      }
      for (const authorization of [`Bearer ${KEY}x`, `Bearer x${KEY}`, `Bearer ${KEY.slice(0, -1)}`, `Bearer ${KEY} ${KEY}`, KEY, `Bearer`, `Bearer `, `Token ${KEY}`, '']) {
        expect({ authorization, status: (await apiCall(gw, 'GET', '/api/v1/users', { authorization })).status }).toEqual({ authorization, status: 401 });
      }
      // The key in the client token's headers is no key.
      expect((await apiCall(gw, 'GET', '/api/v1/users', { key: null, headers: { authToken: KEY } })).status).toBe(401);
    });

    it('the same answer whatever was presented: no key, an empty one, a shorter, a longer (8 KiB) or a same-length wrong key', async () => {
      const presented = [{ key: null }, { authorization: 'Bearer ' }, { key: 'short' }, { key: 'k'.repeat(8192) }, { key: KEY.replace(/.$/, '_') }, { key: KEY.toUpperCase() }];
      const answers = [];
      for (const options of presented) {
        const { status, body, headers } = await apiCall(gw, 'GET', '/api/v1/users', options);
        const { date: _date, ...rest } = headers;
        answers.push({ status, body, headers: rest });
      }
      for (const answer of answers) expect(answer).toEqual(answers[0]);
      expect(answers[0].status).toBe(401);
    });

    it('checked before the body is parsed: a malformed body without a key is 401, not 400', async () => {
      for (const raw of ['{not json', '[1,2]', '['.repeat(1000) + ']'.repeat(1000), '{"sender":1}']) {
        const reply = await apiCall(gw, 'POST', '/api/v1/chat', { key: 'wrong-key-0123456789abcdef', raw });
        expect(reply.status).toBe(401);
      }
      expect((await apiCall(gw, 'POST', '/api/v1/chat', { key: null, raw: 'text', contentType: 'text/plain' })).status).toBe(401);
    });
  });

  describe('429: an address past API_KEY_FAILURES_PER_MINUTE wrong keys', () => {
    const limited = apiScope({ API_KEY_FAILURES_PER_MINUTE: '120' });
    afterAll(() => limited.closeAll());

    it('gets 429 with Retry-After for any key, its right key included, until a wrong key\'s worth of time passed; other addresses are served', async () => {
      const node = await limited.gateway();
      // 120 a minute: a burst of 120, then one every 0.5 s.
      const wrong = await Promise.all(Array.from({ length: 120 }, () => apiCall(node, 'GET', '/api/v1/users', { key: 'wrong-key-0123456789abcdef' })));
      expect(new Set(wrong.map((r) => r.status))).toEqual(new Set([401]));
      for (const key of ['wrong-key-0123456789abcdef', KEY]) {
        const refused = await apiCall(node, 'GET', '/api/v1/users', { key });
        expect(refused.status).toBe(429);
        expect(refused.json).toEqual({ error: expect.stringMatching(/^too many wrong API keys from this address: retry in 1 s$/) });
        expect(refused.headers['retry-after']).toBe('1');
      }
      // Another client address (loopback 127.0.0.2) is not held up.
      expect((await apiCall(node, 'GET', '/api/v1/users', { localAddress: '127.0.0.2' })).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await apiCall(node, 'GET', '/api/v1/users')).status).toBe(200);
      // A right key spends nothing: the budget has one wrong key left, no more.
      expect((await apiCall(node, 'GET', '/api/v1/users', { key: 'wrong-key-0123456789abcdef' })).status).toBe(401);
      expect((await apiCall(node, 'GET', '/api/v1/users', { key: 'wrong-key-0123456789abcdef' })).status).toBe(429);
    });
  });

  describe('400: a malformed body names the bad fields', () => {
    it.each([
      ['wrong types and an undeclared field', { sender: 1, message: ['x'], extra: true }, ['extra', 'sender', 'message']],
      ['missing fields', {}, ['sender', 'message']],
      ['empty strings', { sender: '', message: '' }, ['sender', 'message']],
    ])('POST /api/v1/chat, %s', async (_what, body, fields) => {
      const reply = await apiCall(gw, 'POST', '/api/v1/chat', { body });
      expect(reply.status).toBe(400);
      expect(reply.json).toEqual({ error: expect.any(String), fields });
    });

    it.each([
      ['a bad messageId', { sender: 's', receiver: ID.bob, clientData: 1, messageId: 'no spaces allowed' }, ['messageId']],
      ['a messageId too long', { sender: 's', receiver: ID.bob, clientData: 1, messageId: 'x'.repeat(65) }, ['messageId']],
      ['no clientData, an empty receiver', { sender: 's', receiver: '' }, ['receiver', 'clientData']],
      ['a null messageId', { sender: 's', receiver: ID.bob, clientData: 1, messageId: null }, ['messageId']],
    ])('POST /api/v1/dialog, %s', async (_what, body, fields) => {
      const bob = await scope.login(gw.wsUrl, T.bob);
      const reply = await apiCall(gw, 'POST', '/api/v1/dialog', { body });
      expect(reply.status).toBe(400);
      expect(reply.json).toEqual({ error: expect.any(String), fields });
      await bob.expectSilence(200, isType('DIALOG_MESSAGE'));
      await bob.close();
    });

    it('a reason that is not a string', async () => {
      expect((await apiCall(gw, 'POST', `/api/v1/users/${ID.alice}/disconnect`, { body: { reason: 42 } })).json).toEqual({ error: expect.any(String), fields: ['reason'] });
    });

    it('not JSON, not an object, nested deeper than MAX_JSON_DEPTH: 400 with no field', async () => {
      for (const [raw, error] of [
        ['{"sender":"s",', 'the body is not valid JSON'],
        ['[{"sender":"s","message":"m"}]', 'the body must be a JSON object'],
        ['"text"', 'the body must be a JSON object'],
        ['null', 'the body must be a JSON object'],
        [`{"sender":"s","message":"m","x":${'['.repeat(40)}${']'.repeat(40)}}`, 'the body is nested deeper than 32 levels'],
      ]) {
        const reply = await apiCall(gw, 'POST', '/api/v1/chat', { raw });
        expect({ raw, status: reply.status, json: reply.json }).toEqual({ raw, status: 400, json: { error, fields: [] } });
      }
    });

    it('a body that is not application/json in UTF-8: 415', async () => {
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
        const reply = await apiCall(gw, 'POST', '/api/v1/chat', { raw: '{"sender":"s","message":"m"}', contentType });
        expect({ contentType, status: reply.status, json: reply.json }).toEqual({ contentType, status: 415, json: { error: expect.any(String) } });
      }
      for (const contentType of ['application/json; charset=utf-8', 'application/merge-patch+json', 'Application/JSON']) {
        expect((await apiCall(gw, 'POST', '/api/v1/chat', { raw: '{"sender":"s","message":"m"}', contentType })).status).toBe(202);
      }
    });

    it(`a body over ${BODY_MAX_BYTES} bytes (MAX_MESSAGE_FRAME_BYTES + DIALOG_MAX_BYTES): 413, declared or chunked; at the bound it is read`, async () => {
      const json = '{"sender":"s","message":"at the bound"}';
      const atBound = json.slice(0, -1) + ' '.repeat(BODY_MAX_BYTES - json.length) + '}';
      expect(Buffer.byteLength(atBound)).toBe(BODY_MAX_BYTES);
      expect((await apiCall(gw, 'POST', '/api/v1/chat', { raw: atBound })).status).toBe(202);
      const over = atBound.replace(' ', '  ');
      const declared = await apiCall(gw, 'POST', '/api/v1/chat', { raw: over });
      expect(declared.status).toBe(413);
      expect(declared.json).toEqual({ error: expect.stringContaining(String(BODY_MAX_BYTES)), fields: [] });
      const chunked = await apiCall(gw, 'POST', '/api/v1/chat', { raw: over, headers: { 'Transfer-Encoding': 'chunked' } });
      expect(chunked.status).toBe(413);
    });
  });

  describe('GET /api/v1/openapi.json', () => {
    it('needs no key and is a valid OpenAPI 3 document listing every route, each but itself behind the bearer key', async () => {
      const reply = await apiCall(gw, 'GET', '/api/v1/openapi.json', { key: null });
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toMatch(/^application\/json/);
      const doc = reply.json;
      expect(validateOpenApi(doc)).toEqual({ valid: true });
      // The validator does refuse what is not OpenAPI.
      expect(validateOpenApi({ ...doc, info: undefined }).valid).toBe(false);
      expect(doc.openapi).toMatch(/^3\./);
      const routes = Object.entries(doc.paths as Record<string, Record<string, { security?: unknown }>>).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
      );
      expect(routes.sort()).toEqual(
        [
          'POST /api/v1/chat',
          'POST /api/v1/dialog',
          'GET /api/v1/users',
          'GET /api/v1/users/{userId}',
          'POST /api/v1/users/{userId}/disconnect',
          'PATCH /api/v1/users/{userId}/profile',
          'GET /api/v1/openapi.json',
        ].sort(),
      );
      expect(doc.components.securitySchemes.apiKey).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
      for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>)) {
        for (const op of Object.values(ops)) {
          if (path === '/api/v1/openapi.json') expect(op.security).toBeUndefined();
          else {
            expect(op.security).toEqual([{ apiKey: [] }]);
            expect(Object.keys(op.responses)).toContain('401');
          }
        }
      }
      expect(doc.components.schemas.PostDialogDto.required).toEqual(['sender', 'receiver', 'clientData']);
    });
  });
});

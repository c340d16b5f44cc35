/**
 * docs/asyncapi.yaml: a valid AsyncAPI 3 document (@asyncapi/parser), in step with the code
 * (message types, error and close codes of src/protocol/protocol.ts, the client's reconnect
 * policy), with examples that match their schemas, and true to reality: a real gateway is driven
 * through every outbound message of the contract and every frame it sends is validated.
 */
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import sharp from 'sharp';
import { NO_RECONNECT_CLOSE_CODES, RECONNECT_CLOSE_CODES } from '../../src/client/reconnect';
import { AuthErrorCode, AvatarErrorCode, CloseCode, FrameErrorCode, MessageType, Status, TokenRefreshErrorCode } from '../../src/protocol/protocol';
import {
  ASYNCAPI_PATH,
  assertValidClientFrame,
  assertValidServerFrame,
  contract,
  identifyServerFrame,
  serverFrameProblem,
} from '../support/contract';
import { chat } from '../support/frames';
import { freePort } from '../support/free-port';
import { startGateway, type TestGateway } from '../support/gateway';
import { Scope } from '../support/scope';
import { TestClient, tokenSubprotocol, type Frame } from '../support/ws-client';

type Json = Record<string, unknown>;

const schemas = () => ((contract().document.components as Json).schemas as Record<string, Json>);
const enumOf = (name: string) => [...(schemas()[name].enum as string[])].sort();
const sorted = (values: Iterable<string>) => [...values].sort();

describe('docs/asyncapi.yaml', () => {
  it('is a valid AsyncAPI 3 document: @asyncapi/parser reports no error and no warning', async () => {
    const { document, diagnostics } = await new Parser().parse(readFileSync(ASYNCAPI_PATH, 'utf8'));
    // Severity 0 = error, 1 = warning (2 and 3 are information and hints, e.g. "3.1.0 exists").
    const problems = diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
    expect(problems).toEqual([]);
    expect(document).toBeDefined();
    expect(document!.version()).toBe('3.0.0');
    expect(document!.channels().get('gateway')?.address()).toBe('/ws');
    expect(document!.messages().all().length).toBe(18);
  }, 30_000);

  it('describes every message type the gateway sends, and every one it accepts', () => {
    expect(sorted(contract().server.keys())).toEqual(sorted(Object.values(MessageType)));
    expect(sorted(contract().client.keys())).toEqual(
      sorted([MessageType.AUTH, MessageType.CHAT, MessageType.DIALOG, MessageType.SAVE_AVATAR, MessageType.TOKEN_REFRESH]),
    );
  });

  it('has the error codes of src/protocol/protocol.ts', () => {
    expect(enumOf('AuthErrorCode')).toEqual(sorted(Object.values(AuthErrorCode)));
    expect(enumOf('AvatarErrorCode')).toEqual(sorted(Object.values(AvatarErrorCode)));
    expect(enumOf('FrameErrorCode')).toEqual(sorted(Object.values(FrameErrorCode)));
    expect(enumOf('TokenRefreshErrorCode')).toEqual(sorted(Object.values(TokenRefreshErrorCode)));
    const delivery = (schemas().DeliveryPayload.properties as Json).status as Json;
    expect(sorted(delivery.enum as string[])).toEqual(sorted(Object.values(Status)));
  });

  it('has the close codes of src/protocol/protocol.ts, with the reconnect advice the client follows', () => {
    const table = ((contract().document.channels as Json).gateway as Json)['x-close-codes'] as { code: number; name: string; reconnect: boolean }[];
    const codes = Object.entries(CloseCode).filter(([, v]) => typeof v === 'number') as [string, number][];
    expect(table.map((row) => [row.name, row.code])).toEqual(codes);
    for (const row of table) {
      expect({ code: row.code, reconnect: RECONNECT_CLOSE_CODES.has(row.code) }).toEqual({ code: row.code, reconnect: row.reconnect });
      expect({ code: row.code, never: NO_RECONNECT_CLOSE_CODES.has(row.code) }).toEqual({ code: row.code, never: !row.reconnect });
    }
    // And the prose table of the channel lists every code too.
    const prose = ((contract().document.channels as Json).gateway as Json).description as string;
    for (const [, code] of codes) expect(prose).toContain(`| ${code} |`);
  });

  it('has at least one example per message, each valid against its own schema', () => {
    const all = [...contract().server.values(), ...contract().client.values()].flat();
    expect(new Set(all.map((m) => m.id)).size).toBe(18);
    for (const message of all) {
      expect({ id: message.id, examples: message.examples.length > 0 }).toEqual({ id: message.id, examples: true });
      for (const example of message.examples) {
        const ok = message.validate(example);
        expect({ id: message.id, example, errors: ok ? null : message.validate.errors }).toEqual({ id: message.id, example, errors: null });
      }
    }
    for (const message of [...contract().server.values()].flat()) {
      for (const example of message.examples) expect(identifyServerFrame(example)).toBe(message.id);
    }
  });

  describe('assertValidServerFrame', () => {
    const chat = { type: 'CHAT_MESSAGE', serverData: { message: 'hi', sender: '1', sendTime: '1736933400000' } };

    it('accepts a valid frame of each kind and names the message it is', () => {
      expect(() => assertValidServerFrame(chat)).not.toThrow();
      expect(identifyServerFrame({ type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'DISCONNECT', userId: '2' } })).toBe(
        'UserDisconnect',
      );
      expect(identifyServerFrame({ type: 'DELIVERY_MESSAGE', status: 'ERROR', serverData: { messageId: 'x_1' } })).toBe('Delivery');
    });

    it.each([
      ['not an object', 'text', /not a JSON object/],
      ['no type', { serverData: {} }, /no string "type"/],
      ['an unknown type', { type: 'HELLO' }, /does not describe \(HELLO\)/],
      ['a missing field', { type: 'CHAT_MESSAGE', serverData: { message: 'hi', sender: '1' } }, /required property 'sendTime'/],
      ['an undocumented field', { ...chat, extra: 1 }, /undocumented field "extra"/],
      ['a mistyped field', { type: 'CHAT_MESSAGE', serverData: { ...chat.serverData, sendTime: 1736933400000 } }, /sendTime must be string/],
      ['a time that is not Unix ms', { type: 'CHAT_MESSAGE', serverData: { ...chat.serverData, sendTime: '2025-01-01' } }, /sendTime must match/],
      ['an unknown error code', { type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: '4', message: 'x' } }, /AuthError: \/error\/errorCode must be one of/],
      ['CONNECT without the profile', { type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'CONNECT', userId: '2' } }, /UserConnect: .*nickname/],
      ['a client frame', { type: 'CHAT_MESSAGE', serverData: { message: 'hi' } }, /required property 'sender'/],
    ])('rejects %s', (_what, frame, why) => {
      expect(() => assertValidServerFrame(frame)).toThrow(why);
      expect(serverFrameProblem(frame)).toMatch(why);
    });

    it('is fast: compiled once, microseconds per frame', () => {
      assertValidServerFrame(chat);
      const start = process.hrtime.bigint();
      for (let i = 0; i < 10_000; i++) assertValidServerFrame(chat);
      const perFrameUs = Number(process.hrtime.bigint() - start) / 10_000 / 1000;
      expect(perFrameUs).toBeLessThan(50);
    });
  });

  describe('against a real gateway', () => {
    const scope = new Scope();
    let gw: TestGateway;
    /** Every client of the file, whose frames are checked at the end. */
    const clients: TestClient[] = [];

    beforeAll(async () => {
      gw = await scope.gateway({ RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '20', DELIVERY_TIMEOUT_MS: '500', LOG_LEVEL: 'warn' });
    });
    afterAll(() => scope.closeAll());

    async function connect(token?: string, protocols?: string[]): Promise<TestClient> {
      const client = await scope.connect(gw.wsUrl, { token, protocols });
      clients.push(client);
      return client;
    }

    async function login(token: string): Promise<TestClient> {
      const client = await scope.login(gw.wsUrl, token);
      clients.push(client);
      return client;
    }

    /** Sends a frame that must itself match the contract's client side. */
    function sendValid(client: TestClient, frame: Frame): void {
      assertValidClientFrame(frame);
      client.send(frame);
    }

    it('sends only frames that match the contract, and every message of the contract occurs', async () => {
      const alice = await login('alice-token');
      const bob = await login('bob-token');
      await alice.next((f) => f.type === 'USER_CONNECTION_MESSAGE' && f.serverData.connectionStatus === 'CONNECT');

      sendValid(alice, { type: 'CHAT_MESSAGE', serverData: { message: 'hello \u2603 everyone' } });
      await bob.nextOfType('CHAT_MESSAGE');

      sendValid(alice, { type: 'DIALOG_MESSAGE', clientData: { message: 'hi bob', n: [1, null] }, serverData: { receiver: '2', messageId: 'contract-1' } });
      await bob.nextOfType('DIALOG_MESSAGE');
      expect((await alice.nextOfType('DELIVERY_MESSAGE')).status).toBe('SUCCESS');
      sendValid(alice, { type: 'DIALOG_MESSAGE', clientData: 'to nobody', serverData: { receiver: 'nobody' } });
      expect((await alice.nextOfType('DELIVERY_MESSAGE')).status).toBe('ERROR');

      const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3a7' } }).png().toBuffer();
      sendValid(alice, { type: 'SAVE_AVATAR', serverData: { imageBase64: png.toString('base64') } });
      expect((await alice.nextOfType('SAVE_AVATAR')).status).toBe('SUCCESS');
      await bob.nextOfType('USER_UPDATE_MESSAGE');
      sendValid(alice, { type: 'SAVE_AVATAR', serverData: { imageBase64: 'bm90IGFuIGltYWdl' } });
      expect((await alice.nextOfType('SAVE_AVATAR')).status).toBe('ERROR');

      alice.send('{not json');
      alice.send({ type: 'NO_SUCH_TYPE' });
      alice.send(chat(''));
      for (const code of ['INVALID_JSON', 'UNKNOWN_TYPE', 'INVALID_MESSAGE']) {
        expect((await alice.nextOfType('ERROR_MESSAGE')).error.errorCode).toBe(code);
      }

      // A connection over its burst gets RATE_LIMITED answers (20 allowed, then refused).
      const carol = await login('carol-token');
      for (let i = 0; i < 24; i++) carol.send({ type: 'NO_SUCH_TYPE' });
      await carol.next((f) => f.type === 'ERROR_MESSAGE' && f.error.errorCode === 'RATE_LIMITED');

      // Refused logins: a bad token (header and subprotocol), a token frame, a second session.
      const bad = await connect('no-such-token');
      expect((await bad.closed).code).toBe(4401);
      const badSub = await connect(undefined, ['mpgp.v1', tokenSubprotocol('nope')]);
      expect((await badSub.closed).code).toBe(4401);
      const byFrame = await connect();
      sendValid(byFrame, { type: 'AUTH_MESSAGE', serverData: { authToken: 'dave-token' } });
      expect((await byFrame.nextOfType('AUTH_MESSAGE')).status).toBe('SUCCESS');

      // Token refresh: a time-windowed demo token (SUCCESS with its expiresAt), then an invalid one (ERROR "2", 4401).
      sendValid(alice, { type: 'TOKEN_REFRESH_MESSAGE', serverData: { authToken: `alice-token~${Date.now()}` } });
      expect((await alice.nextOfType('TOKEN_REFRESH_MESSAGE')).status).toBe('SUCCESS');
      sendValid(byFrame, { type: 'TOKEN_REFRESH_MESSAGE', serverData: { authToken: 'no-such-token' } });
      expect((await byFrame.nextOfType('TOKEN_REFRESH_MESSAGE')).status).toBe('ERROR');
      expect((await byFrame.closed).code).toBe(4401);
      const twice = await connect('alice-token');
      expect((await twice.closed).code).toBe(4409);

      await bob.close();
      await alice.next((f) => f.type === 'USER_CONNECTION_MESSAGE' && f.serverData.connectionStatus === 'DISCONNECT');

      const seen = new Set<string>();
      for (const client of clients) {
        for (const frame of client.frames) seen.add(identifyServerFrame(frame));
      }
      expect(sorted(seen)).toEqual(sorted([...contract().server.values()].flat().map((m) => m.id)));
    }, 20_000);

    it('AUTH error "3" with 1013 when the authorization server cannot answer', async () => {
      const deadPort = await freePort();
      const lonely = await startGateway({ AUTH_SERVER_URL: `http://127.0.0.1:${deadPort}/check`, AUTH_TIMEOUT_MS: '300', LOG_LEVEL: 'error' });
      try {
        const client = await TestClient.connect(lonely.wsUrl, { token: 'alice-token' });
        const { code } = await client.closed;
        expect(code).toBe(1013);
        expect(client.frames).toHaveLength(1);
        assertValidServerFrame(client.frames[0]);
        expect(client.frames[0].error.errorCode).toBe('3');
      } finally {
        await lonely.close();
      }
    });
  });
});

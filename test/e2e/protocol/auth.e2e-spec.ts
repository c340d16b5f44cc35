/**
 * docs/protocol.md "Authentication (handshake)" and "CHECK_TOKEN": token sources and their order, the
 * AUTH_MESSAGE frames and close codes, frames before AUTH SUCCESS, the single-session rule, and
 * how every kind of authorization-server answer maps to errors "2" and "3".
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { ENGINES } from '../../support/deployment';
import type { FakeAuthMode } from '../../support/fake-auth-server';
import { authError, authWith, chat, isConnect, isDisconnect } from '../../support/frames';
import { rawSession, rawUpgrade, tryUpgrade } from '../../support/http';
import { sleep, withTimeout } from '../../support/time';
import { tokenSubprotocol } from '../../support/ws-client';
import {
  authFailure,
  expectChatWorks,
  ID,
  PROFILE_KEYS,
  profileOf,
  protocolScope,
  QUIET_MS,
  SHORT_AUTH_TIMEOUT,
  SHORT_DEADLINE,
  T,
} from './harness';

jest.setTimeout(15_000);

describe.each(ENGINES)('authentication (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());

  describe('token sources', () => {
    it('accepts the authToken header', async () => {
      const dep = await scope.deployment(engine);
      const { auth, client } = await scope.loginWithAuth(dep.wsUrl(0), T.alice);
      expect(auth).toMatchObject({ type: 'AUTH_MESSAGE', status: 'SUCCESS', serverData: { userId: ID.alice } });
      expect(client.socket.protocol).toBe('');
    });

    it('accepts a token in the subprotocols, selects mpgp.v1 and never echoes the token entry', async () => {
      const dep = await scope.deployment(engine);
      // erin's token is not ASCII-safe: its base64url uses "-" / "_" characters.
      const entry = tokenSubprotocol(T.erin);
      expect(entry).toMatch(/[-_]/);
      const client = await scope.connect(dep.wsUrl(0), { protocols: ['mpgp.v1', entry], noWait: true });
      const selected = new Promise<string | string[] | undefined>((resolve) =>
        client.socket.once('upgrade', (res) => resolve(res.headers['sec-websocket-protocol'])),
      );
      await withTimeout(new Promise((resolve) => client.socket.once('open', resolve)), 3000, 'open');
      expect(await selected).toBe('mpgp.v1');
      expect(client.socket.protocol).toBe('mpgp.v1');
      const auth = await client.nextOfType('AUTH_MESSAGE');
      expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.erin } });
      await expectChatWorks(client, ID.erin);
    });

    it('selects mpgp.v1 for a header client that offers it', async () => {
      const dep = await scope.deployment(engine);
      const client = await scope.login(dep.wsUrl(0), T.alice, { protocols: ['mpgp.v1'] });
      expect(client.socket.protocol).toBe('mpgp.v1');
    });

    it('selects mpgp.v1 whenever it is offered: beside other subprotocols, for a token sent in a frame, and for a token then refused', async () => {
      const dep = await scope.deployment(engine);
      const withOthers = await scope.connect(dep.wsUrl(0), { protocols: ['chat.v2', 'mpgp.v1', tokenSubprotocol(T.bob)] });
      expect(withOthers.socket.protocol).toBe('mpgp.v1');
      expect(await withOthers.nextOfType('AUTH_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.bob } });
      // No token in the upgrade: the connection waits for an AUTH_MESSAGE, mpgp.v1 selected all the same.
      const framed = await scope.connect(dep.wsUrl(1), { protocols: ['mpgp.v1'] });
      expect(framed.socket.protocol).toBe('mpgp.v1');
      framed.send(authWith(T.alice));
      expect(await framed.nextOfType('AUTH_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.alice } });
      // A token that will be refused: the upgrade still succeeds with mpgp.v1, then "2" and 4401.
      const refused = await scope.connect(dep.wsUrl(2), { token: 'nobody-token', protocols: ['mpgp.v1'] });
      expect(refused.socket.protocol).toBe('mpgp.v1');
      const { frame, code } = await authFailure(refused);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4401);
    });

    it.each([
      ['a length of 1 mod 4', 'authToken.a'],
      ['a character outside the base64url alphabet', 'authToken.YWxp*2UtdG9rZW4'],
      ['a non-canonical last character', 'authToken.YR'],
      ['an empty token', 'authToken.'],
    ])('refuses a subprotocol token entry with %s: "2" and 4401', async (_what, entry) => {
      const dep = await scope.deployment(engine);
      const client = await scope.connect(dep.wsUrl(0), { protocols: ['mpgp.v1', entry] });
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4401);
    });

    describe('token entries that are not HTTP tokens (ws would refuse the header with 400: the gateway rewrites it first)', () => {
      // alice-token in standard base64 ends in "=" padding; unpadded base64url is the same without it.
      const padded = `authToken.${Buffer.from(T.alice, 'utf8').toString('base64')}`;
      const unpadded = tokenSubprotocol(T.alice);

      it.each<[string, Record<string, string>]>([
        ['base64 padding "="', { 'Sec-WebSocket-Protocol': `mpgp.v1, ${padded}` }],
        ['a "/" of standard base64', { 'Sec-WebSocket-Protocol': `mpgp.v1, authToken.${Buffer.from('???', 'utf8').toString('base64')}` }],
        ['a padded entry before a valid one (the first token entry counts)', { 'Sec-WebSocket-Protocol': `mpgp.v1, ${padded}, ${unpadded}` }],
      ])('an entry with %s: the upgrade succeeds (101, mpgp.v1) and the entry is an invalid token, "2" and 4401, no CHECK_TOKEN', async (_what, headers) => {
        expect(padded).toMatch(/=$/);
        const fake = await scope.fakeAuthServer();
        const dep = await scope.deployment(engine, { AUTH_SERVER_URL: fake.url });
        const session = await rawSession(dep.wsUrl(0), headers);
        expect(session.status).toBe(101);
        expect(session.headers['sec-websocket-protocol']).toBe('mpgp.v1');
        expect(session.messages.map((m) => JSON.parse(m))).toEqual([authError('2')]);
        expect(session.closeCode).toBe(4401);
        expect(fake.requests).toBe(0);
      });

      it.each<[string, Record<string, string>]>([
        ['"=" beside a valid authToken header (the header comes first)', { 'Sec-WebSocket-Protocol': `mpgp.v1, ${padded}`, authToken: T.alice }],
        ['an empty entry beside a valid one', { 'Sec-WebSocket-Protocol': `mpgp.v1,,${unpadded}` }],
        ['an entry offered twice', { 'Sec-WebSocket-Protocol': `mpgp.v1, ${unpadded}, mpgp.v1` }],
        ['another entry that is not an HTTP token', { 'Sec-WebSocket-Protocol': `x=y, mpgp.v1, ${unpadded}` }],
      ])('%s: logs in', async (_what, headers) => {
        const dep = await scope.deployment(engine);
        const session = await rawSession(dep.wsUrl(0), headers, 5000, 1);
        expect(session.status).toBe(101);
        expect(session.headers['sec-websocket-protocol']).toBe('mpgp.v1');
        expect(JSON.parse(session.messages[0])).toMatchObject({ type: 'AUTH_MESSAGE', status: 'SUCCESS', serverData: { userId: ID.alice } });
      });

      it("headers over Node's 16 KiB limit are refused at the HTTP level (431); a 15 000-byte token header upgrades and gets \"2\"", async () => {
        const dep = await scope.deployment(engine);
        expect((await tryUpgrade(dep.wsUrl(0), { authToken: 'x'.repeat(17_000) })).status).toBe(431);
        const session = await rawSession(dep.wsUrl(0), { authToken: 'x'.repeat(15_000) });
        expect(session.status).toBe(101);
        expect(session.messages.map((m) => JSON.parse(m))).toEqual([authError('2')]);
        expect(session.closeCode).toBe(4401);
      });

      it('the Origin check still applies to such a request (403), and ws clients refuse to send such an entry', async () => {
        const dep = await scope.deployment(engine, { ALLOWED_ORIGINS: 'https://chat.example.test' });
        const foreign = { Origin: 'https://elsewhere.example.test' };
        expect((await rawUpgrade(dep.wsUrl(0), { ...foreign, 'Sec-WebSocket-Protocol': `mpgp.v1, ${padded}` })).status).toBe(403);
        expect((await rawUpgrade(dep.wsUrl(0), { ...foreign, 'Sec-WebSocket-Protocol': `mpgp.v1, ${unpadded}` })).status).toBe(403);
        expect(() => new WebSocket(dep.wsUrl(0), ['mpgp.v1', padded])).toThrow(SyntaxError);
      });

      it('the same token in base64url without padding logs in', async () => {
        expect(unpadded).toBe(padded.replace(/=+$/, ''));
        const fake = await scope.fakeAuthServer();
        const dep = await scope.deployment(engine, { AUTH_SERVER_URL: fake.url });
        const client = await scope.connect(dep.wsUrl(0), { protocols: ['mpgp.v1', unpadded] });
        const auth = await client.nextOfType('AUTH_MESSAGE');
        expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.alice } });
        expect(client.socket.protocol).toBe('mpgp.v1');
        expect(fake.requests).toBe(1);
      });

      it('a "+" of standard base64 is an HTTP token: the upgrade succeeds and the entry is an invalid token, "2" and 4401', async () => {
        const plus = `authToken.${Buffer.from(T.erin, 'utf8').toString('base64')}`;
        expect(plus).toMatch(/\+/);
        expect(plus).not.toMatch(/[=/]/);
        const dep = await scope.deployment(engine);
        const client = await scope.connect(dep.wsUrl(0), { protocols: ['mpgp.v1', plus] });
        const { frame, code } = await authFailure(client);
        expect(frame).toEqual(authError('2'));
        expect(code).toBe(4401);
      });
    });

    it('ignores ?authToken= by default: the connection waits for a frame and misses the deadline', async () => {
      const dep = await scope.deployment(engine, SHORT_DEADLINE);
      const started = Date.now();
      const client = await scope.connect(dep.wsUrl(0), { query: `?authToken=${T.alice}` });
      // Had the query token been used, SUCCESS would have come at once.
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4408);
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    });

    it('ignores ?authToken= by default: an AUTH_MESSAGE frame still logs in', async () => {
      const dep = await scope.deployment(engine);
      // Had the query token (alice) been used, the frame's token (bob) would be ignored.
      const client = await scope.connect(dep.wsUrl(0), { query: `?authToken=${T.alice}` });
      client.send(authWith(T.bob));
      const auth = await client.nextOfType('AUTH_MESSAGE');
      expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.bob } });
    });

    it('accepts ?authToken= when ALLOW_QUERY_TOKEN=true', async () => {
      const dep = await scope.deployment(engine, { ALLOW_QUERY_TOKEN: 'true' });
      const client = await scope.connect(dep.wsUrl(0), { query: `?authToken=${encodeURIComponent(T.alice)}` });
      const auth = await client.nextOfType('AUTH_MESSAGE');
      expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.alice } });
    });

    it('refuses an invalid ?authToken= with "2" and 4401 when ALLOW_QUERY_TOKEN=true', async () => {
      const dep = await scope.deployment(engine, { ALLOW_QUERY_TOKEN: 'true' });
      const client = await scope.connect(dep.wsUrl(0), { query: '?authToken=nobody-token' });
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4401);
    });
  });

  describe('order of the token sources', () => {
    it('a valid header wins over an invalid subprotocol entry', async () => {
      const dep = await scope.deployment(engine);
      const { auth, client } = await scope.loginWithAuth(dep.wsUrl(0), T.alice, { protocols: ['mpgp.v1', 'authToken.a'] });
      expect(auth.serverData.userId).toBe(ID.alice);
      expect(client.socket.protocol).toBe('mpgp.v1');
    });

    it('an invalid header loses even with a valid subprotocol entry: "2" and 4401', async () => {
      const dep = await scope.deployment(engine);
      const client = await scope.connect(dep.wsUrl(0), { token: 'nobody-token', protocols: ['mpgp.v1', tokenSubprotocol(T.alice)] });
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4401);
    });

    it('the header user wins over another user in the subprotocols', async () => {
      const dep = await scope.deployment(engine);
      const { auth } = await scope.loginWithAuth(dep.wsUrl(0), T.alice, { protocols: ['mpgp.v1', tokenSubprotocol(T.bob)] });
      expect(auth.serverData.userId).toBe(ID.alice);
    });

    it('the header wins over the query (ALLOW_QUERY_TOKEN=true), and an invalid header does not fall back to it', async () => {
      const dep = await scope.deployment(engine, { ALLOW_QUERY_TOKEN: 'true' });
      const { auth } = await scope.loginWithAuth(dep.wsUrl(0), T.bob, { query: `?authToken=${T.alice}` });
      expect(auth.serverData.userId).toBe(ID.bob);
      const client = await scope.connect(dep.wsUrl(1), { token: 'nobody-token', query: `?authToken=${T.carol}` });
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4401);
    });

    it('the subprotocol wins over the query (ALLOW_QUERY_TOKEN=true)', async () => {
      const dep = await scope.deployment(engine, { ALLOW_QUERY_TOKEN: 'true' });
      const client = await scope.connect(dep.wsUrl(0), { protocols: ['mpgp.v1', tokenSubprotocol(T.bob)], query: `?authToken=${T.alice}` });
      const auth = await client.nextOfType('AUTH_MESSAGE');
      expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.bob } });
    });
  });

  describe('token in an AUTH_MESSAGE frame (no token in the upgrade)', () => {
    it('logs in with the frame token; frames before it are discarded without closing and without side effects', async () => {
      const dep = await scope.deployment(engine, { AUTH_DEADLINE_MS: '5000' });
      const bob = await scope.login(dep.wsUrl(1), T.bob);
      const alice = await scope.connect(dep.wsUrl(0));
      alice.send(chat('before auth'));
      alice.send({ type: 'DIALOG_MESSAGE', clientData: { m: 'before auth' }, serverData: { receiver: ID.bob, messageId: 'pre-auth-1' } });
      alice.send({ type: 'CHAT_MESSAGE' }); // would be INVALID_MESSAGE after auth
      alice.send('not json at all');
      alice.socket.send(Buffer.from([1, 2, 3]), { binary: true });
      alice.send({ type: 'NO_SUCH_TYPE' });
      await sleep(100);
      expect(alice.closeInfo).toBeUndefined();
      alice.send(authWith(T.alice));
      const auth = await alice.nextOfType('AUTH_MESSAGE');
      expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.alice } });
      await bob.next(isConnect(ID.alice));
      // One quiet period watched on both; what came before it is checked on the whole frame lists below.
      await Promise.all([alice.expectSilence(QUIET_MS), bob.expectSilence(QUIET_MS)]);
      // Nothing but the AUTH_MESSAGE reached alice: no ERROR_MESSAGE, no DELIVERY, no CHAT echo.
      expect(alice.frames.map((f) => f.type)).toEqual(['AUTH_MESSAGE']);
      // Bob got alice's CONNECT and nothing else.
      expect(bob.frames.filter((f) => f.type !== 'AUTH_MESSAGE')).toEqual([expect.objectContaining({ type: 'USER_CONNECTION_MESSAGE' })]);
      // The id was never reserved: the same messageId now delivers.
      alice.send({ type: 'DIALOG_MESSAGE', clientData: { m: 'after auth' }, serverData: { receiver: ID.bob, messageId: 'pre-auth-1' } });
      expect((await bob.nextOfType('DIALOG_MESSAGE')).clientData).toEqual({ m: 'after auth' });
      expect(await alice.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'pre-auth-1' } });
      await expectChatWorks(alice, ID.alice, [bob]);
    });

    it('a second AUTH_MESSAGE while the first token is checked is discarded', async () => {
      const dep = await scope.deployment(engine);
      const alice = await scope.connect(dep.wsUrl(0));
      alice.send(authWith(T.alice));
      alice.send(authWith(T.bob));
      const auth = await alice.nextOfType('AUTH_MESSAGE');
      expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.alice } });
      await alice.expectSilence(QUIET_MS);
      expect(alice.all('AUTH_MESSAGE')).toHaveLength(1);
      expect(alice.closeInfo).toBeUndefined();
    });

    it.each([
      ['no serverData', { type: 'AUTH_MESSAGE' }],
      ['a numeric authToken', { type: 'AUTH_MESSAGE', serverData: { authToken: 42 } }],
      ['a null authToken', { type: 'AUTH_MESSAGE', serverData: { authToken: null } }],
      ['serverData a string', { type: 'AUTH_MESSAGE', serverData: T.alice }],
      ['the token outside serverData', { type: 'AUTH_MESSAGE', authToken: T.alice }],
    ])('an AUTH_MESSAGE with %s is a missing token: "2" and 4401', async (_what, frame) => {
      const dep = await scope.deployment(engine);
      const client = await scope.connect(dep.wsUrl(0));
      client.send(frame);
      const { frame: reply, code } = await authFailure(client);
      expect(reply).toEqual(authError('2'));
      expect(code).toBe(4401); // at once: the deadline would give 4408
    });

    it('an invalid frame token gets "2" and 4401', async () => {
      const dep = await scope.deployment(engine);
      const client = await scope.connect(dep.wsUrl(0));
      client.send(authWith('nobody-token'));
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4401);
    });

    it('AUTH_DEADLINE_MS bounds the arrival of the token, not its check: a token that arrived in time logs in after the deadline', async () => {
      // The check (2.5 s) outlasts the deadline (1 s) by far; AUTH_TIMEOUT_MS (6 s) bounds it.
      const fake = await scope.fakeAuthServer({ mode: 'slow', delayMs: 2500 });
      const dep = await scope.deployment(engine, { AUTH_SERVER_URL: fake.url, AUTH_DEADLINE_MS: '1000', AUTH_TIMEOUT_MS: '6000' });
      const opened = Date.now();
      const alice = await scope.connect(dep.wsUrl(0));
      alice.send(authWith(T.alice));
      const auth = await alice.nextOfType('AUTH_MESSAGE', 10_000);
      expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.alice } });
      expect(Date.now() - opened).toBeGreaterThanOrEqual(2400);
      expect(fake.requests).toBe(1);
      expect(alice.closeInfo).toBeUndefined();
      await expectChatWorks(alice, ID.alice);
    });

    it('no token within AUTH_DEADLINE_MS: "2" and 4408, even if other frames kept coming', async () => {
      const dep = await scope.deployment(engine, SHORT_DEADLINE);
      const started = Date.now();
      const client = await scope.connect(dep.wsUrl(0));
      const chatter = setInterval(() => client.send(chat('hello?')), 50);
      try {
        const { frame, code } = await authFailure(client);
        expect(frame).toEqual(authError('2'));
        expect(code).toBe(4408);
      } finally {
        clearInterval(chatter);
      }
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(450);
      expect(elapsed).toBeLessThan(3000);
      expect(client.frames).toHaveLength(1);
    });
  });

  describe('token verification', () => {
    it.each([
      ['header', { token: 'nobody-token' }],
      ['subprotocol', { protocols: ['mpgp.v1', tokenSubprotocol('nobody-token')] }],
    ])('an unknown %s token gets exactly the documented error frame, then 4401', async (_source, options) => {
      const dep = await scope.deployment(engine);
      const client = await scope.connect(dep.wsUrl(0), options);
      const { frame, code } = await authFailure(client);
      expect(Object.keys(frame).sort()).toEqual(['error', 'status', 'type']);
      expect(Object.keys(frame.error).sort()).toEqual(['errorCode', 'message']);
      expect(frame).toEqual({ type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: '2', message: expect.any(String) } });
      expect(frame.error.message.length).toBeGreaterThan(0);
      expect(code).toBe(4401);
      expect(client.frames).toHaveLength(1);
    });

    it('an empty authToken header is an invalid token', async () => {
      const dep = await scope.deployment(engine);
      const client = await scope.connect(dep.wsUrl(0), { token: '' });
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4401);
    });

    it('AUTH SUCCESS carries userId and a userList of everyone online, each with the seven fields as strings', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const { client: frank, auth } = await scope.loginWithAuth(dep.wsUrl(2), T.frank);
      expect(Object.keys(auth).sort()).toEqual(['serverData', 'status', 'type']);
      expect(auth.serverData.userId).toBe(ID.frank);
      const list = auth.serverData.userList as Record<string, unknown>[];
      expect(Array.isArray(list)).toBe(true);
      for (const entry of list) {
        expect(Object.keys(entry).sort()).toEqual(PROFILE_KEYS);
        for (const key of PROFILE_KEYS) expect(typeof entry[key]).toBe('string');
      }
      const byId = (id: string) => list.find((u) => u.userId === id);
      expect(list.map((u) => u.userId).sort()).toEqual([ID.alice, ID.bob, ID.frank]);
      expect(byId(ID.alice)).toEqual(profileOf(ID.alice));
      expect(byId(ID.bob)).toEqual(profileOf(ID.bob));
      expect(byId(ID.frank)).toEqual(profileOf(ID.frank)); // the auth server's avatar, unicode status
      // The others are told; frank is not told about himself.
      await alice.next(isConnect(ID.frank));
      await bob.next(isConnect(ID.frank));
      await frank.expectSilence(QUIET_MS);
      expect(frank.all('USER_CONNECTION_MESSAGE')).toEqual([]);
    });
  });

  describe('frames before AUTH SUCCESS with a header token', () => {
    it('are dropped: no delivery, no broadcast, no answer, no reservation', async () => {
      // The fake server answers slowly so that the frames certainly arrive while the check runs.
      const fake = await scope.fakeAuthServer({ mode: 'slow', delayMs: 500 });
      const dep = await scope.deployment(engine, { AUTH_SERVER_URL: fake.url, AUTH_TIMEOUT_MS: '3000' });
      const bob = await scope.login(dep.wsUrl(1), T.bob);
      const alice = await scope.connect(dep.wsUrl(0), { token: T.alice });
      const sent = [
        { type: 'CHAT_MESSAGE', serverData: { message: 'too early' } },
        { type: 'DIALOG_MESSAGE', clientData: 'too early', serverData: { receiver: ID.bob, messageId: 'early-1' } },
        { type: 'DIALOG_MESSAGE', clientData: 'too early', serverData: { receiver: ID.alice } },
        { type: 'SAVE_AVATAR', serverData: { imageBase64: 'AAAA' } },
        { type: 'CHAT_MESSAGE' },
        { type: 'AUTH_MESSAGE', serverData: { authToken: T.carol } },
      ];
      for (const frame of sent) alice.send(frame);
      alice.send('{not json');
      await new Promise<void>((resolve, reject) => alice.socket.send('{"type":"CHAT_MESSAGE","serverData":{"message":"late"}}', (e) => (e ? reject(e) : resolve())));
      expect(alice.all('AUTH_MESSAGE')).toEqual([]); // all of it was sent before AUTH SUCCESS
      const auth = await alice.nextOfType('AUTH_MESSAGE');
      expect(auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: ID.alice } });
      await bob.next(isConnect(ID.alice));
      await alice.expectSilence(QUIET_MS);
      expect(alice.frames.map((f) => f.type)).toEqual(['AUTH_MESSAGE']);
      expect(bob.frames.map((f) => f.type)).toEqual(['AUTH_MESSAGE', 'USER_CONNECTION_MESSAGE']);
      // The early messageId was not reserved: it delivers now.
      alice.send({ type: 'DIALOG_MESSAGE', clientData: 'now', serverData: { receiver: ID.bob, messageId: 'early-1' } });
      expect((await bob.nextOfType('DIALOG_MESSAGE')).clientData).toBe('now');
      await expectChatWorks(alice, ID.alice, [bob]);
    });
  });

  describe('single session', () => {
    it('a second connection of a connected user gets "1" and 4409; the first keeps working', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const [a0, b0] = [alice.frames.length, bob.frames.length];
      const second = await scope.connect(dep.wsUrl(1), { token: T.alice });
      const { frame, code } = await authFailure(second);
      expect(frame).toEqual(authError('1'));
      expect(code).toBe(4409);
      // Nobody was told anything about alice: no DISCONNECT, no second CONNECT, from the
      // duplicate's upgrade to the end of a quiet period watched on both clients.
      const isPresence = (f: { type?: unknown }) => f.type === 'USER_CONNECTION_MESSAGE';
      await Promise.all([bob.expectSilence(QUIET_MS, isPresence), alice.expectSilence(QUIET_MS, isPresence)]);
      expect(alice.frames.slice(a0).filter(isPresence)).toEqual([]);
      expect(bob.frames.slice(b0).filter(isPresence)).toEqual([]);
      // The first connection still sends and receives.
      await expectChatWorks(alice, ID.alice, [bob]);
      await expectChatWorks(bob, ID.bob, [alice]);
      bob.send({ type: 'DIALOG_MESSAGE', clientData: { hi: 1 }, serverData: { receiver: ID.alice } });
      expect((await alice.nextOfType('DIALOG_MESSAGE')).clientData).toEqual({ hi: 1 });
      expect((await bob.nextOfType('DELIVERY_MESSAGE')).status).toBe('SUCCESS');
      // ... and is still alice's only session: a later login sees alice once.
      const { auth } = await scope.loginWithAuth(dep.wsUrl(2), T.carol);
      expect(auth.serverData.userList.filter((u: { userId: string }) => u.userId === ID.alice)).toHaveLength(1);
    });

    it('the refused duplicate through a frame token and through a subprotocol gets "1" too', async () => {
      const dep = await scope.deployment(engine);
      const alice = await scope.login(dep.wsUrl(0), T.alice);
      const viaFrame = await scope.connect(dep.wsUrl(1));
      viaFrame.send(authWith(T.alice));
      const first = await authFailure(viaFrame);
      expect(first.frame).toEqual(authError('1'));
      expect(first.code).toBe(4409);
      const viaProtocol = await scope.connect(dep.wsUrl(2), { protocols: ['mpgp.v1', tokenSubprotocol(T.alice)] });
      const second = await authFailure(viaProtocol);
      expect(second.frame).toEqual(authError('1'));
      expect(second.code).toBe(4409);
      await expectChatWorks(alice, ID.alice);
    });

    it('after the first connection closes, the user can log in again', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      await alice.close();
      await bob.next(isDisconnect(ID.alice));
      const { auth } = await scope.loginWithAuth(dep.wsUrl(2), T.alice);
      expect(auth.serverData.userId).toBe(ID.alice);
    });
  });

  describe('authorization server faults', () => {
    const unavailable: [string, FakeAuthMode][] = [
      ['down (connection refused)', 'down'],
      ['hanging past AUTH_TIMEOUT_MS', 'hang'],
      ['answering 500', 'status500'],
      ['answering 302', 'status302'],
      ['answering 408', 'status408'],
      ['answering 429', 'status429'],
      ['answering a body that is not JSON', 'garbage'],
      ['answering SUCCESS without a userId', 'success-without-userid'],
    ];
    it.each(unavailable)('auth server %s: "3" and 1013, never "2"', async (_what, mode) => {
      const fake = await scope.fakeAuthServer({ mode });
      const dep = await scope.deployment(engine, { ...SHORT_AUTH_TIMEOUT, AUTH_SERVER_URL: fake.url });
      const started = Date.now();
      const client = await scope.connect(dep.wsUrl(0), { token: T.alice });
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('3'));
      expect(code).toBe(1013);
      expect(Date.now() - started).toBeLessThan(3000); // bounded by AUTH_TIMEOUT_MS=300
      if (mode === 'status302') expect(fake.requests).toBe(1); // the redirect is never followed
    });

    it('the same fault through a frame token and a subprotocol token gives "3" too', async () => {
      const fake = await scope.fakeAuthServer({ mode: 'status500' });
      const dep = await scope.deployment(engine, { AUTH_SERVER_URL: fake.url });
      const viaFrame = await scope.connect(dep.wsUrl(0));
      viaFrame.send(authWith(T.alice));
      expect(await authFailure(viaFrame)).toMatchObject({ frame: authError('3'), code: 1013 });
      const viaProtocol = await scope.connect(dep.wsUrl(1), { protocols: ['mpgp.v1', tokenSubprotocol(T.bob)] });
      expect(await authFailure(viaProtocol)).toMatchObject({ frame: authError('3'), code: 1013 });
    });

    // Any 4xx but 408 and 429: the server refused the request this token made (a client can make
    // it answer 413 with a huge token), so the token is invalid and the breaker is not involved.
    const invalid: [string, FakeAuthMode][] = [
      ['400', 'status400'],
      ['401', 'status401'],
      ['404', 'status404'],
      ['413', 'status413'],
      ['418', 'status418'],
      ['200 with status ERROR', 'error-status'],
    ];
    it.each(invalid)('auth server answering %s: "2" and 4401', async (_what, mode) => {
      const fake = await scope.fakeAuthServer({ mode });
      const dep = await scope.deployment(engine, { AUTH_SERVER_URL: fake.url });
      const client = await scope.connect(dep.wsUrl(0), { token: T.alice });
      const { frame, code } = await authFailure(client);
      expect(frame).toEqual(authError('2'));
      expect(code).toBe(4401);
    });

    it('auth server answering 403: "2" and 4401', async () => {
      // The fake server has no 403 mode: a one-line server that refuses everything with 403.
      const server: Server = createServer((_req, res) => res.writeHead(403, { 'Content-Type': 'application/json' }).end('{"status":"ERROR"}'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
        const dep = await scope.deployment(engine, { AUTH_SERVER_URL: url });
        const client = await scope.connect(dep.wsUrl(0), { token: T.alice });
        const { frame, code } = await authFailure(client);
        expect(frame).toEqual(authError('2'));
        expect(code).toBe(4401);
        await scope.closeAll();
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('a slow auth server within AUTH_TIMEOUT_MS still logs in', async () => {
      const fake = await scope.fakeAuthServer({ mode: 'slow', delayMs: 100 });
      const dep = await scope.deployment(engine, { AUTH_SERVER_URL: fake.url });
      const { auth } = await scope.loginWithAuth(dep.wsUrl(0), T.alice);
      expect(auth.serverData.userId).toBe(ID.alice);
    });

    it('logins work again once the auth server is back', async () => {
      const fake = await scope.fakeAuthServer({ mode: 'down' });
      const dep = await scope.deployment(engine, { AUTH_SERVER_URL: fake.url });
      const refused = await scope.connect(dep.wsUrl(0), { token: T.alice });
      expect(await authFailure(refused)).toMatchObject({ frame: authError('3'), code: 1013 });
      await fake.setMode('normal');
      const { auth } = await scope.loginWithAuth(dep.wsUrl(0), T.alice);
      expect(auth.serverData.userId).toBe(ID.alice);
    });

    it('sends CHECK_TOKEN as documented', async () => {
      const fake = await scope.fakeAuthServer();
      // POST <AUTH_SERVER_URL>: to the URL as given, its path included.
      const dep = await scope.deployment(engine, { AUTH_SERVER_URL: `${fake.url}v1/check-token` });
      await scope.login(dep.wsUrl(0), T.alice);
      const req = fake.lastRequest!;
      expect(req.method).toBe('POST');
      expect(req.path).toBe('/v1/check-token');
      expect(req.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(req.body)).toEqual({ type: 'CHECK_TOKEN', authToken: T.alice });
    });
  });
});

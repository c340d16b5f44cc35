/**
 * The typed client against a REAL gateway (the same app as main.ts, in-process, on a free port):
 * nothing is mocked. Every frame a client receives is validated against docs/asyncapi.yaml.
 */
import { build } from 'esbuild';
import sharp from 'sharp';
import { join } from 'node:path';
import { WsGateway } from '../gateway/ws.gateway';
import { ConnectionRegistry } from '../messaging/connection-registry';
import type { AuthErrorCode as ProtocolAuthErrorCode, AvatarErrorCode as ProtocolAvatarErrorCode } from '../protocol/protocol';
import type { CloseCode, FrameErrorCode as ProtocolFrameErrorCode, MessageType, Status as ProtocolStatus } from '../protocol/protocol';
import { serverFrameProblem } from '../../test/support/contract';
import { startFakeAuthServer, type FakeAuthServer } from '../../test/support/fake-auth-server';
import { startGateway, type TestGateway } from '../../test/support/gateway';
import { eventually, sleep } from '../../test/support/time';
import { ChatClient, ChatClientError, type ChatClientEvents, type ChatClientOptions } from './chat-client';
import { createNodeChatClient } from './node';
import type { AuthErrorCode, AvatarErrorCode, FrameErrorCode, MessageTypeName, Status } from './types';
import { CloseCodes } from './types';

// ---- compile-time: the client's literal types are exactly the gateway's enum values ----
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameTypes: [
  Same<MessageTypeName, `${MessageType}`>,
  Same<Status, `${ProtocolStatus}`>,
  Same<AuthErrorCode, `${ProtocolAuthErrorCode}`>,
  Same<AvatarErrorCode, `${ProtocolAvatarErrorCode}`>,
  Same<FrameErrorCode, `${ProtocolFrameErrorCode}`>,
] = [true, true, true, true, true];
const closeCodesMatch: Same<Exclude<(typeof CloseCodes)[keyof typeof CloseCodes], 1006>, CloseCode> = true;

const FAST = { baseDelayMs: 20, maxDelayMs: 200 };

describe('ChatClient against a real gateway', () => {
  let gw: TestGateway;
  let clients: ChatClient[] = [];
  let problems: string[] = [];
  let framesSeen = 0;

  beforeAll(async () => {
    gw = await startGateway({ DELIVERY_TIMEOUT_MS: '500', LOG_LEVEL: 'warn' });
  });
  afterAll(() => gw.close());

  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
    expect(problems).toEqual([]);
    problems = [];
  });

  /** Every frame the client receives must match the contract. */
  function track(client: ChatClient): ChatClient {
    client.on('frame', (frame) => {
      framesSeen++;
      const problem = serverFrameProblem(frame);
      if (problem) problems.push(problem);
    });
    client.on('unknownFrame', (frame) => problems.push(`unknown frame ${JSON.stringify(frame)}`));
    clients.push(client);
    return client;
  }

  function client(token: string, options: Partial<ChatClientOptions> = {}, on: TestGateway = gw): ChatClient {
    return track(createNodeChatClient({ url: on.wsUrl, token, reconnect: FAST, ...options }));
  }

  async function login(token: string, options: Partial<ChatClientOptions> = {}, on: TestGateway = gw): Promise<ChatClient> {
    const c = client(token, options, on);
    await c.connect();
    return c;
  }

  /** The next event of a kind (matching), or a timeout error. */
  function next<K extends keyof ChatClientEvents>(
    c: ChatClient,
    event: K,
    match: (payload: ChatClientEvents[K]) => boolean = () => true,
    timeoutMs = 4000,
  ): Promise<ChatClientEvents[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${String(event)} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = c.on(event, (payload) => {
        if (!match(payload)) return;
        clearTimeout(timer);
        off();
        resolve(payload);
      });
    });
  }

  /** Records every `reconnecting` event of a client. */
  function reconnects(c: ChatClient): ChatClientEvents['reconnecting'][] {
    const seen: ChatClientEvents['reconnecting'][] = [];
    c.on('reconnecting', (r) => seen.push(r));
    return seen;
  }

  function serverConnectionOf(userId: string) {
    return gw.app.get(ConnectionRegistry).get(userId);
  }

  it('has client types equal to the gateway enums (compile time)', () => {
    expect(sameTypes).toEqual([true, true, true, true, true]);
    expect(closeCodesMatch).toBe(true);
  });

  describe('login', () => {
    it('logs in with the token in the header (Node) and knows who is online', async () => {
      const alice = client('alice-token');
      const states: string[] = [];
      alice.on('state', (s) => states.push(s));
      const auth = await alice.connect();
      expect(auth.userId).toBe('1');
      expect(alice.userId).toBe('1');
      expect(alice.state).toBe('open');
      expect(states).toEqual(['connecting', 'authenticating', 'open']);
      expect(alice.online.map((u) => u.userId)).toEqual(['1']);
      expect(alice.user('1')).toMatchObject({ nickname: 'alice', language: 'en' });
      expect(await alice.connect()).toEqual(auth);
    });

    it('logs in with the token as a subprotocol (the browser way) and in a first AUTH_MESSAGE frame', async () => {
      const carol = await login('carol-token', { auth: 'subprotocol' });
      expect(carol.userId).toBe('3');
      const dave = await login('dave-token', { auth: 'frame' });
      expect(dave.userId).toBe('4');
      expect(dave.online.map((u) => u.userId).sort()).toEqual(['3', '4']);
    });

    it('fails for good on a bad token (AUTH error "2", 4401): no reconnect', async () => {
      const bad = client('not-a-token');
      const seen = reconnects(bad);
      const authError = next(bad, 'authError');
      const closed = next(bad, 'close');
      const err = await bad.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ChatClientError);
      expect(err).toMatchObject({ code: 'AUTH_FAILED', details: { errorCode: '2', closeCode: 4401 } });
      expect(String((err as Error).message)).toMatch(/token not found or invalid/);
      expect(await authError).toEqual({ errorCode: '2', message: 'token not found or invalid' });
      expect(await closed).toMatchObject({ code: 4401, willReconnect: false, authError: { errorCode: '2' } });
      await sleep(300);
      expect(seen).toEqual([]);
      expect(bad.state).toBe('closed');
    });

    it('fails for good when the user is already connected (AUTH error "1", 4409): no reconnect', async () => {
      const alice = await login('alice-token');
      const again = client('alice-token');
      const seen = reconnects(again);
      await expect(again.connect()).rejects.toMatchObject({ code: 'AUTH_FAILED', details: { errorCode: '1', closeCode: 4409 } });
      await sleep(300);
      expect(seen).toEqual([]);
      expect(alice.state).toBe('open');
      alice.chat('still here');
      await next(alice, 'chat', (m) => m.message === 'still here');
    });

    it('rejects a bad construction and calls made before login', () => {
      const global = globalThis as { WebSocket?: unknown };
      const saved = global.WebSocket;
      global.WebSocket = undefined; // Node 22+ has a global WebSocket; a browser always does
      try {
        expect(() => new ChatClient({ url: gw.wsUrl, token: 'x' })).toThrow(/no WebSocket constructor/);
      } finally {
        global.WebSocket = saved;
      }
      expect(() => createNodeChatClient({ url: gw.wsUrl, token: '' })).toThrow(/token/);
      const idle = client('alice-token');
      expect(() => idle.chat('hi')).toThrow(ChatClientError);
      return expect(idle.dialog('2', 'x')).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    });
  });

  describe('messages', () => {
    it('keeps the online list current: AUTH userList, CONNECT, USER_UPDATE, own SAVE_AVATAR, DISCONNECT', async () => {
      const alice = await login('alice-token');
      const bob = client('bob-token');
      const connected = next(alice, 'userConnection', (u) => u.connectionStatus === 'CONNECT');
      await bob.connect();
      expect(await connected).toMatchObject({ connectionStatus: 'CONNECT', userId: '2', nickname: 'bob' });
      expect(alice.online.map((u) => u.userId).sort()).toEqual(['1', '2']);
      expect(bob.online.map((u) => u.userId).sort()).toEqual(['1', '2']);

      const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#c33' } }).png().toBuffer();
      const updated = next(alice, 'userUpdate');
      const url = await bob.saveAvatar(`data:image/png;base64,${png.toString('base64')}`);
      expect(url).toMatch(new RegExp(`^${gw.httpUrl}/avatars/`));
      expect(await updated).toEqual({ userId: '2', avatar: url });
      expect(alice.user('2')?.avatar).toBe(url);
      expect(bob.user('2')?.avatar).toBe(url);
      const image = await fetch(url);
      expect(image.headers.get('content-type')).toMatch(/^image\//);

      const gone = next(alice, 'userConnection', (u) => u.connectionStatus === 'DISCONNECT');
      await bob.close();
      expect(await gone).toEqual({ connectionStatus: 'DISCONNECT', userId: '2' });
      expect(alice.online.map((u) => u.userId)).toEqual(['1']);
    });

    it('chats with everyone, the sender included', async () => {
      const alice = await login('alice-token');
      const bob = await login('bob-token');
      const atBob = next(bob, 'chat');
      const atAlice = next(alice, 'chat');
      alice.chat('hello \u{1F600} all');
      for (const got of [await atBob, await atAlice]) {
        expect(got).toMatchObject({ message: 'hello \u{1F600} all', sender: '1' });
        expect(Number(got.sendTime)).toBeGreaterThan(Date.now() - 10_000);
      }
      expect(() => alice.chat('')).toThrow(/non-empty/);
    });

    it('resolves each dialog with its own DELIVERY_MESSAGE, matched by messageId', async () => {
      const alice = await login('alice-token');
      const bob = await login('bob-token');
      const received: ChatClientEvents['dialog'][] = [];
      bob.on('dialog', (d) => received.push(d));
      const results = await Promise.all([
        alice.dialog('2', { message: 'one' }),
        alice.dialog('2', { message: 'two' }, { messageId: 'my-id_2' }),
        alice.dialog('404', { message: 'to nobody' }),
        alice.dialog('2', ['three', 3, null]),
      ]);
      expect(results).toEqual(['SUCCESS', 'SUCCESS', 'ERROR', 'SUCCESS']);
      expect(received.map((d) => d.clientData)).toEqual([{ message: 'one' }, { message: 'two' }, ['three', 3, null]]);
      expect(received.every((d) => d.sender === '1')).toBe(true);
      expect(received[1].messageId).toBe('my-id_2');
      // Generated ids are unique and valid.
      expect(new Set(received.map((d) => d.messageId)).size).toBe(3);
      for (const d of received) expect(d.messageId).toMatch(/^[A-Za-z0-9_-]{22}$|^my-id_2$/);
    });

    it('refuses dialogs that cannot make a valid frame, without sending anything', async () => {
      const alice = await login('alice-token');
      const sent = framesSeen;
      await expect(alice.dialog('2', 'x', { messageId: 'bad id!' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(alice.dialog('', 'x')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(alice.dialog('2', undefined)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(alice.dialog('2', { big: 10n })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await sleep(100);
      expect(framesSeen).toBe(sent);
    });

    it('rejects an avatar the gateway refuses with its error code', async () => {
      const alice = await login('alice-token');
      const answer = next(alice, 'saveAvatar');
      await expect(alice.saveAvatar('aGVsbG8gd29ybGQ=')).rejects.toMatchObject({ code: 'AVATAR_REJECTED', details: { errorCode: '2' } });
      expect(await answer).toMatchObject({ status: 'ERROR', error: { errorCode: '2' } });
    });

    it('reports ERROR_MESSAGE answers', async () => {
      const alice = await login('alice-token');
      const refused = next(alice, 'serverError');
      alice.send({ type: 'CHAT_MESSAGE', serverData: { message: '' } });
      expect(await refused).toMatchObject({ error: { errorCode: 'INVALID_MESSAGE' }, requestType: 'CHAT_MESSAGE' });
    });
  });

  describe('reconnect', () => {
    it('reconnects after 1006 (connection lost) and logs in again', async () => {
      const alice = await login('alice-token');
      const seen = reconnects(alice);
      const again = next(alice, 'auth');
      serverConnectionOf('1')!.drop(); // no close frame: the client sees 1006
      await again;
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ attempt: 1, closeCode: 1006 });
      expect(seen[0].delayMs).toBeGreaterThanOrEqual(0);
      expect(seen[0].delayMs).toBeLessThan(FAST.baseDelayMs);
      expect(alice.state).toBe('open');
    });

    it('reconnects after 1001 (server shutting down)', async () => {
      const alice = await login('alice-token');
      const closes: ChatClientEvents['close'][] = [];
      alice.on('close', (c) => closes.push(c));
      const again = next(alice, 'auth');
      await gw.app.get(WsGateway).drain(0);
      await again;
      expect(closes).toEqual([expect.objectContaining({ code: 1001, willReconnect: true })]);
    });

    it('sends a dialog made while reconnecting after the next login', async () => {
      const alice = await login('alice-token');
      const bob = await login('bob-token');
      const atBob = next(bob, 'dialog');
      const reconnecting = next(alice, 'state', (s) => s === 'reconnecting');
      serverConnectionOf('1')!.drop(); // no close frame: the client sees 1006
      await reconnecting;
      const status = alice.dialog('2', { message: 'queued' });
      expect(await status).toBe('SUCCESS');
      expect((await atBob).clientData).toEqual({ message: 'queued' });
    });

    it('stops on close(): 1000, no reconnect, later calls refused', async () => {
      const alice = await login('alice-token');
      const seen = reconnects(alice);
      const closed = next(alice, 'close');
      await alice.close();
      expect(await closed).toMatchObject({ code: 1000, willReconnect: false });
      expect(alice.state).toBe('closed');
      await sleep(200);
      expect(seen).toEqual([]);
      expect(() => alice.chat('x')).toThrow(/not logged in/);
      await expect(alice.dialog('2', 'x')).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    });

    it('stops retrying after maxAttempts', async () => {
      const nowhere = { ...gw, wsUrl: `ws://127.0.0.1:1/ws` } as TestGateway;
      const c = client('alice-token', { reconnect: { ...FAST, maxAttempts: 2 } }, nowhere);
      const seen = reconnects(c);
      await expect(c.connect()).rejects.toMatchObject({ code: 'CLOSED', details: { closeCode: 1006 } });
      expect(seen.map((r) => r.attempt)).toEqual([1, 2]);
    });
  });

  describe('with limits', () => {
    let strict: TestGateway;
    beforeAll(async () => {
      strict = await startGateway({ RATE_LIMIT_BURST: '2', RATE_LIMIT_PER_SEC: '1', MAX_FRAME_BYTES: '1024', LOG_LEVEL: 'error' });
    });
    afterAll(() => strict.close());

    it('reconnects after 4429 (flooding), with backoff', async () => {
      const alice = await login('alice-token', {}, strict);
      const seen = reconnects(alice);
      const again = next(alice, 'auth');
      for (let i = 0; i < 6; i++) alice.chat(`flood ${i}`);
      await again;
      expect(seen).toHaveLength(1);
      expect(seen[0].closeCode).toBe(4429);
    });

    it('never reconnects after 1009 (frame too big)', async () => {
      const alice = await login('alice-token', {}, strict);
      const seen = reconnects(alice);
      const closed = next(alice, 'close');
      alice.chat('x'.repeat(2000));
      expect(await closed).toMatchObject({ code: 1009, willReconnect: false });
      await sleep(300);
      expect(seen).toEqual([]);
      expect(alice.state).toBe('closed');
    });
  });

  describe('when the authorization server is down (1013)', () => {
    let auth: FakeAuthServer;
    let withAuth: TestGateway;
    beforeAll(async () => {
      auth = await startFakeAuthServer({ mode: 'down' });
      withAuth = await startGateway({ AUTH_SERVER_URL: auth.url, AUTH_TIMEOUT_MS: '300', AUTH_BREAKER_THRESHOLD: '1000', LOG_LEVEL: 'error' });
    });
    afterAll(async () => {
      await withAuth.close();
      await auth.close();
    });

    it('retries with backoff until the server answers, then connect() resolves', async () => {
      const alice = client('alice-token', {}, withAuth);
      const seen = reconnects(alice);
      const authErrors: string[] = [];
      alice.on('authError', (e) => authErrors.push(e.errorCode));
      const connected = alice.connect();
      await eventually(() => seen.length >= 2, 4000, 'two retries');
      expect(seen.every((r) => r.closeCode === 1013)).toBe(true);
      expect(authErrors.every((c) => c === '3')).toBe(true);
      await auth.setMode('normal');
      expect((await connected).userId).toBe('1');
    });
  });

  it('bundles for browsers: the core imports nothing from Node or Nest', async () => {
    const result = await build({
      entryPoints: [join(__dirname, 'index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    // Beyond src/client only the protocol's plain-TS constants (no imports of their own).
    expect(inputs.filter((file) => !file.startsWith('src/client/'))).toEqual(['src/protocol/protocol.ts']);
    expect(result.outputFiles[0].text).not.toMatch(/\brequire\(/);
  });
});

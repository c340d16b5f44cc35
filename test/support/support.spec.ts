import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadUsers } from '../../src/demo-users/users';
import { PROFILE_FIELDS } from '../../src/protocol/protocol';
import { rejectionOf, thrownBy } from './errors';
import { BUNDLED_ALICE, makeProfile, makeUser, makeUsers } from './factories';
import { FakeAuthServer, startFakeAuthServer } from './fake-auth-server';
import { joinedClient, logSends } from './fake-client';
import { authError, authWith, chat, dialog, frameError, isChat, isConnect, isDisconnect, isType } from './frames';
import { freePort } from './free-port';
import { httpGet, httpRequest, httpStatus, rawGet, rawUpgrade, tryUpgrade } from './http';
import { jsonLines, logLines } from './logs';
import { metricValue, parseMetrics, scrape } from './metrics';
import { redisCommand, RedisServer, RespError, startRedisServer } from './redis-server';
import { Scope, type Closeable } from './scope';
import { deferred, eventually, flushPromises, sleep, withTimeout } from './time';
import { closedWithin, MIN_SILENCE_MS, received, TestClient, takeContractViolations, tokenSubprotocol } from './ws-client';

/** One POST over a fresh connection (no keep-alive), with a client-side timeout. */
const post = (url: string, body: string, timeoutMs = 2_000) =>
  httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, timeoutMs });

const check = (url: string, token: string) => post(url, JSON.stringify({ type: 'CHECK_TOKEN', authToken: token }));

describe('freePort', () => {
  it('returns a port that can be listened on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

describe('redis-server helper', () => {
  let redis: RedisServer | undefined;
  afterEach(async () => {
    await redis?.kill();
    redis = undefined;
  });

  it('starts, answers, stops, restarts empty on the same port, and dies on kill', async () => {
    redis = await startRedisServer();
    const { port } = redis;
    expect(redis.url).toBe(`redis://127.0.0.1:${port}`);
    expect(redis.running).toBe(true);
    expect(await redisCommand(port, ['PING'])).toBe('PONG');
    expect(await redisCommand(port, ['SET', 'greeting', 'hello'])).toBe('OK');
    expect(await redisCommand(port, ['GET', 'greeting'])).toBe('hello');
    expect(await redisCommand(port, ['NO-SUCH-COMMAND'])).toBeInstanceOf(RespError);

    await redis.stop();
    expect(redis.running).toBe(false);
    await expect(redisCommand(port, ['PING'])).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await redis.stop(); // no-op

    await redis.start();
    expect(redis.port).toBe(port);
    expect(await redisCommand(port, ['GET', 'greeting'])).toBeNull();
    expect(await redisCommand(port, ['DBSIZE'])).toBe(0);

    const pid = redis.pid;
    await redis.kill();
    expect(redis.running).toBe(false);
    expect(() => process.kill(pid!, 0)).toThrow();
    await expect(redisCommand(port, ['PING'])).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await redis.start();
    expect(await redisCommand(port, ['PING'])).toBe('PONG');
    await redis.stop();
  }, 30_000);

  it('runs several servers side by side', async () => {
    const [a, b] = await Promise.all([startRedisServer(), startRedisServer()]);
    try {
      expect(a.port).not.toBe(b.port);
      await redisCommand(a.port, ['SET', 'k', 'a']);
      expect(await redisCommand(b.port, ['GET', 'k'])).toBeNull();
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 30_000);

  it('fails clearly when the port is taken by something else', async () => {
    const blocker = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(startRedisServer({ port })).rejects.toThrow(
        new RegExp(`redis-server on port ${port} exited with code 1: [\\s\\S]*address already in use`, 'i'),
      );
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  }, 30_000);

  it('fails clearly when the binary is missing', async () => {
    await expect(startRedisServer({ binary: '/nonexistent/redis-server' })).rejects.toThrow(
      'redis-server not found at /nonexistent/redis-server',
    );
  });
});

describe('fake auth server', () => {
  let fake: FakeAuthServer;
  beforeEach(async () => {
    fake = await startFakeAuthServer({ delayMs: 300 });
  });
  afterEach(() => fake.close());

  it('behaves like the reference server in normal mode', async () => {
    expect(fake.mode).toBe('normal');
    expect(fake.url).toBe(`http://127.0.0.1:${fake.port}/`);
    const ok = await check(fake.url, 'alice-token');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ type: 'CHECK_TOKEN', status: 'SUCCESS', serverData: { userId: '1' } });
    const unknown = await check(fake.url, 'nobody');
    expect(JSON.parse(unknown.body)).toMatchObject({ status: 'ERROR', error: { errorCode: '1' } });
    expect(fake.requests).toBe(2);
    expect(fake.lastRequest).toMatchObject({
      method: 'POST',
      path: '/',
      body: '{"type":"CHECK_TOKEN","authToken":"nobody"}',
    });
    expect(fake.lastRequest?.headers['content-type']).toBe('application/json');
    fake.resetRequests();
    expect(fake.requests).toBe(0);
  });

  it.each<[string, number]>([
    ['status500', 500],
    ['status401', 401],
    ['status404', 404],
    ['status418', 418],
  ] as const)('answers %s with HTTP %i', async (mode, status) => {
    await fake.setMode(mode as Parameters<FakeAuthServer['setMode']>[0]);
    const res = await check(fake.url, 'alice-token');
    expect(res.status).toBe(status);
    expect(res.body).not.toContain('"SUCCESS"');
  });

  it('redirects in status302 mode', async () => {
    await fake.setMode('status302');
    const res = await check(fake.url, 'alice-token');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/redirected');
    expect(fake.requests).toBe(1);
  });

  it('answers 200 with a body that is not JSON in garbage mode', async () => {
    await fake.setMode('garbage');
    const res = await check(fake.url, 'alice-token');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(() => JSON.parse(res.body) as unknown).toThrow();
  });

  it('answers SUCCESS without userId in success-without-userid mode', async () => {
    await fake.setMode('success-without-userid');
    const body = JSON.parse((await check(fake.url, 'alice-token')).body) as {
      status: string;
      serverData: Record<string, string>;
    };
    expect(body.status).toBe('SUCCESS');
    expect(body.serverData).not.toHaveProperty('userId');
    expect(body.serverData.nickname).toBe('ghost');
  });

  it('answers ERROR for a valid token in error-status mode', async () => {
    await fake.setMode('error-status');
    const res = await check(fake.url, 'alice-token');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ type: 'CHECK_TOKEN', status: 'ERROR' });
  });

  it('answers after delayMs in slow mode', async () => {
    await fake.setMode('slow', { delayMs: 400 });
    const started = Date.now();
    const res = await check(fake.url, 'bob-token');
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'SUCCESS', serverData: { userId: '2' } });
  });

  it('never answers in hang mode, and still closes cleanly', async () => {
    await fake.setMode('hang');
    await expect(post(fake.url, '{}', 300)).rejects.toThrow('client timeout');
    expect(fake.requests).toBe(1);
    // A request left hanging while the server closes: the connection is destroyed.
    const pending = post(fake.url, '{}', 10_000);
    await sleep(50);
    await fake.close();
    await expect(pending).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('refuses connections while down and comes back on the same url', async () => {
    const url = fake.url;
    await fake.setMode('down');
    await expect(check(url, 'alice-token')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(fake.requests).toBe(0);
    await fake.setMode('normal');
    expect(fake.url).toBe(url);
    expect((await check(url, 'alice-token')).status).toBe(200);
    expect(fake.requests).toBe(1);
  });

  it('drops hanging connections when going down', async () => {
    await fake.setMode('hang');
    const pending = post(fake.url, '{}', 10_000);
    await sleep(50);
    await fake.setMode('down');
    await expect(pending).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('starts in the requested mode and closes while down or with slow answers pending', async () => {
    const down = await startFakeAuthServer({ mode: 'down' });
    await expect(check(down.url, 'alice-token')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await down.close();

    const slow = await startFakeAuthServer({ mode: 'slow', delayMs: 60_000 });
    const pending = check(slow.url, 'alice-token');
    await sleep(50);
    await slow.close();
    await expect(pending).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('rejects unknown modes and use after close', async () => {
    await expect(fake.setMode('sideways' as never)).rejects.toThrow('unknown fake auth mode "sideways"');
    await fake.close();
    await expect(fake.setMode('normal')).rejects.toThrow('fake auth server is closed');
  });
});

describe('TestClient.expectSilence', () => {
  let server: WebSocketServer;
  let client: TestClient;
  let peer: WebSocket;

  beforeEach(async () => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const connected = once(server, 'connection');
    client = await TestClient.connect(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    [peer] = (await connected) as [WebSocket];
  });

  afterEach(async () => {
    client.terminate();
    await new Promise((resolve) => server.close(resolve));
    takeContractViolations(); // the frames here are not protocol frames
  });

  it('refuses a window shorter than MIN_SILENCE_MS (0 would look one tick only)', async () => {
    await expect(client.expectSilence(0)).rejects.toThrow(/proves nothing/);
    await expect(client.expectSilence(MIN_SILENCE_MS - 1, () => true)).rejects.toThrow(/proves nothing/);
    await expect(client.expectSilence(Number.NaN)).rejects.toThrow(/proves nothing/);
    await expect(client.expectSilence(MIN_SILENCE_MS)).resolves.toBeUndefined();
  });

  it('fails on a matching frame that arrives within the window and ignores the others', async () => {
    setTimeout(() => peer.send(JSON.stringify({ type: 'LATE' })), 30);
    await expect(client.expectSilence(MIN_SILENCE_MS)).rejects.toThrow(/unexpected frames: .*LATE/);
    setTimeout(() => peer.send(JSON.stringify({ type: 'OTHER' })), 30);
    await expect(client.expectSilence(MIN_SILENCE_MS, (f) => f.type === 'LATE')).resolves.toBeUndefined();
  });
});

describe('time', () => {
  it('sleep waits at least the time given', async () => {
    const started = Date.now();
    await sleep(60);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
  });

  it('eventually resolves once the check holds, polling sync and async checks', async () => {
    let calls = 0;
    await eventually(() => ++calls >= 3, 1000);
    expect(calls).toBe(3);
    let asyncCalls = 0;
    await eventually(async () => ++asyncCalls >= 2, 1000);
    expect(asyncCalls).toBe(2);
  });

  it('eventually treats a throwing or rejecting check as "not yet"', async () => {
    let calls = 0;
    await eventually(() => {
      if (++calls < 3) throw new Error('not up yet');
      return true;
    }, 1000);
    let asyncCalls = 0;
    await eventually(async () => {
      if (++asyncCalls < 3) throw new Error('refused');
      return true;
    }, 1000);
    expect([calls, asyncCalls]).toEqual([3, 3]);
  });

  it('eventually fails after the timeout, naming what it waited for and the last error', async () => {
    const started = Date.now();
    await expect(eventually(() => false, 150, 'the moon')).rejects.toThrow('timed out after 150 ms waiting for the moon');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await expect(eventually(() => false, 50)).rejects.toThrow('waiting for condition');
    await expect(
      eventually(
        () => {
          throw new Error('ECONNREFUSED');
        },
        50,
        'redis',
      ),
    ).rejects.toThrow('timed out after 50 ms waiting for redis (last attempt: ECONNREFUSED)');
  });

  it('withTimeout passes a settled promise through and rejects a late one, reading a lazy `what` when the time is up', async () => {
    await expect(withTimeout(Promise.resolve(7), 100, 'seven')).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('own error')), 100, 'x')).rejects.toThrow('own error');
    let state = 'early';
    const late = withTimeout(new Promise(() => undefined), 50, () => `the state (${state})`);
    state = 'late';
    await expect(late).rejects.toThrow('timed out after 50 ms waiting for the state (late)');
  });

  it('deferred is settled by the test', async () => {
    const ok = deferred<number>();
    ok.resolve(3);
    await expect(ok.promise).resolves.toBe(3);
    const failed = deferred();
    failed.reject(new Error('no'));
    await expect(failed.promise).rejects.toThrow('no');
  });

  it('flushPromises lets pending promise callbacks run, also under fake timers', async () => {
    jest.useFakeTimers();
    try {
      const seen: string[] = [];
      void Promise.resolve()
        .then(() => seen.push('a'))
        .then(() => seen.push('b'));
      await flushPromises();
      expect(seen).toEqual(['a', 'b']);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('factories', () => {
  it('makeProfile sets all seven fields, distinct per user, and takes overrides', () => {
    const profile = makeProfile('u1');
    expect(Object.keys(profile).sort()).toEqual([...PROFILE_FIELDS].sort());
    for (const field of PROFILE_FIELDS) expect(profile[field]).toEqual(expect.any(String));
    for (const field of PROFILE_FIELDS) expect(profile[field]).not.toBe('');
    expect(profile.userId).toBe('u1');
    const other = makeProfile('u2');
    for (const field of ['userId', 'nickname', 'avatar', 'status'] as const) expect(other[field]).not.toBe(profile[field]);
    expect(makeProfile('u1')).toEqual(profile); // the same input gives the same profile
    expect(makeProfile('u1', { avatar: '', nickname: 'Ann' })).toEqual({ ...profile, avatar: '', nickname: 'Ann' });
  });

  it('makeUser gives a token, id and nickname that occur nowhere by chance, no avatar, with overrides of any of them', () => {
    const user = makeUser('mx1');
    expect(user.token).toMatch(/^tok-mx1-\w+$/);
    expect(user.profile.userId).toMatch(/^uid-mx1-\w+$/);
    expect(user.profile.nickname).toMatch(/^nick-mx1-\w+$/);
    expect(Object.keys(user.profile).sort()).toEqual([...PROFILE_FIELDS].sort());
    expect(user.profile.avatar).toBe(''); // none at the authorization server unless given
    expect(makeUser('mx1', { avatar: 'http://auth.example/mx1.png' }).profile.avatar).toBe('http://auth.example/mx1.png');
    const erin = makeUser('erin', { token: 'erin-token', userId: '5', nickname: 'erin', language: 'fr' });
    expect(erin).toEqual({ token: 'erin-token', profile: makeProfile('5', { nickname: 'erin', avatar: '', language: 'fr', status: 'status of erin' }) });
    const [a, b] = makeUsers('a', 'b');
    expect(new Set([a.token, b.token, a.profile.userId, b.profile.userId, a.profile.nickname, b.profile.nickname]).size).toBe(6);
    expect(makeUsers('a', 'b')).toEqual([makeUser('a'), makeUser('b')]);
  });

  it('BUNDLED_ALICE is alice as the bundled demo users have her', () => {
    expect(loadUsers().find((u) => u.token === 'alice-token')?.profile).toEqual(BUNDLED_ALICE);
  });
});

describe('frames', () => {
  const connect = { type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'CONNECT', userId: '1', nickname: 'a' } };
  const disconnect = { type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'DISCONNECT', userId: '1' } };
  const chatFrame = { type: 'CHAT_MESSAGE', serverData: { message: 'hi', sender: '1', sendTime: '1' } };

  it('predicates match by type, presence status and user, and chat text', () => {
    expect([connect, disconnect, chatFrame].map(isType('CHAT_MESSAGE'))).toEqual([false, false, true]);
    expect([connect, disconnect, chatFrame].map(isConnect())).toEqual([true, false, false]);
    expect([connect, disconnect, chatFrame].map(isDisconnect())).toEqual([false, true, false]);
    expect([isConnect('1')(connect), isConnect('2')(connect), isDisconnect('1')(disconnect), isDisconnect('2')(disconnect)]).toEqual([true, false, true, false]);
    expect([isChat()(chatFrame), isChat('hi')(chatFrame), isChat('ho')(chatFrame), isChat('hi')(connect)]).toEqual([true, true, false, false]);
  });

  it('builds the frames a client sends', () => {
    expect(chat('hi')).toEqual({ type: 'CHAT_MESSAGE', serverData: { message: 'hi' } });
    expect(dialog('2', { a: 1 })).toEqual({ type: 'DIALOG_MESSAGE', clientData: { a: 1 }, serverData: { receiver: '2' } });
    expect(dialog('2', 'x', 'm1')).toEqual({ type: 'DIALOG_MESSAGE', clientData: 'x', serverData: { receiver: '2', messageId: 'm1' } });
    expect(authWith('t')).toEqual({ type: 'AUTH_MESSAGE', serverData: { authToken: 't' } });
  });

  it('builds the answers a test expects, with any message and a requestType only when given', () => {
    expect({ type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: '2', message: 'whatever' } }).toEqual(authError('2'));
    const error = { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_JSON', message: 'bad' } };
    expect(error).toEqual(frameError('INVALID_JSON'));
    expect(frameError('INVALID_JSON')).not.toHaveProperty('requestType');
    expect({ ...error, requestType: 'CHAT_MESSAGE' }).toEqual(frameError('INVALID_JSON', 'CHAT_MESSAGE'));
    expect({ ...error, requestType: 'CHAT_MESSAGE' }).not.toEqual(frameError('INVALID_JSON'));
  });
});

describe('logs', () => {
  it('logLines splits output and chunks into non-blank lines; jsonLines parses each as one JSON object', () => {
    expect(logLines('a\n\n b \n')).toEqual(['a', ' b ']);
    expect(logLines(['{"a":1}\n', '{"b":2}\n{"c":3}\n', '  \n'])).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    expect(jsonLines(['{"msg":"x"}\n', '{"msg":"y"}\n'])).toEqual([{ msg: 'x' }, { msg: 'y' }]);
    expect(() => jsonLines('{"msg":"x"}\nplain text\n')).toThrow('not a JSON object: plain text');
    expect(() => jsonLines('[1]')).toThrow('not a JSON object: [1]');
    expect(() => jsonLines('null')).toThrow('not a JSON object: null');
  });
});

describe('errors', () => {
  class OwnError extends Error {}

  it('thrownBy returns the error of the class, rethrows another, fails on none', () => {
    const own = new OwnError('mine');
    expect(
      thrownBy(OwnError, () => {
        throw own;
      }),
    ).toBe(own);
    expect(() =>
      thrownBy(OwnError, () => {
        throw new TypeError('other');
      }),
    ).toThrow(TypeError);
    expect(() => thrownBy(OwnError, () => 1)).toThrow('expected a OwnError to be thrown; nothing was');
  });

  it('rejectionOf does the same for a promise or a function that throws or rejects', async () => {
    const own = new OwnError('mine');
    await expect(rejectionOf(OwnError, Promise.reject(own))).resolves.toBe(own);
    await expect(rejectionOf(OwnError, async () => Promise.reject(own))).resolves.toBe(own);
    await expect(
      rejectionOf(OwnError, () => {
        throw own;
      }),
    ).resolves.toBe(own);
    await expect(rejectionOf(OwnError, Promise.reject(new TypeError('other')))).rejects.toThrow(TypeError);
    await expect(rejectionOf(OwnError, Promise.resolve(1))).rejects.toThrow('expected a OwnError to be thrown; nothing was');
  });
});

describe('metrics', () => {
  const TEXT = [
    '# HELP gateway_disconnects_total Closed connections.',
    '# TYPE gateway_disconnects_total counter',
    'gateway_disconnects_total{code="1000"} 2',
    'gateway_disconnects_total{code="4401"} 1',
    'gateway_connections{state="open"} 5',
    'gateway_auth_check_duration_seconds_bucket{le="+Inf",result="valid"} 4 1700000000000',
    'odd_label{text="a \\"quoted\\" \\\\ back\\nslash"} 1.5',
    'process_start_time_seconds 1700000000',
    '',
  ].join('\n');

  it('parseMetrics reads names, labels (unescaped), values and skips comments and timestamps', () => {
    const samples = parseMetrics(TEXT);
    expect(samples).toHaveLength(6);
    expect(samples[0]).toEqual({ name: 'gateway_disconnects_total', labels: { code: '1000' }, value: 2 });
    expect(samples[3]).toEqual({ name: 'gateway_auth_check_duration_seconds_bucket', labels: { le: '+Inf', result: 'valid' }, value: 4 });
    expect(samples[4].labels.text).toBe('a "quoted" \\ back\nslash');
    expect(samples[5]).toEqual({ name: 'process_start_time_seconds', labels: {}, value: 1700000000 });
    expect(() => parseMetrics('not a metric line at all')).toThrow('unparsable metrics line');
  });

  it('metricValue sums the series whose labels include those given; 0 when none', () => {
    const samples = parseMetrics(TEXT);
    expect(metricValue(samples, 'gateway_disconnects_total')).toBe(3);
    expect(metricValue(samples, 'gateway_disconnects_total', { code: '4401' })).toBe(1);
    expect(metricValue(samples, 'gateway_disconnects_total', { code: '1006' })).toBe(0);
    expect(metricValue(samples, 'gateway_auth_check_duration_seconds_bucket', { le: '+Inf' })).toBe(4);
    expect(metricValue(samples, 'no_such_metric')).toBe(0);
  });
});

/** A local HTTP server that answers every request with what it got (method, path, headers, body). */
async function echoServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createHttpServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }).end('up 1\n');
        return;
      }
      if (req.url === '/slow') return; // never answers
      const status = req.url?.startsWith('/teapot') ? 418 : 200;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('http', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  beforeAll(async () => {
    echo = await echoServer();
  });
  afterAll(() => echo.close());

  it('httpGet and httpRequest send one request over a connection of its own, and read status, headers and body', async () => {
    const got = await httpGet(`${echo.url}/a/b?c=1`, { 'X-Test': 'yes' });
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toBe('application/json');
    const seen = JSON.parse(got.body) as { method: string; path: string; headers: Record<string, string> };
    expect(seen).toMatchObject({ method: 'GET', path: '/a/b?c=1', headers: { 'x-test': 'yes', connection: 'close' } });
    expect(got.bytes.toString('utf8')).toBe(got.body);

    const posted = await httpRequest(`${echo.url}/p`, { method: 'POST', body: 'payload \u2603' });
    expect(JSON.parse(posted.body)).toMatchObject({ method: 'POST', path: '/p', body: 'payload \u2603' });
    expect((await httpGet(`${echo.url}/teapot`)).status).toBe(418);
  });

  it('rawGet sends the path exactly as given; httpStatus answers 0 when nothing does', async () => {
    expect(JSON.parse((await rawGet(echo.url, '/avatars/../../etc/passwd')).body)).toMatchObject({ path: '/avatars/../../etc/passwd' });
    expect(await httpStatus(`${echo.url}/teapot`)).toBe(418);
    expect(await httpStatus(`http://127.0.0.1:${await freePort()}/`)).toBe(0);
    expect(await httpStatus(`${echo.url}/slow`, 100)).toBe(0);
  });

  it('fails a request that gets no answer within its timeout with "client timeout"', async () => {
    await expect(httpRequest(`${echo.url}/slow`, { timeoutMs: 100 })).rejects.toThrow(/client timeout after 100 ms/);
  });

  it('scrape reads /metrics of a node', async () => {
    const { samples, text, contentType } = await scrape({ httpUrl: echo.url });
    expect(text).toBe('up 1\n');
    expect(contentType).toMatch(/^text\/plain/);
    expect(metricValue(samples, 'up')).toBe(1);
    await expect(scrape({ httpUrl: `${echo.url}/teapot` })).rejects.toThrow('/metrics answered');
  });
});

describe('upgrades', () => {
  let server: WebSocketServer;
  let wsUrl: string;
  beforeAll(async () => {
    server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      verifyClient: (info, done) => (info.req.headers['x-refuse'] ? done(false, 403, 'Forbidden') : done(true)),
    });
    await once(server, 'listening');
    wsUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
  });
  afterAll(async () => {
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  });

  it('tryUpgrade reports 101 for an upgrade and the HTTP status of a refusal', async () => {
    expect((await tryUpgrade(wsUrl)).status).toBe(101);
    const refused = await tryUpgrade(wsUrl, { 'X-Refuse': '1' });
    expect(refused.status).toBe(403);
  });

  it('rawUpgrade sends headers a ws client would refuse, and reports the status', async () => {
    expect(() => tokenSubprotocol('x')).not.toThrow();
    expect((await rawUpgrade(wsUrl, {})).status).toBe(101);
    // "=" is not an HTTP token character: ws answers 400 before any handler.
    expect((await rawUpgrade(wsUrl, { 'Sec-WebSocket-Protocol': 'mpgp.v1, authToken.abc=' })).status).toBe(400);
    expect((await rawUpgrade(wsUrl, { 'X-Refuse': '1' })).status).toBe(403);
  });
});

describe('ws-client helpers', () => {
  let server: WebSocketServer;
  let url: string;
  beforeAll(async () => {
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(() => {
    takeContractViolations(); // the frames here are not protocol frames
  });

  async function pair(): Promise<{ client: TestClient; peer: WebSocket }> {
    const connected = once(server, 'connection');
    const client = await TestClient.connect(url);
    const [peer] = (await connected) as [WebSocket];
    return { client, peer };
  }

  it('tokenSubprotocol is authToken.<base64url of the UTF-8, no padding>', () => {
    expect(tokenSubprotocol('erin?>>~token\u00e9')).toBe(`authToken.${Buffer.from('erin?>>~token\u00e9', 'utf8').toString('base64url')}`);
    expect(tokenSubprotocol('erin?>>~token\u00e9')).toMatch(/^authToken\.[A-Za-z0-9_-]+$/);
  });

  it('received waits for frames read or not, one predicate or several in any order', async () => {
    const { client, peer } = await pair();
    setTimeout(() => {
      peer.send(JSON.stringify({ type: 'B' }));
      peer.send(JSON.stringify({ type: 'A' }));
    }, 30);
    await received(client, isType('A'));
    await received(client, [isType('A'), isType('B')]);
    expect((await client.next()).type).toBe('B'); // its cursor did not move
    await expect(received(client, isType('C'), 100, 'a C')).rejects.toThrow('waiting for a C');
    client.terminate();
  });

  it('closedWithin resolves with the close, or fails quoting the last frames', async () => {
    const { client, peer } = await pair();
    peer.send(JSON.stringify({ type: 'LAST' }));
    await client.next();
    await expect(closedWithin(client, 100)).rejects.toThrow(/timed out after 100 ms waiting for the close \(last frames: .*LAST/);
    peer.close(4000, 'bye');
    await expect(closedWithin(client, 2000)).resolves.toEqual({ code: 4000, reason: 'bye' });
  });
});

describe('Scope', () => {
  /** A closeable that records when it was closed, optionally failing or taking a while. */
  function thing(name: string, closed: string[], opts: { fails?: boolean; ms?: number } = {}): Closeable {
    return {
      close: async () => {
        if (opts.ms) await sleep(opts.ms);
        closed.push(name);
        if (opts.fails) throw new Error(`${name} failed to close`);
      },
    };
  }

  it('closes clients first (all at once), then apps, then servers (newest first), past failures, once', async () => {
    const scope = new Scope();
    const closed: string[] = [];
    scope.track(thing('server 1', closed), 'server');
    scope.track(thing('app 1', closed), 'app');
    scope.track(thing('client 1', closed, { ms: 30 }));
    scope.track(thing('server 2', closed, { fails: true }), 'server');
    scope.track(thing('app 2', closed, { fails: true }), 'app');
    scope.track(thing('client 2', closed, { fails: true }), 'client');
    scope.track({ close: () => void closed.push('sync client') });
    await scope.closeAll();
    expect(closed).toEqual(['client 2', 'sync client', 'client 1', 'app 2', 'app 1', 'server 2', 'server 1']);
    await scope.closeAll();
    expect(closed).toHaveLength(7);
  });

  it('stop closes one thing now and takes it out of the scope', async () => {
    const scope = new Scope();
    const closed: string[] = [];
    const app = scope.track(thing('app', closed), 'app');
    scope.track(thing('other', closed), 'app');
    await scope.stop(app);
    expect(closed).toEqual(['app']);
    await scope.closeAll();
    expect(closed).toEqual(['app', 'other']);
  });

  it('starts auth servers with its users, gives each gateway its env and, with ownAuthServer, an auth server of its own', async () => {
    const users = makeUsers('sc1', 'sc2');
    const scope = new Scope({ users, env: { AUTH_TIMEOUT_MS: '1234' }, ownAuthServer: true });
    try {
      const gw = await scope.gateway({ LOG_LEVEL: 'warn' });
      expect(gw.env).toMatchObject({ AUTH_TIMEOUT_MS: '1234', LOG_LEVEL: 'warn', AUTH_SERVER_URL: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) });
      const [a, b] = await scope.loginAll({ wsUrl: () => gw.wsUrl }, [users[0].token, users[1].token]);
      expect(a.frames.some(isConnect(users[1].profile.userId))).toBe(true);
      // A second session is refused: login fails, attempt reports the AUTH_MESSAGE.
      await expect(scope.loginWithAuth(gw.wsUrl, users[0].token)).rejects.toThrow(/login failed: .*"errorCode":"1"/);
      const duplicate = await scope.attempt(gw.wsUrl, users[1].token);
      expect(duplicate.auth).toMatchObject({ status: 'ERROR', error: { errorCode: '1' } });
      const fake = await scope.fakeAuthServer();
      expect((await check(fake.url, users[0].token)).status).toBe(200);
      const given = await scope.gateway({ AUTH_SERVER_URL: fake.url, LOG_LEVEL: 'warn' });
      expect(given.env.AUTH_SERVER_URL).toBe(fake.url);
      const viaFake = await scope.login(given.wsUrl, users[1].token);
      expect(viaFake.closeInfo).toBeUndefined();
      expect(b.closeInfo).toBeUndefined();
      await scope.closeAll();
      expect(b.closeInfo).toBeDefined();
      expect(await httpStatus(`${gw.httpUrl}/health/live`)).toBe(0);
      await expect(check(fake.url, users[0].token)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await scope.closeAll();
    }
  }, 20_000);

  it('without ownAuthServer a gateway keeps its demo users, and a fake auth server defaults to them', async () => {
    const scope = new Scope();
    try {
      const gw = await scope.gateway({ LOG_LEVEL: 'warn' });
      expect(gw.env.AUTH_SERVER_URL).toBeUndefined();
      await scope.login(gw.wsUrl, 'alice-token');
      const fake = await scope.fakeAuthServer();
      expect(JSON.parse((await check(fake.url, 'bob-token')).body)).toMatchObject({ status: 'SUCCESS', serverData: { userId: '2' } });
    } finally {
      await scope.closeAll();
    }
  }, 20_000);
});

describe('fake-client', () => {
  it('logSends logs every send of a client in order with other calls, and the frame still goes out', () => {
    const { client, transport } = joinedClient('alice');
    const log: string[] = ['before'];
    logSends(client, log);
    client.send('{"type":"CHAT_MESSAGE","serverData":{"message":"hi","sender":"1","sendTime":"1"}}');
    log.push('after');
    expect(log).toEqual(['before', 'send', 'after']);
    expect(transport.frames).toEqual([{ type: 'CHAT_MESSAGE', serverData: { message: 'hi', sender: '1', sendTime: '1' } }]);
  });
});

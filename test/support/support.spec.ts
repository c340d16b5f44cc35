import { once } from 'node:events';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { FakeAuthServer, startFakeAuthServer } from './fake-auth-server';
import { freePort } from './free-port';
import { redisCommand, RedisServer, RespError, startRedisServer } from './redis-server';
import { MIN_SILENCE_MS, TestClient, takeContractViolations } from './ws-client';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One POST over a fresh connection (no keep-alive), with a client-side timeout. */
function post(url: string, body: string, timeoutMs = 2_000): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const check = (url: string, token: string): Promise<Reply> =>
  post(url, JSON.stringify({ type: 'CHECK_TOKEN', authToken: token }));

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
    await new Promise((resolve) => setTimeout(resolve, 50));
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
    await new Promise((resolve) => setTimeout(resolve, 50));
    await fake.setMode('down');
    await expect(pending).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('starts in the requested mode and closes while down or with slow answers pending', async () => {
    const down = await startFakeAuthServer({ mode: 'down' });
    await expect(check(down.url, 'alice-token')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await down.close();

    const slow = await startFakeAuthServer({ mode: 'slow', delayMs: 60_000 });
    const pending = check(slow.url, 'alice-token');
    await new Promise((resolve) => setTimeout(resolve, 50));
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

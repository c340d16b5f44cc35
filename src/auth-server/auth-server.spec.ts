import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { BUNDLED_ALICE as ALICE } from '../../test/support/factories';
import { loadUsers } from '../demo-users/users';
import { AuthServerHandle, MAX_BODY_BYTES, startAuthServer } from './auth-server';
import { ConfigError, readConfig } from './main';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request, for what fetch cannot send (bad bytes, lying Content-Length, sockets). */
function raw(
  url: string,
  opts: { method?: string; headers?: Record<string, string | number>; body?: Buffer | string; agent?: Agent },
): Promise<RawResponse & { localPort: number | undefined }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { method: opts.method ?? 'POST', headers: opts.headers, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolvePromise({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          localPort: res.socket?.localPort,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function checkToken(url: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('auth server over HTTP', () => {
  let server: AuthServerHandle;

  beforeAll(async () => {
    server = await startAuthServer({ users: loadUsers() });
  });
  afterAll(() => server.close());

  it('listens on a free loopback port', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
  });

  it('answers SUCCESS with the seven profile fields for a known token', async () => {
    const res = await checkToken(server.url, { type: 'CHECK_TOKEN', authToken: 'alice-token' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ type: 'CHECK_TOKEN', status: 'SUCCESS', serverData: ALICE });
  });

  it('ignores extra request fields and serves any path', async () => {
    const res = await checkToken(`${server.url}check?x=1`, {
      type: 'CHECK_TOKEN',
      authToken: 'carol-token',
      messageType: 'whatever',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { serverData: Record<string, string> };
    expect(body.serverData.userId).toBe('3');
    expect(body.serverData.status).toBe('Привет!');
  });

  it.each(['nobody-token', '', 'alice-token\u0000'])('answers ERROR "1" for the unknown token %j', async (token) => {
    const res = await checkToken(server.url, { type: 'CHECK_TOKEN', authToken: token });
    expect(res.status).toBe(200);
    const body: unknown = await res.json();
    expect(body).toEqual({ type: 'CHECK_TOKEN', status: 'ERROR', error: { errorCode: '1', message: 'token not found' } });
  });

  it.each<[string, string]>([
    ['not JSON', '{"type":"CHECK_TOKEN",'],
    ['an empty body', ''],
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['a JSON string', '"alice-token"'],
    ['no authToken', '{"type":"CHECK_TOKEN"}'],
    ['a numeric authToken', '{"type":"CHECK_TOKEN","authToken":1}'],
    ['no type', '{"authToken":"alice-token"}'],
    ['another type', '{"type":"AUTH_MESSAGE","authToken":"alice-token"}'],
  ])('answers 400 to %s', async (_name, body) => {
    const res = await checkToken(server.url, body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { status: string; error: { errorCode: string; message: string } };
    expect(json.status).toBe('ERROR');
    expect(json.error.errorCode).toBe('BAD_REQUEST');
    expect(json.error.message).not.toContain('alice-token');
  });

  it('answers 400 to a body that is not UTF-8', async () => {
    const body = Buffer.concat([Buffer.from('{"type":"CHECK_TOKEN","authToken":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const res = await raw(server.url, { headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ status: 'ERROR', error: { errorCode: 'BAD_REQUEST', message: 'body is not valid UTF-8' } });
  });

  it('accepts a missing Content-Type but answers 415 to a non-JSON one', async () => {
    const body = JSON.stringify({ type: 'CHECK_TOKEN', authToken: 'bob-token' });
    expect((await raw(server.url, { body })).status).toBe(200);
    const res = await raw(server.url, { headers: { 'content-type': 'text/plain' }, body });
    expect(res.status).toBe(415);
    expect(res.headers.connection).toBe('close');
  });

  it.each(['GET', 'PUT', 'DELETE', 'PATCH'])('answers 405 with Allow: POST to %s', async (method) => {
    const res = await fetch(server.url, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(((await res.json()) as { error: { errorCode: string } }).error.errorCode).toBe('METHOD_NOT_ALLOWED');
  });

  it.each(['/health', '/health/live', '/health/ready'])('answers GET %s with 200', async (path) => {
    const res = await fetch(new URL(path, server.url));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
    const head = await fetch(new URL(path, server.url), { method: 'HEAD' });
    expect(head.status).toBe(200);
    const post = await fetch(new URL(path, server.url), { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers 413 to a body over 64 KiB and keeps the connection usable', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = JSON.stringify({ type: 'CHECK_TOKEN', authToken: 'x'.repeat(MAX_BODY_BYTES) });
      const first = await raw(server.url, { headers: { 'content-type': 'application/json' }, body: big, agent });
      expect(first.status).toBe(413);
      expect(JSON.parse(first.body)).toMatchObject({ error: { errorCode: 'PAYLOAD_TOO_LARGE' } });
      const body = JSON.stringify({ type: 'CHECK_TOKEN', authToken: 'dave-token' });
      const second = await raw(server.url, { headers: { 'content-type': 'application/json' }, body, agent });
      expect(second.status).toBe(200);
      expect(second.localPort).toBe(first.localPort);
    } finally {
      agent.destroy();
    }
  });

  it('answers 413 at once to a declared Content-Length far over the limit, and closes', async () => {
    const res = await raw(server.url, {
      headers: { 'content-type': 'application/json', 'content-length': 50 * 1024 * 1024 },
      body: '{}',
    }).catch((err: Error) => err);
    // The server answers before the body: the client either reads the 413 or sees the close.
    if (!(res instanceof Error)) {
      expect(res.status).toBe(413);
      expect(res.headers.connection).toBe('close');
    }
  });

  it('accepts a body of exactly 64 KiB', async () => {
    const prefix = '{"type":"CHECK_TOKEN","authToken":"';
    const suffix = '"}';
    const body = prefix + 'y'.repeat(MAX_BODY_BYTES - prefix.length - suffix.length) + suffix;
    expect(Buffer.byteLength(body)).toBe(MAX_BODY_BYTES);
    const res = await checkToken(server.url, body);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('ERROR');
  });

  it('keeps connections alive between requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const body = JSON.stringify({ type: 'CHECK_TOKEN', authToken: 'bob-token' });
      const ports: (number | undefined)[] = [];
      for (let i = 0; i < 3; i += 1) {
        const res = await raw(server.url, { headers: { 'content-type': 'application/json' }, body, agent });
        expect(res.status).toBe(200);
        expect(res.headers.connection).toBe('keep-alive');
        ports.push(res.localPort);
      }
      expect(new Set(ports).size).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('counts CHECK_TOKEN requests, not health checks or other methods', async () => {
    const before = server.requests;
    await checkToken(server.url, { type: 'CHECK_TOKEN', authToken: 'alice-token' });
    await checkToken(server.url, { type: 'CHECK_TOKEN', authToken: 'nobody' });
    await checkToken(server.url, 'garbage');
    await fetch(new URL('/health', server.url));
    await fetch(server.url);
    expect(server.requests - before).toBe(3);
  });

  it('answers concurrent requests', async () => {
    const tokens = ['alice-token', 'bob-token', 'carol-token', 'dave-token', 'nobody'];
    const bodies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        checkToken(server.url, { type: 'CHECK_TOKEN', authToken: tokens[i % tokens.length] }).then(
          (r) => r.json() as Promise<{ serverData?: { userId: string } }>,
        ),
      ),
    );
    expect(bodies.map((b) => b.serverData?.userId)).toEqual(
      Array.from({ length: 50 }, (_, i) => ['1', '2', '3', '4', undefined][i % 5]),
    );
  });
});

describe('auth server options and lifecycle', () => {
  it('serves CHECK_TOKEN only at opts.path when given', async () => {
    const server = await startAuthServer({ users: loadUsers(), path: '/check' });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${server.port}/check`);
      const body = { type: 'CHECK_TOKEN', authToken: 'alice-token' };
      expect((await checkToken(server.url, body)).status).toBe(200);
      expect((await checkToken(`${server.url}?q=1`, body)).status).toBe(200);
      expect((await checkToken(new URL('/', server.url).href, body)).status).toBe(404);
      expect((await fetch(new URL('/health', server.url))).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('refuses a path without a leading slash', async () => {
    await expect(startAuthServer({ users: [], path: 'check' })).rejects.toThrow('must start with "/"');
  });

  it('rejects when the port is taken', async () => {
    const first = await startAuthServer({ users: [] });
    try {
      await expect(startAuthServer({ users: [], port: first.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });

  it('closes promptly with idle keep-alive connections open, and close is idempotent', async () => {
    const server = await startAuthServer({ users: loadUsers() });
    const agent = new Agent({ keepAlive: true });
    try {
      const body = JSON.stringify({ type: 'CHECK_TOKEN', authToken: 'alice-token' });
      await raw(server.url, { body, agent });
      const started = Date.now();
      await Promise.all([server.close(), server.close()]);
      expect(Date.now() - started).toBeLessThan(1000);
      await expect(fetch(server.url, { method: 'POST', body })).rejects.toThrow();
    } finally {
      agent.destroy();
    }
  });
});

describe('main', () => {
  it('reads its configuration from the environment', () => {
    expect(readConfig({})).toEqual({ port: 8081, host: '127.0.0.1', usersFile: undefined });
    expect(readConfig({ AUTH_PORT: '9000', AUTH_HOST: '0.0.0.0', USERS_FILE: '/etc/users.json' })).toEqual({
      port: 9000,
      host: '0.0.0.0',
      usersFile: '/etc/users.json',
    });
    expect(readConfig({ AUTH_PORT: ' ', AUTH_HOST: '', USERS_FILE: '' })).toEqual({
      port: 8081,
      host: '127.0.0.1',
      usersFile: undefined,
    });
    for (const bad of ['-1', '65536', '80a', '1e3', '8080.5']) {
      expect(() => readConfig({ AUTH_PORT: bad })).toThrow(ConfigError);
    }
  });

  it('runs as a CLI: logs its URL without tokens, serves, stops on SIGTERM', async () => {
    const entry = resolve(__dirname, 'main.ts');
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', entry], {
      cwd: resolve(__dirname, '../..'),
      env: { ...process.env, AUTH_PORT: '0', AUTH_HOST: '127.0.0.1', USERS_FILE: '', TS_NODE_TRANSPILE_ONLY: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    child.stderr.on('data', (c: Buffer) => output.push(c.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      const lines = createInterface({ input: child.stdout });
      const first = await new Promise<string>((done, fail) => {
        lines.once('line', done);
        child.once('exit', () => fail(new Error(`auth server exited early: ${output.join('')}`)));
      });
      const started = JSON.parse(first) as { msg: string; url: string; users: number; level: string };
      expect(started).toMatchObject({ level: 'info', msg: 'auth server listening', users: 4 });
      const res = await checkToken(started.url, { type: 'CHECK_TOKEN', authToken: 'bob-token' });
      expect(((await res.json()) as { serverData: { userId: string } }).serverData.userId).toBe('2');
      const rest: string[] = [];
      lines.on('line', (l) => rest.push(l));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const all = [first, ...rest, ...output].join('\n');
      expect(all).not.toMatch(/-token/);
      expect(rest.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['auth server stopped']);
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);

  it('exits 1 with a clear message when the users file is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'auth-main-'));
    try {
      const file = join(dir, 'users.json');
      writeFileSync(file, JSON.stringify([{ token: 'secret-xyz', profile: {} }]));
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', resolve(__dirname, 'main.ts')], {
        cwd: resolve(__dirname, '../..'),
        env: { ...process.env, AUTH_PORT: '0', USERS_FILE: file },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
      expect(code).toBe(1);
      const line = JSON.parse(stderr.trim()) as { level: string; msg: string; error: string };
      expect(line).toMatchObject({ level: 'error', msg: 'auth server failed to start' });
      expect(line.error).toBe(`invalid users file (${file}): entry [0]: "profile.userId" is missing`);
      expect(stderr).not.toContain('secret-xyz');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

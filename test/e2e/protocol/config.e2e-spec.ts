/**
 * docs/protocol.md "Configuration (environment)": the defaults of the table, a bad value stopping the
 * start with a message that names the variable, NODE_ENV=production requiring AUTH_SERVER_URL,
 * and WS_PATH.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config/gateway-config';
import { ENGINES } from '../../support/deployment';
import { startGateway } from '../../support/gateway';
import { TestClient } from '../../support/ws-client';
import { ID, protocolScope, T } from './harness';

jest.setTimeout(30_000);

const ROOT = join(__dirname, '..', '..', '..');

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('configuration: loadConfig', () => {
  it('defaults match the protocol\'s table', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      wsPath: '/ws',
      publicUrl: 'http://localhost:8080',
      authTimeoutMs: 3000,
      authDeadlineMs: 10_000,
      authCacheTtlMs: 30_000,
      authBreakerThreshold: 5,
      authBreakerCooldownMs: 5000,
      allowQueryToken: false,
      chatMaxLength: 4096,
      dialogMaxBytes: 16_384,
      dedupWindowMs: 600_000,
      deliveryTimeoutMs: 5000,
      avatarMaxBytes: 1_048_576,
      avatarDir: './data/avatars',
      maxFrameBytes: Math.ceil(1_048_576 / 3) * 4 + 65_536,
      heartbeatIntervalMs: 25_000,
      rateLimitPerSec: 50,
      rateLimitBurst: 100,
      sendBufferMaxBytes: 1_048_576,
      maxConnections: 10_000,
      presenceTtlMs: 15_000,
      shutdownDrainMs: 10_000,
    });
    expect(config.authServerUrl).toBeUndefined();
    expect(config.allowedOrigins).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.production).toBe(false);
  });

  it('derived defaults follow their inputs: PUBLIC_URL from PORT, MAX_FRAME_BYTES from AVATAR_MAX_BYTES', () => {
    expect(loadConfig({ PORT: '9001' }).publicUrl).toBe('http://localhost:9001');
    expect(loadConfig({ AVATAR_MAX_BYTES: '3000' }).maxFrameBytes).toBe(1000 * 4 + 65_536);
    expect(loadConfig({ AVATAR_MAX_BYTES: '3001' }).maxFrameBytes).toBe(1001 * 4 + 65_536);
    expect(loadConfig({ MAX_FRAME_BYTES: '5000', AVATAR_MAX_BYTES: '3000' }).maxFrameBytes).toBe(5000);
    expect(loadConfig({ PUBLIC_URL: 'https://chat.example.com/' }).publicUrl).toBe('https://chat.example.com');
  });

  it('reads the documented variables', () => {
    const config = loadConfig({
      PORT: '1234',
      WS_PATH: '/chat',
      AUTH_SERVER_URL: 'http://auth.internal:9000/check',
      ALLOW_QUERY_TOKEN: 'true',
      ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080',
      CHAT_MAX_LENGTH: '10',
      DIALOG_MAX_BYTES: '100',
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
    expect(config).toMatchObject({ port: 1234, wsPath: '/chat', authServerUrl: 'http://auth.internal:9000/check', allowQueryToken: true, chatMaxLength: 10, dialogMaxBytes: 100, redisUrl: 'redis://127.0.0.1:6379' });
    expect([...config.allowedOrigins!]).toEqual(['https://a.example', 'http://b.example:8080']);
  });

  it.each<[string, string]>([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['WS_PATH', 'ws'],
    ['PUBLIC_URL', 'not a url'],
    ['PUBLIC_URL', 'ftp://files.example.com'],
    ['AUTH_SERVER_URL', 'localhost:9000'],
    ['AUTH_TIMEOUT_MS', '0'],
    ['AUTH_TIMEOUT_MS', 'soon'],
    ['AUTH_DEADLINE_MS', '-5'],
    ['AUTH_CACHE_TTL_MS', 'x'],
    ['AUTH_BREAKER_THRESHOLD', '0'],
    ['AUTH_BREAKER_COOLDOWN_MS', '1.5'],
    ['ALLOW_QUERY_TOKEN', 'maybe'],
    ['ALLOWED_ORIGINS', 'https://a.example/'],
    ['CHAT_MAX_LENGTH', '0'],
    ['DIALOG_MAX_BYTES', 'big'],
    ['DEDUP_WINDOW_MS', '-1'],
    ['DELIVERY_TIMEOUT_MS', '0'],
    ['AVATAR_MAX_BYTES', '0'],
    ['MAX_FRAME_BYTES', '10'],
    ['HEARTBEAT_INTERVAL_MS', '1'],
    ['RATE_LIMIT_PER_SEC', '0'],
    ['RATE_LIMIT_BURST', 'many'],
    ['SEND_BUFFER_MAX_BYTES', '1'],
    ['MAX_CONNECTIONS', '0'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['PRESENCE_TTL_MS', '10'],
    ['SHUTDOWN_DRAIN_MS', 'later'],
    ['NODE_ENV', 'staging'],
  ])('%s=%j is refused with a message naming the variable', (name, value) => {
    expect(configError({ [name]: value }).message).toContain(name);
  });

  it('names every bad variable at once', () => {
    const message = configError({ PORT: 'abc', CHAT_MAX_LENGTH: '0', REDIS_URL: 'nope' }).message;
    expect(message).toContain('PORT');
    expect(message).toContain('CHAT_MAX_LENGTH');
    expect(message).toContain('REDIS_URL');
  });

  it('NODE_ENV=production without AUTH_SERVER_URL refuses to start, saying why', () => {
    const message = configError({ NODE_ENV: 'production' }).message;
    expect(message).toContain('AUTH_SERVER_URL');
    expect(message).toMatch(/production/);
    expect(loadConfig({ NODE_ENV: 'production', AUTH_SERVER_URL: 'http://auth:9000/' }).production).toBe(true);
  });

  it('the test harness start (the real app factory) refuses a bad value too', async () => {
    // (An explicit AVATAR_DIR, never created: startGateway makes a temporary one otherwise.)
    const AVATAR_DIR = join(tmpdir(), 'gw-config-test-never-created');
    await expect(startGateway({ AVATAR_DIR, CHAT_MAX_LENGTH: 'lots' })).rejects.toThrow(/CHAT_MAX_LENGTH/);
    await expect(startGateway({ AVATAR_DIR, NODE_ENV: 'production' })).rejects.toThrow(/AUTH_SERVER_URL/);
  });
});

describe('configuration: the real process', () => {
  // ts-node startup is slow on a loaded machine: a generous timeout.
  it('node src/main.ts with PORT=abc exits with code 1 and names PORT on stderr', async () => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'production', AUTH_SERVER_URL: 'http://127.0.0.1:9/', PORT: 'abc' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT/);
    expect(stderr).toContain('"abc"');
    expect(stdout).not.toMatch(/listening/);
  }, 60_000);
});

describe.each(ENGINES)('configuration: WS_PATH (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());

  it('WS_PATH=/chat serves the WebSocket there, and /ws gets no upgrade', async () => {
    const dep = await scope.deployment(engine, { WS_PATH: '/chat' });
    expect(new URL(dep.wsUrl(0)).pathname).toBe('/chat');
    const { auth } = await scope.loginWithAuth(dep.wsUrl(0), T.alice);
    expect(auth.serverData.userId).toBe(ID.alice);
    const wrong = dep.wsUrl(1).replace(/\/chat$/, '/ws');
    await expect(TestClient.connect(wrong, { token: T.bob })).rejects.toThrow();
    const other = dep.wsUrl(1).replace(/\/chat$/, '/chat/more');
    await expect(TestClient.connect(other, { token: T.bob })).rejects.toThrow();
    // bob can still log in on the right path.
    const { auth: bobAuth } = await scope.loginWithAuth(dep.wsUrl(1), T.bob);
    expect(bobAuth.serverData.userId).toBe(ID.bob);
  });

  it('the default path is /ws', async () => {
    const dep = await scope.deployment(engine);
    expect(new URL(dep.wsUrl(0)).pathname).toBe('/ws');
    await expect(TestClient.connect(dep.wsUrl(0).replace(/\/ws$/, '/'), { token: T.alice })).rejects.toThrow();
    expect((await scope.loginWithAuth(dep.wsUrl(0), T.alice)).auth.status).toBe('SUCCESS');
  });
});

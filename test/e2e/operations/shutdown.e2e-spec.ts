/**
 * Graceful shutdown of the real process (src/main.ts, run with ts-node): on SIGTERM readiness
 * turns 503 and new upgrades get 503 at once, connected clients are closed with 1001 spread over
 * SHUTDOWN_DRAIN_MS, the others get their DISCONNECTs, and the process exits 0 within the window
 * plus 5 s. Its stdout, in production, is JSON lines.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AuthServerHandle } from '../../../src/auth-server/auth-server';
import { startClusterDeployment } from '../../support/cluster';
import { makeUsers } from '../../support/factories';
import { isConnect, isDisconnect } from '../../support/frames';
import { freePort } from '../../support/free-port';
import { gatewayProcessEnv } from '../../support/gateway';
import { httpGet, tryUpgrade } from '../../support/http';
import { jsonLines, logLines } from '../../support/logs';
import { Scope } from '../../support/scope';
import { eventually } from '../../support/time';
import { closedWithin, received, type TestClient } from '../../support/ws-client';

jest.setTimeout(40_000);

const DRAIN_MS = 1500;
const ROOT = resolve(__dirname, '../../..');
const users = makeUsers('sd1', 'sd2', 'sd3', 'sd4');

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

describe('graceful shutdown (SIGTERM)', () => {
  const scope = new Scope({ users });
  let auth: AuthServerHandle;
  let avatarDir: string;
  /** The clients of the three users, in their order. */
  const clients: TestClient[] = [];

  beforeAll(async () => {
    auth = await scope.authServer();
    avatarDir = mkdtempSync(join(tmpdir(), 'gw-shutdown-'));
  });

  afterAll(async () => {
    await scope.closeAll();
    rmSync(avatarDir, { recursive: true, force: true });
  });

  it('turns unready, refuses upgrades, closes clients with 1001 spread over SHUTDOWN_DRAIN_MS and exits 0', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const wsUrl = `ws://127.0.0.1:${port}/ws`;
    const proc = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
      cwd: ROOT,
      env: gatewayProcessEnv(port, {
        NODE_ENV: 'production',
        AUTH_SERVER_URL: auth.url,
        AVATAR_DIR: avatarDir,
        SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
        TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'),
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    scope.track({ close: () => void (proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL')) }, 'app');
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<Exit>((done) => proc.once('exit', (code, signal) => done({ code, signal, at: Date.now() })));

    // Ready, unless the process exits first (then at once, with its stderr).
    const exitedEarly = exited.then((exit) => Promise.reject(new Error(`gateway exited early (${exit.code}): ${stderr}`)));
    await Promise.race([eventually(async () => (await httpGet(`${base}/health/ready`)).status === 200, 25_000, 'the gateway to be ready'), exitedEarly]);

    const closedAt = new Map<string, { code: number; at: number }>();
    for (const u of users.slice(0, 3)) {
      const c = await scope.login(wsUrl, u.token);
      clients.push(c);
      void c.closed.then((info) => closedAt.set(u.profile.userId, { code: info.code, at: Date.now() }));
    }
    await clients[0].next((f) => f.type === 'USER_CONNECTION_MESSAGE' && f.serverData.userId === users[2].profile.userId);

    const sigtermAt = Date.now();
    proc.kill('SIGTERM');

    // Readiness 503 at once (allowing for signal delivery).
    await eventually(async () => (await httpGet(`${base}/health/ready`)).status === 503, 1000, 'readiness 503');
    // Well before the first drain step is over (the drain closes a client every 500 ms).
    expect(Date.now() - sigtermAt).toBeLessThan(1000);
    expect((await httpGet(`${base}/health/live`)).status).toBe(200);
    // New upgrades are refused at the HTTP level, before any token check.
    const requestsBefore = auth.requests;
    expect((await tryUpgrade(wsUrl, { authToken: users[3].token })).status).toBe(503);
    expect(auth.requests).toBe(requestsBefore);

    const exit = await exited;
    expect(exit.code).toBe(0);
    expect(exit.signal).toBeNull();
    expect(exit.at - sigtermAt).toBeLessThan(DRAIN_MS + 5000);

    // Every client was closed with 1001, not all at once: spread over the window.
    await eventually(() => closedAt.size === 3, 2000, 'all clients closed');
    const closes = [...closedAt.values()];
    for (const c of closes) expect(c.code).toBe(1001);
    const times = closes.map((c) => c.at).sort((a, b) => a - b);
    expect(times[2] - times[0]).toBeGreaterThanOrEqual(DRAIN_MS / 2);
    expect(times[2] - sigtermAt).toBeLessThanOrEqual(DRAIN_MS + 1000);

    // The clients still connected saw the DISCONNECTs of those closed before them.
    const order = [...closedAt.entries()].sort((a, b) => a[1].at - b[1].at).map(([userId]) => userId);
    const last = clients[users.findIndex((u) => u.profile.userId === order[2])];
    for (const gone of order.slice(0, 2)) expect(last.frames.some(isDisconnect(gone))).toBe(true);

    // Production logs: every stdout line is a JSON object with time, level and msg.
    const lines = jsonLines(stdout);
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) {
      expect(typeof line.time).toBe('string');
      expect(Number.isNaN(Date.parse(line.time as string))).toBe(false);
      expect(typeof line.level).toBe('string');
      expect(typeof line.msg).toBe('string');
    }
    expect(logLines(stdout).some((l) => l.includes('SIGTERM'))).toBe(true);
    expect(stdout + stderr).not.toMatch(/unhandled rejection/i);
    for (const u of users) expect(stdout + stderr).not.toContain(u.token);
    expect(stderr.trim()).toBe('');
  });
});

describe('graceful shutdown of a cluster node (SIGTERM)', () => {
  const scope = new Scope();
  afterEach(() => scope.closeAll());

  it('the DISCONNECTs of its clients reach the clients of the other nodes during the drain, not after PRESENCE_TTL_MS', async () => {
    const TTL_MS = 30_000;
    // Node 0 in this process; the node under test as a child process (the real SIGTERM handling).
    const dep = scope.track(await startClusterDeployment({ PRESENCE_TTL_MS: String(TTL_MS) }, { nodes: 1 }), 'app');
    const node = await dep.addProcessNode({ SHUTDOWN_DRAIN_MS: String(DRAIN_MS) });
    const observer = await scope.login(dep.wsUrl(0), 'alice-token');
    const leaving = [await scope.login(node.wsUrl, 'bob-token'), await scope.login(node.wsUrl, 'carol-token')];
    await received(observer, [isConnect('2'), isConnect('3')], 4000, 'the CONNECTs from the other node');

    const sigtermAt = Date.now();
    await node.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    for (const client of leaving) expect((await client.closed).code).toBe(1001);
    // Sent by the draining node itself: the lease would only expire after PRESENCE_TTL_MS.
    await received(observer, [isDisconnect('2'), isDisconnect('3')], 3000, 'the DISCONNECTs of the drained node');
    expect(Date.now() - sigtermAt).toBeLessThan(TTL_MS / 2);
    expect(observer.frames.filter((f) => f.type === 'USER_CONNECTION_MESSAGE' && f.serverData.connectionStatus === 'DISCONNECT')).toEqual([
      { type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'DISCONNECT', userId: expect.stringMatching(/^[23]$/) } },
      { type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'DISCONNECT', userId: expect.stringMatching(/^[23]$/) } },
    ]);
    expect(observer.closeInfo).toBeUndefined();
  }, 90_000);
});

/**
 * app.close() on its own (an in-process app, or a process whose drain did not finish): ws keeps no
 * client set here (clientTracking is off), so the adapter's close drops what the gateway holds.
 */
describe('app.close() without a drain', () => {
  const scope = new Scope({ users, ownAuthServer: true });
  afterAll(() => scope.closeAll());

  it('drops every socket still open, logged in or still without a token, and resolves at once', async () => {
    const gw = await scope.gateway();
    const joined = await scope.login(gw.wsUrl, users[0].token);
    const tokenless = await scope.connect(gw.wsUrl);
    const started = Date.now();
    await scope.stop(gw);
    expect(Date.now() - started).toBeLessThan(3000);
    for (const client of [joined, tokenless]) expect((await closedWithin(client, 2000)).code).toBe(1006);
  });
});

/**
 * Shared pieces of the operations e2e suite (test/e2e/operations): a scope that owns every
 * server, app and client a test starts and closes them all, distinctive test users, plain HTTP
 * GETs, raw upgrades (to read a refusal's HTTP status) and a small Prometheus text parser.
 */
import { request as httpRequest } from 'node:http';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import WebSocket from 'ws';
import type { DemoUser } from '../../../src/demo-users/users';
import { startAuthServer, type AuthServerHandle } from '../../../src/auth-server/auth-server';
import { startFakeAuthServer, type FakeAuthOptions, type FakeAuthServer } from '../../support/fake-auth-server';
import { startGateway, type TestGateway } from '../../support/gateway';
import { TestClient, eventually, type ConnectOptions, type Frame } from '../../support/ws-client';

/** A user of the test authorization servers, with an id, nickname and token unlikely to occur by chance. */
export function makeUser(tag: string): DemoUser {
  return {
    token: `tok-${tag}-Zq9Xv7Lm`,
    profile: {
      userId: `uid-${tag}-7hK2pQ`,
      nickname: `nick-${tag}-Wr4sT`,
      avatar: '',
      language: 'en',
      status: `status of ${tag}`,
      lastOnline: '2025-02-01T10:00:00.000Z',
      registerDate: '2024-12-24T18:00:00.000Z',
    },
  };
}

export function makeUsers(...tags: string[]): DemoUser[] {
  return tags.map(makeUser);
}

/** Owns what a test starts; `closeAll` (in afterEach/afterAll) closes clients first, then apps, then servers. */
export class Scope {
  private readonly clients: { close(): Promise<void> | void }[] = [];
  private readonly gateways: TestGateway[] = [];
  private readonly servers: { close(): Promise<void> }[] = [];

  /**
   * Starts the real app. nestjs-pino keeps one process-wide "out of context" pino logger, created
   * by the first app of the process (of the jest test file): later apps would log through it,
   * into the first app's `logs` and with its level and format. Resetting it first gives each app
   * its own logger (the suite runs one app at a time per file).
   */
  async gateway(env: Record<string, string> = {}): Promise<TestGateway> {
    __resetOutOfContextForTests();
    const gw = await startGateway(env);
    this.gateways.push(gw);
    return gw;
  }

  async fakeAuth(options: FakeAuthOptions = {}): Promise<FakeAuthServer> {
    const server = await startFakeAuthServer(options);
    this.servers.push(server);
    return server;
  }

  async authServer(users: readonly DemoUser[]): Promise<AuthServerHandle> {
    const server = await startAuthServer({ users });
    this.servers.push(server);
    return server;
  }

  track<T extends { close(): Promise<void> | void }>(client: T): T {
    this.clients.push(client);
    return client;
  }

  async connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    return this.track(await TestClient.connect(url, options));
  }

  async login(url: string, token: string, options: ConnectOptions = {}): Promise<TestClient> {
    // Tracked before the AUTH wait so that a failed login is still closed.
    const client = this.track(await TestClient.connect(url, { token, ...options }));
    const auth = await client.nextOfType('AUTH_MESSAGE');
    if (auth.status !== 'SUCCESS') throw new Error(`login failed: ${JSON.stringify(auth)}`);
    return client;
  }

  /** Connects with a token and returns the client with its (first) AUTH_MESSAGE, whatever it says. */
  async attempt(url: string, token: string, options: ConnectOptions = {}): Promise<{ client: TestClient; auth: Frame }> {
    const client = this.track(await TestClient.connect(url, { token, ...options }));
    const auth = await client.nextOfType('AUTH_MESSAGE', 6000);
    return { client, auth };
  }

  async closeAll(): Promise<void> {
    const clients = this.clients.splice(0);
    await Promise.all(clients.map((c) => Promise.resolve(c.close()).catch(() => undefined)));
    const gateways = this.gateways.splice(0);
    await Promise.all(gateways.map((g) => g.close().catch(() => undefined)));
    const servers = this.servers.splice(0);
    await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  }
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain GET without keep-alive (so nothing holds the app open). */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'GET', headers: { Connection: 'close', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.end();
  });
}

export interface UpgradeOutcome {
  /** 101 when the upgrade succeeded, else the HTTP status of the refusal. */
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Attempts a WebSocket upgrade and reports how it ended at the HTTP level. A successful upgrade
 * is closed at once (without waiting for any AUTH_MESSAGE).
 */
export function tryUpgrade(url: string, headers: Record<string, string> = {}): Promise<UpgradeOutcome> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers });
        socket.terminate();
      });
    });
    socket.once('open', () => {
      resolve({ status: 101, body: '', headers: {} });
      socket.terminate();
    });
    socket.once('error', (err) => reject(err));
  });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition format (the subset prom-client writes). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l: RegExpExecArray | null;
      while ((l = re.exec(m[2])) !== null) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of one series (labels must match exactly those given, others ignored); 0 when absent. */
export function metricValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) {
      total += s.value;
      found = true;
    }
  }
  return found ? total : 0;
}

export async function scrape(gw: TestGateway): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  const res = await httpGet(`${gw.httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return { text: res.body, samples: parseMetrics(res.body), contentType: String(res.headers['content-type']) };
}

export const chat = (message: string): Frame => ({ type: 'CHAT_MESSAGE', serverData: { message } });

/** Resolves with the close info of a client, or rejects after `ms`. */
export async function closedWithin(client: TestClient, ms: number): Promise<{ code: number; reason: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      client.closed,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not closed within ${ms} ms (frames: ${JSON.stringify(client.frames.slice(-5))})`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const isDisconnectOf = (userId: string) => (f: Frame) =>
  f.type === 'USER_CONNECTION_MESSAGE' && f.serverData?.connectionStatus === 'DISCONNECT' && f.serverData?.userId === userId;

export const isConnectOf = (userId: string) => (f: Frame) =>
  f.type === 'USER_CONNECTION_MESSAGE' && f.serverData?.connectionStatus === 'CONNECT' && f.serverData?.userId === userId;

/** Waits until the client has received (at any position, read or not) a frame matching `match`. */
export async function received(client: TestClient, match: (f: Frame) => boolean, timeoutMs = 4000, what = 'a matching frame'): Promise<Frame> {
  let found: Frame | undefined;
  await eventually(() => (found = client.frames.find(match)) !== undefined, timeoutMs, what);
  return found!;
}

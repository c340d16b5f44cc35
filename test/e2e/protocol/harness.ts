/**
 * Shared pieces of the protocol e2e suite: a per-test scope that owns every server and client a
 * test starts (and closes them all in afterEach), the test users of the reference authorization
 * server, and small helpers for frames.
 *
 * Every test talks to a Deployment (test/support/deployment.ts) and spreads its users over
 * `dep.wsUrl(i)` so that, on a cluster, different users sit on different nodes.
 */
import { request as httpRequest } from 'node:http';
import { startAuthServer, type AuthServerHandle } from '../../../src/auth-server/auth-server';
import { loadUsers, type DemoUser } from '../../../src/demo-users/users';
import type { UserProfile } from '../../../src/protocol/protocol';
import { startDeployment, type Deployment, type EngineKind } from '../../support/deployment';
import { startFakeAuthServer, type FakeAuthOptions, type FakeAuthServer } from '../../support/fake-auth-server';
import { TestClient, type ConnectOptions, type Frame } from '../../support/ws-client';

/**
 * Bounds for the suite: far below the defaults, yet with room for a loaded machine (the reference
 * auth server runs in the test process, so a busy event loop delays its answers too). Tests about
 * a bound set it shorter themselves (SHORT_DEADLINE, SHORT_AUTH_TIMEOUT). A huge breaker threshold
 * keeps the fault tests independent of each other.
 */
export const FAST_ENV: Record<string, string> = {
  AUTH_DEADLINE_MS: '2000',
  AUTH_TIMEOUT_MS: '1500',
  DELIVERY_TIMEOUT_MS: '2000',
  AUTH_BREAKER_THRESHOLD: '1000000',
};

/** For the tests that wait for the auth deadline to pass. */
export const SHORT_DEADLINE = { AUTH_DEADLINE_MS: '500' };
/** For the tests that wait for a CHECK_TOKEN to time out. */
export const SHORT_AUTH_TIMEOUT = { AUTH_TIMEOUT_MS: '300' };

/** How long a test waits to be confident that something did NOT happen. */
export const QUIET_MS = 300;

export const PROFILE_KEYS = ['userId', 'nickname', 'avatar', 'language', 'status', 'lastOnline', 'registerDate'].sort();

function extraUser(userId: string, nickname: string, token: string, avatar = ''): DemoUser {
  return {
    token,
    profile: {
      userId,
      nickname,
      avatar,
      language: 'fr',
      status: `status of ${nickname} "quoted" \u2603`,
      lastOnline: '2025-02-01T10:00:00.000Z',
      registerDate: '2024-12-24T18:00:00.000Z',
    },
  };
}

/**
 * The users of the reference authorization server in these tests: the four bundled demo users
 * (alice-token -> "1" ... dave-token -> "4") and a few more. erin's token needs the base64url
 * alphabet's `-` and `_` when encoded; frank has an avatar at the authorization server.
 */
export const USERS: DemoUser[] = [
  ...loadUsers(),
  extraUser('5', 'erin', 'erin?>>~token\u00e9'),
  extraUser('6', 'frank', 'frank-token', 'https://auth.example.test/avatars/frank.png'),
  extraUser('7', 'grace', 'grace-token'),
  extraUser('8', 'heidi', 'heidi-token'),
];

export const T = {
  alice: 'alice-token',
  bob: 'bob-token',
  carol: 'carol-token',
  dave: 'dave-token',
  erin: 'erin?>>~token\u00e9',
  frank: 'frank-token',
  grace: 'grace-token',
  heidi: 'heidi-token',
} as const;

export const ID = { alice: '1', bob: '2', carol: '3', dave: '4', erin: '5', frank: '6', grace: '7', heidi: '8' } as const;

export function profileOf(userId: string, users: readonly DemoUser[] = USERS): UserProfile {
  const user = users.find((u) => u.profile.userId === userId);
  if (!user) throw new Error(`no test user ${userId}`);
  return { ...user.profile };
}

/** `authToken.<base64url, no padding>` */
export function tokenSubprotocol(token: string): string {
  return `authToken.${Buffer.from(token, 'utf8').toString('base64url')}`;
}

export interface LoggedIn {
  client: TestClient;
  /** The AUTH_MESSAGE SUCCESS frame. */
  auth: Frame;
}

/**
 * Everything one test starts. Create it at the top of a describe block; it registers an afterEach
 * that closes, in order, every client, every deployment and every authorization server.
 */
export class Scope {
  private clients: TestClient[] = [];
  private deployments: Deployment[] = [];
  private servers: { close(): Promise<void> }[] = [];

  constructor() {
    afterEach(() => this.closeAll());
  }

  /** The reference authorization server (src/auth-server) on a free port. */
  async authServer(users: readonly DemoUser[] = USERS): Promise<AuthServerHandle> {
    const server = await startAuthServer({ users, port: 0 });
    this.servers.push(server);
    return server;
  }

  /** The programmable CHECK_TOKEN server for fault cases. */
  async fakeAuthServer(options: FakeAuthOptions = {}): Promise<FakeAuthServer> {
    const server = await startFakeAuthServer({ users: USERS, ...options });
    this.servers.push(server);
    return server;
  }

  /** A deployment of `engine` with FAST_ENV + env; with no AUTH_SERVER_URL in env, a fresh reference auth server is started. */
  async deployment(engine: EngineKind, env: Record<string, string> = {}): Promise<Deployment> {
    const fullEnv = { ...FAST_ENV, ...env };
    if (fullEnv.AUTH_SERVER_URL === undefined) fullEnv.AUTH_SERVER_URL = (await this.authServer()).url;
    const dep = await startDeployment(engine, fullEnv);
    this.deployments.push(dep);
    return dep;
  }

  /** Closes a deployment now (for restart tests); closing it again later is harmless. */
  async stop(dep: Deployment): Promise<void> {
    this.deployments = this.deployments.filter((d) => d !== dep);
    await dep.close();
  }

  async connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    const client = await TestClient.connect(url, options);
    this.clients.push(client);
    return client;
  }

  /** Connects with a header token and waits for AUTH SUCCESS. */
  async login(url: string, token: string, options: ConnectOptions = {}): Promise<LoggedIn> {
    const client = await this.connect(url, { token, ...options });
    const auth = await client.nextOfType('AUTH_MESSAGE');
    if (auth.status !== 'SUCCESS') throw new Error(`login failed: ${JSON.stringify(auth)}`);
    return { client, auth };
  }

  /** Logs users in one after the other (each on its own node index), waiting until each earlier one saw the later CONNECTs. */
  async loginAll(dep: Deployment, tokens: string[]): Promise<TestClient[]> {
    const clients: TestClient[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const { client, auth } = await this.login(dep.wsUrl(i), tokens[i]);
      const userId = auth.serverData.userId as string;
      for (const earlier of clients) await earlier.next((f) => isConnect(f, userId));
      clients.push(client);
    }
    return clients;
  }

  async closeAll(): Promise<void> {
    const clients = this.clients;
    this.clients = [];
    await Promise.all(clients.map((c) => c.close().catch(() => c.terminate())));
    const deployments = this.deployments;
    this.deployments = [];
    for (const dep of deployments) await dep.close().catch(() => undefined);
    const servers = this.servers;
    this.servers = [];
    for (const server of servers) await server.close().catch(() => undefined);
  }
}

export function isConnect(f: Frame, userId?: string): boolean {
  return (
    f.type === 'USER_CONNECTION_MESSAGE' &&
    f.serverData?.connectionStatus === 'CONNECT' &&
    (userId === undefined || f.serverData.userId === userId)
  );
}

export function isDisconnect(f: Frame, userId?: string): boolean {
  return (
    f.type === 'USER_CONNECTION_MESSAGE' &&
    f.serverData?.connectionStatus === 'DISCONNECT' &&
    (userId === undefined || f.serverData.userId === userId)
  );
}

/** Waits for the AUTH_MESSAGE and the close that follows an auth error. */
export async function authFailure(client: TestClient): Promise<{ frame: Frame; code: number; reason: string }> {
  const frame = await client.nextOfType('AUTH_MESSAGE');
  const { code, reason } = await withTimeout(client.closed, 3000, 'close after AUTH error');
  return { frame, code, reason };
}

export function authError(errorCode: string): Frame {
  return { type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode, message: expect.any(String) } };
}

export function frameError(errorCode: string, requestType?: string): Frame {
  return {
    type: 'ERROR_MESSAGE',
    status: 'ERROR',
    error: { errorCode, message: expect.any(String) },
    ...(requestType === undefined ? {} : { requestType }),
  };
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** The chat round trip that shows a connection is still usable after something odd. */
export async function expectChatWorks(sender: TestClient, senderId: string, others: TestClient[] = [], text?: string): Promise<void> {
  const message = text ?? `still alive ${Math.random().toString(36).slice(2)}`;
  sender.send({ type: 'CHAT_MESSAGE', serverData: { message } });
  for (const c of [sender, ...others]) {
    const got = await c.next((f) => f.type === 'CHAT_MESSAGE' && f.serverData?.message === message);
    expect(got.serverData.sender).toBe(senderId);
  }
}

export interface RawHttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A GET with the path sent exactly as given (no client-side dot-segment normalization). */
export function rawGet(baseUrl: string, rawPath: string): Promise<RawHttpReply> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path: rawPath, method: 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

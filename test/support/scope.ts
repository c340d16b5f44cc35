/**
 * Scope: owns what a test (or a test file) starts and closes it all, in order: clients first (and
 * whatever else was tracked as a client: raw sockets, attacker processes), then apps (gateways,
 * deployments), then servers (authorization servers). A close that fails does not stop the others.
 *
 * The test decides when: create a scope where its owner is declared and close it when that owner
 * ends, in afterEach for what one test starts, in afterAll for what a whole file shares.
 *
 *   const scope = new Scope();
 *   afterEach(() => scope.closeAll());
 *
 *   const gw = await scope.gateway({ MAX_CONNECTIONS: '3' });
 *   const alice = await scope.login(gw.wsUrl, 'alice-token');
 *
 * Options give every gateway and deployment of the scope a base env and users of its own
 * authorization servers (test/e2e/protocol/harness.ts: protocolScope()).
 */
import type { AppOptions } from '../../src/app.module';
import { startAuthServer, type AuthServerHandle } from '../../src/auth-server/auth-server';
import { loadUsers, type DemoUser } from '../../src/demo-users/users';
import { startDeployment, type Deployment, type EngineKind } from './deployment';
import { startFakeAuthServer, type FakeAuthOptions, type FakeAuthServer } from './fake-auth-server';
import { isConnect } from './frames';
import { startGateway, type TestGateway } from './gateway';
import { TestClient, type ConnectOptions, type Frame } from './ws-client';

export interface Closeable {
  close(): Promise<void> | void;
}

/** When a tracked thing is closed: with the clients (first), the apps, or the servers (last). */
export type Tier = 'client' | 'app' | 'server';

export interface ScopeOptions {
  /** Env of every gateway and deployment, under the env given to each call. */
  env?: Record<string, string>;
  /** Users of the authorization servers the scope starts (default: the bundled demo users). */
  users?: readonly DemoUser[];
  /**
   * Gives every gateway and deployment started without AUTH_SERVER_URL a reference authorization
   * server of its own, with `users` (default: none, the app uses its built-in demo users).
   */
  ownAuthServer?: boolean;
}

export interface LoggedIn {
  client: TestClient;
  /** Its AUTH_MESSAGE SUCCESS frame. */
  auth: Frame;
}

/** What logs in one user per node index: a deployment, or anything with `wsUrl(i)`. */
export interface Nodes {
  wsUrl(i?: number): string;
}

export class Scope {
  private readonly tiers: Record<Tier, Closeable[]> = { client: [], app: [], server: [] };

  constructor(private readonly options: ScopeOptions = {}) {}

  /** The real app on a free port (test/support/gateway.ts). */
  async gateway(env: Record<string, string> = {}, options: Pick<AppOptions, 'imports'> = {}): Promise<TestGateway> {
    return this.track(await startGateway(await this.appEnv(env), options), 'app');
  }

  /** One node of `engine`, or a cluster of them (test/support/deployment.ts). */
  async deployment(engine: EngineKind, env: Record<string, string> = {}): Promise<Deployment> {
    return this.track(await startDeployment(engine, await this.appEnv(env)), 'app');
  }

  /** Closes a gateway or deployment now (for restart tests); closing it again later is harmless. */
  async stop(app: Closeable): Promise<void> {
    this.forget(app);
    await app.close();
  }

  /** The reference authorization server (src/auth-server) on a free port. */
  async authServer(users: readonly DemoUser[] = this.users()): Promise<AuthServerHandle> {
    return this.track(await startAuthServer({ users, port: 0 }), 'server');
  }

  /** The programmable CHECK_TOKEN server (test/support/fake-auth-server.ts) for fault cases. */
  async fakeAuthServer(options: FakeAuthOptions = {}): Promise<FakeAuthServer> {
    return this.track(await startFakeAuthServer({ users: this.users(), ...options }), 'server');
  }

  /** Takes `thing` into the scope: closed with the clients (default), the apps or the servers. */
  track<T extends Closeable>(thing: T, tier: Tier = 'client'): T {
    this.tiers[tier].push(thing);
    return thing;
  }

  async connect(url: string, options: ConnectOptions = {}): Promise<TestClient> {
    return this.track(await TestClient.connect(url, options));
  }

  /** Connects with a header token and its first AUTH_MESSAGE, whatever it says. */
  async attempt(url: string, token: string, options: ConnectOptions = {}, timeoutMs = 6000): Promise<LoggedIn> {
    // Tracked before the AUTH wait, so that a failed login is still closed.
    const client = await this.connect(url, { token, ...options });
    return { client, auth: await client.nextOfType('AUTH_MESSAGE', timeoutMs) };
  }

  /** Connects with a header token and waits for AUTH SUCCESS; the client and that frame. */
  async loginWithAuth(url: string, token: string, options: ConnectOptions = {}): Promise<LoggedIn> {
    const client = await this.connect(url, { token, ...options });
    const auth = await client.nextOfType('AUTH_MESSAGE');
    if (auth.status !== 'SUCCESS') throw new Error(`login failed: ${JSON.stringify(auth)}`);
    return { client, auth };
  }

  /** Connects with a header token and waits for AUTH SUCCESS. */
  async login(url: string, token: string, options: ConnectOptions = {}): Promise<TestClient> {
    return (await this.loginWithAuth(url, token, options)).client;
  }

  /**
   * Logs users in one after the other, the i-th on node i, waiting until each earlier one saw
   * the CONNECT of each later one.
   */
  async loginAll(nodes: Nodes, tokens: string[]): Promise<TestClient[]> {
    const clients: TestClient[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const { client, auth } = await this.loginWithAuth(nodes.wsUrl(i), tokens[i]);
      const userId = auth.serverData.userId as string;
      for (const earlier of clients) await earlier.next(isConnect(userId));
      clients.push(client);
    }
    return clients;
  }

  /** Closes everything, clients (at once) before apps before servers (one by one, newest first). */
  async closeAll(): Promise<void> {
    const clients = this.tiers.client.splice(0);
    await Promise.all(clients.map((c) => Promise.resolve().then(() => c.close()).catch(() => (c instanceof TestClient ? c.terminate() : undefined))));
    for (const tier of ['app', 'server'] as const) {
      for (const thing of this.tiers[tier].splice(0).reverse()) await Promise.resolve().then(() => thing.close()).catch(() => undefined);
    }
  }

  private users(): readonly DemoUser[] {
    return this.options.users ?? loadUsers();
  }

  private async appEnv(env: Record<string, string>): Promise<Record<string, string>> {
    const full = { ...this.options.env, ...env };
    if (this.options.ownAuthServer && full.AUTH_SERVER_URL === undefined) full.AUTH_SERVER_URL = (await this.authServer()).url;
    return full;
  }

  private forget(thing: Closeable): void {
    for (const list of Object.values(this.tiers)) {
      const i = list.indexOf(thing);
      if (i >= 0) list.splice(i, 1);
    }
  }
}

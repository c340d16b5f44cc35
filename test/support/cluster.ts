/**
 * Cluster deployments for the e2e tests: N gateway nodes on one real redis-server.
 *
 *   startClusterDeployment(env)      2 in-process nodes (the same app as main.ts, each with its own
 *                                     Nest container; they share nothing but Redis and the avatar
 *                                     directory), used by the protocol suite for E2E_ENGINES=redis
 *   startNodeProcess(env)            a node as a child process (for SIGKILL / SIGSTOP tests)
 *
 * Every node gets the same PUBLIC_URL (node 0's) and AVATAR_DIR, PRESENCE_TTL_MS=3000 unless
 * the env says otherwise.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ENGINE } from '../../src/engine/engine.module';
import { RedisEngine } from '../../src/engine/redis/redis-engine';
import { sharedAvatarDir, wrap, type Deployment } from './deployment';
import { freePort } from './free-port';
import { gatewayProcessEnv, startGateway, type TestGateway } from './gateway';
import { httpStatus } from './http';
import { startRedisServer, type RedisServer } from './redis-server';
import { eventually, sleep } from './time';

export const CLUSTER_PRESENCE_TTL_MS = 3000;

export interface ClusterDeployment extends Deployment {
  engine: 'redis';
  redis: RedisServer;
  /** The shared AVATAR_DIR. */
  avatarDir: string;
  /** The env every node got (REDIS_URL, PUBLIC_URL, AVATAR_DIR, PRESENCE_TTL_MS, ...). */
  env: Record<string, string>;
  /** Starts one more in-process node on the same Redis; it is closed with the deployment. */
  addNode(env?: Record<string, string>): Promise<TestGateway>;
  /** Starts a node as a child process on the same Redis; it is killed with the deployment. */
  addProcessNode(env?: Record<string, string>): Promise<NodeProcess>;
}

export interface ClusterOptions {
  /** In-process nodes to start (default 2). */
  nodes?: number;
  /** Wait for every node to be registered in Redis before returning (default true). */
  waitReady?: boolean;
}

/** The cluster engine inside an in-process node. */
export function engineOf(node: TestGateway): RedisEngine {
  const engine: unknown = node.app.get(ENGINE, { strict: false });
  if (!(engine instanceof RedisEngine)) throw new Error('not a cluster node: its engine is not a RedisEngine');
  return engine;
}

/** Resolves once the node's engine is connected and its presence registered (Redis reachable). */
export async function waitNodeReady(node: TestGateway, timeoutMs = 10_000): Promise<void> {
  const engine = engineOf(node);
  await eventually(() => engine.connection.connected && engine.presence.isRegistered, timeoutMs, `node ${node.port} to be ready`);
}

export async function startClusterDeployment(env: Record<string, string> = {}, options: ClusterOptions = {}): Promise<ClusterDeployment> {
  const redis = await startRedisServer();
  const shared = env.AVATAR_DIR ? undefined : sharedAvatarDir();
  const nodes: TestGateway[] = [];
  const processes: NodeProcess[] = [];
  try {
    // Node 0 takes env.PORT when given (PUBLIC_URL usually points at it).
    const ports = await Promise.all(Array.from({ length: options.nodes ?? 2 }, (_, i) => (i === 0 && env.PORT ? Number(env.PORT) : freePort())));
    const clusterEnv: Record<string, string> = {
      PRESENCE_TTL_MS: String(CLUSTER_PRESENCE_TTL_MS),
      PUBLIC_URL: `http://127.0.0.1:${ports[0]}`,
      ...env,
      AVATAR_DIR: env.AVATAR_DIR ?? shared!.dir,
      REDIS_URL: redis.url,
    };
    const addNode = async (extra: Record<string, string> = {}, port?: number): Promise<TestGateway> => {
      const node = await startGateway({ ...clusterEnv, ...extra, PORT: String(port ?? (await freePort())) });
      nodes.push(node);
      if (options.waitReady !== false) await waitNodeReady(node);
      return node;
    };
    for (const port of ports) await addNode({}, port);
    const deployment = wrap('redis', nodes, async () => {
      await Promise.all(processes.map((p) => p.kill('SIGKILL')));
      for (const node of [...nodes].reverse()) await node.close().catch(() => undefined);
      await redis.kill();
      shared?.remove();
    }) as ClusterDeployment;
    return Object.assign(deployment, {
      engine: 'redis' as const,
      redis,
      avatarDir: clusterEnv.AVATAR_DIR,
      env: clusterEnv,
      addNode: (extra?: Record<string, string>) => addNode(extra),
      addProcessNode: async (extra: Record<string, string> = {}) => {
        const child = await startNodeProcess({ ...clusterEnv, ...extra });
        processes.push(child);
        return child;
      },
    });
  } catch (err) {
    await Promise.all(processes.map((p) => p.kill('SIGKILL')));
    for (const node of nodes) await node.close().catch(() => undefined);
    await redis.kill();
    shared?.remove();
    throw err;
  }
}

// ---- Nodes as child processes ----

export interface NodeProcess {
  readonly pid: number;
  readonly port: number;
  readonly httpUrl: string;
  readonly wsUrl: string;
  /** stdout + stderr so far (tail). */
  output(): string;
  /** Sends a signal (SIGSTOP/SIGCONT return at once); SIGKILL/SIGTERM wait for the exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
  readonly exited: Promise<number | null>;
}

const ROOT = join(__dirname, '..', '..');
const live = new Set<ChildProcess>();
let exitHook = false;

/**
 * Starts `node -r ts-node/register/transpile-only src/main.ts` (the real entry point) with
 * `env` on a free port, and resolves once GET /health/live answers (not /ready: a node may be
 * started before Redis on purpose).
 */
export async function startNodeProcess(env: Record<string, string>, timeoutMs = 30_000): Promise<NodeProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: ROOT,
    env: gatewayProcessEnv(port, { NODE_ENV: 'test', LOG_LEVEL: 'warn', TS_NODE_TRANSPILE_ONLY: 'true', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  let out = '';
  const keep = (chunk: Buffer) => (out = (out + chunk.toString('utf8')).slice(-16_384));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => live.delete(child));
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const httpUrl = `http://127.0.0.1:${port}`;
  const handle: NodeProcess = {
    pid: child.pid ?? -1,
    port,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${port}${env.WS_PATH ?? '/ws'}`,
    output: () => out,
    exited,
    async kill(signal) {
      if (hasExited) return;
      child.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (hasExited) throw new Error(`gateway process exited before listening:\n${out}`);
    if ((await httpStatus(`${httpUrl}/health/live`)) === 200) return handle;
    if (Date.now() > deadline) {
      await handle.kill('SIGKILL');
      throw new Error(`gateway process not listening within ${timeoutMs} ms:\n${out}`);
    }
    await sleep(50);
  }
}

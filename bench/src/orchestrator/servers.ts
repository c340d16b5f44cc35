/**
 * Starting and stopping the servers under test: ours (one node, a cluster on Redis, or with events
 * on NATS), raw ws, Socket.IO (one node, or a cluster on Redis through @socket.io/redis-adapter).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { ClientKind } from '../common/messages';
import { options, type RunName, type ServerName } from '../cli/options';
import { SUITE } from '../plan';
import { freePort, kill, startNode, startProcess, tail, waitHttpOk, waitMessage, type Child } from '../procs';
import { startProdFlags } from './build';
import { GATEWAY_BUILD, HOOK, ROOT, RUN_TMP, script } from './paths';

export interface Server {
  name: RunName;
  nodes: Child[];
  urls: string[];
  kind: ClientKind;
  /** Other processes of the deployment (redis-server, nats-server): their CPU is recorded apart. */
  extra: Child[];
  /** What `extra` is, for the metric names: `<phase>.<extraName>CpuPct` (default 'redis'). */
  extraName?: string;
  /** The nats-server's monitoring URL (events scenario): /varz counts the messages it received. */
  natsMonitorUrl?: string;
  /** A client of the deployment's redis-server, for its INFO (CPU in µs, calls per command). */
  redisInfo?: Redis;
}

/** What a redis-server says of itself: CPU seconds (getrusage, µs resolution) and calls per command. */
export interface RedisStats {
  cpu: number;
  calls: Record<string, number>;
  /** Time spent in each command (µs, commandstats' usec: the command itself, not reading or writing sockets). */
  usec: Record<string, number>;
}

/**
 * INFO cpu and commandstats of the deployment's redis-server. Its /proc/<pid>/stat CPU moves in
 * 10 ms ticks, about as much as Redis spends on a whole broadcast phase; INFO's used_cpu_* is
 * the same getrusage figure to the microsecond. (The INFO call itself is counted too: ~0.1 ms.)
 */
export async function redisStats(client: Redis): Promise<RedisStats> {
  const text = await client.info('cpu', 'commandstats');
  const num = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
  const calls: Record<string, number> = {};
  const usec: Record<string, number> = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    calls[m[1]] = Number(m[2]);
    usec[m[1]] = Number(m[3]);
  }
  return { cpu: num('used_cpu_user') + num('used_cpu_sys'), calls, usec };
}

function redisInfoClient(port: number): Redis {
  return new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: true });
}

export const baseEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, LANG: process.env.LANG });

/** Limits out of the way of the measurement (see README), except in the hostile-clients scenario. */
const BENCH_LIMITS: Record<string, string> = {
  MAX_CONNECTIONS: '1000000',
  RATE_LIMIT_PER_SEC: '1000000',
  RATE_LIMIT_BURST: '1000000',
  HEARTBEAT_INTERVAL_MS: '3600000',
  // An AUTH SUCCESS at 10k online carries a ~1.7 MB userList: over the 1 MiB default.
  SEND_BUFFER_MAX_BYTES: String(256 * 1024 * 1024),
  AUTH_TIMEOUT_MS: '30000',
};

/** 'bench': the limits above; 'defaults': every limit at the gateway's own default (what an attacker meets in production). */
export type GatewayLimits = 'bench' | 'defaults';

function gatewayEnv(port: number, authUrl: string, extra: Record<string, string>, limits: GatewayLimits): NodeJS.ProcessEnv {
  return {
    ...baseEnv(),
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    AUTH_SERVER_URL: authUrl,
    LOG_LEVEL: 'warn',
    ...(limits === 'bench' ? BENCH_LIMITS : {}),
    SHUTDOWN_DRAIN_MS: '0',
    // The demo page (GET /) plays no part in the WebSocket traffic measured here.
    DEMO_PAGE: 'false',
    AVATAR_DIR: join(RUN_TMP, `avatars-${port}`),
    ...extra,
  };
}

export async function startGatewayNode(port: number, authUrl: string, extraEnv: Record<string, string>, tag: string, limits: GatewayLimits = 'bench'): Promise<Child> {
  const nodeArgs = [...startProdFlags(), '--expose-gc', '-r', HOOK, ...(options.profile ? ['--trace-gc'] : []), join(GATEWAY_BUILD, 'main.js')];
  const child = startNode(nodeArgs, { env: gatewayEnv(port, authUrl, extraEnv, limits), logFile: join(RUN_TMP, `${tag}.log`), needFds: SUITE.maxN + 2000, cwd: ROOT });
  if (!(await waitHttpOk(`http://127.0.0.1:${port}/health/ready`, 60_000, child))) {
    await kill(child);
    throw new Error(`the gateway did not become ready on port ${port}:\n${tail(child.logFile)}`);
  }
  return child;
}

export async function startServer(name: ServerName, authUrl: string, tag: string, limits: GatewayLimits = 'bench'): Promise<Server> {
  const port = await freePort();
  if (name === 'gateway') {
    const node = await startGatewayNode(port, authUrl, {}, tag, limits);
    return { name, nodes: [node], urls: [`ws://127.0.0.1:${port}/ws`], kind: 'ws', extra: [] };
  }
  const child = await startBaseline(name, port, tag, authUrl, {});
  const url = name === 'ws' ? `ws://127.0.0.1:${port}/ws` : `http://127.0.0.1:${port}`;
  return { name, nodes: [child], urls: [url], kind: name === 'ws' ? 'ws' : 'sio', extra: [] };
}

/** A baseline server process (raw ws or Socket.IO), ready to accept clients. */
async function startBaseline(name: 'ws' | 'sio', port: number, tag: string, authUrl: string, extraEnv: Record<string, string>): Promise<Child> {
  const file = script(`servers/${name === 'ws' ? 'raw-ws' : 'socketio'}`);
  const nodeArgs = ['--expose-gc', '-r', HOOK, ...(options.profile ? ['--trace-gc'] : []), file];
  // RAW_WS_* variables reach the raw baseline (experiments: RAW_WS_STRING=1, RAW_WS_BATCH=1).
  const variants = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('RAW_WS_')));
  const env = { ...baseEnv(), ...variants, NODE_ENV: 'production', PORT: String(port), AUTH_SERVER_URL: authUrl, ...extraEnv };
  const child = startNode(nodeArgs, { env, logFile: join(RUN_TMP, `${tag}.log`), needFds: SUITE.maxN + 2000, cwd: ROOT });
  try {
    await waitMessage(child, (m): m is { ready: true } => typeof m === 'object' && m !== null && 'ready' in m, 30_000, `${name} server start`);
  } catch (err) {
    await kill(child);
    throw err;
  }
  return child;
}

export async function stopServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  server.redisInfo?.disconnect();
  await Promise.all([...server.nodes, ...server.extra].map((c) => kill(c)));
}

async function startRedis(tag: string): Promise<Child & { port: number }> {
  const port = await freePort();
  const redis = startProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    logFile: join(RUN_TMP, `${tag}-redis.log`),
    cwd: RUN_TMP,
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (!redis.alive()) throw new Error(`redis-server exited:\n${tail(redis.logFile)}`);
    if (readFileSync(redis.logFile, 'utf8').includes('Ready to accept connections')) return Object.assign(redis, { port });
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('redis-server did not start within 10 s');
}

/** A fresh redis-server (no state left by the previous run: killed nodes leave their sessions behind) and two gateway nodes on it. */
export async function startCluster(authUrl: string, tag: string): Promise<Server> {
  const redis = await startRedis(tag);
  const redisUrl = `redis://127.0.0.1:${redis.port}`;
  const ports = [await freePort(), await freePort()];
  const nodes = await startNodes(ports.map((port, i) => () => startGatewayNode(port, authUrl, { REDIS_URL: redisUrl, NODE_LINK_HOST: '127.0.0.1' }, `${tag}-node${i}`)), redis);
  return { name: 'cluster', nodes, urls: ports.map((p) => `ws://127.0.0.1:${p}/ws`), kind: 'ws', extra: [redis], redisInfo: redisInfoClient(redis.port) };
}

/** Starts the nodes of a cluster in parallel; when one fails, stops the others and the redis-server, and throws. */
async function startNodes(starts: (() => Promise<Child>)[], redis: Child): Promise<Child[]> {
  const started = await Promise.allSettled(starts.map((start) => start()));
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all([...nodes, redis].map((n) => kill(n)));
    throw failed.reason;
  }
  return nodes;
}

/**
 * The Socket.IO baseline as a cluster (--cluster): a fresh redis-server and two Socket.IO servers
 * (bench/src/servers/socketio.ts with REDIS_URL: @socket.io/redis-adapter, presence and the
 * single-session rule in a Redis hash, cross-node dialogs answered by the receiver's node).
 */
export async function startSioCluster(authUrl: string, tag: string): Promise<Server> {
  const redis = await startRedis(tag);
  const redisUrl = `redis://127.0.0.1:${redis.port}`;
  const ports = [await freePort(), await freePort()];
  const nodes = await startNodes(ports.map((port, i) => () => startBaseline('sio', port, `${tag}-node${i}`, authUrl, { REDIS_URL: redisUrl })), redis);
  return { name: 'sio-cluster', nodes, urls: ports.map((p) => `http://127.0.0.1:${p}`), kind: 'sio', extra: [redis], redisInfo: redisInfoClient(redis.port) };
}

/** Debian's nats-server (NATS_SERVER_BIN to use another), as the tests use it. */
function natsBinary(): string {
  const candidates = [process.env.NATS_SERVER_BIN, '/usr/sbin/nats-server', '/usr/bin/nats-server'].filter((c): c is string => !!c);
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('nats-server not found (apt-get install nats-server, or set NATS_SERVER_BIN)');
  return found;
}

/** A fresh nats-server on free ports (client and monitoring), loopback only, core NATS (no JetStream). */
async function startNats(tag: string): Promise<{ nats: Child; url: string; monitorUrl: string }> {
  const [port, monitor] = [await freePort(), await freePort()];
  const nats = startProcess(natsBinary(), ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitor)], { logFile: join(RUN_TMP, `${tag}-nats.log`), cwd: RUN_TMP });
  const monitorUrl = `http://127.0.0.1:${monitor}`;
  if (!(await waitHttpOk(`${monitorUrl}/healthz`, 10_000, nats))) {
    await kill(nats);
    throw new Error(`nats-server did not start within 10 s:\n${tail(nats.logFile)}`);
  }
  return { nats, url: `nats://127.0.0.1:${port}`, monitorUrl };
}

/**
 * The events scenario (issue 12): our gateway with events on (EVENTS_NATS_URL, core NATS: the
 * default mode), publishing to a fresh nats-server of its own. Nothing subscribes: what the
 * gateway pays for an event does not depend on who listens; the server's /varz says how many
 * messages it received.
 */
export async function startEventsGateway(authUrl: string, tag: string): Promise<Server> {
  const { nats, url, monitorUrl } = await startNats(tag);
  const port = await freePort();
  try {
    const node = await startGatewayNode(port, authUrl, { EVENTS_NATS_URL: url }, tag);
    return { name: 'events', nodes: [node], urls: [`ws://127.0.0.1:${port}/ws`], kind: 'ws', extra: [nats], extraName: 'nats', natsMonitorUrl: monitorUrl };
  } catch (err) {
    await kill(nats);
    throw err;
  }
}

/** Messages the nats-server of the events scenario has received so far (its /varz in_msgs). */
export async function natsInMsgs(monitorUrl: string): Promise<number> {
  const res = await fetch(`${monitorUrl}/varz`);
  if (!res.ok) throw new Error(`nats /varz answered ${res.status}`);
  return ((await res.json()) as { in_msgs: number }).in_msgs;
}

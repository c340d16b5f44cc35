/**
 * The benchmark suite: our gateway (production build) against a raw `ws` baseline and a
 * Socket.IO 4 server, all three run one after another inside each repetition.
 *
 *   npm run bench                 full: 5 repetitions, N up to 10000, cluster scenario
 *   npm run bench -- --quick      quick: 1 repetition, N up to 1000 (< 3 minutes)
 *   npm run bench -- --profile    CPU profiles and GC traces of our gateway (see README)
 *
 * Options: --reps K, --max-n K, --from-n K, --servers gateway,ws,sio, --no-cluster, --no-build, --keep-logs,
 * --render <result.json> (write latest.md again from a result file).
 * Writes bench/results/<timestamp>.json and bench/results/latest.md; exits non-zero when a
 * message was lost or a scenario failed.
 */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type {
  BroadcastResult,
  ChurnResult,
  ClientKind,
  ConnectResult,
  DialogResult,
  IdleResult,
  LoadgenCommand,
  LoadgenReply,
} from './common/messages';
import { cpuSeconds, loadAverage, machineCpu, openFilesLimit, processCpu } from './common/proc';
import { generateUsers, writeUsersFile } from './common/users';
import { freePort, hook, kill, startNode, startProcess, tail, waitHttpOk, waitMessage, type Child } from './procs';
import { summarizeProfile, summarizeTraceGc } from './profile-summary';
import { renderMarkdown, type RunRecord, type SuiteResult } from './report';

// ------------------------------------------------------------------------------------ setup

const ROOT = findRoot();
const OUT = resolve(__dirname, '..', '..');
const GATEWAY_BUILD = join(ROOT, 'node_modules/.cache/chat-bench/gateway');
const RESULTS = join(ROOT, 'bench/results');
const TMP = join(RESULTS, 'tmp');
const HOOK = join(OUT, 'bench/src/servers/gc-hook.js');
const LOADGEN = join(OUT, 'bench/src/loadgen.js');

function findRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 10; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && existsSync(join(dir, 'bench')) && existsSync(join(dir, 'src'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const QUICK = flag('--quick');
const PROFILE = flag('--profile');
const REPS = Number(option('--reps') ?? (QUICK || PROFILE ? 1 : 5));
const SERVERS = (option('--servers') ?? (PROFILE ? 'gateway' : 'gateway,ws,sio')).split(',') as ServerName[];
const CLUSTER = !flag('--no-cluster') && !PROFILE;
const BUILD = !flag('--no-build');
const KEEP_LOGS = flag('--keep-logs') || PROFILE;

type ServerName = 'gateway' | 'ws' | 'sio';
const SERVER_LABEL: Record<ServerName | 'cluster', string> = { gateway: 'ours', ws: 'raw ws', sio: 'Socket.IO', cluster: 'ours, 2 nodes + Redis' };

/** The scenario plan: steps run in order on one server process, connections accumulating. */
type Step =
  | { kind: 'connect'; to: number; measure: boolean }
  | { kind: 'idle'; ms: number }
  | { kind: 'broadcast'; messages: number; window: number }
  | { kind: 'dialog'; rate: number; ms: number; warmupMs: number }
  | { kind: 'churn'; size: number; storms: number };

const BROADCAST_WINDOW = 4;
const msgsFor = (n: number, deliveries: number, min: number, max: number) => Math.max(min, Math.min(max, Math.round(deliveries / n)));

/** The N ≤ 1000 steps, shared by the quick and the full plan (which differ only in these sizes). */
function smallN(o: {
  deliveries100: number;
  deliveries1000: number;
  maxMessages: number;
  idleMs: number;
  dialogMs: number;
  warmupMs: number;
  churnSize: number;
  storms: number;
}): Step[] {
  return [
    { kind: 'connect', to: 100, measure: false },
    { kind: 'broadcast', messages: msgsFor(100, o.deliveries100, 20, o.maxMessages), window: BROADCAST_WINDOW },
    { kind: 'connect', to: 1000, measure: true },
    { kind: 'idle', ms: o.idleMs },
    { kind: 'broadcast', messages: msgsFor(1000, o.deliveries1000, 20, o.maxMessages), window: BROADCAST_WINDOW },
    { kind: 'dialog', rate: 1000, ms: o.dialogMs, warmupMs: o.warmupMs },
    { kind: 'dialog', rate: 5000, ms: o.dialogMs, warmupMs: o.warmupMs },
    { kind: 'churn', size: o.churnSize, storms: o.storms },
  ];
}

function plan(): Step[] {
  if (QUICK) {
    return smallN({ deliveries100: 60_000, deliveries1000: 100_000, maxMessages: 1000, idleMs: 1000, dialogMs: 3000, warmupMs: 500, churnSize: 50, storms: 2 });
  }
  if (PROFILE) {
    return [
      { kind: 'connect', to: 1000, measure: true },
      { kind: 'broadcast', messages: 1000, window: BROADCAST_WINDOW },
      { kind: 'dialog', rate: 5000, ms: 8000, warmupMs: 1000 },
    ];
  }
  return [
    ...smallN({ deliveries100: 300_000, deliveries1000: 1_000_000, maxMessages: 3000, idleMs: 2000, dialogMs: 10_000, warmupMs: 1000, churnSize: 100, storms: 5 }),
    { kind: 'connect', to: 5000, measure: false },
    { kind: 'broadcast', messages: msgsFor(5000, 1_500_000, 20, 3000), window: BROADCAST_WINDOW },
    { kind: 'connect', to: 10_000, measure: true },
    { kind: 'idle', ms: 2000 },
    { kind: 'broadcast', messages: msgsFor(10_000, 1_500_000, 20, 3000), window: BROADCAST_WINDOW },
    { kind: 'dialog', rate: 1000, ms: 10_000, warmupMs: 1000 },
    { kind: 'dialog', rate: 5000, ms: 10_000, warmupMs: 1000 },
  ];
}

function clusterPlan(): Step[] {
  const n = QUICK ? 500 : 2000;
  return [
    { kind: 'connect', to: n, measure: true },
    { kind: 'broadcast', messages: msgsFor(n, QUICK ? 100_000 : 1_000_000, 20, 2000), window: BROADCAST_WINDOW },
    { kind: 'dialog', rate: 1000, ms: QUICK ? 2000 : 10_000, warmupMs: 500 },
    ...(QUICK ? [] : [{ kind: 'dialog', rate: 5000, ms: 10_000, warmupMs: 1000 } as Step]),
  ];
}

/** --max-n K: the plan up to K connections (the steps after a larger connect are dropped). */
function capped(steps: Step[], maxN: number | undefined): Step[] {
  if (maxN === undefined) return steps;
  const i = steps.findIndex((s) => s.kind === 'connect' && s.to > maxN);
  return i < 0 ? steps : steps.slice(0, i);
}

/**
 * --from-n K: the plan from its first connect to K or more connections (the steps before it are
 * dropped), so that the large-N steps can be repeated without the small-N ones (run those with
 * --quick); that connect is then not measured, as it starts from zero.
 */
function from(steps: Step[], minN: number | undefined): Step[] {
  if (minN === undefined) return steps;
  const i = steps.findIndex((s) => s.kind === 'connect' && s.to >= minN);
  if (i < 0) throw new Error(`--from-n ${minN}: no step connects that many`);
  return steps.slice(i).map((s, j) => (j === 0 && s.kind === 'connect' ? { ...s, measure: false } : s));
}

const MAX_N_OPTION = option('--max-n') === undefined ? undefined : Number(option('--max-n'));
const FROM_N_OPTION = option('--from-n') === undefined ? undefined : Number(option('--from-n'));
const STEPS = from(capped(plan(), MAX_N_OPTION), FROM_N_OPTION);
const MAX_N = Math.max(...STEPS.map((s) => (s.kind === 'connect' ? s.to : 0)), ...(CLUSTER ? clusterPlan().map((s) => (s.kind === 'connect' ? s.to : 0)) : [0]));
const CHURN_SIZE = Math.max(0, ...STEPS.map((s) => (s.kind === 'churn' ? s.size : 0)));
const TOTAL_USERS = MAX_N + CHURN_SIZE;
const MODE = PROFILE ? 'profile' : QUICK ? 'quick' : FROM_N_OPTION !== undefined ? `full from N=${FROM_N_OPTION}` : 'full';
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');
const RUN_TMP = join(TMP, STAMP);

function log(line: string): void {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

// ------------------------------------------------------------------------------------ build

/** `nest build` of the gateway into a private directory (dist/ belongs to whoever builds it). */
function buildGateway(): { built: boolean; commit: string; dirty: boolean } {
  const stamp = join(GATEWAY_BUILD, '.bench-built');
  const newest = newestMtime(join(ROOT, 'src'));
  const fresh = existsSync(stamp) && statSync(stamp).mtimeMs >= newest;
  let built = false;
  if (BUILD && !fresh) {
    log('building the gateway: nest build -p bench/tsconfig.gateway.json');
    execSync('npx nest build -p bench/tsconfig.gateway.json', { cwd: ROOT, stdio: 'inherit' });
    writeFileSync(stamp, new Date().toISOString());
    built = true;
  } else if (!existsSync(join(GATEWAY_BUILD, 'main.js'))) {
    throw new Error('no gateway build: run without --no-build');
  } else {
    log('gateway build is up to date');
  }
  let commit = 'unknown';
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  } catch {
    // not a git checkout
  }
  return { built, commit, dirty };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Node flags of `start:prod` (e.g. GC settings), so the bench runs the gateway as production does.
 * BENCH_GATEWAY_NODE_FLAGS replaces them for an experiment (recorded in the results).
 */
function startProdFlags(): string[] {
  const override = process.env.BENCH_GATEWAY_NODE_FLAGS;
  if (override !== undefined) return override.trim().split(/\s+/).filter(Boolean);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const script = pkg.scripts?.['start:prod'] ?? '';
  const match = /\bnode((?:\s+-[^\s]+)*)\s+\S*main/.exec(script);
  return match ? match[1].trim().split(/\s+/).filter(Boolean) : [];
}

// ------------------------------------------------------------------------------------ servers

interface Server {
  name: ServerName | 'cluster';
  nodes: Child[];
  urls: string[];
  kind: ClientKind;
  extra: Child[];
}

const baseEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, LANG: process.env.LANG });

function gatewayEnv(port: number, authUrl: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...baseEnv(),
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    AUTH_SERVER_URL: authUrl,
    LOG_LEVEL: 'warn',
    // Limits out of the way of the measurement (see README):
    MAX_CONNECTIONS: '1000000',
    RATE_LIMIT_PER_SEC: '1000000',
    RATE_LIMIT_BURST: '1000000',
    HEARTBEAT_INTERVAL_MS: '3600000',
    // An AUTH SUCCESS at 10k online carries a ~1.7 MB userList: over the 1 MiB default.
    SEND_BUFFER_MAX_BYTES: String(256 * 1024 * 1024),
    AUTH_TIMEOUT_MS: '30000',
    SHUTDOWN_DRAIN_MS: '0',
    // The demo page (GET /) plays no part in the WebSocket traffic measured here.
    DEMO_PAGE: 'false',
    AVATAR_DIR: join(RUN_TMP, `avatars-${port}`),
    ...extra,
  };
}

async function startGatewayNode(port: number, authUrl: string, extraEnv: Record<string, string>, tag: string): Promise<Child> {
  const nodeArgs = [...startProdFlags(), '--expose-gc', '-r', HOOK, ...(PROFILE ? ['--trace-gc'] : []), join(GATEWAY_BUILD, 'main.js')];
  const child = startNode(nodeArgs, { env: gatewayEnv(port, authUrl, extraEnv), logFile: join(RUN_TMP, `${tag}.log`), needFds: MAX_N + 2000, cwd: ROOT });
  if (!(await waitHttpOk(`http://127.0.0.1:${port}/health/ready`, 60_000, child))) {
    await kill(child);
    throw new Error(`the gateway did not become ready on port ${port}:\n${tail(child.logFile)}`);
  }
  return child;
}

async function startServer(name: ServerName, authUrl: string, tag: string): Promise<Server> {
  const port = await freePort();
  if (name === 'gateway') {
    const node = await startGatewayNode(port, authUrl, {}, tag);
    return { name, nodes: [node], urls: [`ws://127.0.0.1:${port}/ws`], kind: 'ws', extra: [] };
  }
  const script = join(OUT, `bench/src/servers/${name === 'ws' ? 'raw-ws' : 'socketio'}.js`);
  const nodeArgs = ['--expose-gc', '-r', HOOK, ...(PROFILE ? ['--trace-gc'] : []), script];
  // RAW_WS_* variables reach the raw baseline (experiments: RAW_WS_STRING=1, RAW_WS_BATCH=1).
  const variants = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('RAW_WS_')));
  const env = { ...baseEnv(), ...variants, NODE_ENV: 'production', PORT: String(port), AUTH_SERVER_URL: authUrl };
  const child = startNode(nodeArgs, { env, logFile: join(RUN_TMP, `${tag}.log`), needFds: MAX_N + 2000, cwd: ROOT });
  await waitMessage(child, (m): m is { ready: true } => typeof m === 'object' && m !== null && 'ready' in m, 30_000, `${name} server start`);
  const url = name === 'ws' ? `ws://127.0.0.1:${port}/ws` : `http://127.0.0.1:${port}`;
  return { name, nodes: [child], urls: [url], kind: name === 'ws' ? 'ws' : 'sio', extra: [] };
}

async function stopServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  await Promise.all([...server.nodes, ...server.extra].map((c) => kill(c)));
}

// ------------------------------------------------------------------------------------ load generator

class Loadgen {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  onMark?: () => Promise<void>;

  constructor(readonly child: Child) {
    child.proc.on('message', (m: LoadgenReply | { mark: number } | { progress: string }) => {
      if ('progress' in m) {
        log(`  ${m.progress}`);
        return;
      }
      if ('mark' in m) {
        const ack = () => child.proc.send({ markAck: m.mark });
        (this.onMark ? this.onMark() : Promise.resolve()).then(ack, ack);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    child.proc.once('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`the load generator exited (log: ${child.logFile})\n${tail(child.logFile)}`));
      this.pending.clear();
    });
  }

  static start(tag: string): Loadgen {
    const child = startNode([LOADGEN], { env: baseEnv(), logFile: join(RUN_TMP, `${tag}-loadgen.log`), needFds: TOTAL_USERS + 1000, cwd: ROOT });
    return new Loadgen(child);
  }

  send<T>(command: LoadgenCommand, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`load generator: ${command.cmd} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolvePromise(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.proc.send({ ...command, id });
    });
  }

  async exit(): Promise<void> {
    await this.send({ cmd: 'exit' }, 10_000).catch(() => undefined);
    await kill(this.child, 'SIGTERM', 3000);
  }
}

// ------------------------------------------------------------------------------------ measuring

interface Snapshot {
  t: number;
  server: number;
  /** Kernel part of `server`. */
  serverSystem: number;
  loadgen: number;
  others: number;
  /** redis-server in cluster mode. */
  extra: number;
  machineBusy: number;
  gcCount: number;
  gcMs: number;
  gcMaxMs: number;
}

type GcStats = { count: number; totalMs: number; maxMs: number };

async function snapshot(server: Server, loadgen: Loadgen, others: Child[]): Promise<Snapshot> {
  const gcs = await Promise.all(server.nodes.map((n) => hook<{ gc: GcStats }>(n, { bench: 'gcstats' }).then((r) => r.gc).catch(() => ({ count: 0, totalMs: 0, maxMs: 0 }))));
  return {
    t: performance.now(),
    server: server.nodes.reduce((s, n) => s + cpuSeconds(n.pid), 0),
    serverSystem: server.nodes.reduce((s, n) => s + (processCpu(n.pid)?.system ?? 0), 0),
    loadgen: cpuSeconds(loadgen.child.pid),
    others: others.reduce((s, n) => s + cpuSeconds(n.pid), 0),
    extra: server.extra.reduce((s, n) => s + cpuSeconds(n.pid), 0),
    machineBusy: machineCpu().busy,
    gcCount: gcs.reduce((s, g) => s + g.count, 0),
    gcMs: gcs.reduce((s, g) => s + g.totalMs, 0),
    gcMaxMs: Math.max(...gcs.map((g) => g.maxMs)),
  };
}

interface Delta {
  seconds: number;
  serverCpu: number;
  serverSystemCpu: number;
  loadgenCpu: number;
  extraCpu: number;
  /** CPU (cores) used by processes that are not the bench's: the other engineers' load. */
  foreignCores: number;
  gcCount: number;
  gcMs: number;
}

function delta(a: Snapshot, b: Snapshot): Delta {
  const seconds = (b.t - a.t) / 1000;
  const ours = b.server - a.server + (b.loadgen - a.loadgen) + (b.others - a.others) + (b.extra - a.extra);
  return {
    seconds,
    serverCpu: b.server - a.server,
    serverSystemCpu: b.serverSystem - a.serverSystem,
    loadgenCpu: b.loadgen - a.loadgen,
    extraCpu: b.extra - a.extra,
    foreignCores: Math.max(0, (b.machineBusy - a.machineBusy - ours) / seconds),
    gcCount: b.gcCount - a.gcCount,
    gcMs: b.gcMs - a.gcMs,
  };
}

async function memory(server: Server): Promise<{ rss: number; heapUsed: number }> {
  const mems = await Promise.all(server.nodes.map((n) => hook<{ rss: number; heapUsed: number }>(n, { bench: 'mem' })));
  return { rss: mems.reduce((s, m) => s + m.rss, 0), heapUsed: mems.reduce((s, m) => s + m.heapUsed, 0) };
}

// ------------------------------------------------------------------------------------ one server, one repetition

interface RunContext {
  tokens: string[];
  authUrl: string;
  auth: Child;
}

async function runServer(name: ServerName | 'cluster', rep: number, ctx: RunContext, steps: Step[], serverFactory: () => Promise<Server>): Promise<RunRecord> {
  const tag = `rep${rep}-${name}`;
  const record: RunRecord = { rep, server: name, metrics: {}, phases: {}, failures: [], lost: 0 };
  let server: Server | undefined;
  let loadgen: Loadgen | undefined;
  const t0 = performance.now();
  try {
    server = await serverFactory();
    loadgen = Loadgen.start(tag);
    await loadgen.send({ cmd: 'init', init: { kind: server.kind, urls: server.urls, tokens: ctx.tokens, maxUsers: TOTAL_USERS } }, 10_000);
    const lg = loadgen;
    const srv = server;
    const others = [ctx.auth];
    const base = await memory(srv);
    record.metrics['base.rssMiB'] = base.rss / 2 ** 20;
    record.metrics['base.heapMiB'] = base.heapUsed / 2 ** 20;
    let online = 0;
    let profileSeq = 0;

    /** Runs one loadgen command with CPU snapshots around it (re-based at the loadgen's mark). */
    const measured = async <T>(command: LoadgenCommand, timeoutMs: number, phase: string): Promise<{ result: T; d: Delta }> => {
      let before = await snapshot(srv, lg, others);
      const profileFile = PROFILE ? join(RUN_TMP, `${name}-${++profileSeq}-${phase.replace(/[@/]/g, '_')}.cpuprofile`) : undefined;
      lg.onMark = async () => {
        before = await snapshot(srv, lg, others);
        if (profileFile) {
          await hook(srv.nodes[0], { bench: 'mark', text: `start ${phase}` });
          await hook(srv.nodes[0], { bench: 'profile-start', intervalUs: 100 });
        }
      };
      const result = await lg.send<T>(command, timeoutMs);
      lg.onMark = undefined;
      if (profileFile) {
        await hook(srv.nodes[0], { bench: 'profile-stop', file: profileFile }, 60_000);
        await hook(srv.nodes[0], { bench: 'mark', text: `end ${phase}` });
      }
      const after = await snapshot(srv, lg, others);
      return { result, d: delta(before, after) };
    };

    const check = (phase: string, r: { failures: string[]; lost?: number }) => {
      const lost = r.lost ?? 0;
      record.lost += lost;
      for (const f of r.failures) record.failures.push(`${phase}: ${f}`);
      if (lost > 0) record.failures.push(`${phase}: ${lost} lost messages`);
    };

    const context = (key: string, d: Delta) => {
      record.metrics[`${key}.loadgenCpuPct`] = (d.loadgenCpu / d.seconds) * 100;
      record.metrics[`${key}.serverCpuPct`] = (d.serverCpu / d.seconds) * 100;
      record.metrics[`${key}.serverKernelPct`] = d.serverCpu > 0 ? (d.serverSystemCpu / d.serverCpu) * 100 : NaN;
      record.metrics[`${key}.foreignCores`] = d.foreignCores;
      record.metrics[`${key}.gcMs`] = d.gcMs;
      if (srv.extra.length) record.metrics[`${key}.redisCpuPct`] = (d.extraCpu / d.seconds) * 100;
    };

    for (const step of steps) {
      switch (step.kind) {
        case 'connect': {
          const from = online;
          const key = `connect@${from}-${step.to}`;
          // Bounded by the work: every login sends a CONNECT to everyone online (N²/2 frames in all).
          const frames = (step.to * step.to - from * from) / 2;
          const timeoutMs = Math.min(3_600_000, 60_000 + 40 * (step.to - from) + frames * 0.1);
          log(`${tag}: connecting ${from} -> ${step.to}`);
          const { result, d } = await measured<ConnectResult>({ cmd: 'connect', from, to: step.to, concurrency: 100, timeoutMs }, timeoutMs + 30_000, key);
          record.phases[key] = { ...result, ...d };
          check(key, result);
          if (result.connected !== step.to - from) throw new Error(`${key}: only ${result.connected} of ${step.to - from} connections authenticated: ${result.failures.slice(0, 3).join('; ')}`);
          online = step.to;
          if (step.measure) {
            record.metrics[`${key}.connPerSec`] = result.rate;
            record.metrics[`${key}.cpuPerConnUs`] = (d.serverCpu / result.connected) * 1e6;
            record.metrics[`${key}.settleSec`] = d.seconds;
            context(key, d);
          }
          break;
        }
        case 'idle': {
          const key = `idle@${online}`;
          const { result, d } = await measured<IdleResult>({ cmd: 'idle', durationMs: step.ms }, step.ms + 10_000, key);
          const mem = await memory(srv);
          record.phases[key] = { ...result, ...d, rss: mem.rss, heapUsed: mem.heapUsed };
          record.metrics[`${key}.rssPerConnKiB`] = (mem.rss - base.rss) / online / 1024;
          record.metrics[`${key}.heapPerConnKiB`] = (mem.heapUsed - base.heapUsed) / online / 1024;
          record.metrics[`${key}.rssMiB`] = mem.rss / 2 ** 20;
          record.metrics[`${key}.cpuPct`] = (d.serverCpu / d.seconds) * 100;
          if (result.unexpectedFrames > 0 || result.closed > 0) record.failures.push(`${key}: ${result.unexpectedFrames} frames and ${result.closed} closes while idle`);
          break;
        }
        case 'broadcast': {
          const key = `broadcast@${online}`;
          log(`${tag}: broadcast to ${online}: ${step.messages} messages, ${step.window} in flight`);
          const { result, d } = await measured<BroadcastResult>({ cmd: 'broadcast', messages: step.messages, window: step.window, timeoutMs: 180_000 }, 400_000, key);
          record.phases[key] = { ...result, ...d };
          check(key, result);
          record.metrics[`${key}.deliveredPerSec`] = result.deliveredPerSec;
          record.metrics[`${key}.cpuPerMsgUs`] = (d.serverCpu / result.delivered) * 1e6;
          record.metrics[`${key}.fanoutP50Ms`] = result.fanoutP50Ms;
          record.metrics[`${key}.fanoutP99Ms`] = result.fanoutP99Ms;
          context(key, d);
          break;
        }
        case 'dialog': {
          const key = `dialog@${online}/${step.rate}`;
          log(`${tag}: dialogs among ${online} at ${step.rate}/s for ${step.ms} ms`);
          const command: LoadgenCommand = { cmd: 'dialog', rate: step.rate, durationMs: step.ms, warmupMs: step.warmupMs, drainMs: 15_000, seed: 1000 + rep };
          const { result, d } = await measured<DialogResult>(command, step.ms + step.warmupMs + 60_000, key);
          record.phases[key] = { ...result, ...d };
          check(key, result);
          if (result.deliveryErrors > 0) record.failures.push(`${key}: ${result.deliveryErrors} DELIVERY ERROR (reported as not delivered)`);
          const roundTrips = Math.max(1, result.measured);
          record.metrics[`${key}.p50Ms`] = result.p50Ms;
          record.metrics[`${key}.p99Ms`] = result.p99Ms;
          record.metrics[`${key}.maxMs`] = result.maxMs;
          record.metrics[`${key}.cpuPerRtUs`] = (d.serverCpu / roundTrips) * 1e6;
          record.metrics[`${key}.sentPerSec`] = result.sentPerSec;
          context(key, d);
          break;
        }
        case 'churn': {
          const key = `churn@${online}`;
          log(`${tag}: presence churn with ${online} online: ${step.storms} storms of ${step.size}`);
          const command: LoadgenCommand = { cmd: 'churn', from: MAX_N, size: step.size, storms: step.storms, concurrency: 100, timeoutMs: 60_000 };
          const { result, d } = await measured<ChurnResult>(command, step.storms * 130_000, key);
          record.phases[key] = { ...result, ...d };
          check(key, result);
          record.metrics[`${key}.eventsPerSec`] = result.eventsPerSec;
          record.metrics[`${key}.cpuPerCycleUs`] = (d.serverCpu / (step.size * step.storms)) * 1e6;
          context(key, d);
          break;
        }
      }
    }
  } catch (err) {
    record.failures.push(`aborted: ${err instanceof Error ? err.message : String(err)}`);
    record.aborted = true;
  } finally {
    await stopServer(server);
    await loadgen?.exit();
  }
  record.seconds = (performance.now() - t0) / 1000;
  log(`${tag}: done in ${record.seconds.toFixed(1)} s${record.failures.length ? `, ${record.failures.length} failures` : ''}${record.lost ? `, ${record.lost} LOST` : ''}`);
  for (const f of record.failures.slice(0, 5)) log(`  ${f}`);
  return record;
}

// ------------------------------------------------------------------------------------ cluster

async function startRedis(tag: string): Promise<Child> {
  const port = await freePort();
  const redis = startProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    logFile: join(RUN_TMP, `${tag}-redis.log`),
    cwd: RUN_TMP,
  });
  (redis as Child & { port?: number }).port = port;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (!redis.alive()) throw new Error(`redis-server exited:\n${tail(redis.logFile)}`);
    if (readFileSync(redis.logFile, 'utf8').includes('Ready to accept connections')) return redis;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('redis-server did not start within 10 s');
}

/** A fresh redis-server (no state left by the previous run: killed nodes leave their sessions behind) and two gateway nodes on it. */
async function startCluster(ctx: RunContext, tag: string): Promise<Server> {
  const redis = await startRedis(tag);
  const redisUrl = `redis://127.0.0.1:${(redis as Child & { port?: number }).port}`;
  const ports = [await freePort(), await freePort()];
  const started = await Promise.allSettled(
    ports.map((port, i) => startGatewayNode(port, ctx.authUrl, { REDIS_URL: redisUrl }, `${tag}-node${i}`)),
  );
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all([...nodes, redis].map((n) => kill(n)));
    throw failed.reason;
  }
  return { name: 'cluster', nodes, urls: ports.map((p) => `ws://127.0.0.1:${p}/ws`), kind: 'ws', extra: [redis] };
}

/** Two users on two nodes: do they see each other, does a CHAT and a DIALOG cross? */
async function probeCluster(ctx: RunContext): Promise<string | undefined> {
  let server: Server | undefined;
  let loadgen: Loadgen | undefined;
  try {
    server = await startCluster(ctx, 'cluster-probe');
    loadgen = Loadgen.start('cluster-probe');
    await loadgen.send({ cmd: 'init', init: { kind: 'ws', urls: server.urls, tokens: ctx.tokens, maxUsers: TOTAL_USERS } }, 10_000);
    const c = await loadgen.send<ConnectResult>({ cmd: 'connect', from: 0, to: 4, concurrency: 1, timeoutMs: 8000 }, 30_000);
    if (c.connected !== 4) return `logins on two nodes failed: ${c.failures.slice(0, 2).join('; ')}`;
    if (c.failures.length) return `users on one node do not see the users of the other (presence across nodes): ${c.failures[0]}`;
    const b = await loadgen.send<BroadcastResult>({ cmd: 'broadcast', messages: 5, window: 1, timeoutMs: 5000 }, 30_000);
    if (b.lost > 0) return `CHAT does not cross nodes (${b.lost} of ${b.expected + 20} deliveries missing)`;
    const d = await loadgen.send<DialogResult>({ cmd: 'dialog', rate: 20, durationMs: 1000, warmupMs: 0, drainMs: 8000, seed: 7 }, 30_000);
    if (d.deliveryErrors > 0 || d.lost > 0) return `DIALOG across nodes fails (${d.deliveryErrors} DELIVERY ERROR, ${d.lost} lost of ${d.sent})`;
    return undefined;
  } catch (err) {
    return `cluster start or probe failed: ${(err instanceof Error ? err.message : String(err)).split('\n').slice(0, 6).join(' | ')}`;
  } finally {
    await stopServer(server);
    await loadgen?.exit();
  }
}

// ------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const started = performance.now();
  mkdirSync(RUN_TMP, { recursive: true });
  log(`mode: ${MODE}, ${REPS} repetition(s), servers: ${SERVERS.join(', ')}, max N ${MAX_N}`);
  const limits = openFilesLimit();
  log(`open files limit: soft ${limits.soft}, hard ${limits.hard} (needed ~${TOTAL_USERS + 2000} per process)`);
  const git = buildGateway();

  const users = generateUsers(TOTAL_USERS);
  const usersFile = join(RUN_TMP, 'users.json');
  writeUsersFile(usersFile, users);
  const auth = startNode([join(OUT, 'bench/src/servers/auth.js')], { env: { ...baseEnv(), USERS_FILE: usersFile }, logFile: join(RUN_TMP, 'auth.log'), needFds: TOTAL_USERS + 2000, cwd: ROOT });
  const { url: authUrl } = await waitMessage(auth, (m): m is { ready: true; url: string } => typeof m === 'object' && m !== null && 'url' in m, 30_000, 'auth server start');
  const ctx: RunContext = { tokens: users.map((u) => u.token), authUrl, auth };
  const loadStart = loadAverage();
  const machineStart = machineCpu();

  const runs: RunRecord[] = [];
  let clusterNote: string | undefined;
  try {
    for (let rep = 0; rep < REPS; rep++) {
      // Rotate the order so that no server always runs first (or last) in a repetition.
      const order = SERVERS.map((_, i) => SERVERS[(i + rep) % SERVERS.length]);
      for (const name of order) {
        runs.push(await runServer(name, rep, ctx, STEPS, () => startServer(name, authUrl, `rep${rep}-${name}`)));
      }
    }
    if (CLUSTER) {
      log('cluster: probing two gateway nodes on one Redis');
      clusterNote = await probeCluster(ctx);
      if (clusterNote) {
        log(`cluster: SKIPPED: ${clusterNote}`);
      } else {
        for (let rep = 0; rep < REPS; rep++) {
          runs.push(await runServer('cluster', rep, ctx, capped(clusterPlan(), MAX_N_OPTION), () => startCluster(ctx, `rep${rep}-cluster`)));
        }
      }
    }
  } finally {
    await kill(auth, 'SIGTERM', 3000);
  }

  const machineEnd = machineCpu();
  const elapsed = (performance.now() - started) / 1000;
  const result: SuiteResult = {
    date: new Date().toISOString(),
    mode: MODE,
    reps: REPS,
    servers: SERVERS,
    labels: SERVER_LABEL,
    plan: STEPS,
    clusterPlan: CLUSTER ? capped(clusterPlan(), MAX_N_OPTION) : [],
    clusterNote,
    rawVariants: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('RAW_WS_'))) as Record<string, string>,
    gateway: { commit: git.commit, srcDirty: git.dirty, startProdFlags: startProdFlags(), flagsOverridden: process.env.BENCH_GATEWAY_NODE_FLAGS !== undefined, build: 'nest build -p bench/tsconfig.gateway.json' },
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      loadAvgStart: loadStart,
      loadAvgEnd: loadAverage(),
      /** Average busy cores over the whole run, bench included. */
      busyCores: (machineEnd.busy - machineStart.busy) / elapsed,
    },
    seconds: elapsed,
    runs,
  };
  mkdirSync(RESULTS, { recursive: true });
  const jsonFile = join(RESULTS, `${STAMP}${PROFILE ? '-profile' : ''}.json`);
  writeFileSync(jsonFile, JSON.stringify(result, null, 2));
  if (PROFILE) {
    const md = profileReport();
    writeFileSync(join(RESULTS, 'profile-latest.md'), md);
    log(`profile summary: bench/results/profile-latest.md (profiles in ${RUN_TMP})`);
  } else {
    const md = renderMarkdown(result);
    writeFileSync(join(RESULTS, 'latest.md'), md);
    process.stdout.write(`\n${md}\n`);
  }
  log(`results: ${jsonFile}`);
  if (!KEEP_LOGS) rmSync(RUN_TMP, { recursive: true, force: true });

  const lost = runs.reduce((s, r) => s + r.lost, 0);
  const failed = runs.filter((r) => r.failures.length > 0);
  log(`done in ${elapsed.toFixed(0)} s: ${lost} lost messages, ${failed.length} of ${runs.length} runs with failures`);
  if (lost > 0 || failed.length > 0) process.exitCode = 1;
}

function profileReport(): string {
  const parts: string[] = [`# CPU profiles and GC traces: ${SERVERS.map((s) => SERVER_LABEL[s]).join(', ')} (${new Date().toISOString()})`, ''];
  for (const file of readdirSync(RUN_TMP).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    parts.push(`## ${file}`, '', summarizeProfile(join(RUN_TMP, file)), '');
  }
  for (const file of readdirSync(RUN_TMP).filter((f) => f.endsWith('.log') && !f.includes('loadgen') && f !== 'auth.log')) {
    const gc = summarizeTraceGc(join(RUN_TMP, file));
    if (gc) parts.push(`## --trace-gc: ${file}`, '', gc, '');
  }
  return parts.join('\n');
}

/** --render <result.json>: writes bench/results/latest.md again from a result file. */
function render(file: string): void {
  const result = JSON.parse(readFileSync(file, 'utf8')) as SuiteResult;
  const md = renderMarkdown(result);
  writeFileSync(join(RESULTS, 'latest.md'), md);
  process.stdout.write(md);
}

const RENDER = option('--render');
(RENDER ? Promise.resolve(render(RENDER)) : main()).catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

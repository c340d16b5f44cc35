/**
 * The capacity mode (issue 13 item 3; `npm run bench -- --capacity`, see bench/README.md): one
 * node of our gateway (the bench's production build, flags and limits, memory engine) filled with
 * idle authenticated connections up to --capacity-n (19,000: the open-file limit of a process is
 * 20,000 here), then raw ws up to --capacity-raw-n (10,000) in the same run for the RSS ratio.
 *
 * The clients come from several load generators (each a process of its own, under its own
 * open-file limit), each from its own loopback source address (127.0.0.2, 127.0.0.3, ...): user i
 * belongs to load generator i mod K. The fill goes through checkpoints; at each one presence must
 * have settled (every client knows exactly the users online), then memory after a forced GC, and
 * at the probe points the login cost at that N (sequential logins of extra users: the size of
 * their AUTH SUCCESS and the server CPU per login and per logout). At the end, CHAT broadcasts
 * timed from the send to the first and to the last of all the clients.
 *
 * Writes bench/results/<stamp>-capacity.json and bench/results/latest-capacity.md.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { capacityOptions, type CapacityOptions } from '../cli/capacity-options';
import type { ServerName } from '../cli/options';
import type { CapChatResult, CapOpenResult, CapProbeResult, CapSettleResult } from '../common/capacity-messages';
import { cpuSeconds, loadAverage, machineCpu, openFilesLimit, processCpu } from '../common/proc';
import { generateUsers, writeUsersFile } from '../common/users';
import { hook, kill, startNode, waitMessage, type Child } from '../procs';
import { summarizeProfile } from '../profile-summary';
import { renderCapacity, type CapacityResult, type CapacityRun, type Checkpoint, type Segment } from '../report/capacity';
import { buildGateway, startProdFlags } from './build';
import { Loadgen } from './loadgen-client';
import { memory } from './measure';
import { RESULTS, ROOT, RUN_TMP, STAMP, log, script } from './paths';
import { baseEnv, startServer, stopServer, type Server } from './servers';

/** Where the fill stops to check presence and read memory (capped at the target; the target is always one). */
const CHECKPOINTS = [1000, 5000, 10_000, 14_000];
/** Checkpoints where the login cost is probed (plus the target). */
const PROBE_POINTS = new Set([1000, 5000, 10_000]);

/** Write system calls (write, writev, sendmsg...) a process made so far: syscw of /proc/<pid>/io. */
function writeCalls(pid: number): number {
  try {
    const match = /^syscw:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

interface Snap {
  t: number;
  /** GC pauses of the server so far (the gc-hook's PerformanceObserver). */
  gcMs: number;
  server: number;
  serverWrites: number;
  /** Kernel part of `server`. */
  serverSystem: number;
  loadgens: number;
  auth: number;
  busy: number;
}

async function snap(server: Server, loadgens: Loadgen[], auth: Child): Promise<Snap> {
  const gc = await hook<{ gc: { totalMs: number } }>(server.nodes[0], { bench: 'gcstats' }).then((r) => r.gc.totalMs).catch(() => NaN);
  return {
    gcMs: gc,
    t: performance.now(),
    server: server.nodes.reduce((s, n) => s + cpuSeconds(n.pid), 0),
    serverWrites: server.nodes.reduce((s, n) => s + writeCalls(n.pid), 0),
    serverSystem: server.nodes.reduce((s, n) => s + (processCpu(n.pid)?.system ?? 0), 0),
    loadgens: loadgens.reduce((s, l) => s + cpuSeconds(l.child.pid), 0),
    auth: cpuSeconds(auth.pid),
    busy: machineCpu().busy,
  };
}

function diff(a: Snap, b: Snap) {
  const seconds = (b.t - a.t) / 1000;
  const server = b.server - a.server;
  const loadgens = b.loadgens - a.loadgens;
  const auth = b.auth - a.auth;
  return { seconds, gcMs: b.gcMs - a.gcMs, server, kernel: b.serverSystem - a.serverSystem, writes: b.serverWrites - a.serverWrites, loadgens, auth, foreignCores: Math.max(0, (b.busy - a.busy - server - loadgens - auth) / seconds) };
}

function checkpointsFor(target: number): number[] {
  return [...CHECKPOINTS.filter((c) => c < target), target];
}

/** Users of the fill are u0 ... u<n-1>; each probe point has fresh users of its own after them (no token cache hit). */
function probeUsers(o: CapacityOptions, point: number): number[] {
  const i = [...CHECKPOINTS, o.n].indexOf(point);
  return Array.from({ length: o.probes }, (_, j) => o.n + i * o.probes + j);
}

async function runOne(name: ServerName, target: number, o: CapacityOptions, ctx: { tokens: string[]; authUrl: string; auth: Child; totalUsers: number }): Promise<CapacityRun> {
  const run: CapacityRun = { server: name, target, segments: [], checkpoints: [], broadcasts: [], failures: [], base: { rss: 0, heapUsed: 0, youngGen: 0 } };
  const t0 = performance.now();
  let server: Server | undefined;
  const loadgens: Loadgen[] = [];
  const all = <T>(make: (lg: Loadgen, i: number) => Promise<T>) => Promise.all(loadgens.map(make));
  const failed = (phase: string, results: { failures: string[] }[]) => {
    for (const r of results) for (const f of r.failures) run.failures.push(`${phase}: ${f}`);
  };
  try {
    server = await startServer(name, ctx.authUrl, `cap-${name}`);
    for (let i = 0; i < o.loadgens; i++) loadgens.push(Loadgen.start(`cap-${name}-lg${i}`));
    await all((lg, i) => lg.send({ cmd: 'init', init: { kind: 'ws', urls: server!.urls, tokens: ctx.tokens, maxUsers: ctx.totalUsers, localAddress: `127.0.0.${2 + i}` } }, 30_000));
    run.base = await memory(server);
    let online = 0;
    for (const point of checkpointsFor(target)) {
      // Fill online -> point: user i from load generator i mod K.
      const shares: number[][] = loadgens.map(() => []);
      for (let u = online; u < point; u++) shares[u % loadgens.length].push(u);
      const frames = (point * point - online * online) / 2;
      const timeoutMs = Math.min(1_800_000, 120_000 + 50 * (point - online) + frames * 0.05);
      log(`capacity ${name}: connecting ${online} -> ${point}`);
      const profile = o.profileAt === point ? join(RUN_TMP, `${name}-fill-${online}-${point}.cpuprofile`) : undefined;
      if (profile) await hook(server.nodes[0], { bench: 'profile-start', intervalUs: 200 });
      const before = await snap(server, loadgens, ctx.auth);
      const opened = await all((lg, i) => lg.send<CapOpenResult>({ cmd: 'cap-open', indices: shares[i], wave: o.wave, continuous: o.continuous, timeoutMs }, timeoutMs + 30_000));
      const authed = await snap(server, loadgens, ctx.auth);
      failed(`connect ${online}->${point}`, opened);
      const connected = opened.reduce((s, r) => s + r.connected, 0);
      if (connected !== point - online) throw new Error(`connect ${online}->${point}: only ${connected} of ${point - online} logins succeeded: ${run.failures.slice(-3).join('; ')}`);
      const settled = await all((lg) => lg.send<CapSettleResult>({ cmd: 'cap-settle', target: point, timeoutMs }, timeoutMs + 30_000));
      const after = await snap(server, loadgens, ctx.auth);
      if (profile) {
        await hook(server.nodes[0], { bench: 'profile-stop', file: profile }, 120_000);
        const summary = summarizeProfile(profile, 40);
        writeFileSync(profile.replace(/\.cpuprofile$/, '.md'), summary);
        log(`capacity ${name}: CPU profile of ${online} -> ${point}: ${profile}\n${summary.split('\n').slice(0, 60).join('\n')}`);
      }
      failed(`settle at ${point}`, settled);
      const short = settled.reduce((s, r) => s + r.short, 0);
      if (short > 0) run.failures.push(`settle at ${point}: ${short} presence frames missing`);
      const loginSeconds = (Math.max(...opened.map((r) => r.lastAuthAt)) - Math.min(...opened.map((r) => r.startAt))) / 1000;
      const toAuth = diff(before, authed);
      const whole = diff(before, after);
      const segment: Segment = {
        from: online,
        to: point,
        logins: connected,
        loginSeconds,
        loginsPerSec: connected / loginSeconds,
        settleSeconds: whole.seconds - toAuth.seconds,
        serverCpuPerLoginMs: (whole.server / connected) * 1000,
        // Each login sends a CONNECT to everyone online: how many of them left in one write.
        framesPerWrite: (point * (point - 1) - online * Math.max(0, online - 1)) / 2 / Math.max(1, whole.writes),
        serverCpuPct: (whole.server / whole.seconds) * 100,
        serverKernelPct: whole.server > 0 ? (whole.kernel / whole.server) * 100 : NaN,
        gcMsPerLogin: whole.gcMs / connected,
        loadgenCpuPct: (whole.loadgens / whole.seconds) * 100,
        authCpuPct: (toAuth.auth / toAuth.seconds) * 100,
        foreignCores: whole.foreignCores,
      };
      run.segments.push(segment);
      online = point;
      log(`capacity ${name}: ${point} online: ${segment.loginsPerSec.toFixed(1)} logins/s, settled after ${segment.settleSeconds.toFixed(1)} s more, ${segment.serverCpuPerLoginMs.toFixed(2)} ms server CPU per login (${segment.serverKernelPct.toFixed(0)} % kernel, ${segment.gcMsPerLogin.toFixed(2)} ms GC), ${segment.framesPerWrite.toFixed(1)} presence frames per write call, auth server ${segment.authCpuPct.toFixed(0)} %`);
      const mem = await memory(server);
      const checkpoint: Checkpoint = {
        n: point,
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        rssPerConnKiB: (mem.rss - run.base.rss) / point / 1024,
        heapPerConnKiB: (mem.heapUsed - run.base.heapUsed) / point / 1024,
        youngGen: mem.youngGen,
        rssPerConnNoYoungGenKiB: (mem.rss - run.base.rss - (mem.youngGen - (run.base.youngGen ?? 0))) / point / 1024,
      };
      run.checkpoints.push(checkpoint);
      log(`capacity ${name}: ${point} online: RSS ${(mem.rss / 2 ** 20).toFixed(1)} MiB (${checkpoint.rssPerConnKiB.toFixed(2)} KiB per connection), heap ${(mem.heapUsed / 2 ** 20).toFixed(1)} MiB, young generation ${(mem.youngGen / 2 ** 20).toFixed(1)} MiB`);
      if ((PROBE_POINTS.has(point) || point === target) && o.probes > 0) checkpoint.probe = await probe(name, point, o, server, loadgens, ctx, run);
      if (point === 10_000 || point === target) run.broadcasts.push(...(await broadcasts(point, point === target ? o.chats : 1, server, loadgens, ctx.auth, run)));
    }
  } catch (err) {
    run.failures.push(`aborted: ${err instanceof Error ? err.message : String(err)}`);
    run.aborted = true;
  } finally {
    await stopServer(server);
    await Promise.all(loadgens.map((lg) => lg.exit()));
  }
  run.seconds = (performance.now() - t0) / 1000;
  log(`capacity ${name}: done in ${run.seconds.toFixed(0)} s${run.failures.length ? `, ${run.failures.length} failures` : ''}`);
  for (const f of run.failures.slice(0, 5)) log(`  ${f}`);
  return run;
}

/** Login cost at N: sequential logins of fresh users (each after the previous AUTH SUCCESS), then their logouts. */
async function probe(name: ServerName, n: number, o: CapacityOptions, server: Server, loadgens: Loadgen[], ctx: { auth: Child }, run: CapacityRun): Promise<Checkpoint['probe']> {
  const users = probeUsers(o, n);
  const timeoutMs = 120_000;
  const before = await snap(server, loadgens, ctx.auth);
  const r = await loadgens[0].send<CapProbeResult>({ cmd: 'cap-probe', indices: users, timeoutMs }, timeoutMs * users.length);
  const settledIn = await Promise.all(loadgens.map((lg) => lg.send<CapSettleResult>({ cmd: 'cap-settle', target: n + r.logins, timeoutMs }, timeoutMs + 30_000)));
  const mid = await snap(server, loadgens, ctx.auth);
  const closed = await loadgens[0].send<{ closed: number; failures: string[] }>({ cmd: 'cap-probe-close', timeoutMs }, timeoutMs * users.length);
  const settledOut = await Promise.all(loadgens.map((lg) => lg.send<CapSettleResult>({ cmd: 'cap-settle', target: n, timeoutMs }, timeoutMs + 30_000)));
  const after = await snap(server, loadgens, ctx.auth);
  for (const x of [r, closed, ...settledIn, ...settledOut]) for (const f of x.failures) run.failures.push(`login probe at ${n}: ${f}`);
  if (r.logins !== users.length) run.failures.push(`login probe at ${n}: ${users.length - r.logins} of ${users.length} logins failed`);
  const login = diff(before, mid);
  const logout = diff(mid, after);
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const med = (xs: number[]) => sorted(xs)[xs.length >> 1] ?? NaN;
  const result = {
    logins: r.logins,
    authBytes: med(r.authBytes),
    loginMs: med(r.loginMs),
    serverCpuPerLoginMs: (login.server / Math.max(1, r.logins)) * 1000,
    serverCpuPerLogoutMs: (logout.server / Math.max(1, closed.closed)) * 1000,
  };
  log(`capacity ${name}: login probe at ${n}: AUTH SUCCESS ${(result.authBytes / 1024).toFixed(0)} KiB, ${result.serverCpuPerLoginMs.toFixed(2)} ms server CPU per login, ${result.serverCpuPerLogoutMs.toFixed(2)} ms per logout`);
  return result;
}

/** CHAT broadcasts one after another, each timed from its send to its first and its last receipt among all the clients. */
async function broadcasts(n: number, count: number, server: Server, loadgens: Loadgen[], auth: Child, run: CapacityRun): Promise<CapacityRun['broadcasts']> {
  const out: CapacityRun['broadcasts'] = [];
  for (let i = 0; i < count; i++) {
    const k = n * 100 + i;
    await Promise.all(loadgens.map((lg) => lg.send({ cmd: 'cap-chat-arm', k }, 10_000)));
    const before = await snap(server, loadgens, auth);
    const { sentAt } = await loadgens[0].send<{ sentAt: number }>({ cmd: 'cap-chat-send', k }, 10_000);
    const got = await Promise.all(loadgens.map((lg) => lg.send<CapChatResult>({ cmd: 'cap-chat-wait', k, timeoutMs: 120_000 }, 150_000)));
    const after = await snap(server, loadgens, auth);
    for (const g of got) for (const f of g.failures) run.failures.push(`broadcast at ${n}: ${f}`);
    const received = got.reduce((s, g) => s + g.received, 0);
    const expected = got.reduce((s, g) => s + g.expected, 0);
    const b = {
      n,
      received,
      expected,
      firstMs: Math.min(...got.map((g) => g.firstAt)) - sentAt,
      lastMs: Math.max(...got.map((g) => g.lastAt)) - sentAt,
      serverCpuMs: (after.server - before.server) * 1000,
    };
    log(`capacity: CHAT to ${n}: first ${b.firstMs.toFixed(1)} ms, last ${b.lastMs.toFixed(1)} ms after the send, ${b.serverCpuMs.toFixed(0)} ms server CPU (${received} of ${expected})`);
    out.push(b);
  }
  return out;
}

export async function runCapacity(o: CapacityOptions = capacityOptions): Promise<void> {
  const started = performance.now();
  mkdirSync(RUN_TMP, { recursive: true });
  const limits = openFilesLimit();
  log(`capacity: ours to ${o.n}, raw ws to ${o.rawN}, ${o.loadgens} load generators, ${o.continuous ? `${o.wave} handshakes in flight` : `waves of ${o.wave}`} each; open files limit: soft ${limits.soft}, hard ${limits.hard}`);
  const git = buildGateway();
  const totalUsers = o.n + o.probes * (CHECKPOINTS.length + 1);
  const users = generateUsers(totalUsers);
  const usersFile = join(RUN_TMP, 'users.json');
  writeUsersFile(usersFile, users);
  const auth = startNode([script('servers/auth')], { env: { ...baseEnv(), USERS_FILE: usersFile }, logFile: join(RUN_TMP, 'auth.log'), needFds: 20_000, cwd: ROOT });
  const { url: authUrl } = await waitMessage(auth, (m): m is { ready: true; url: string } => typeof m === 'object' && m !== null && 'url' in m, 30_000, 'auth server start');
  const ctx = { tokens: users.map((u) => u.token), authUrl, auth, totalUsers };
  const loadStart = loadAverage();
  const machineStart = machineCpu();
  const runs: CapacityRun[] = [];
  try {
    runs.push(await runOne('gateway', o.n, o, ctx));
    if (o.rawN > 0) runs.push(await runOne('ws', o.rawN, o, ctx));
  } finally {
    await kill(auth, 'SIGTERM', 3000);
  }
  const elapsed = (performance.now() - started) / 1000;
  const result: CapacityResult = {
    date: new Date().toISOString(),
    mode: 'capacity',
    options: { ...o },
    gateway: { commit: git.commit, srcDirty: git.dirty, startProdFlags: startProdFlags(), flagsOverridden: process.env.BENCH_GATEWAY_NODE_FLAGS !== undefined },
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      openFiles: limits.hard,
      loadAvgStart: loadStart,
      loadAvgEnd: loadAverage(),
      busyCores: (machineCpu().busy - machineStart.busy) / elapsed,
    },
    seconds: elapsed,
    runs,
  };
  mkdirSync(RESULTS, { recursive: true });
  const jsonFile = join(RESULTS, `${STAMP}-capacity.json`);
  writeFileSync(jsonFile, JSON.stringify(result, null, 2));
  const md = renderCapacity(result, basename(jsonFile));
  writeFileSync(join(RESULTS, 'latest-capacity.md'), md);
  process.stdout.write(`\n${md}\n`);
  log(`results: ${jsonFile}`);
  if (!process.argv.includes('--keep-logs') && o.profileAt === 0) rmSync(RUN_TMP, { recursive: true, force: true });
  const failures = runs.reduce((s, r) => s + r.failures.length, 0);
  log(`done in ${elapsed.toFixed(0)} s: ${failures} failures`);
  if (failures > 0) process.exitCode = 1;
}

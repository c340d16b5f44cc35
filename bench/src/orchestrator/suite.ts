/**
 * The whole suite: the auth server, every server of every repetition (order rotating) followed by
 * the events scenario and the hostile-clients scenario of that repetition, the cluster scenario; then bench/results/<stamp>.json and latest.md (or profile-latest.md).
 * With --cluster, the cluster comparison instead (runner/cluster-mode.ts), into latest-cluster.md.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SERVER_LABEL, options } from '../cli/options';
import { loadAverage, machineCpu, openFilesLimit } from '../common/proc';
import { generateUsers, writeUsersFile } from '../common/users';
import { SUITE } from '../plan';
import { kill, startNode, waitMessage } from '../procs';
import { renderMarkdown, type RunRecord, type SuiteResult } from '../report';
import { renderCluster } from '../report/cluster';
import { probeCluster } from '../runner/cluster-probe';
import { runClusterComparison } from '../runner/cluster-mode';
import { runEvents } from '../runner/events';
import { runHostile } from '../runner/hostile';
import { runServer, type RunContext } from '../runner/server-run';
import { buildGateway, gatewayDefaults, startProdFlags } from './build';
import { RESULTS, ROOT, RUN_TMP, STAMP, log, script } from './paths';
import { profileReport } from './profile-report';
import { baseEnv, startCluster, startServer } from './servers';

export async function runSuite(): Promise<void> {
  const started = performance.now();
  const { reps, servers } = options;
  mkdirSync(RUN_TMP, { recursive: true });
  log(`mode: ${SUITE.mode}, ${reps} repetition(s), servers: ${servers.join(', ')}, max N ${SUITE.maxN}`);
  const limits = openFilesLimit();
  log(`open files limit: soft ${limits.soft}, hard ${limits.hard} (needed ~${SUITE.totalUsers + 2000} per process)`);
  const git = buildGateway();
  const hostile = SUITE.hostile;
  const defaults = hostile ? gatewayDefaults() : undefined;
  if (hostile && defaults) log(`hostile clients: ${hostile.rounds} quiet and attacked windows per repetition against ${hostile.servers.join(', ')}; gateway limits from ${defaults.source}`);

  const users = generateUsers(SUITE.totalUsers);
  const usersFile = join(RUN_TMP, 'users.json');
  writeUsersFile(usersFile, users);
  const auth = startNode([script('servers/auth')], { env: { ...baseEnv(), USERS_FILE: usersFile }, logFile: join(RUN_TMP, 'auth.log'), needFds: SUITE.totalUsers + 2000, cwd: ROOT });
  const { url: authUrl } = await waitMessage(auth, (m): m is { ready: true; url: string } => typeof m === 'object' && m !== null && 'url' in m, 30_000, 'auth server start');
  const ctx: RunContext = { tokens: users.map((u) => u.token), authUrl, auth };
  const loadStart = loadAverage();
  const machineStart = machineCpu();

  const runs: RunRecord[] = [];
  let clusterNote: string | undefined;
  let clusterNotes: Record<string, string> | undefined;
  try {
    // --cluster: the cluster comparison alone (SUITE.steps is empty, no events, no hostile clients).
    if (options.clusterMode) clusterNotes = await runClusterComparison(ctx, reps, runs);
    for (let rep = 0; rep < reps && !options.clusterMode; rep++) {
      // Rotate the order so that no server always runs first (or last) in a repetition.
      const order = options.hostileOnly ? [] : servers.map((_, i) => servers[(i + rep) % servers.length]);
      for (const name of order) {
        runs.push(await runServer(name, rep, ctx, SUITE.steps, () => startServer(name, authUrl, `rep${rep}-${name}`)));
      }
      // Right after the main servers, so that its ratio to raw ws comes from the same repetition.
      if (SUITE.eventsSteps.length > 0) runs.push(await runEvents(rep, ctx, SUITE.eventsSteps));
      if (hostile && defaults) {
        for (const name of hostile.servers) {
          if (name === 'sio') log('hostile clients: not run against Socket.IO (the attackers speak plain WebSocket, not engine.io)');
          else runs.push(await runHostile(name, rep, ctx, hostile, defaults.limits));
        }
      }
    }
    if (options.cluster && !options.hostileOnly && !options.clusterMode) {
      log('cluster: probing two gateway nodes on one Redis');
      clusterNote = await probeCluster(ctx);
      if (clusterNote) {
        log(`cluster: SKIPPED: ${clusterNote}`);
      } else {
        for (let rep = 0; rep < reps; rep++) {
          runs.push(await runServer('cluster', rep, ctx, SUITE.clusterSteps, () => startCluster(authUrl, `rep${rep}-cluster`)));
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
    mode: SUITE.mode,
    reps,
    servers,
    labels: SERVER_LABEL,
    plan: SUITE.steps,
    clusterPlan: SUITE.clusterSteps,
    eventsPlan: SUITE.eventsSteps,
    clusterNote,
    ...(options.clusterMode ? { clusterRuns: SUITE.clusterRuns, clusterNotes } : {}),
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
    ...(hostile && defaults ? { hostile: { plan: { ...hostile }, limits: { ...defaults.limits }, limitsSource: defaults.source } } : {}),
  };
  mkdirSync(RESULTS, { recursive: true });
  const jsonFile = join(RESULTS, `${STAMP}${options.profile ? '-profile' : ''}.json`);
  writeFileSync(jsonFile, JSON.stringify(result, null, 2));
  if (options.profile) {
    const md = profileReport(basename(jsonFile));
    const summary = options.clusterMode ? 'profile-cluster-latest.md' : 'profile-latest.md';
    writeFileSync(join(RESULTS, summary), md);
    log(`profile summary: bench/results/${summary} (profiles in ${RUN_TMP})`);
  } else {
    const clusterMode = options.clusterMode;
    const md = clusterMode ? renderCluster(result, basename(jsonFile)) : renderMarkdown(result, basename(jsonFile));
    writeFileSync(join(RESULTS, clusterMode ? 'latest-cluster.md' : 'latest.md'), md);
    process.stdout.write(`\n${md}\n`);
  }
  log(`results: ${jsonFile}`);
  if (!options.keepLogs) rmSync(RUN_TMP, { recursive: true, force: true });

  const lost = runs.reduce((s, r) => s + r.lost, 0);
  const failed = runs.filter((r) => r.failures.length > 0);
  log(`done in ${elapsed.toFixed(0)} s: ${lost} lost messages, ${failed.length} of ${runs.length} runs with failures`);
  if (lost > 0 || failed.length > 0) process.exitCode = 1;
}

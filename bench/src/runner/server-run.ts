/** One server (or cluster), one repetition: the steps of the plan on one server process. */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { LoadgenCommand } from '../common/messages';
import { options, type RunName } from '../cli/options';
import { Loadgen } from '../orchestrator/loadgen-client';
import { delta, memory, snapshot, type Delta } from '../orchestrator/measure';
import { RUN_TMP, log } from '../orchestrator/paths';
import { stopServer, type Server } from '../orchestrator/servers';
import { SUITE, type Step } from '../plan';
import { hook, type Child } from '../procs';
import type { RunRecord } from '../report';
import { broadcastStep } from './broadcast';
import { churnStep } from './churn';
import { connectStep } from './connect';
import { dialogStep } from './dialog';
import { idleStep } from './idle';

/** What every run of the suite shares: the users' tokens and the authorization server. */
export interface RunContext {
  tokens: string[];
  authUrl: string;
  auth: Child;
}

/** The state of one run that its steps read and extend: the server, the load generator, the record. */
export class ServerRun {
  /** Stable clients connected so far. */
  online = 0;
  private profileSeq = 0;

  constructor(
    readonly name: RunName,
    readonly rep: number,
    readonly tag: string,
    readonly srv: Server,
    readonly lg: Loadgen,
    /** Other processes whose CPU is the bench's own (the auth server). */
    readonly others: Child[],
    readonly record: RunRecord,
    /** Memory of the server right after it started. */
    readonly base: { rss: number; heapUsed: number },
  ) {}

  /** Runs one loadgen command with CPU snapshots around it (re-based at the loadgen's mark). */
  async measured<T>(command: LoadgenCommand, timeoutMs: number, phase: string): Promise<{ result: T; d: Delta }> {
    const { srv, lg, others } = this;
    let before = await snapshot(srv, lg, others);
    const profileFile = options.profile ? join(RUN_TMP, `${this.name}-${++this.profileSeq}-${phase.replace(/[@/]/g, '_')}.cpuprofile`) : undefined;
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
  }

  /** Records a phase's lost messages and failures. */
  check(phase: string, r: { failures: string[]; lost?: number }): void {
    const lost = r.lost ?? 0;
    this.record.lost += lost;
    for (const f of r.failures) this.record.failures.push(`${phase}: ${f}`);
    if (lost > 0) this.record.failures.push(`${phase}: ${lost} lost messages`);
  }

  /** The context columns of a phase: CPU of the server, the load generator and the rest of the machine, GC. */
  context(key: string, d: Delta): void {
    const m = this.record.metrics;
    m[`${key}.loadgenCpuPct`] = (d.loadgenCpu / d.seconds) * 100;
    m[`${key}.serverCpuPct`] = (d.serverCpu / d.seconds) * 100;
    m[`${key}.serverKernelPct`] = d.serverCpu > 0 ? (d.serverSystemCpu / d.serverCpu) * 100 : NaN;
    m[`${key}.foreignCores`] = d.foreignCores;
    m[`${key}.gcMs`] = d.gcMs;
    if (this.srv.extra.length) m[`${key}.${this.srv.extraName ?? 'redis'}CpuPct`] = (d.extraCpu / d.seconds) * 100;
    // The same from the redis-server's INFO (µs resolution), beside /proc's 10 ms ticks.
    if (Number.isFinite(d.redisCpu)) m[`${key}.redisInfoCpuPct`] = (d.redisCpu / d.seconds) * 100;
  }
}

async function runStep(run: ServerRun, step: Step): Promise<void> {
  switch (step.kind) {
    case 'connect':
      return connectStep(run, step);
    case 'idle':
      return idleStep(run, step);
    case 'broadcast':
      return broadcastStep(run, step);
    case 'dialog':
      return dialogStep(run, step);
    case 'churn':
      return churnStep(run, step);
  }
}

/** `afterSteps`: checks of a scenario of its own, on the server before it is stopped (events: what NATS received). */
export async function runServer(
  name: RunName,
  rep: number,
  ctx: RunContext,
  steps: Step[],
  serverFactory: () => Promise<Server>,
  afterSteps?: (run: ServerRun) => Promise<void>,
): Promise<RunRecord> {
  const tag = `rep${rep}-${name}`;
  const record: RunRecord = { rep, server: name, metrics: {}, phases: {}, failures: [], lost: 0 };
  let server: Server | undefined;
  let loadgen: Loadgen | undefined;
  const t0 = performance.now();
  try {
    server = await serverFactory();
    loadgen = Loadgen.start(tag);
    await loadgen.send({ cmd: 'init', init: { kind: server.kind, urls: server.urls, tokens: ctx.tokens, maxUsers: SUITE.totalUsers } }, 10_000);
    const base = await memory(server);
    record.metrics['base.rssMiB'] = base.rss / 2 ** 20;
    record.metrics['base.heapMiB'] = base.heapUsed / 2 ** 20;
    const run = new ServerRun(name, rep, tag, server, loadgen, [ctx.auth], record, base);
    for (const step of steps) await runStep(run, step);
    await afterSteps?.(run);
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

/**
 * Hostile clients (issue 10): what four attackers sending the worst frames they can do to the
 * legitimate users' dialogs.
 *
 * A fresh server with `plan.online` legitimate users (the dialog scenario's clients, logged in
 * first) and four attacker processes (bench/src/attacker.ts): two without a token, two logged in
 * with users of their own. Our gateway runs with every limit at its default (rate limit, inbound
 * budget, frame limits, MAX_CONNECTIONS, send buffer, heartbeat), not with the bench's raised
 * ones: the attackers meet what they would meet in production. The legitimate load stays within
 * those limits: `rate` dialogs a second among `online` users is rate/online frames a second per
 * user (1 at the defaults of the plan, against a limit of 50 and a burst of 100), each ~100 bytes.
 *
 * Quiet and attacked windows alternate (`rounds` times), on the same server process and the same
 * clients, so that drift (JIT, heap growth, the other load on the machine) falls on both sides;
 * the round trips of each side are pooled and the ratio attacked ÷ quiet of p50 and p99 is the
 * result (target: p99 ≤ 1.5x).
 */
import { performance } from 'node:perf_hooks';
import type { AttackerStats, DialogResult } from '../common/messages';
import { cpuSeconds, readBytes, rssBytes } from '../common/proc';
import { percentile, sortNumbers } from '../common/stats';
import type { ServerName } from '../cli/options';
import { Attacker } from '../orchestrator/attackers';
import type { GatewayDefaults } from '../orchestrator/build';
import { Loadgen } from '../orchestrator/loadgen-client';
import { memory } from '../orchestrator/measure';
import { log } from '../orchestrator/paths';
import { startServer, stopServer, type Server } from '../orchestrator/servers';
import { SUITE, type HostilePlan } from '../plan';
import type { RunRecord } from '../report';
import { connectStep } from './connect';
import { ServerRun, type RunContext } from './server-run';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runHostile(name: ServerName, rep: number, ctx: RunContext, plan: HostilePlan, limits: GatewayDefaults): Promise<RunRecord> {
  const tag = `rep${rep}-hostile-${name}`;
  const key = `hostile@${plan.online}/${plan.rate}`;
  const record: RunRecord = { rep, server: name, scenario: 'hostile', metrics: {}, phases: {}, failures: [], lost: 0 };
  let server: Server | undefined;
  let loadgen: Loadgen | undefined;
  const attackers: Attacker[] = [];
  const t0 = performance.now();
  try {
    server = await startServer(name, ctx.authUrl, tag, 'defaults');
    loadgen = Loadgen.start(tag);
    await loadgen.send({ cmd: 'init', init: { kind: server.kind, urls: server.urls, tokens: ctx.tokens, maxUsers: SUITE.totalUsers } }, 10_000);
    const url = server.urls[0];
    const frameLimits = { preAuthFrameBytes: limits.preAuthMaxFrameBytes, messageFrameBytes: limits.maxMessageFrameBytes, maxFrameBytes: limits.maxFrameBytes };
    for (let i = 0; i < plan.preauth; i++) attackers.push(Attacker.spawn(`${tag}-preauth${i}`, { url, mode: 'preauth', limits: frameLimits }));
    for (let i = 0; i < plan.joined; i++) {
      attackers.push(Attacker.spawn(`${tag}-joined${i}`, { url, mode: 'joined', token: ctx.tokens[SUITE.attackerBase + i], limits: frameLimits }));
    }
    const srv = server;
    const base = await memory(server);
    // The attackers' CPU is the bench's own, not the machine's other load.
    const run = new ServerRun(name, rep, tag, server, loadgen, [ctx.auth, ...attackers.map((a) => a.child)], record, base);
    await connectStep(run, { kind: 'connect', to: plan.online, measure: false });

    const pooled = { quiet: [] as number[], attacked: [] as number[] };
    const zero = () => ({ cpu: 0, seconds: 0, loadgen: 0, foreign: 0, sent: 0, read: 0, readSeconds: 0 });
    const sums = { quiet: zero(), attacked: zero() };
    const attack: AttackerStats & { seconds: number; cpu: number } = { frames: 0, bytes: 0, connections: 0, logins: 0, answers: 0, closes: {}, seconds: 0, cpu: 0 };
    let peakRss = 0;
    const window = async (side: 'quiet' | 'attacked', round: number, warmupMs: number) => {
      const phase = `${key}/${side}${round}`;
      log(`${tag}: ${side} window ${round + 1} of ${plan.rounds}: dialogs among ${plan.online} at ${plan.rate}/s for ${plan.windowMs} ms`);
      const seed = 5000 + rep * 100 + round * 2 + (side === 'attacked' ? 1 : 0);
      const command = { cmd: 'dialog', rate: plan.rate, durationMs: plan.windowMs, warmupMs, drainMs: 15_000, seed, samples: true } as const;
      const readBefore = srv.nodes.reduce((sum, n) => sum + readBytes(n.pid), 0);
      const t = performance.now();
      const { result, d } = await run.measured<DialogResult>(command, plan.windowMs + warmupMs + 60_000, phase);
      sums[side].read += srv.nodes.reduce((sum, n) => sum + readBytes(n.pid), 0) - readBefore;
      sums[side].readSeconds += (performance.now() - t) / 1000;
      const { rttMs = [], ...rest } = result;
      record.phases[phase] = { ...rest, ...d };
      run.check(phase, result);
      if (result.deliveryErrors > 0) record.failures.push(`${phase}: ${result.deliveryErrors} DELIVERY ERROR (reported as not delivered)`);
      for (const x of rttMs) pooled[side].push(x);
      const s = sums[side];
      s.cpu += d.serverCpu;
      s.seconds += d.seconds;
      s.loadgen += d.loadgenCpu;
      s.foreign += d.foreignCores * d.seconds;
      s.sent += result.sentPerSec * d.seconds;
    };

    for (let round = 0; round < plan.rounds; round++) {
      await window('quiet', round, round === 0 ? plan.firstWarmupMs : plan.warmupMs);
      const cpuBefore = attackers.reduce((sum, a) => sum + cpuSeconds(a.child.pid), 0);
      const started = performance.now();
      const nodes = server.nodes;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, ...nodes.map((n) => rssBytes(n.pid)))), 100);
      let stats: AttackerStats[];
      try {
        await Promise.all(attackers.map((a) => a.start()));
        await window('attacked', round, plan.rampMs);
      } finally {
        stats = await Promise.all(attackers.map((a) => a.stop()));
        clearInterval(sampler);
      }
      attack.seconds += (performance.now() - started) / 1000;
      attack.cpu += attackers.reduce((sum, a) => sum + cpuSeconds(a.child.pid), 0) - cpuBefore;
      for (const st of stats) {
        attack.frames += st.frames;
        attack.bytes += st.bytes;
        attack.connections += st.connections;
        attack.logins += st.logins;
        attack.answers += st.answers;
        for (const [code, n] of Object.entries(st.closes)) attack.closes[code] = (attack.closes[code] ?? 0) + n;
      }
      if (round < plan.rounds - 1) await sleep(plan.gapMs);
    }

    const q = sortNumbers(pooled.quiet);
    const a = sortNumbers(pooled.attacked);
    const m = record.metrics;
    m[`${key}.quietP50Ms`] = percentile(q, 50);
    m[`${key}.quietP99Ms`] = percentile(q, 99);
    m[`${key}.quietMaxMs`] = q.length ? q[q.length - 1] : NaN;
    m[`${key}.attackedP50Ms`] = percentile(a, 50);
    m[`${key}.attackedP99Ms`] = percentile(a, 99);
    m[`${key}.attackedMaxMs`] = a.length ? a[a.length - 1] : NaN;
    m[`${key}.p50Ratio`] = m[`${key}.attackedP50Ms`] / m[`${key}.quietP50Ms`];
    m[`${key}.p99Ratio`] = m[`${key}.attackedP99Ms`] / m[`${key}.quietP99Ms`];
    m[`${key}.quietRoundTrips`] = q.length;
    m[`${key}.attackedRoundTrips`] = a.length;
    for (const side of ['quiet', 'attacked'] as const) {
      const s = sums[side];
      m[`${key}.${side}ServerCpuPct`] = (s.cpu / s.seconds) * 100;
      m[`${key}.${side}CpuPerRtUs`] = (s.cpu / Math.max(1, pooled[side].length)) * 1e6;
      m[`${key}.${side}LoadgenCpuPct`] = (s.loadgen / s.seconds) * 100;
      m[`${key}.${side}ForeignCores`] = s.foreign / s.seconds;
      m[`${key}.${side}SentPerSec`] = s.sent / s.seconds;
      m[`${key}.${side}ReadMiBPerSec`] = s.read / s.readSeconds / 2 ** 20;
    }
    m[`${key}.attackerCpuPct`] = (attack.cpu / attack.seconds) * 100;
    m[`${key}.attackFramesPerSec`] = attack.frames / attack.seconds;
    m[`${key}.attackMiBPerSec`] = attack.bytes / attack.seconds / 2 ** 20;
    m[`${key}.attackConnectionsPerSec`] = attack.connections / attack.seconds;
    m[`${key}.attackLoginsPerSec`] = attack.logins / attack.seconds;
    m[`${key}.attackAnswersPerSec`] = attack.answers / attack.seconds;
    m[`${key}.baseRssMiB`] = base.rss / 2 ** 20;
    m[`${key}.attackedRssMiB`] = peakRss / 2 ** 20;
    record.phases[`${key}/attack`] = attack;
    log(
      `${tag}: round trip p50 ${m[`${key}.quietP50Ms`].toFixed(3)} -> ${m[`${key}.attackedP50Ms`].toFixed(3)} ms, ` +
        `p99 ${m[`${key}.quietP99Ms`].toFixed(3)} -> ${m[`${key}.attackedP99Ms`].toFixed(3)} ms (${m[`${key}.p99Ratio`].toFixed(2)}x); ` +
        `attackers: ${attack.frames} frames, ${(attack.bytes / 2 ** 20).toFixed(0)} MiB, ${attack.connections} connections, closes ${JSON.stringify(attack.closes)}`,
    );
  } catch (err) {
    record.failures.push(`aborted: ${err instanceof Error ? err.message : String(err)}`);
    record.aborted = true;
  } finally {
    await Promise.all(attackers.map((a) => a.exit()));
    await stopServer(server);
    await loadgen?.exit();
  }
  record.seconds = (performance.now() - t0) / 1000;
  log(`${tag}: done in ${record.seconds.toFixed(1)} s${record.failures.length ? `, ${record.failures.length} failures` : ''}${record.lost ? `, ${record.lost} LOST` : ''}`);
  for (const f of record.failures.slice(0, 5)) log(`  ${f}`);
  return record;
}

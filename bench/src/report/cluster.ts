/**
 * latest-cluster.md (issue 13, `npm run bench -- --cluster`): ours on two nodes on one Redis
 * against Socket.IO on two nodes with @socket.io/redis-adapter, and against ours on one node, with
 * the issue's targets.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { spread, type Spread } from '../common/stats';
import { RESULTS } from '../orchestrator/paths';
import type { RunRecord, SuiteResult } from '../report';
import { byRep, cell, failureLines, fmt, ratioCell, ratios } from './format';

/** The issue's target: our cross-node dialog p99 at most this many times our single-node p99 of the same repetition. */
export const CROSS_NODE_P99_TARGET = 3;

type Better = 'lower' | 'higher';

const DEPLOYMENTS = ['gateway', 'cluster', 'sio-cluster'] as const;

interface Row {
  label: string;
  phase: string;
  metric: string;
  better: Better;
  /** Compared with Socket.IO (target: ours better). */
  vsSio: boolean;
}

function phaseOf(runs: RunRecord[], kind: string, rate?: number): string | undefined {
  for (const r of runs) {
    for (const k of Object.keys(r.metrics)) {
      const phase = k.slice(0, k.lastIndexOf('.'));
      if (!phase.startsWith(`${kind}@`)) continue;
      if (rate === undefined || phase.endsWith(`/${rate}`)) return phase;
    }
  }
  return undefined;
}

function values(runs: RunRecord[], server: string, key: string): Map<number, number> {
  return byRep(runs, server, key);
}

function verdict(ok: boolean): string {
  return ok ? '✓' : '✗';
}

function better(s: Spread, how: Better): boolean {
  return how === 'lower' ? s.median < 1 : s.median > 1;
}

/** The Redis commands of a phase per unit (broadcast or round trip), median over the repetitions: "publish 1.00, hget 1.00". */
function commands(runs: RunRecord[], server: string, phase: string, per: (p: Record<string, unknown>) => number, field: 'redisCalls' | 'redisUsec' = 'redisCalls'): string {
  const byCmd = new Map<string, number[]>();
  for (const r of runs) {
    if (r.server !== server) continue;
    const p = r.phases[phase] as Record<string, unknown> | undefined;
    const calls = (p?.[field] ?? {}) as Record<string, number>;
    const units = p ? per(p) : 0;
    if (!units) continue;
    for (const [cmd, n] of Object.entries(calls)) {
      if (cmd === 'info') continue; // the bench's own reading
      if (!byCmd.has(cmd)) byCmd.set(cmd, []);
      byCmd.get(cmd)?.push(n / units);
    }
  }
  const out = [...byCmd.entries()].map(([cmd, v]) => [cmd, spread(v).median] as const).filter(([, m]) => m >= 0.005);
  out.sort((a, b) => b[1] - a[1]);
  return out.length ? out.map(([cmd, m]) => `${cmd} ${field === 'redisCalls' ? m.toFixed(2) : fmt(m)}`).join(', ') : '–';
}

export function renderCluster(result: SuiteResult, source?: string): string {
  const runs = result.runs;
  const m = result.machine;
  const present = DEPLOYMENTS.filter((d) => runs.some((r) => r.server === d));
  const label = (d: string) => (d === 'gateway' ? 'ours, 1 node' : d === 'cluster' ? 'ours, 2 nodes' : 'Socket.IO, 2 nodes');
  const lost = runs.reduce((s, r) => s + r.lost, 0);
  const failures = runs.flatMap((r) => r.failures.map((f) => `${label(r.server)} rep ${r.rep}: ${f}`));
  const foreign = spread(runs.flatMap((r) => Object.entries(r.metrics).filter(([k]) => k.endsWith('.foreignCores')).map(([, v]) => v)));
  const connect = phaseOf(runs, 'connect');
  const broadcast = phaseOf(runs, 'broadcast');
  const rates = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)).filter((k) => k.startsWith('dialog@')).map((k) => Number(/\/(\d+)\./.exec(k)?.[1] ?? 0)))].sort((a, b) => a - b);
  const n = connect ? Number(/-(\d+)$/.exec(connect)?.[1] ?? 0) : 0;
  const args = [...(result.mode.includes('quick') ? ['--quick'] : []), ...(result.reps !== (result.mode.includes('quick') ? 1 : 3) ? ['--reps', String(result.reps)] : [])];
  const lines: string[] = [];
  lines.push('# Cluster benchmark (issue 13): two nodes on one Redis, ours vs Socket.IO with @socket.io/redis-adapter');
  lines.push('');
  lines.push(`- **Date**: ${result.date}; mode **${result.mode}**, ${result.reps} repetition(s)${result.reps < 3 ? ' (fewer than 3: indicative only)' : ''}; ${fmt(result.seconds)} s in all.`);
  lines.push(`- **Machine**: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}; redis-server of the system, one fresh per deployment and repetition.`);
  lines.push(
    `- **Load**: load average ${m.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} at the start, ${m.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')} at the end; ` +
      `CPU used by processes outside the bench during the phases: median ${fmt(foreign.median)} cores (${fmt(foreign.min)}–${fmt(foreign.max)}).`,
  );
  lines.push(`- **Gateway**: commit ${result.gateway.commit}${result.gateway.srcDirty ? ' with uncommitted changes in src/' : ''}, \`${result.gateway.build}\`, node flags${result.gateway.flagsOverridden ? ' (BENCH_GATEWAY_NODE_FLAGS, not start:prod)' : ' of start:prod'}: \`${result.gateway.startProdFlags.join(' ') || '(none)'}\`.`);
  lines.push(`- **Lost messages: ${lost}**${failures.length ? `; ${failures.length} failure(s), see below` : ''}.`);
  for (const [name, note] of Object.entries(result.clusterNotes ?? {})) lines.push(`- **${label(name)} skipped**: ${note}`);
  lines.push(`- Reproduce: \`npm run bench -- --cluster${args.length ? ` ${args.join(' ')}` : ''}\` (see bench/README.md, "Cluster comparison").`);
  if (source) lines.push(`- Rendered from \`bench/results/${source}\` (every number, per repetition and per phase).`);
  lines.push('');
  lines.push(
    `N = ${n} clients, alternating between the two nodes of a cluster (client i on node i mod 2); every dialog of a cluster crosses nodes (sender on one node, ` +
      `receiver on the other, both directions); ours on one node runs the same steps (its dialogs between random pairs). ` +
      `"All processes": both nodes and the redis-server (one node alone: that node). Redis CPU is its INFO used_cpu_user+sys (µs resolution; /proc's 10 ms ticks are recorded too). ` +
      `Cells: median [min–max] over the repetitions; ratios are computed within each repetition, then median [min–max]; ✓/✗ by the median.`,
  );
  lines.push('');
  const rows: Row[] = [];
  if (connect) rows.push({ label: `connect 0→${n}: connections/s (to AUTH SUCCESS, everyone knowing everyone)`, phase: connect, metric: 'connPerSec', better: 'higher', vsSio: true });
  if (broadcast) {
    rows.push({ label: `broadcast N=${n}: CPU per delivered message, all processes (µs)`, phase: broadcast, metric: 'cpuPerMsgAllUs', better: 'lower', vsSio: true });
    rows.push({ label: `broadcast N=${n}: Redis CPU per broadcast (one CHAT to all N; µs)`, phase: broadcast, metric: 'redisCpuPerBcUs', better: 'lower', vsSio: true });
  }
  for (const rate of rates) {
    const phase = phaseOf(runs, 'dialog', rate);
    if (!phase) continue;
    rows.push({ label: `dialogs ${rate}/s: round trip p50 (ms)`, phase, metric: 'p50Ms', better: 'lower', vsSio: true });
    rows.push({ label: `dialogs ${rate}/s: round trip p99 (ms)`, phase, metric: 'p99Ms', better: 'lower', vsSio: true });
    rows.push({ label: `dialogs ${rate}/s: CPU per round trip, all processes (µs)`, phase, metric: 'cpuPerRtAllUs', better: 'lower', vsSio: true });
  }
  const header = ['row', ...present.map(label), 'ours 2 nodes ÷ Socket.IO', 'target'];
  lines.push(`| ${header.join(' | ')} |`);
  lines.push(`|${header.map(() => '---').join('|')}|`);
  let met = 0;
  let total = 0;
  for (const row of rows) {
    const key = `${row.phase}.${row.metric}`;
    const cells = present.map((d) => cell(spread([...values(runs, d, key).values()])));
    const r = spread(ratios(values(runs, 'cluster', key), values(runs, 'sio-cluster', key)));
    let target = '';
    if (row.vsSio && r.n > 0) {
      const ok = better(r, row.better);
      total++;
      if (ok) met++;
      target = `ours ${row.better === 'lower' ? '<' : '>'} Socket.IO ${verdict(ok)}`;
    }
    lines.push(`| ${row.label} | ${cells.join(' | ')} | ${ratioCell(r)} | ${target} |`);
  }
  for (const rate of rates) {
    const phase = phaseOf(runs, 'dialog', rate);
    if (!phase) continue;
    const key = `${phase}.p99Ms`;
    const r = spread(ratios(values(runs, 'cluster', key), values(runs, 'gateway', key)));
    if (r.n === 0) continue;
    const ok = r.median <= CROSS_NODE_P99_TARGET;
    total++;
    if (ok) met++;
    const blanks = present.map((d) => (d === 'cluster' ? ratioCell(r) : ''));
    lines.push(`| dialogs ${rate}/s: our cross-node p99 ÷ our single-node p99 | ${blanks.join(' | ')} |  | ≤ ${CROSS_NODE_P99_TARGET}x ${verdict(ok)} |`);
  }
  const lostBy = present.map((d) => String(runs.filter((r) => r.server === d).reduce((s, r) => s + r.lost, 0)));
  const lostOk = lost === 0 && failures.length === 0;
  total++;
  if (lostOk) met++;
  lines.push(`| lost messages (every CHAT to every client, every DIALOG delivered once), all repetitions | ${lostBy.join(' | ')} |  | 0 ${verdict(lostOk)} |`);
  lines.push('');
  lines.push(`**Targets met: ${met} of ${total}.**`);
  lines.push('');
  lines.push('Context (medians): CPU in % of one core of the nodes together, of redis-server (INFO), of the load generator; CPU of processes outside the bench (cores); GC pauses of the nodes (ms); Redis commands per broadcast or per round trip (INFO commandstats).');
  lines.push('');
  const cheader = ['phase', ...present.map((d) => `${label(d)}: nodes % / redis % / loadgen % / foreign cores / GC ms`)];
  lines.push(`| ${cheader.join(' | ')} |`);
  lines.push(`|${cheader.map(() => '---').join('|')}|`);
  const phases = [connect, broadcast, ...rates.map((rate) => phaseOf(runs, 'dialog', rate))].filter((p): p is string => !!p);
  for (const phase of phases) {
    const row = [phase];
    for (const d of present) {
      const med = (metric: string) => fmt(spread([...values(runs, d, `${phase}.${metric}`).values()]).median);
      row.push([med('serverCpuPct'), med('redisInfoCpuPct'), med('loadgenCpuPct'), med('foreignCores'), med('gcMs')].join(' / '));
    }
    lines.push(`| ${row.join(' | ')} |`);
  }
  lines.push('');
  const detail = ['phase', 'metric', ...present.map(label)];
  lines.push(`| ${detail.join(' | ')} |`);
  lines.push(`|${detail.map(() => '---').join('|')}|`);
  const line = (phase: string, what: string, f: (d: string) => string) => lines.push(`| ${phase} | ${what} | ${present.map(f).join(' | ')} |`);
  if (connect) line(connect, 'nodes CPU per connection, presence fan-out included (µs)', (d) => cell(spread([...values(runs, d, `${connect}.cpuPerConnUs`).values()])));
  if (broadcast) {
    line(broadcast, 'CPU per delivered message, the nodes only (µs)', (d) => cell(spread([...values(runs, d, `${broadcast}.cpuPerMsgUs`).values()])));
    line(broadcast, 'fan-out completion p50 / p99 (ms)', (d) => `${fmt(spread([...values(runs, d, `${broadcast}.fanoutP50Ms`).values()]).median)} / ${fmt(spread([...values(runs, d, `${broadcast}.fanoutP99Ms`).values()]).median)}`);
    line(broadcast, 'Redis commands per broadcast', (d) => (d === 'gateway' ? '–' : commands(runs, d, broadcast, (p) => Number(p.messages))));
    line(broadcast, 'Redis time in commands per broadcast (µs, commandstats)', (d) => (d === 'gateway' ? '–' : commands(runs, d, broadcast, (p) => Number(p.messages), 'redisUsec')));
  }
  for (const rate of rates) {
    const phase = phaseOf(runs, 'dialog', rate);
    if (!phase) continue;
    line(phase, 'CPU per round trip, the nodes only (µs)', (d) => cell(spread([...values(runs, d, `${phase}.cpuPerRtUs`).values()])));
    line(phase, 'Redis CPU per round trip (µs)', (d) => cell(spread([...values(runs, d, `${phase}.redisCpuPerRtUs`).values()])));
    line(phase, 'Redis commands per round trip', (d) => (d === 'gateway' ? '–' : commands(runs, d, phase, (p) => Number(p.measured))));
    line(phase, 'Redis time in commands per round trip (µs, commandstats)', (d) => (d === 'gateway' ? '–' : commands(runs, d, phase, (p) => Number(p.measured), 'redisUsec')));
    line(phase, 'round trip max (ms) / achieved send rate (/s)', (d) => `${fmt(spread([...values(runs, d, `${phase}.maxMs`).values()]).median)} / ${fmt(spread([...values(runs, d, `${phase}.sentPerSec`).values()]).median)}`);
  }
  lines.push(...failureLines(failures));
  lines.push('');
  return lines.join('\n');
}

/** --render of a --cluster result: writes latest-cluster.md again; false when the file is another kind of result. */
export function renderClusterFile(file: string): boolean {
  const result = JSON.parse(readFileSync(file, 'utf8')) as SuiteResult;
  if (typeof result.mode !== 'string' || !result.mode.startsWith('cluster')) return false;
  const md = renderCluster(result, basename(file));
  writeFileSync(join(RESULTS, 'latest-cluster.md'), md);
  process.stdout.write(md);
  return true;
}

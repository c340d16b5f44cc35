/** The hostile-clients section of latest.md: legitimate dialogs without and with the attackers, per server. */
import { spread } from '../common/stats';
import type { RunRecord, SuiteResult } from '../report';
import { byRep, cell, fmt, ratioCell } from './format';

/** The issue's target: the attacked p99 at most this many times the quiet p99 of the same run. */
export const HOSTILE_P99_TARGET = 1.5;

const LABEL: Record<string, string> = { gateway: 'ours', ws: 'raw ws (no defences)' };

export function renderHostile(result: SuiteResult): string[] {
  const runs = result.runs.filter((r) => r.scenario === 'hostile');
  if (runs.length === 0 && !result.hostile) return [];
  const lines: string[] = ['', '## Hostile clients (issue 10): legitimate dialogs without and with four attackers', ''];
  const plan = (result.hostile?.plan ?? {}) as Record<string, number | string[]>;
  const limits = result.hostile?.limits ?? {};
  const num = (k: string) => Number(plan[k]);
  lines.push(
    `${num('online')} legitimate users online, dialogs at ${num('rate')}/s between random pairs (${fmt(num('rate') / num('online'))} frames/s per user on average, ` +
      `against a rate limit of ${limits.rateLimitPerSec}/s with a burst of ${limits.rateLimitBurst}); ${num('rounds')} rounds of a quiet window then an attacked window, ` +
      `${fmt(num('windowMs') / 1000)} s measured each (the attacked ones after a ${fmt(num('rampMs') / 1000)} s ramp), the round trips of each side pooled. ` +
      `Attackers, each its own process, reconnecting 20 ms after a close: ${num('preauth')} without a token (${limits.preAuthMaxFrameBytes}-byte frames nested as deep as they go, ` +
      `then one byte over: 1009), ${num('joined')} logged in (${limits.maxMessageFrameBytes}-byte frames nested as deep as they go and of many small values, ` +
      `${fmt((limits.maxFrameBytes - 1024) / 1e6)} MB SAVE_AVATAR frames of escaped quotes and of \`[\`), as fast as their sockets drain. ` +
      `Our gateway runs with the defaults of every limit (${result.hostile?.limitsSource ?? '?'}): ` +
      `RATE_LIMIT_PER_SEC ${limits.rateLimitPerSec}, RATE_LIMIT_BURST ${limits.rateLimitBurst}, INBOUND_BYTES_PER_SEC ${limits.inboundBytesPerSec}, ` +
      `PRE_AUTH_MAX_FRAME_BYTES ${limits.preAuthMaxFrameBytes}, MAX_MESSAGE_FRAME_BYTES ${limits.maxMessageFrameBytes}, MAX_FRAME_BYTES ${limits.maxFrameBytes}, ` +
      `MAX_JSON_DEPTH ${limits.maxJsonDepth}, INBOUND_QUEUE_MAX_BYTES ${limits.inboundQueueMaxBytes}, MAX_CONNECTIONS ${limits.maxConnections}.`,
  );
  lines.push('');
  if (runs.length === 0) {
    lines.push('Not run.');
    return lines;
  }
  const servers = [...new Set(runs.map((r) => r.server))];
  const key = Object.keys(runs[0].metrics).find((k) => k.startsWith('hostile@'))?.replace(/\.[^.]*$/, '') ?? 'hostile';
  const header = ['metric', ...servers.map((s) => LABEL[s] ?? s), 'target'];
  lines.push(`| ${header.join(' | ')} |`);
  lines.push(`|${header.map(() => '---').join('|')}|`);
  const values = (s: string, metric: string) => spread([...byRep(runs, s, `${key}.${metric}`).values()]);
  const pair = (label: string, a: string, b: string, target = '') =>
    lines.push(`| ${label} | ${servers.map((s) => `${cell(values(s, a))} → ${cell(values(s, b))}`).join(' | ')} | ${target} |`);
  const one = (label: string, metric: string, ratio = false, target = '') =>
    lines.push(`| ${label} | ${servers.map((s) => (ratio ? ratioCell(values(s, metric)) : cell(values(s, metric)))).join(' | ')} | ${target} |`);

  pair('round trip p50, quiet → attacked (ms)', 'quietP50Ms', 'attackedP50Ms');
  pair('round trip p99, quiet → attacked (ms)', 'quietP99Ms', 'attackedP99Ms');
  pair('round trip max, quiet → attacked (ms)', 'quietMaxMs', 'attackedMaxMs');
  one('p50 attacked ÷ quiet', 'p50Ratio', true);
  const ours = values('gateway', 'p99Ratio');
  const verdict = ours.n > 0 ? `≤ ${HOSTILE_P99_TARGET}x ${ours.median <= HOSTILE_P99_TARGET ? '✓' : '✗'} (ours)` : '';
  one('**p99 attacked ÷ quiet**', 'p99Ratio', true, verdict);
  pair('round trips measured, quiet → attacked', 'quietRoundTrips', 'attackedRoundTrips');
  pair('achieved dialog rate, quiet → attacked (/s)', 'quietSentPerSec', 'attackedSentPerSec');
  pair('server CPU, quiet → attacked (% of one core)', 'quietServerCpuPct', 'attackedServerCpuPct');
  pair('server CPU per round trip, quiet → attacked (µs)', 'quietCpuPerRtUs', 'attackedCpuPerRtUs');
  pair('server RSS, at start → peak while attacked (MiB)', 'baseRssMiB', 'attackedRssMiB');
  one("attackers' CPU, 4 processes (% of one core)", 'attackerCpuPct');
  pair('load generator CPU, quiet → attacked (% of one core)', 'quietLoadgenCpuPct', 'attackedLoadgenCpuPct');
  pair('CPU of processes outside the bench, quiet → attacked (cores)', 'quietForeignCores', 'attackedForeignCores');
  one('attack: frames sent per second (all four)', 'attackFramesPerSec');
  one('attack: MiB handed to their sockets per second (all four; what the server does not read waits in TCP buffers)', 'attackMiBPerSec');
  pair('server: MiB read from all its sockets per second, quiet → attacked', 'quietReadMiBPerSec', 'attackedReadMiBPerSec');
  one('attack: connections opened per second', 'attackConnectionsPerSec');
  one('attack: logins per second (the two with a token)', 'attackLoginsPerSec');
  one('attack: frames received per second (answers, presence)', 'attackAnswersPerSec');
  lines.push(`| attack: closes and refusals seen by the attackers, all repetitions | ${servers.map((s) => closes(runs, s, key)).join(' | ')} |  |`);
  lines.push('');
  lines.push(
    'Ratios are computed within each repetition (attacked ÷ quiet of the same server process), then median [min–max].' +
      (servers.some((s) => s !== 'gateway') ? ' The baselines have no defences (no rate limit, no inbound budget, no pre-auth bound): their column is for information.' : ''),
  );
  return lines;
}

function closes(runs: RunRecord[], server: string, key: string): string {
  const total: Record<string, number> = {};
  for (const r of runs) {
    if (r.server !== server) continue;
    const attack = r.phases[`${key}/attack`] as { closes?: Record<string, number> } | undefined;
    for (const [code, n] of Object.entries(attack?.closes ?? {})) total[code] = (total[code] ?? 0) + n;
  }
  const entries = Object.entries(total).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([code, n]) => `${code}: ${n}`).join(', ') : 'none';
}

/** The events section of latest.md (issue 12): dialogs with events on NATS against ours without and raw ws. */
import { spread } from '../common/stats';
import type { RunRecord, SuiteResult } from '../report';
import { byRep, cell, fmt, ratioCell, ratios } from './format';

/** The target for dialog CPU per round trip with events on, as a ratio to raw ws. */
export const EVENTS_CPU_TARGET = 1.4;

export function renderEvents(result: SuiteResult): string[] {
  const runs = result.runs.filter((r: RunRecord) => r.server === 'events');
  if (runs.length === 0) return [];
  const phase = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))]
    .map((k) => k.slice(0, k.lastIndexOf('.')))
    .filter((p) => p.startsWith('dialog@'))
    .sort((a, b) => Number(/\/(\d+)$/.exec(b)?.[1] ?? 0) - Number(/\/(\d+)$/.exec(a)?.[1] ?? 0))[0];
  const main = result.runs.filter((r) => r.scenario === undefined && r.server !== 'cluster' && r.server !== 'events');
  const lines: string[] = ['', '## Events on NATS (issue 12): ours with `EVENTS_NATS_URL` set', ''];
  lines.push(
    'Our gateway publishing one event per login and per dialog outcome (core NATS, the default mode) to a nats-server the bench starts ' +
      '(nothing subscribes), in each repetition right after the main servers; compared with ours without events and raw ws in the main table of the same repetition.',
  );
  lines.push('');
  if (!phase) {
    lines.push(`No dialog phase ran: ${runs.flatMap((r) => r.failures).slice(0, 3).join('; ') || 'see the failures'}.`);
    return lines;
  }
  const [n, rate] = phase.slice('dialog@'.length).split('/');
  lines.push(`| dialogs ${rate}/s, N=${n} | ours, events on | ours | raw ws | events on ÷ raw | events on ÷ ours | target |`);
  lines.push('|---|---|---|---|---|---|---|');
  const rows: [string, string, number | undefined][] = [
    ['server CPU per round trip (µs)', 'cpuPerRtUs', EVENTS_CPU_TARGET],
    ['round trip p50 (ms)', 'p50Ms', undefined],
    ['round trip p99 (ms)', 'p99Ms', undefined],
    ['server CPU (% of one core)', 'serverCpuPct', undefined],
  ];
  for (const [label, metric, target] of rows) {
    const key = `${phase}.${metric}`;
    const events = byRep(runs, 'events', key);
    const ours = byRep(main, 'gateway', key);
    const raw = byRep(main, 'ws', key);
    const rRaw = spread(ratios(events, raw));
    const rOurs = spread(ratios(events, ours));
    const verdict = target !== undefined && rRaw.n > 0 ? `≤ ${target}x ${rRaw.median <= target ? '✓' : '✗'}` : '';
    lines.push(`| ${label} | ${cell(spread([...events.values()]))} | ${cell(spread([...ours.values()]))} | ${cell(spread([...raw.values()]))} | ${ratioCell(rRaw)} | ${ratioCell(rOurs)} | ${verdict} |`);
  }
  const nats = spread([...byRep(runs, 'events', `${phase}.natsCpuPct`).values()]);
  const received = runs.map((r) => `${fmt(r.metrics['events.received'])} of ${fmt(r.metrics['events.expected'])}`).join(', ');
  lines.push('');
  lines.push(`nats-server CPU during the dialogs: ${cell(nats)} % of one core. Events received by NATS, per repetition: ${received || '–'} expected (one per login and per dialog, warm-up included).`);
  return lines;
}

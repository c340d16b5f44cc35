/** Cell formatting of the result tables: numbers, median [min–max], per-repetition values and ratios. */
import type { Spread } from '../common/stats';
import type { RunRecord } from '../report';

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

export function cell(s: Spread): string {
  if (s.n === 0) return '–';
  if (s.n === 1) return fmt(s.median);
  return `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`;
}

export function ratioCell(s: Spread): string {
  if (s.n === 0) return '–';
  const m = `${s.median.toFixed(2)}x`;
  return s.n === 1 ? m : `${m} [${s.min.toFixed(2)}–${s.max.toFixed(2)}]`;
}

/** Values of one metric for one server, by repetition. */
export function byRep(runs: RunRecord[], server: string, key: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of runs) if (r.server === server && Number.isFinite(r.metrics[key])) out.set(r.rep, r.metrics[key]);
  return out;
}

export function ratios(a: Map<number, number>, b: Map<number, number>): number[] {
  const out: number[] = [];
  for (const [rep, v] of a) {
    const w = b.get(rep);
    if (w !== undefined && w !== 0) out.push(v / w);
  }
  return out;
}

/** The "Failures" section of a result page (the first 40, one line each), or nothing. */
export function failureLines(failures: readonly string[]): string[] {
  if (failures.length === 0) return [];
  return ['', '## Failures', '', ...failures.slice(0, 40).map((f) => `- ${f.replace(/\n/g, ' ')}`)];
}

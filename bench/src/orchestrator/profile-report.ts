/** --profile: bench/results/profile-latest.md from the .cpuprofile files and --trace-gc logs of this run. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SERVER_LABEL, options } from '../cli/options';
import { SUITE } from '../plan';
import { summarizeProfile, summarizeTraceGc } from '../profile-summary';
import { RUN_TMP } from './paths';

export function profileReport(source: string): string {
  const names = options.clusterMode ? SUITE.clusterRuns : options.servers;
  const parts: string[] = [`# CPU profiles and GC traces: ${names.map((s) => SERVER_LABEL[s]).join(', ')} (${new Date().toISOString()})`, ''];
  if (options.clusterMode) parts.push('`--cluster --profile`: node 0 of each deployment (every cluster dialog crosses nodes, so that node plays both the sender\'s and the receiver\'s part).', '');
  parts.push(`Run record: \`bench/results/${source}\`; the .cpuprofile files stay in \`bench/results/tmp/\` (not in git).`, '');
  for (const file of readdirSync(RUN_TMP).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    parts.push(`## ${file}`, '', summarizeProfile(join(RUN_TMP, file)), '');
  }
  for (const file of readdirSync(RUN_TMP).filter((f) => f.endsWith('.log') && !f.includes('loadgen') && f !== 'auth.log')) {
    const gc = summarizeTraceGc(join(RUN_TMP, file));
    if (gc) parts.push(`## --trace-gc: ${file}`, '', gc, '');
  }
  return parts.join('\n');
}

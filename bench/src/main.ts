/**
 * The benchmark suite: our gateway (production build) against a raw `ws` baseline and a
 * Socket.IO 4 server, all three run one after another inside each repetition.
 *
 *   npm run bench                 full: 5 repetitions, N up to 10000, cluster scenario
 *   npm run bench -- --quick      quick: 1 repetition, N up to 1000 (< 3 minutes)
 *   npm run bench -- --profile    CPU profiles and GC traces of our gateway (see README)
 *   npm run bench -- --cluster    ours on 2 nodes + Redis vs Socket.IO with its Redis adapter (latest-cluster.md)
 *
 * Options: --reps K, --max-n K, --from-n K, --servers gateway,ws,sio, --no-cluster, --no-build, --keep-logs,
 * --render <result.json> (write latest.md again from a result file); see cli/options.ts.
 * Writes bench/results/<timestamp>.json and bench/results/latest.md; exits non-zero when a
 * message was lost or a scenario failed.
 *
 * Layout: cli/ (options), plan.ts (the steps), orchestrator/ (build, processes, measuring, the
 * suite), runner/ (one server run and one file per scenario), report.ts (latest.md), loadgen.ts
 * and loadgen/ (the load generator process).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { capacityOptions } from './cli/capacity-options';
import { options } from './cli/options';
import { runCapacity } from './orchestrator/capacity';
import { RESULTS } from './orchestrator/paths';
import { renderClusterFile } from './report/cluster';
import { runSuite } from './orchestrator/suite';
import { renderMarkdown, type SuiteResult } from './report';
import { renderCapacity, type CapacityResult } from './report/capacity';

/** --render <result.json>: writes bench/results/latest.md (latest-capacity.md for a capacity result) again from a result file. */
function render(file: string): void {
  if (renderClusterFile(file)) return; // a --cluster result: latest-cluster.md
  const result = JSON.parse(readFileSync(file, 'utf8')) as SuiteResult | CapacityResult;
  const capacity = result.mode === 'capacity';
  const md = capacity ? renderCapacity(result as CapacityResult, basename(file)) : renderMarkdown(result as SuiteResult, basename(file));
  writeFileSync(join(RESULTS, capacity ? 'latest-capacity.md' : 'latest.md'), md);
  process.stdout.write(md);
}

(options.render ? Promise.resolve(render(options.render)) : capacityOptions.enabled ? runCapacity() : runSuite()).catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

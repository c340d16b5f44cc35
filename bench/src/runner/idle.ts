/** idle: nothing is sent; then memory after a forced GC, per connection. */
import type { IdleResult } from '../common/messages';
import { memory } from '../orchestrator/measure';
import type { StepOf } from '../plan';
import type { ServerRun } from './server-run';

export async function idleStep(run: ServerRun, step: StepOf<'idle'>): Promise<void> {
  const online = run.online;
  const key = `idle@${online}`;
  const { result, d } = await run.measured<IdleResult>({ cmd: 'idle', durationMs: step.ms }, step.ms + 10_000, key);
  const mem = await memory(run.srv);
  const record = run.record;
  record.phases[key] = { ...result, ...d, rss: mem.rss, heapUsed: mem.heapUsed };
  record.metrics[`${key}.rssPerConnKiB`] = (mem.rss - run.base.rss) / online / 1024;
  record.metrics[`${key}.heapPerConnKiB`] = (mem.heapUsed - run.base.heapUsed) / online / 1024;
  record.metrics[`${key}.rssMiB`] = mem.rss / 2 ** 20;
  record.metrics[`${key}.cpuPct`] = (d.serverCpu / d.seconds) * 100;
  if (result.unexpectedFrames > 0 || result.closed > 0) record.failures.push(`${key}: ${result.unexpectedFrames} frames and ${result.closed} closes while idle`);
}

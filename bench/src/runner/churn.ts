/** presence churn: extra users log in and out while N stay online; everyone must see every change. */
import type { ChurnResult, LoadgenCommand } from '../common/messages';
import { log } from '../orchestrator/paths';
import { SUITE, type StepOf } from '../plan';
import type { ServerRun } from './server-run';

export async function churnStep(run: ServerRun, step: StepOf<'churn'>): Promise<void> {
  const key = `churn@${run.online}`;
  log(`${run.tag}: presence churn with ${run.online} online: ${step.storms} storms of ${step.size}`);
  // The churn users come after the largest N: u<maxN> ... u<maxN+size-1>.
  const command: LoadgenCommand = { cmd: 'churn', from: SUITE.maxN, size: step.size, storms: step.storms, concurrency: 100, timeoutMs: 60_000 };
  const { result, d } = await run.measured<ChurnResult>(command, step.storms * 130_000, key);
  const record = run.record;
  record.phases[key] = { ...result, ...d };
  run.check(key, result);
  record.metrics[`${key}.eventsPerSec`] = result.eventsPerSec;
  record.metrics[`${key}.cpuPerCycleUs`] = (d.serverCpu / (step.size * step.storms)) * 1e6;
  run.context(key, d);
}

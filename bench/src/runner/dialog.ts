/** dialogs: open loop at a fixed rate between random pairs; round trip = send to DELIVERY SUCCESS. */
import type { DialogResult, LoadgenCommand } from '../common/messages';
import { log } from '../orchestrator/paths';
import type { StepOf } from '../plan';
import type { ServerRun } from './server-run';

export async function dialogStep(run: ServerRun, step: StepOf<'dialog'>): Promise<void> {
  const key = `dialog@${run.online}/${step.rate}`;
  log(`${run.tag}: dialogs among ${run.online} at ${step.rate}/s for ${step.ms} ms`);
  const command: LoadgenCommand = { cmd: 'dialog', rate: step.rate, durationMs: step.ms, warmupMs: step.warmupMs, drainMs: 15_000, seed: 1000 + run.rep };
  const { result, d } = await run.measured<DialogResult>(command, step.ms + step.warmupMs + 60_000, key);
  const record = run.record;
  record.phases[key] = { ...result, ...d };
  run.check(key, result);
  if (result.deliveryErrors > 0) record.failures.push(`${key}: ${result.deliveryErrors} DELIVERY ERROR (reported as not delivered)`);
  const roundTrips = Math.max(1, result.measured);
  record.metrics[`${key}.p50Ms`] = result.p50Ms;
  record.metrics[`${key}.p99Ms`] = result.p99Ms;
  record.metrics[`${key}.maxMs`] = result.maxMs;
  record.metrics[`${key}.cpuPerRtUs`] = (d.serverCpu / roundTrips) * 1e6;
  record.metrics[`${key}.sentPerSec`] = result.sentPerSec;
  run.context(key, d);
}

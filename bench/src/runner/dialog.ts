/** dialogs: open loop at a fixed rate between random pairs; round trip = send to DELIVERY SUCCESS. */
import type { DialogResult, LoadgenCommand } from '../common/messages';
import { deploymentCpu, redisCallTotal, settle } from '../orchestrator/measure';
import { log } from '../orchestrator/paths';
import type { StepOf } from '../plan';
import type { ServerRun } from './server-run';

export async function dialogStep(run: ServerRun, step: StepOf<'dialog'>): Promise<void> {
  const key = `dialog@${run.online}/${step.rate}`;
  log(`${run.tag}: ${run.srv.urls.length > 1 ? 'cross-node ' : ''}dialogs among ${run.online} at ${step.rate}/s for ${step.ms} ms`);
  // On a cluster every dialog crosses nodes (sender on one node, receiver on another).
  const crossNode = run.srv.urls.length > 1;
  const command: LoadgenCommand = { cmd: 'dialog', rate: step.rate, durationMs: step.ms, warmupMs: step.warmupMs, drainMs: 15_000, seed: 1000 + run.rep, crossNode };
  await settle(run.srv);
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
  // Every process of the deployment (the nodes and the redis-server of a cluster).
  record.metrics[`${key}.cpuPerRtAllUs`] = (deploymentCpu(d) / roundTrips) * 1e6;
  if (Number.isFinite(d.redisCpu)) {
    record.metrics[`${key}.redisCpuPerRtUs`] = (d.redisCpu / roundTrips) * 1e6;
    record.metrics[`${key}.redisCallsPerRt`] = redisCallTotal(d) / roundTrips;
  }
  record.metrics[`${key}.sentPerSec`] = result.sentPerSec;
  run.context(key, d);
}

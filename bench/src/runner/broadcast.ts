/** broadcast: CHAT messages, a few in flight, each complete when every online client got it. */
import type { BroadcastResult } from '../common/messages';
import { deploymentCpu, redisCallTotal } from '../orchestrator/measure';
import { log } from '../orchestrator/paths';
import type { StepOf } from '../plan';
import type { ServerRun } from './server-run';

export async function broadcastStep(run: ServerRun, step: StepOf<'broadcast'>): Promise<void> {
  const key = `broadcast@${run.online}`;
  log(`${run.tag}: broadcast to ${run.online}: ${step.messages} messages, ${step.window} in flight`);
  const { result, d } = await run.measured<BroadcastResult>({ cmd: 'broadcast', messages: step.messages, window: step.window, timeoutMs: 180_000 }, 400_000, key);
  const record = run.record;
  record.phases[key] = { ...result, ...d };
  run.check(key, result);
  record.metrics[`${key}.deliveredPerSec`] = result.deliveredPerSec;
  record.metrics[`${key}.cpuPerMsgUs`] = (d.serverCpu / result.delivered) * 1e6;
  // Every process of the deployment (the nodes and the redis-server of a cluster).
  record.metrics[`${key}.cpuPerMsgAllUs`] = (deploymentCpu(d) / result.delivered) * 1e6;
  if (Number.isFinite(d.redisCpu)) {
    // Per broadcast (one CHAT, delivered to all N): Redis's work is per PUBLISH, not per receiver.
    record.metrics[`${key}.redisCpuPerBcUs`] = (d.redisCpu / result.messages) * 1e6;
    record.metrics[`${key}.redisCallsPerBc`] = redisCallTotal(d) / result.messages;
  }
  record.metrics[`${key}.fanoutP50Ms`] = result.fanoutP50Ms;
  record.metrics[`${key}.fanoutP99Ms`] = result.fanoutP99Ms;
  run.context(key, d);
}

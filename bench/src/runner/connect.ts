/** connect: N clients log in (at most 100 handshakes in flight) until everyone knows everyone online. */
import type { ConnectResult } from '../common/messages';
import { log } from '../orchestrator/paths';
import type { StepOf } from '../plan';
import type { ServerRun } from './server-run';

export async function connectStep(run: ServerRun, step: StepOf<'connect'>): Promise<void> {
  const from = run.online;
  const key = `connect@${from}-${step.to}`;
  // Bounded by the work: every login sends a CONNECT to everyone online (N²/2 frames in all).
  const frames = (step.to * step.to - from * from) / 2;
  const timeoutMs = Math.min(3_600_000, 60_000 + 40 * (step.to - from) + frames * 0.1);
  log(`${run.tag}: connecting ${from} -> ${step.to}`);
  const { result, d } = await run.measured<ConnectResult>({ cmd: 'connect', from, to: step.to, concurrency: 100, timeoutMs }, timeoutMs + 30_000, key);
  const record = run.record;
  record.phases[key] = { ...result, ...d };
  run.check(key, result);
  if (result.connected !== step.to - from) throw new Error(`${key}: only ${result.connected} of ${step.to - from} connections authenticated: ${result.failures.slice(0, 3).join('; ')}`);
  run.online = step.to;
  if (step.measure) {
    record.metrics[`${key}.connPerSec`] = result.rate;
    record.metrics[`${key}.cpuPerConnUs`] = (d.serverCpu / result.connected) * 1e6;
    record.metrics[`${key}.settleSec`] = d.seconds;
    run.context(key, d);
  }
}

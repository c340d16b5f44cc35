/**
 * The events scenario (issue 12): our gateway with events on NATS, the dialog steps of the plan
 * (connect, then dialogs at 5000/s), and a check that NATS received one event per fact: one per
 * login and one per dialog (its DELIVERY outcome), none lost. Its dialog CPU per round trip is
 * compared with raw ws's of the same repetition in the report (target ≤ 1.4x).
 */
import type { DialogResult } from '../common/messages';
import { log } from '../orchestrator/paths';
import { natsInMsgs, startEventsGateway } from '../orchestrator/servers';
import type { Step } from '../plan';
import type { RunRecord } from '../report';
import { runServer, type RunContext, type ServerRun } from './server-run';

async function checkEvents(run: ServerRun): Promise<void> {
  const monitorUrl = run.srv.natsMonitorUrl;
  if (!monitorUrl) throw new Error('events scenario without a nats-server');
  const dialogs = Object.values(run.record.phases).reduce<number>((sum, phase) => sum + ((phase as Partial<DialogResult>).sent ?? 0), 0);
  const expected = run.online + dialogs;
  // Published off the frame path, one flush per event-loop turn: give the last ones a moment.
  const deadline = Date.now() + 5000;
  let received = await natsInMsgs(monitorUrl);
  while (received < expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    received = await natsInMsgs(monitorUrl);
  }
  run.record.metrics['events.expected'] = expected;
  run.record.metrics['events.received'] = received;
  log(`${run.tag}: NATS received ${received} events for ${run.online} logins and ${dialogs} dialogs`);
  if (received < expected) run.record.failures.push(`events: NATS received ${received} of ${expected} events (${expected - received} lost)`);
}

export function runEvents(rep: number, ctx: RunContext, steps: Step[]): Promise<RunRecord> {
  return runServer('events', rep, ctx, steps, () => startEventsGateway(ctx.authUrl, `rep${rep}-events`), checkEvents);
}

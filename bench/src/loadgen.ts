/**
 * The load generator: its own process (forked by the orchestrator), driving N authenticated
 * connections with the `ws` client (our gateway and the raw baseline) or socket.io-client.
 *
 * It checks what it receives, cheaply enough for 10k connections: every client keeps a bitset
 * of the users it knows to be online (AUTH userList + CONNECT - DISCONNECT), every CHAT and
 * DIALOG is counted per message and per client. Whatever was sent and is neither received nor
 * reported as not delivered is a lost message.
 *
 * Commands come over IPC (see common/messages.ts); every wait is bounded in time. This file is the
 * IPC side; the scenarios are in loadgen/ (connect, broadcast, dialog, churn), what a client
 * receives in loadgen/frames.ts.
 */
import type { IdleResult, LoadgenCommand } from './common/messages';
import { broadcast } from './loadgen/broadcast';
import { handleCapacity } from './loadgen/capacity';
import { churn } from './loadgen/churn';
import { connect } from './loadgen/connect';
import { runDialogs } from './loadgen/dialog';
import { clients, counters, session, sleep } from './loadgen/state';

let nextMark = 1;
const markWaiters = new Map<number, () => void>();

/** Asks the orchestrator to take its measurement snapshot now; resolves once it did. */
function mark(): Promise<void> {
  const id = nextMark++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      markWaiters.delete(id);
      resolve();
    }, 5000);
    markWaiters.set(id, () => {
      clearTimeout(timer);
      resolve();
    });
    process.send?.({ mark: id });
  });
}

async function handle(command: LoadgenCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'init':
      session.init = command.init;
      session.bitsetBytes = Math.ceil(command.init.maxUsers / 8);
      return { pid: process.pid };
    case 'connect':
      return connect(command.from, command.to, command.concurrency, command.timeoutMs, mark);
    case 'broadcast':
      return broadcast(command.messages, command.window, command.timeoutMs, mark);
    case 'dialog':
      return runDialogs(command.rate, command.durationMs, command.warmupMs, command.drainMs, command.seed, mark, command.samples, command.crossNode);
    case 'churn':
      return churn(command.from, command.size, command.storms, command.concurrency, command.timeoutMs);
    case 'idle': {
      const before = counters.framesSeen;
      const closedBefore = counters.unexpectedCloses;
      await sleep(command.durationMs);
      const r: IdleResult = { unexpectedFrames: counters.framesSeen - before, closed: counters.unexpectedCloses - closedBefore };
      return r;
    }
    case 'exit':
      session.shuttingDown = true;
      for (const c of clients.values()) {
        c.ws?.terminate();
        c.sio?.disconnect();
      }
      setTimeout(() => process.exit(0), 100);
      return { duplicates: counters.duplicates, anomalies: counters.anomalies, unexpectedFrames: counters.unexpectedFrames, unexpectedCloses: counters.unexpectedCloses };
    default:
      return handleCapacity(command);
  }
}

process.on('message', (message: { id?: number; markAck?: number } & Partial<LoadgenCommand>) => {
  if (message.markAck !== undefined) {
    markWaiters.get(message.markAck)?.();
    markWaiters.delete(message.markAck);
    return;
  }
  const id = message.id ?? 0;
  handle(message as LoadgenCommand).then(
    (result) => process.send?.({ id, ok: true, result }),
    (err: unknown) => process.send?.({ id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));

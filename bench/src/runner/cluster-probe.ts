/** Before a cluster scenario: four users on two nodes; do they see each other, does a CHAT and a DIALOG cross? */
import type { BroadcastResult, ConnectResult, DialogResult } from '../common/messages';
import { Loadgen } from '../orchestrator/loadgen-client';
import { startCluster, stopServer, type Server } from '../orchestrator/servers';
import { SUITE } from '../plan';
import type { RunContext } from './server-run';

/**
 * Undefined when the cluster works; else why the cluster scenario is skipped. `start`: the
 * cluster to probe (ours by default; --cluster probes Socket.IO's too).
 */
export async function probeCluster(ctx: RunContext, start: (tag: string) => Promise<Server> = (tag) => startCluster(ctx.authUrl, tag), tag = 'cluster-probe'): Promise<string | undefined> {
  let server: Server | undefined;
  let loadgen: Loadgen | undefined;
  try {
    server = await start(tag);
    loadgen = Loadgen.start(tag);
    await loadgen.send({ cmd: 'init', init: { kind: server.kind, urls: server.urls, tokens: ctx.tokens, maxUsers: SUITE.totalUsers } }, 10_000);
    const c = await loadgen.send<ConnectResult>({ cmd: 'connect', from: 0, to: 4, concurrency: 1, timeoutMs: 8000 }, 30_000);
    if (c.connected !== 4) return `logins on two nodes failed: ${c.failures.slice(0, 2).join('; ')}`;
    if (c.failures.length) return `users on one node do not see the users of the other (presence across nodes): ${c.failures[0]}`;
    const b = await loadgen.send<BroadcastResult>({ cmd: 'broadcast', messages: 5, window: 1, timeoutMs: 5000 }, 30_000);
    if (b.lost > 0) return `CHAT does not cross nodes (${b.lost} of ${b.expected + 20} deliveries missing)`;
    const d = await loadgen.send<DialogResult>({ cmd: 'dialog', rate: 20, durationMs: 1000, warmupMs: 0, drainMs: 8000, seed: 7, crossNode: true }, 30_000);
    if (d.deliveryErrors > 0 || d.lost > 0) return `DIALOG across nodes fails (${d.deliveryErrors} DELIVERY ERROR, ${d.lost} lost of ${d.sent})`;
    return undefined;
  } catch (err) {
    return `cluster start or probe failed: ${(err instanceof Error ? err.message : String(err)).split('\n').slice(0, 6).join(' | ')}`;
  } finally {
    await stopServer(server);
    await loadgen?.exit();
  }
}

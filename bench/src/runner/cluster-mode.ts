/**
 * --cluster (issue 13): the cluster comparison. Ours on one node, ours on two nodes on one Redis
 * and Socket.IO on two nodes with @socket.io/redis-adapter run the same steps (clusterModePlan)
 * one after another in each repetition, the order rotating; each cluster is probed first and
 * skipped, with the reason, when its nodes do not work together.
 */
import { SERVER_LABEL, type RunName } from '../cli/options';
import { log } from '../orchestrator/paths';
import { startCluster, startServer, startSioCluster, type Server } from '../orchestrator/servers';
import { SUITE } from '../plan';
import type { RunRecord } from '../report';
import { probeCluster } from './cluster-probe';
import { runServer, type RunContext } from './server-run';

function starter(name: RunName, ctx: RunContext): (tag: string) => Promise<Server> {
  switch (name) {
    case 'cluster':
      return (tag) => startCluster(ctx.authUrl, tag);
    case 'sio-cluster':
      return (tag) => startSioCluster(ctx.authUrl, tag);
    case 'gateway':
      return (tag) => startServer('gateway', ctx.authUrl, tag);
    default:
      throw new Error(`--cluster does not run ${name}`);
  }
}

/** Runs the comparison's repetitions into `runs`; returns why a deployment was skipped, by name. */
export async function runClusterComparison(ctx: RunContext, reps: number, runs: RunRecord[]): Promise<Record<string, string>> {
  const notes: Record<string, string> = {};
  for (const name of SUITE.clusterRuns.filter((n) => n !== 'gateway')) {
    log(`cluster: probing ${SERVER_LABEL[name]}`);
    const note = await probeCluster(ctx, starter(name, ctx), `probe-${name}`);
    if (note) {
      notes[name] = note;
      log(`cluster: ${SERVER_LABEL[name]} SKIPPED: ${note}`);
    }
  }
  const names = SUITE.clusterRuns.filter((n) => !notes[n]);
  for (let rep = 0; rep < reps; rep++) {
    // Rotate the order so that no deployment always runs first (or last) in a repetition.
    const order = names.map((_, i) => names[(i + rep) % names.length]);
    for (const name of order) {
      const start = starter(name, ctx);
      const record = await runServer(name, rep, ctx, SUITE.clusterSteps, () => start(`rep${rep}-${name}`));
      record.scenario = 'cluster';
      runs.push(record);
    }
  }
  return notes;
}

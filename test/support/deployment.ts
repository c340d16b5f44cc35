import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type TestGateway } from './gateway';

/** The engines the protocol suite runs against: one suite, run once per engine. */
export type EngineKind = 'memory' | 'redis';

export const ENGINES: EngineKind[] = (process.env.E2E_ENGINES ?? 'memory,redis').split(',').map((e) => e.trim()) as EngineKind[];

/**
 * A deployment under test: one node (memory engine) or several nodes on one Redis. Tests reach
 * "node i" through `wsUrl(i)`; in a one-node deployment every i is that node, so the same test
 * spreads its clients over the nodes of a cluster and stays valid on one node.
 */
export interface Deployment {
  engine: EngineKind;
  nodes: TestGateway[];
  wsUrl(i?: number): string;
  httpUrl(i?: number): string;
  /** All log lines of all nodes. */
  logs(): string[];
  close(): Promise<void>;
}

export async function startDeployment(engine: EngineKind, env: Record<string, string> = {}): Promise<Deployment> {
  if (engine === 'memory') {
    const node = await startGateway(env);
    return wrap(engine, [node], async () => node.close());
  }
  // Cluster mode: provided by the Redis engine (test/support/cluster.ts).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startClusterDeployment } = require('./cluster') as {
    startClusterDeployment: (env: Record<string, string>) => Promise<Deployment>;
  };
  return startClusterDeployment(env);
}

export function wrap(engine: EngineKind, nodes: TestGateway[], close: () => Promise<void>): Deployment {
  return {
    engine,
    nodes,
    wsUrl: (i = 0) => nodes[i % nodes.length].wsUrl,
    httpUrl: (i = 0) => nodes[i % nodes.length].httpUrl,
    logs: () => nodes.flatMap((n) => n.logs),
    close,
  };
}

/** A fresh shared avatar directory for the nodes of one deployment. */
export function sharedAvatarDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'gw-shared-avatars-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

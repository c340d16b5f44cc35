/** CPU, GC and memory readings of the processes of one run, taken around each measured phase. */
import { performance } from 'node:perf_hooks';
import { cpuSeconds, machineCpu, processCpu } from '../common/proc';
import { hook, type Child } from '../procs';
import type { Loadgen } from './loadgen-client';
import { redisStats, type RedisStats, type Server } from './servers';

export interface Snapshot {
  t: number;
  server: number;
  /** Kernel part of `server`. */
  serverSystem: number;
  loadgen: number;
  others: number;
  /** redis-server in cluster mode. */
  extra: number;
  machineBusy: number;
  gcCount: number;
  gcMs: number;
  gcMaxMs: number;
  /** The deployment's redis-server, from its INFO (cluster runs). */
  redis?: RedisStats;
}

type GcStats = { count: number; totalMs: number; maxMs: number };

export async function snapshot(server: Server, loadgen: Loadgen, others: Child[]): Promise<Snapshot> {
  const gcs = await Promise.all(server.nodes.map((n) => hook<{ gc: GcStats }>(n, { bench: 'gcstats' }).then((r) => r.gc).catch(() => ({ count: 0, totalMs: 0, maxMs: 0 }))));
  const redis = server.redisInfo ? await redisStats(server.redisInfo).catch(() => undefined) : undefined;
  return {
    redis,
    t: performance.now(),
    server: server.nodes.reduce((s, n) => s + cpuSeconds(n.pid), 0),
    serverSystem: server.nodes.reduce((s, n) => s + (processCpu(n.pid)?.system ?? 0), 0),
    loadgen: cpuSeconds(loadgen.child.pid),
    others: others.reduce((s, n) => s + cpuSeconds(n.pid), 0),
    extra: server.extra.reduce((s, n) => s + cpuSeconds(n.pid), 0),
    machineBusy: machineCpu().busy,
    gcCount: gcs.reduce((s, g) => s + g.count, 0),
    gcMs: gcs.reduce((s, g) => s + g.totalMs, 0),
    gcMaxMs: Math.max(...gcs.map((g) => g.maxMs)),
  };
}

export interface Delta {
  seconds: number;
  serverCpu: number;
  serverSystemCpu: number;
  loadgenCpu: number;
  extraCpu: number;
  /** CPU (cores) used by processes that are not the bench's: the other engineers' load. */
  foreignCores: number;
  gcCount: number;
  gcMs: number;
  /** redis-server CPU from its INFO (µs resolution); NaN without one. */
  redisCpu: number;
  /** Redis commands called during the phase, by command (INFO commandstats; the INFO calls themselves left out). */
  redisCalls: Record<string, number>;
  /** µs spent in each command during the phase (commandstats usec). */
  redisUsec: Record<string, number>;
}

export function delta(a: Snapshot, b: Snapshot): Delta {
  const seconds = (b.t - a.t) / 1000;
  const ours = b.server - a.server + (b.loadgen - a.loadgen) + (b.others - a.others) + (b.extra - a.extra);
  return {
    seconds,
    serverCpu: b.server - a.server,
    serverSystemCpu: b.serverSystem - a.serverSystem,
    loadgenCpu: b.loadgen - a.loadgen,
    extraCpu: b.extra - a.extra,
    foreignCores: Math.max(0, (b.machineBusy - a.machineBusy - ours) / seconds),
    gcCount: b.gcCount - a.gcCount,
    gcMs: b.gcMs - a.gcMs,
    redisCpu: a.redis && b.redis ? b.redis.cpu - a.redis.cpu : NaN,
    redisCalls: a.redis && b.redis ? callsBetween(a.redis.calls, b.redis.calls, 1) : {},
    redisUsec: a.redis && b.redis ? callsBetween(a.redis.usec, b.redis.usec, 0) : {},
  };
}

/** b - a per command; `ownInfo`: what the bench's own INFO calls add (one call: the snapshot 'a', counted once it ran). */
function callsBetween(a: Record<string, number>, b: Record<string, number>, ownInfo: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cmd, n] of Object.entries(b)) {
    const d = n - (a[cmd] ?? 0) - (cmd === 'info' ? ownInfo : 0);
    if (d > 0) out[cmd] = d;
  }
  return out;
}

/** Redis commands of a phase, all commands together. */
export function redisCallTotal(d: Delta): number {
  return Object.values(d.redisCalls).reduce((a, b) => a + b, 0);
}

/** CPU of every process of the deployment: its nodes and its redis-server (INFO's CPU when there is one, /proc otherwise). */
export function deploymentCpu(d: Delta): number {
  return d.serverCpu + (Number.isFinite(d.redisCpu) ? d.redisCpu : d.extraCpu);
}

export async function memory(server: Server): Promise<{ rss: number; heapUsed: number; youngGen: number }> {
  const mems = await Promise.all(server.nodes.map((n) => hook<{ rss: number; heapUsed: number; youngGen?: number }>(n, { bench: 'mem' })));
  return { rss: mems.reduce((s, m) => s + m.rss, 0), heapUsed: mems.reduce((s, m) => s + m.heapUsed, 0), youngGen: mems.reduce((s, m) => s + (m.youngGen ?? 0), 0) };
}

/**
 * Starts a measured phase on a settled heap: every node of the server collects the garbage the
 * phases before left (the gc-hook's forced collections, the same in every server), so that a
 * short phase is not charged for the collection of another phase's garbage. Without it, the 3 s
 * dialog phase at 1000/s of `--quick`, right after the broadcast phase, measured that collection
 * (V8's background threads alone used 107 ms of ours and 63 ms of raw ws's CPU in 2.4 s of it,
 * 12 and 28 ms in the phase at 5000/s that follows).
 */
export async function settle(server: Server): Promise<void> {
  await memory(server);
}

/**
 * Command-line options of `npm run bench` (after `--`); see bench/README.md.
 *
 *   --quick, --profile, --reps K, --max-n K, --from-n K, --servers gateway,ws,sio, --no-cluster,
 *   --no-build, --keep-logs, --render <result.json>,
 *   --no-hostile, --hostile-only, --hostile-servers gateway,ws, --no-events, --cluster
 */
export type ServerName = 'gateway' | 'ws' | 'sio';
/** What one run of the suite runs: a server of the main table, or a deployment of a scenario of its own. */
export type RunName = ServerName | 'cluster' | 'sio-cluster' | 'events';

export interface Options {
  quick: boolean;
  profile: boolean;
  reps: number;
  servers: ServerName[];
  cluster: boolean;
  build: boolean;
  keepLogs: boolean;
  /** --max-n K: drop the steps above K connections. */
  maxN?: number;
  /** --from-n K: start at the first step that connects K or more. */
  fromN?: number;
  /** --render <result.json>: write latest.md again from a result file, run nothing. */
  render?: string;
  /** The hostile-clients scenario (issue 10): on unless --no-hostile, --profile or --from-n. */
  hostile: boolean;
  /** --hostile-only: that scenario alone (no other scenario, no cluster). */
  hostileOnly: boolean;
  /** --hostile-servers: whom it attacks (gateway by default; raw ws, which has no defences, for information). */
  hostileServers: ServerName[];
  /**
   * The events scenario (issue 12): dialogs at 5000/s on our gateway with events on, published to
   * a nats-server the bench starts; on unless --no-events, --hostile-only or --from-n (with
   * --profile, its dialog phase is profiled too).
   */
  events: boolean;
  /**
   * --cluster (issue 13): the cluster comparison alone: ours on one node, ours on two nodes on one
   * Redis, Socket.IO on two nodes with @socket.io/redis-adapter (without 'sio' in --servers: ours
   * only); no main table, events or hostile clients. Writes latest-cluster.md.
   */
  clusterMode: boolean;
}

export function parseOptions(args: readonly string[]): Options {
  const flag = (name: string) => args.includes(name);
  const option = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const number = (name: string) => (option(name) === undefined ? undefined : Number(option(name)));
  const quick = flag('--quick');
  const profile = flag('--profile');
  const hostileOnly = flag('--hostile-only');
  // With --profile: node 0 of each deployment is profiled (profile-cluster-latest.md).
  const clusterMode = flag('--cluster') && !hostileOnly;
  return {
    quick,
    profile,
    // --cluster: 3 repetitions by default (about 9 minutes on this 2-core VM; see bench/README.md).
    reps: Number(option('--reps') ?? (quick || profile ? 1 : clusterMode ? 3 : 5)),
    servers: (option('--servers') ?? (profile && !clusterMode ? 'gateway' : 'gateway,ws,sio')).split(',') as ServerName[],
    cluster: !flag('--no-cluster') && !profile,
    build: !flag('--no-build'),
    keepLogs: flag('--keep-logs') || profile,
    maxN: number('--max-n'),
    fromN: number('--from-n'),
    render: option('--render'),
    hostile: hostileOnly || (!flag('--no-hostile') && !profile && !clusterMode && number('--from-n') === undefined),
    hostileOnly,
    hostileServers: (option('--hostile-servers') ?? 'gateway').split(',') as ServerName[],
    events: !flag('--no-events') && !hostileOnly && !clusterMode && number('--from-n') === undefined,
    clusterMode,
  };
}

export const options: Options = parseOptions(process.argv.slice(2));

export const SERVER_LABEL: Record<RunName, string> = {
  gateway: 'ours',
  ws: 'raw ws',
  sio: 'Socket.IO',
  cluster: 'ours, 2 nodes + Redis',
  'sio-cluster': 'Socket.IO, 2 nodes + Redis adapter',
  events: 'ours, events on NATS',
};

/**
 * Command-line options of `npm run bench` (after `--`); see bench/README.md.
 *
 *   --quick, --profile, --reps K, --max-n K, --from-n K, --servers gateway,ws,sio, --no-cluster,
 *   --no-build, --keep-logs, --render <result.json>
 */
export type ServerName = 'gateway' | 'ws' | 'sio';

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
  return {
    quick,
    profile,
    reps: Number(option('--reps') ?? (quick || profile ? 1 : 5)),
    servers: (option('--servers') ?? (profile ? 'gateway' : 'gateway,ws,sio')).split(',') as ServerName[],
    cluster: !flag('--no-cluster') && !profile,
    build: !flag('--no-build'),
    keepLogs: flag('--keep-logs') || profile,
    maxN: number('--max-n'),
    fromN: number('--from-n'),
    render: option('--render'),
  };
}

export const options: Options = parseOptions(process.argv.slice(2));

export const SERVER_LABEL: Record<ServerName | 'cluster', string> = { gateway: 'ours', ws: 'raw ws', sio: 'Socket.IO', cluster: 'ours, 2 nodes + Redis' };

/**
 * Options of the capacity mode (`npm run bench -- --capacity`, issue 13 item 3; see bench/README.md,
 * "Capacity of one node"). Read here rather than in options.ts: the mode runs none of the suite's
 * scenarios and shares only --no-build and --keep-logs with it.
 *
 *   --capacity                  one node of ours filled with idle authenticated connections, raw ws beside it
 *   --capacity-n K              connections ours is filled with (default 19000)
 *   --capacity-raw-n K          connections raw ws is filled with, for the RSS ratio (default 10000; 0: not run)
 *   --capacity-loadgens K       load generator processes, each on its own source address 127.0.0.<2+i> (default 4)
 *   --capacity-wave K           handshakes each load generator starts together (default 50)
 *   --capacity-continuous       keep that many in flight instead of waves
 *   --capacity-probes K         sequential logins of the login-cost probe at each probe point (default 10)
 *   --capacity-chats K          CHAT broadcasts timed one after another at the end (default 3)
 *   --capacity-profile K        CPU profile of the server over the stretch of the fill that ends at K online
 *                               (bench/results/tmp/<stamp>/; implies --keep-logs)
 */
export interface CapacityOptions {
  enabled: boolean;
  n: number;
  rawN: number;
  loadgens: number;
  wave: number;
  continuous: boolean;
  probes: number;
  chats: number;
  /** Profile the stretch ending at this checkpoint (0: none). */
  profileAt: number;
}

export function parseCapacityOptions(args: readonly string[]): CapacityOptions {
  const option = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const number = (name: string, fallback: number) => {
    const v = option(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} ${v}: a whole number is expected`);
    return n;
  };
  return {
    enabled: args.includes('--capacity'),
    n: number('--capacity-n', 19_000),
    rawN: number('--capacity-raw-n', 10_000),
    loadgens: Math.max(1, number('--capacity-loadgens', 4)),
    wave: Math.max(1, number('--capacity-wave', 50)),
    continuous: args.includes('--capacity-continuous'),
    probes: number('--capacity-probes', 10),
    chats: number('--capacity-chats', 3),
    profileAt: number('--capacity-profile', 0),
  };
}

export const capacityOptions: CapacityOptions = parseCapacityOptions(process.argv.slice(2));

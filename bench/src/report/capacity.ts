/** latest-capacity.md: the capacity mode's result (orchestrator/capacity.ts) as markdown tables. */
import { failureLines, fmt } from './format';

/** One stretch of the fill, from one checkpoint to the next. */
export interface Segment {
  from: number;
  to: number;
  logins: number;
  /** From the first handshake started to the last AUTH SUCCESS. */
  loginSeconds: number;
  loginsPerSec: number;
  /** After the last AUTH SUCCESS, until every client knew exactly the users online. */
  settleSeconds: number;
  /** Server CPU of the whole stretch (presence fan-out included) per login. */
  serverCpuPerLoginMs: number;
  /** CONNECT frames sent in the stretch ÷ the server's write system calls (syscw): > 1 when a receiver's frames left together. */
  framesPerWrite: number;
  serverCpuPct: number;
  /** The kernel's (system time) share of the server's CPU, in %. */
  serverKernelPct: number;
  /** The server's GC pauses per login. */
  gcMsPerLogin: number;
  loadgenCpuPct: number;
  /** The authorization server's CPU while the logins ran (% of one core): near 100 % it would be the bottleneck. */
  authCpuPct: number;
  foreignCores: number;
}

export interface Checkpoint {
  n: number;
  rss: number;
  heapUsed: number;
  rssPerConnKiB: number;
  heapPerConnKiB: number;
  /**
   * Pages of V8's young generation (new space) after the forced GC: empty, but in RSS. V8 grows it
   * with the allocation rate up to --max-semi-space-size, whatever N: a size per process, not per
   * connection. (Absent in runs before it was recorded.)
   */
  youngGen?: number;
  /** RSS per connection without the young generation's growth since the start (informational). */
  rssPerConnNoYoungGenKiB?: number;
  /** Login cost at this N (sequential logins of fresh users, then their logouts). */
  probe?: {
    logins: number;
    /** AUTH SUCCESS payload bytes (median). */
    authBytes: number;
    /** From the handshake's start to the AUTH SUCCESS (median). */
    loginMs: number;
    /** Server CPU per login: CHECK_TOKEN, the AUTH SUCCESS, the CONNECT to the N others. */
    serverCpuPerLoginMs: number;
    /** Server CPU per logout: the DISCONNECT to the N others. */
    serverCpuPerLogoutMs: number;
  };
}

export interface CapacityRun {
  server: string;
  target: number;
  base: { rss: number; heapUsed: number; youngGen?: number };
  segments: Segment[];
  checkpoints: Checkpoint[];
  broadcasts: { n: number; received: number; expected: number; firstMs: number; lastMs: number; serverCpuMs: number }[];
  failures: string[];
  aborted?: boolean;
  seconds?: number;
}

export interface CapacityResult {
  date: string;
  mode: 'capacity';
  options: Record<string, unknown>;
  gateway: { commit: string; srcDirty: boolean; startProdFlags: string[]; flagsOverridden: boolean };
  machine: { cpu: string; cores: number; memGiB: number; node: string; openFiles: number; loadAvgStart: number[]; loadAvgEnd: number[]; busyCores: number };
  seconds: number;
  runs: CapacityRun[];
}

const LABEL: Record<string, string> = { gateway: 'ours', ws: 'raw ws' };
const kib = (bytes: number) => `${fmt(bytes / 1024)} KiB`;
const mib = (bytes: number) => fmt(bytes / 2 ** 20);
const median = (xs: number[]) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length === 0 ? NaN : v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/** The command line that runs what a result holds. */
function reproduce(o: Record<string, unknown>): string {
  const args = ['--capacity'];
  if (o.n !== 19_000) args.push('--capacity-n', String(o.n));
  if (o.rawN !== 10_000) args.push('--capacity-raw-n', String(o.rawN));
  if (o.loadgens !== 4) args.push('--capacity-loadgens', String(o.loadgens));
  if (o.wave !== 50) args.push('--capacity-wave', String(o.wave));
  if (o.continuous) args.push('--capacity-continuous');
  if (o.probes !== 10) args.push('--capacity-probes', String(o.probes));
  if (o.chats !== 3) args.push('--capacity-chats', String(o.chats));
  return `flock /tmp/bench.lock npm run bench -- ${args.join(' ')}`;
}

export function renderCapacity(result: CapacityResult, source?: string): string {
  const ours = result.runs.find((r) => r.server === 'gateway');
  const raw = result.runs.find((r) => r.server === 'ws');
  const at = (run: CapacityRun | undefined, n: number) => run?.checkpoints.find((c) => c.n === n);
  const m = result.machine;
  const o = result.options;
  const failures = result.runs.flatMap((r) => r.failures.map((f) => `${LABEL[r.server] ?? r.server}: ${f}`));
  const lines: string[] = [];
  lines.push('# Capacity of one node: idle authenticated connections');
  lines.push('');
  lines.push(`- **Date**: ${result.date}; ${fmt(result.seconds)} s in all.`);
  lines.push(`- **Machine**: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}, open files ${m.openFiles} per process (hard limit).`);
  lines.push(`- **Load** (\`/proc/loadavg\`): ${m.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} at the start, ${m.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')} at the end; ${fmt(m.busyCores)} cores busy on average, bench included.`);
  lines.push(`- **Gateway**: commit ${result.gateway.commit}${result.gateway.srcDirty ? ' with uncommitted changes in src/' : ''}, the bench's production build (memory engine, the bench's limits out of the way), node flags${result.gateway.flagsOverridden ? ' (BENCH_GATEWAY_NODE_FLAGS, not start:prod)' : ' of start:prod'}: \`${result.gateway.startProdFlags.join(' ') || '(none)'}\`.`);
  lines.push(`- **Clients**: ${String(o.loadgens)} load generator processes, source addresses 127.0.0.2–127.0.0.${1 + Number(o.loadgens)}, ${o.continuous ? `${String(o.wave)} handshakes in flight each` : `waves of ${String(o.wave)} handshakes each`}; the reference authorization server in a process of its own.`);
  lines.push(`- **Failed logins and lost frames: ${failures.length === 0 ? '0' : `${failures.length} failure(s), see below`}**.`);
  lines.push(`- Reproduce: \`${reproduce(o)}\` (see bench/README.md, "Capacity of one node").`);
  if (source) lines.push(`- Rendered from \`bench/results/${source}\`.`);
  lines.push('');

  lines.push('## Summary');
  lines.push('');
  lines.push('| metric | ours | raw ws | ours/raw | target |');
  lines.push('|---|---|---|---|---|');
  const held = (r?: CapacityRun) => (r ? fmt(r.checkpoints.at(-1)?.n ?? 0) : '–');
  lines.push(`| connections held (all authenticated, presence settled) | ${held(ours)} | ${held(raw)} |  |  |`);
  const o10 = at(ours, 10_000);
  const r10 = at(raw, 10_000);
  if (o10 || r10) {
    const ratio = o10 && r10 ? o10.rssPerConnKiB / r10.rssPerConnKiB : NaN;
    lines.push(`| RSS per connection at 10,000 (KiB) | ${fmt(o10?.rssPerConnKiB ?? NaN)} | ${fmt(r10?.rssPerConnKiB ?? NaN)} | ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '–'} | ≤ 1.0x ${Number.isFinite(ratio) ? (ratio <= 1 ? '✓' : '✗') : ''} |`);
    const hratio = o10 && r10 ? o10.heapPerConnKiB / r10.heapPerConnKiB : NaN;
    lines.push(`| heap per connection at 10,000 (KiB) | ${fmt(o10?.heapPerConnKiB ?? NaN)} | ${fmt(r10?.heapPerConnKiB ?? NaN)} | ${Number.isFinite(hratio) ? `${hratio.toFixed(2)}x` : '–'} |  |`);
    const yo = o10?.rssPerConnNoYoungGenKiB;
    const yr = r10?.rssPerConnNoYoungGenKiB;
    if (yo !== undefined || yr !== undefined) {
      const yratio = yo !== undefined && yr !== undefined ? yo / yr : NaN;
      lines.push(`| RSS per connection at 10,000 without the young generation's growth (KiB; informational) | ${fmt(yo ?? NaN)} | ${fmt(yr ?? NaN)} | ${Number.isFinite(yratio) ? `${yratio.toFixed(2)}x` : '–'} |  |`);
    }
  }
  const oTop = ours?.checkpoints.at(-1);
  if (oTop && oTop.n !== 10_000) {
    lines.push(`| RSS per connection at ${fmt(oTop.n)} (KiB) | ${fmt(oTop.rssPerConnKiB)} | – |  |  |`);
    lines.push(`| RSS of the process at ${fmt(oTop.n)} (MiB) | ${mib(oTop.rss)} | – |  |  |`);
  }
  const last = ours?.segments.at(-1);
  if (last) lines.push(`| logins/s of the last ${fmt(last.to - last.from)} (${fmt(last.from)}→${fmt(last.to)}) | ${fmt(last.loginsPerSec)} | – |  |  |`);
  const topB = ours?.broadcasts.filter((b) => b.n === oTop?.n) ?? [];
  if (topB.length) {
    lines.push(`| one CHAT to all ${fmt(topB[0].n)}: first delivery (ms, median of ${topB.length}) | ${fmt(median(topB.map((b) => b.firstMs)))} | – |  |  |`);
    lines.push(`| one CHAT to all ${fmt(topB[0].n)}: last delivery (ms, median of ${topB.length}) | ${fmt(median(topB.map((b) => b.lastMs)))} | – |  |  |`);
    lines.push(`| one CHAT to all ${fmt(topB[0].n)}: server CPU (ms, median of ${topB.length}) | ${fmt(median(topB.map((b) => b.serverCpuMs)))} | – |  |  |`);
  }
  lines.push('');

  lines.push('## Login cost versus N');
  lines.push('');
  lines.push('Every AUTH SUCCESS carries the whole online list (`userList`), so a login is O(N). At each N, fresh users log in one after another ' +
    '(each once the previous one got its AUTH SUCCESS: no batching with other logins), then log out one after another. ' +
    '*Per login*: CHECK_TOKEN, the AUTH SUCCESS and the CONNECT to the N others; *per logout*: the DISCONNECT to the N others; ' +
    'their difference is roughly the login\'s own part (CHECK_TOKEN and the AUTH SUCCESS: a CONNECT frame is ~2.5x a DISCONNECT, which the difference also holds). ' +
    'Server CPU is utime+stime of the process (`/proc/<pid>/stat`): the kernel\'s loopback work for its writes included.');
  lines.push('');
  lines.push('| N online | server | AUTH SUCCESS (bytes) | server CPU per login (ms) | per logout (ms) | login − logout (ms) | handshake to AUTH SUCCESS (ms) |');
  lines.push('|---|---|---|---|---|---|---|');
  const ns = [...new Set(result.runs.flatMap((r) => r.checkpoints.filter((c) => c.probe).map((c) => c.n)))].sort((a, b) => a - b);
  for (const n of ns) {
    for (const run of result.runs) {
      const p = at(run, n)?.probe;
      if (!p) continue;
      lines.push(`| ${fmt(n)} | ${LABEL[run.server] ?? run.server} | ${Math.round(p.authBytes).toLocaleString('en-US')} (${kib(p.authBytes)}) | ${fmt(p.serverCpuPerLoginMs)} | ${fmt(p.serverCpuPerLogoutMs)} | ${fmt(p.serverCpuPerLoginMs - p.serverCpuPerLogoutMs)} | ${fmt(p.loginMs)} |`);
    }
  }
  lines.push('');

  lines.push('## Memory');
  lines.push('');
  lines.push('After presence settled at each checkpoint, memory after a forced GC (the gc-hook); per connection = (value − value right after the start) ÷ N. ' +
    '*Young generation*: the pages of V8\'s new space, empty after the GC but part of RSS; V8 sizes it by the allocation rate (up to `--max-semi-space-size`), ' +
    'so its growth since the start is a size per process that depends on the GC history at the two points, not a cost per connection.');
  lines.push('');
  lines.push('| N | server | RSS (MiB) | RSS per connection (KiB) | heap used (MiB) | heap per connection (KiB) | young generation (MiB) |');
  lines.push('|---|---|---|---|---|---|---|');
  const young = (v?: number) => (v === undefined ? '–' : mib(v));
  for (const run of result.runs) {
    lines.push(`| 0 | ${LABEL[run.server] ?? run.server} | ${mib(run.base.rss)} | – | ${mib(run.base.heapUsed)} | – | ${young(run.base.youngGen)} |`);
    for (const c of run.checkpoints) lines.push(`| ${fmt(c.n)} | ${LABEL[run.server] ?? run.server} | ${mib(c.rss)} | ${fmt(c.rssPerConnKiB)} | ${mib(c.heapUsed)} | ${fmt(c.heapPerConnKiB)} | ${young(c.youngGen)} |`);
  }
  lines.push('');

  lines.push('## The fill');
  lines.push('');
  lines.push('*logins/s*: from the first handshake of the stretch to its last AUTH SUCCESS; *settle*: then until every client knew exactly the users online; ' +
    'server CPU per login covers the whole stretch (the CONNECT to everyone online included: the fill is O(N²) frames). ' +
    'CPU in % of one core over the stretch; the authorization server\'s while the logins ran.');
  lines.push('');
  lines.push('| server | stretch | logins/s | settle (s) | server CPU per login (ms) | GC per login (ms) | CONNECT frames per write call | server % (kernel share) | load generators % | auth server % | other processes (cores) |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const run of result.runs) {
    for (const s of run.segments) {
      lines.push(`| ${LABEL[run.server] ?? run.server} | ${fmt(s.from)}→${fmt(s.to)} | ${fmt(s.loginsPerSec)} | ${fmt(s.settleSeconds)} | ${fmt(s.serverCpuPerLoginMs)} | ${fmt(s.gcMsPerLogin)} | ${fmt(s.framesPerWrite)} | ${fmt(s.serverCpuPct)} (${fmt(s.serverKernelPct)}) | ${fmt(s.loadgenCpuPct)} | ${fmt(s.authCpuPct)} | ${fmt(s.foreignCores)} |`);
    }
  }
  lines.push('');

  lines.push('## CHAT broadcasts');
  lines.push('');
  lines.push('One message at a time, sent by one client; times from the send to the first and to the last receipt among all the clients of all the load generators (the monotonic clock they share).');
  lines.push('');
  lines.push('| server | N | first delivery (ms) | last delivery (ms) | server CPU (ms) | received |');
  lines.push('|---|---|---|---|---|---|');
  for (const run of result.runs) {
    for (const b of run.broadcasts) lines.push(`| ${LABEL[run.server] ?? run.server} | ${fmt(b.n)} | ${fmt(b.firstMs)} | ${fmt(b.lastMs)} | ${fmt(b.serverCpuMs)} | ${b.received} of ${b.expected} |`);
  }
  lines.push(...failureLines(failures));
  lines.push('');
  return lines.join('\n');
}

/**
 * A throw-away Redis Sentinel deployment for tests: a primary, its replica and three sentinels,
 * real redis-server processes on free loopback ports, each in a temp dir of its own (a replica's
 * full sync writes an RDB file there). No persistence. Sentinel timeouts are short (failover in
 * ~2-3 s) so tests can fail the primary and wait for the promotion.
 *
 *   const rs = await startRedisSentinel();
 *   rs.sentinelsEnv                 // REDIS_SENTINELS: "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
 *   const old = await rs.primary();  // the server the sentinels name
 *   await old.signal('SIGKILL');
 *   const now = await rs.waitForFailover(old);   // the promoted replica
 *   await old.start({ replicaOf: now });          // back, as a replica of the new primary
 *   await rs.close();
 *
 * Readiness is checked over raw RESP (redisCommand from ./redis-server), and the process
 * answering is checked to be ours (INFO process_id).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port';
import { DEFAULT_REDIS_BINARY, redisCommand } from './redis-server';
import { eventually, sleep } from './time';

const HOST = '127.0.0.1';
const OUTPUT_TAIL_BYTES = 8 * 1024;

export interface RedisSentinelOptions {
  /** The master group name (default mymaster). */
  name?: string;
  /** `sentinel down-after-milliseconds` (default 1000): how long a silent primary takes to be "down". */
  downAfterMs?: number;
  /** `sentinel failover-timeout` (default 3000). */
  failoverTimeoutMs?: number;
  /** Default: $REDIS_SERVER_BIN, else /usr/bin/redis-server. */
  binary?: string;
}

/** INFO <section> as a map of its `field:value` lines. */
export async function redisInfo(port: number, section: string): Promise<Record<string, string>> {
  const reply = await redisCommand(port, ['INFO', section], 1000);
  if (typeof reply !== 'string') throw new Error(`INFO ${section} on ${port}: ${JSON.stringify(reply)}`);
  const out: Record<string, string> = {};
  for (const line of reply.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** One redis-server process (a data node or a sentinel) on a fixed port, in its own dir. */
export class RedisNodeProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private stopped = false;

  constructor(
    readonly role: 'data' | 'sentinel',
    readonly port: number,
    readonly dir: string,
    private readonly binary: string,
    private readonly argsOf: (options: { replicaOf?: number }) => string[],
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  /** SIGSTOPped and not continued yet. */
  get paused(): boolean {
    return this.stopped;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** stdout + stderr (tail). */
  get log(): string {
    return this.output;
  }

  /**
   * Starts the process (no-op when running) and waits until it answers as itself. A data node
   * starts as a primary, or as a replica of `replicaOf` (a port); its data is gone (no persistence).
   * A sentinel keeps the configuration it rewrote (the current primary, the epochs).
   */
  async start(options: { replicaOf?: number | RedisNodeProcess } = {}, timeoutMs = 10_000): Promise<void> {
    if (this.child) return;
    const replicaOf = typeof options.replicaOf === 'object' ? options.replicaOf.port : options.replicaOf;
    this.output = '';
    this.stopped = false;
    const child = spawn(this.binary, this.argsOf({ replicaOf }), { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
    this.child = child;
    live.add(child);
    installExitHook();
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.unref();
    (child.stdout as Socket | null)?.unref();
    (child.stderr as Socket | null)?.unref();
    let spawnError: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        if (child.pid === undefined) resolve();
      });
      child.once('exit', () => resolve());
    });
    void this.exited.then(() => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child !== child) {
        const why = spawnError ? spawnError.message : `exited with code ${String(child.exitCode)}`;
        throw new Error(`redis ${this.role} on port ${this.port} ${why}: ${this.output.trim() || '(no output)'}`);
      }
      if (child.pid !== undefined && (await answeringPid(this.port)) === child.pid) return;
      if (Date.now() > deadline) {
        await this.signal('SIGKILL');
        throw new Error(`redis ${this.role} on port ${this.port} did not answer within ${timeoutMs} ms: ${this.output.trim() || '(no output)'}`);
      }
      await sleep(25);
    }
  }

  /**
   * Sends a signal. SIGKILL and SIGTERM wait for the exit (SIGKILL after 10 s of SIGTERM); SIGSTOP
   * and SIGCONT return at once (a stopped process keeps its sockets open and answers nothing).
   */
  async signal(signal: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      child.kill(signal);
      this.stopped = signal === 'SIGSTOP';
      return;
    }
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 10_000))),
    ]);
    clearTimeout(timer);
    if (late) {
      child.kill('SIGKILL');
      await this.exited;
    }
    this.stopped = false;
  }

  /** A command on this process (raw RESP; scalar replies only). */
  command(...args: string[]): ReturnType<typeof redisCommand> {
    return redisCommand(this.port, args);
  }

  info(section: string): Promise<Record<string, string>> {
    return redisInfo(this.port, section);
  }
}

export interface RedisSentinelDeployment {
  readonly name: string;
  /** The data nodes: [0] started as the primary, [1] as its replica (roles change with failovers). */
  readonly servers: readonly RedisNodeProcess[];
  readonly sentinels: readonly RedisNodeProcess[];
  /** REDIS_SENTINELS for the gateway. */
  readonly sentinelsEnv: string;
  readonly downAfterMs: number;
  /** The data node the running sentinels name as the primary (they must agree). */
  primary(): Promise<RedisNodeProcess>;
  /** The data node that is not `primary`. */
  other(primary: RedisNodeProcess): RedisNodeProcess;
  /**
   * Waits until every running sentinel names a primary other than `old`, and that server says
   * role:master (the promotion is done); returns it.
   */
  waitForFailover(old: RedisNodeProcess, timeoutMs?: number): Promise<RedisNodeProcess>;
  /** Waits until `replica` is linked to `primary` and has everything it has (equal offsets). */
  waitReplicated(primary: RedisNodeProcess, replica: RedisNodeProcess, timeoutMs?: number): Promise<void>;
  /**
   * Makes `replica` miss every write from now on: SIGSTOPs it and cuts its link at `primary`
   * (stopping it alone would not do: what the primary sent waits in the replica's socket and is
   * applied on SIGCONT). `replica.signal('SIGCONT')` resumes it; it then resyncs unless the
   * primary is gone, so a failover promotes a replica that lost those writes.
   */
  starveReplica(primary: RedisNodeProcess, replica: RedisNodeProcess): Promise<void>;
  /** Waits until every running sentinel sees the primary, one replica and all three sentinels. */
  waitSentinelsSettled(timeoutMs?: number): Promise<void>;
  /** SIGKILLs everything and removes the temp dirs. */
  close(): Promise<void>;
}

/** Starts the primary, its replica and three sentinels, and waits until the sentinels know them all. */
export async function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<RedisSentinelDeployment> {
  const binary = options.binary ?? process.env.REDIS_SERVER_BIN ?? DEFAULT_REDIS_BINARY;
  if (!existsSync(binary)) throw new Error(`redis-server not found at ${binary} (install the redis-server package, or set REDIS_SERVER_BIN)`);
  const name = options.name ?? 'mymaster';
  const downAfterMs = options.downAfterMs ?? 1000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 3000;
  const base = mkdtempSync(join(tmpdir(), 'gw-sentinel-'));
  const all: RedisNodeProcess[] = [];

  const dataNode = (port: number, i: number): RedisNodeProcess => {
    const dir = join(base, `redis-${i}`);
    mkdirSync(dir);
    return new RedisNodeProcess('data', port, dir, binary, ({ replicaOf }) => [
      '--port', String(port),
      '--bind', HOST,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--dir', dir,
      '--loglevel', 'warning',
      // A replica's full sync starts at once (the default waits 5 s for more replicas).
      '--repl-diskless-sync-delay', '0',
      ...(replicaOf === undefined ? [] : ['--replicaof', HOST, String(replicaOf)]),
    ]);
  };
  const sentinelNode = (port: number, i: number, primaryPort: number): RedisNodeProcess => {
    const dir = join(base, `sentinel-${i}`);
    mkdirSync(dir);
    const conf = join(dir, 'sentinel.conf');
    // A sentinel rewrites its own file (the current primary, the replicas and sentinels it found).
    writeFileSync(
      conf,
      [
        `port ${port}`,
        `bind ${HOST}`,
        `dir ${dir}`,
        'daemonize no',
        'loglevel warning',
        'logfile ""',
        `sentinel monitor ${name} ${HOST} ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
        `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    return new RedisNodeProcess('sentinel', port, dir, binary, () => [conf, '--sentinel']);
  };

  try {
    const ports = await distinctFreePorts(5);
    const servers = [dataNode(ports[0], 0), dataNode(ports[1], 1)];
    all.push(...servers);
    await servers[0].start();
    await servers[1].start({ replicaOf: servers[0] });
    const sentinels = [0, 1, 2].map((i) => sentinelNode(ports[2 + i], i, ports[0]));
    all.push(...sentinels);
    await Promise.all(sentinels.map((s) => s.start()));

    const sentinelAnswer = async (sentinel: RedisNodeProcess): Promise<{ address: string; status: string; slaves: number; sentinels: number } | undefined> => {
      const info = await sentinel.info('sentinel');
      const master = Object.entries(info).find(([key, value]) => /^master\d+$/.test(key) && value.startsWith(`name=${name},`));
      if (!master) return undefined;
      const fields = Object.fromEntries(master[1].split(',').map((kv) => kv.split('=') as [string, string]));
      return { address: fields.address, status: fields.status, slaves: Number(fields.slaves), sentinels: Number(fields.sentinels) };
    };
    const byAddress = (address: string): RedisNodeProcess | undefined => servers.find((s) => address === `${HOST}:${s.port}`);

    const deployment: RedisSentinelDeployment = {
      name,
      servers,
      sentinels,
      sentinelsEnv: sentinels.map((s) => `${HOST}:${s.port}`).join(','),
      downAfterMs,
      async primary() {
        const answers = await Promise.all(sentinels.filter((s) => s.running && !s.paused).map(sentinelAnswer));
        const addresses = new Set(answers.map((a) => a?.address));
        if (addresses.size !== 1) throw new Error(`the sentinels disagree on the primary: ${JSON.stringify(answers)}`);
        const server = byAddress([...addresses][0] ?? '');
        if (!server) throw new Error(`the sentinels name an unknown primary: ${JSON.stringify(answers)}`);
        return server;
      },
      other(primary) {
        return servers[0] === primary ? servers[1] : servers[0];
      },
      async waitForFailover(old, timeoutMs = 20_000) {
        let promoted: RedisNodeProcess | undefined;
        await eventually(
          async () => {
            const answers = await Promise.all(sentinels.filter((s) => s.running && !s.paused).map(sentinelAnswer));
            const addresses = new Set(answers.map((a) => a?.address));
            if (addresses.size !== 1) return false;
            const server = byAddress([...addresses][0] ?? '');
            if (!server || server === old) return false;
            if ((await server.info('replication')).role !== 'master') return false;
            promoted = server;
            return true;
          },
          timeoutMs,
          `the sentinels to promote a replica in place of port ${old.port}`,
        );
        return promoted!;
      },
      async waitReplicated(primary, replica, timeoutMs = 10_000) {
        await eventually(
          async () => {
            const [p, r] = await Promise.all([primary.info('replication'), replica.info('replication')]);
            return (
              p.role === 'master' &&
              r.role === 'slave' &&
              r.master_port === String(primary.port) &&
              r.master_link_status === 'up' &&
              r.master_sync_in_progress === '0' &&
              r.slave_repl_offset === p.master_repl_offset
            );
          },
          timeoutMs,
          `port ${replica.port} to replicate everything of port ${primary.port}`,
        );
      },
      async starveReplica(primary, replica) {
        await replica.signal('SIGSTOP');
        const killed = await primary.command('CLIENT', 'KILL', 'TYPE', 'replica');
        if (killed !== 1) throw new Error(`CLIENT KILL TYPE replica on port ${primary.port}: ${JSON.stringify(killed)}`);
      },
      async waitSentinelsSettled(timeoutMs = 15_000) {
        await eventually(
          async () => {
            const answers = await Promise.all(sentinels.filter((s) => s.running && !s.paused).map(sentinelAnswer));
            return answers.every((a) => a !== undefined && a.status === 'ok' && a.slaves >= 1 && a.sentinels === 3) && new Set(answers.map((a) => a?.address)).size === 1;
          },
          timeoutMs,
          'the sentinels to know the primary, its replica and each other',
        );
      },
      async close() {
        await Promise.all(all.map((p) => p.signal('SIGKILL')));
        rmSync(base, { recursive: true, force: true });
      },
    };
    await deployment.waitReplicated(servers[0], servers[1]);
    await deployment.waitSentinelsSettled();
    return deployment;
  } catch (err) {
    await Promise.all(all.map((p) => p.signal('SIGKILL')));
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
}

/** `n` ports that were free a moment ago, all different. */
async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** The pid of the Redis answering on port, or undefined when none answers. */
async function answeringPid(port: number): Promise<number | undefined> {
  try {
    const match = /^process_id:(\d+)\r?$/m.exec(String(await redisCommand(port, ['INFO', 'server'], 1000)));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Never leave a redis-server behind, whatever happens to the test process. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

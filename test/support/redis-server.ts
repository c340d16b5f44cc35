/**
 * A real, throw-away redis-server for tests: no persistence, loopback only, a free port.
 * Readiness is checked over a raw RESP socket (no client library), and the process answering is
 * checked to be ours (INFO process_id), so a stray Redis on a reused port is never mistaken for it.
 *
 *   const redis = await startRedisServer();
 *   redis.url            // redis://127.0.0.1:<port>
 *   await redis.stop();  // SIGTERM, waits for the exit
 *   await redis.start(); // same port, empty data
 *   await redis.kill();  // SIGKILL, waits for the exit
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { freePort } from './free-port';
import { sleep } from './time';

export const DEFAULT_REDIS_BINARY = '/usr/bin/redis-server';
const HOST = '127.0.0.1';
const OUTPUT_TAIL_BYTES = 8 * 1024;
const PORT_ATTEMPTS = 5;

export interface RedisServerOptions {
  /** Default: a free port. */
  port?: number;
  /** Default: $REDIS_SERVER_BIN, else /usr/bin/redis-server. */
  binary?: string;
  /** How long start waits for the server to answer PING (default 10 s). */
  startTimeoutMs?: number;
  /** How long stop waits after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
  /** Extra redis-server arguments, e.g. ['--maxmemory', '10mb']. */
  args?: readonly string[];
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Whether our redis-server process is alive. */
  readonly running: boolean;
  readonly pid: number | undefined;
  /** Starts it again on the same port after stop/kill (its data is gone); no-op when running. */
  start(): Promise<void>;
  /** SIGTERM and wait for the exit (SIGKILL after stopTimeoutMs); no-op when not running. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit; no-op when not running. */
  kill(): Promise<void>;
}

// ---- A minimal RESP client: one command per connection, scalar replies only. ----

export type RespValue = string | number | null | RespError;

export class RespError {
  constructor(readonly message: string) {}
}

/** Parses one scalar RESP reply from buf; undefined while incomplete. */
function parseReply(buf: Buffer): RespValue | undefined {
  const lineEnd = buf.indexOf('\r\n');
  if (lineEnd === -1) return undefined;
  const line = buf.subarray(1, lineEnd).toString('utf8');
  switch (String.fromCharCode(buf[0])) {
    case '+':
      return line;
    case '-':
      return new RespError(line);
    case ':':
      return Number(line);
    case '$': {
      const length = Number(line);
      if (length < 0) return null;
      const start = lineEnd + 2;
      if (buf.length < start + length + 2) return undefined;
      return buf.subarray(start, start + length).toString('utf8');
    }
    default:
      throw new Error(`unsupported RESP reply: ${JSON.stringify(buf.subarray(0, 40).toString('latin1'))}`);
  }
}

function encodeCommand(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''), 'utf8');
}

/**
 * Sends one command to Redis at 127.0.0.1:port over a fresh connection and returns its reply
 * (an error reply comes back as a RespError value). Rejects on connection errors and timeouts.
 */
export function redisCommand(port: number, args: readonly string[], timeoutMs = 2_000): Promise<RespValue> {
  return new Promise<RespValue>((resolve, reject) => {
    const socket: Socket = connect({ host: HOST, port });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (err: Error | undefined, value?: RespValue): void => {
      if (done) return;
      done = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(value ?? null);
    };
    socket.setTimeout(timeoutMs, () =>
      finish(new Error(`redis at ${HOST}:${port}: no reply to ${args[0]} within ${timeoutMs} ms`)),
    );
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`redis at ${HOST}:${port} closed the connection`)));
    socket.on('connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        const reply = parseReply(buf);
        if (reply !== undefined) finish(undefined, reply);
      } catch (err) {
        finish(err as Error);
      }
    });
  });
}

/** The pid of the Redis answering on port, or undefined when none answers (or it is loading). */
async function answeringPid(port: number): Promise<number | undefined> {
  try {
    const info = await redisCommand(port, ['INFO', 'server'], 1_000);
    if (typeof info !== 'string') return undefined;
    const match = /^process_id:(\d+)\r?$/m.exec(info);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

// ---- Process management ----

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

class RedisProcess implements RedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  constructor(
    readonly port: number,
    private readonly binary: string,
    private readonly opts: RedisServerOptions,
  ) {}

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Whether the last failed start failed because the port was taken. */
  get portWasTaken(): boolean {
    return /address already in use/i.test(this.output);
  }

  async start(): Promise<void> {
    if (this.child) return;
    this.output = '';
    const args = [
      '--port', String(this.port),
      '--bind', HOST,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--dir', tmpdir(),
      '--loglevel', 'warning',
      ...(this.opts.args ?? []),
    ];
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    installExitHook();
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // A redis-server a test forgot to stop must not keep the test process alive (the exit hook kills it).
    child.unref();
    (child.stdout as Socket | null)?.unref();
    (child.stderr as Socket | null)?.unref();

    let spawnError: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        // 'exit' may not follow a spawn failure.
        if (child.pid === undefined) resolve();
      });
      child.once('exit', () => resolve());
    });
    void this.exited.then(() => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });

    const timeoutMs = this.opts.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child !== child) {
        const why = spawnError ? spawnError.message : `exited with code ${String(child.exitCode)}`;
        throw new Error(`redis-server on port ${this.port} ${why}: ${this.output.trim() || '(no output)'}`);
      }
      if (child.pid !== undefined && (await answeringPid(this.port)) === child.pid) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(
          `redis-server on port ${this.port} did not answer within ${timeoutMs} ms: ${this.output.trim() || '(no output)'}`,
        );
      }
      await sleep(25);
    }
  }

  stop(): Promise<void> {
    return this.terminate('SIGTERM', this.opts.stopTimeoutMs ?? 10_000);
  }

  kill(): Promise<void> {
    return this.terminate('SIGKILL', 10_000);
  }

  private async terminate(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    const late = await Promise.race([this.exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Starts a redis-server on a free port (or opts.port) and waits until it answers. */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = opts.binary ?? process.env.REDIS_SERVER_BIN ?? DEFAULT_REDIS_BINARY;
  if (!existsSync(binary)) {
    throw new Error(`redis-server not found at ${binary} (install the redis-server package, or set REDIS_SERVER_BIN)`);
  }
  for (let attempt = 1; ; attempt += 1) {
    const server = new RedisProcess(opts.port ?? (await freePort()), binary, opts);
    try {
      await server.start();
      return server;
    } catch (err) {
      // Another process took the free port between freePort() and the bind: try another one.
      if (opts.port === undefined && server.portWasTaken && attempt < PORT_ATTEMPTS) continue;
      throw err;
    }
  }
}

/**
 * A real, throw-away nats-server for tests (Debian's package, /usr/sbin/nats-server): JetStream on,
 * its store in a fresh temporary directory, loopback only, a free port. Readiness is read from the
 * INFO line the server sends on connect, and the server answering is checked to be ours (a unique
 * server name), so a stray NATS on a reused port is never mistaken for it; with JetStream, its API
 * must answer too.
 *
 *   const nats = await startNatsServer();
 *   nats.url             // nats://127.0.0.1:<port>
 *   await nats.stop();   // SIGTERM, waits for the exit
 *   await nats.start();  // same port, same store: JetStream streams and their messages survive
 *   await nats.kill();   // SIGKILL, waits for the exit
 *   await nats.remove(); // stops it and deletes its store
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { freePort } from './free-port';
import { sleep } from './time';

export const DEFAULT_NATS_BINARY = '/usr/sbin/nats-server';
const HOST = '127.0.0.1';
const OUTPUT_TAIL_BYTES = 8 * 1024;
const PORT_ATTEMPTS = 5;

export interface NatsServerOptions {
  /** Default: a free port. */
  port?: number;
  /** Default: $NATS_SERVER_BIN, else /usr/sbin/nats-server. */
  binary?: string;
  /** Default true: `-js -sd <store>`. */
  jetStream?: boolean;
  /** How long start waits for the server (and JetStream) to answer (default 10 s). */
  startTimeoutMs?: number;
  /** How long stop waits after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
}

export interface NatsServer {
  readonly port: number;
  readonly url: string;
  /** The JetStream store directory (kept across stop/start, deleted by remove). */
  readonly storeDir: string;
  readonly running: boolean;
  readonly pid: number | undefined;
  /** Starts it again on the same port and store after stop/kill; no-op when running. */
  start(): Promise<void>;
  /** SIGTERM and wait for the exit (SIGKILL after stopTimeoutMs); no-op when not running. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit; no-op when not running. */
  kill(): Promise<void>;
  /** Kills it and deletes its store. */
  remove(): Promise<void>;
  /** remove(), for Scope.track. */
  close(): Promise<void>;
}

/** The INFO the NATS server at 127.0.0.1:port sends first, or undefined when none answers. */
export function natsInfo(port: number, timeoutMs = 1000): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const socket: Socket = tcpConnect({ host: HOST, port });
    let buf = '';
    let done = false;
    const finish = (info: Record<string, unknown> | undefined): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(info);
    };
    socket.setTimeout(timeoutMs, () => finish(undefined));
    socket.on('error', () => finish(undefined));
    socket.on('close', () => finish(undefined));
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const end = buf.indexOf('\r\n');
      if (end === -1) return;
      const line = buf.slice(0, end);
      try {
        finish(line.startsWith('INFO ') ? (JSON.parse(line.slice(5)) as Record<string, unknown>) : undefined);
      } catch {
        finish(undefined);
      }
    });
  });
}

async function jetStreamAnswers(url: string): Promise<boolean> {
  const nc = await connect({ servers: url, timeout: 1000, maxReconnectAttempts: 0 }).catch(() => undefined);
  if (!nc) return false;
  try {
    await (await nc.jetstreamManager({ timeout: 1000 })).getAccountInfo();
    return true;
  } catch {
    return false;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Never leave a nats-server behind, whatever happens to the test process. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

class NatsProcess implements NatsServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  /** The server name we start it with: INFO must carry it. */
  private readonly name = `test-nats-${randomBytes(6).toString('hex')}`;

  constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly binary: string,
    private readonly opts: NatsServerOptions,
  ) {}

  get url(): string {
    return `nats://${HOST}:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get portWasTaken(): boolean {
    return /address already in use/i.test(this.output);
  }

  async start(): Promise<void> {
    if (this.child) return;
    this.output = '';
    const jetStream = this.opts.jetStream !== false;
    const args = ['-a', HOST, '-p', String(this.port), '-n', this.name, ...(jetStream ? ['-js', '-sd', this.storeDir] : [])];
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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

    const timeoutMs = this.opts.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child !== child) {
        const why = spawnError ? spawnError.message : `exited with code ${String(child.exitCode)}`;
        throw new Error(`nats-server on port ${this.port} ${why}: ${this.output.trim() || '(no output)'}`);
      }
      const info = await natsInfo(this.port);
      if (info?.server_name === this.name && (!jetStream || (info.jetstream === true && (await jetStreamAnswers(this.url))))) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`nats-server on port ${this.port} did not answer within ${timeoutMs} ms: ${this.output.trim() || '(no output)'}`);
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

  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  close(): Promise<void> {
    return this.remove();
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

/** Starts a nats-server (JetStream on unless opts.jetStream is false) on a free port and waits until it answers. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = opts.binary ?? process.env.NATS_SERVER_BIN ?? DEFAULT_NATS_BINARY;
  if (!existsSync(binary)) {
    throw new Error(`nats-server not found at ${binary} (install Debian's nats-server package, or set NATS_SERVER_BIN)`);
  }
  for (let attempt = 1; ; attempt += 1) {
    const storeDir = mkdtempSync(join(tmpdir(), 'test-nats-'));
    const server = new NatsProcess(opts.port ?? (await freePort()), storeDir, binary, opts);
    try {
      await server.start();
      return server;
    } catch (err) {
      rmSync(storeDir, { recursive: true, force: true });
      if (opts.port === undefined && server.portWasTaken && attempt < PORT_ATTEMPTS) continue;
      throw err;
    }
  }
}

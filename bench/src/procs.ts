/** Child processes of the bench: servers, the load generator, the auth server, redis-server. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { openFilesLimit } from './common/proc';

export interface Child {
  proc: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  alive(): boolean;
}

/**
 * Starts `node <args>` with an IPC channel, stdout and stderr to `logFile`. When this process's
 * open-files limit is below `needFds`, the child is started through bash with a raised limit.
 */
export function startNode(args: string[], opts: { env: NodeJS.ProcessEnv; logFile: string; needFds: number; cwd: string }): Child {
  const log = openSync(opts.logFile, 'a');
  const { soft } = openFilesLimit();
  let proc: ChildProcess;
  const stdio: ('ignore' | 'ipc' | number)[] = ['ignore', log, log, 'ipc'];
  if (soft >= opts.needFds) {
    proc = spawn(process.execPath, args, { env: opts.env, stdio, cwd: opts.cwd });
  } else {
    const script = `ulimit -n ${opts.needFds} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
    proc = spawn('bash', ['-c', script, process.execPath, ...args], { env: opts.env, stdio, cwd: opts.cwd });
  }
  closeSync(log);
  return wrap(proc, opts.logFile);
}

export function startProcess(command: string, args: string[], opts: { logFile: string; cwd: string }): Child {
  const log = openSync(opts.logFile, 'a');
  const proc = spawn(command, args, { stdio: ['ignore', log, log], cwd: opts.cwd });
  closeSync(log);
  return wrap(proc, opts.logFile);
}

/** Every child still running: killed when the orchestrator exits, however it exits. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping ${live.size} child processes\n`);
    process.exit(130);
  });
}

function wrap(proc: ChildProcess, logFile: string): Child {
  let running = true;
  live.add(proc);
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      running = false;
      live.delete(proc);
      resolve();
    });
    proc.once('error', () => {
      running = false;
      live.delete(proc);
      resolve();
    });
  });
  return { proc, pid: proc.pid ?? -1, logFile, exited, alive: () => running };
}

/** SIGKILL (servers are killed, not drained: no DISCONNECT storms between scenarios) and wait, bounded. */
export async function kill(child: Child | undefined, signal: NodeJS.Signals = 'SIGKILL', waitMs = 10_000): Promise<void> {
  if (!child || !child.alive()) return;
  child.proc.kill(signal);
  const timer = new Promise<void>((resolve) => setTimeout(resolve, waitMs).unref());
  await Promise.race([child.exited, timer]);
  if (child.alive()) {
    child.proc.kill('SIGKILL');
    await Promise.race([child.exited, new Promise<void>((resolve) => setTimeout(resolve, 5000).unref())]);
  }
}

/** Waits for the first IPC message that matches, bounded. */
export function waitMessage<T>(child: Child, match: (m: unknown) => m is T, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${timeoutMs} ms (log: ${child.logFile})`)), timeoutMs);
    const onMessage = (m: unknown) => {
      if (match(m)) done(undefined, m);
    };
    const onExit = () => done(new Error(`${what}: the process exited (log: ${child.logFile})\n${tail(child.logFile)}`));
    const done = (err?: Error, value?: T) => {
      clearTimeout(timer);
      child.proc.off('message', onMessage);
      child.proc.off('exit', onExit);
      if (err) reject(err);
      else resolve(value as T);
    };
    child.proc.on('message', onMessage);
    child.proc.once('exit', onExit);
  });
}

let hookIds = 1;

/** A request to the gc-hook preloaded into a server. */
export async function hook<T extends Record<string, unknown>>(child: Child, body: Record<string, unknown>, timeoutMs = 20_000): Promise<T> {
  const id = hookIds++;
  const reply = waitMessage(
    child,
    (m): m is T & { benchReply: number } => typeof m === 'object' && m !== null && (m as { benchReply?: unknown }).benchReply === id,
    timeoutMs,
    `hook ${String(body.bench)}`,
  );
  child.proc.send({ ...body, id });
  return reply;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** GET url until it answers 200, bounded; false when it never did (or the process died). */
export async function waitHttpOk(url: string, timeoutMs: number, child?: Child): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && !child.alive()) return false;
    const status = await new Promise<number>((resolve) => {
      const req = get(url, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.setTimeout(2000, () => req.destroy());
      req.on('error', () => resolve(0));
    });
    if (status === 200) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

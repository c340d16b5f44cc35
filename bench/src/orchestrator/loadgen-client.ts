/** The orchestrator's side of the load generator: a process of its own, driven over IPC. */
import { join } from 'node:path';
import type { LoadgenCommand, LoadgenReply } from '../common/messages';
import { SUITE } from '../plan';
import { kill, startNode, tail, type Child } from '../procs';
import { LOADGEN, ROOT, RUN_TMP, log } from './paths';
import { baseEnv } from './servers';

export class Loadgen {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  onMark?: () => Promise<void>;

  constructor(readonly child: Child) {
    child.proc.on('message', (m: LoadgenReply | { mark: number } | { progress: string }) => {
      if ('progress' in m) {
        log(`  ${m.progress}`);
        return;
      }
      if ('mark' in m) {
        const ack = () => child.proc.send({ markAck: m.mark });
        (this.onMark ? this.onMark() : Promise.resolve()).then(ack, ack);
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    child.proc.once('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`the load generator exited (log: ${child.logFile})\n${tail(child.logFile)}`));
      this.pending.clear();
    });
  }

  static start(tag: string): Loadgen {
    const child = startNode([LOADGEN], { env: baseEnv(), logFile: join(RUN_TMP, `${tag}-loadgen.log`), needFds: SUITE.totalUsers + 1000, cwd: ROOT });
    return new Loadgen(child);
  }

  send<T>(command: LoadgenCommand, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`load generator: ${command.cmd} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolvePromise(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.proc.send({ ...command, id });
    });
  }

  async exit(): Promise<void> {
    await this.send({ cmd: 'exit' }, 10_000).catch(() => undefined);
    await kill(this.child, 'SIGTERM', 3000);
  }
}

/** The orchestrator's side of the attacker processes (bench/src/attacker.ts), driven over IPC. */
import { join } from 'node:path';
import type { AttackerCommand, AttackerSpec, AttackerStats } from '../common/messages';
import { kill, startNode, tail, type Child } from '../procs';
import { ROOT, RUN_TMP, script } from './paths';
import { baseEnv } from './servers';

export class Attacker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    readonly child: Child,
    readonly spec: AttackerSpec,
  ) {
    child.proc.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    child.proc.once('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`an attacker exited (log: ${child.logFile})\n${tail(child.logFile)}`));
      this.pending.clear();
    });
  }

  /** Starts the process (idle until `start`). */
  static spawn(tag: string, spec: AttackerSpec): Attacker {
    return new Attacker(startNode([script('attacker')], { env: baseEnv(), logFile: join(RUN_TMP, `${tag}.log`), needFds: 100, cwd: ROOT }), spec);
  }

  private send<T>(command: AttackerCommand, timeoutMs = 10_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`attacker: ${command.cmd} not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.proc.send({ ...command, id });
    });
  }

  start(): Promise<{ pid: number; frameBytes: number[] }> {
    return this.send({ cmd: 'start', spec: this.spec });
  }

  /** Stops attacking (its socket destroyed); what it did since `start`. */
  stop(): Promise<AttackerStats> {
    return this.send({ cmd: 'stop' });
  }

  async exit(): Promise<void> {
    await this.send({ cmd: 'exit' }, 3000).catch(() => undefined);
    await kill(this.child, 'SIGTERM', 3000);
  }
}

/** Where the suite reads and writes, and the stamp of this run. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

function findRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 10; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && existsSync(join(dir, 'bench')) && existsSync(join(dir, 'src'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}

/** The repository. */
export const ROOT = findRoot();
/** The compiled suite (node_modules/.cache/chat-bench/out). */
const OUT = resolve(__dirname, '..', '..', '..');
export const GATEWAY_BUILD = join(ROOT, 'node_modules/.cache/chat-bench/gateway');
export const RESULTS = join(ROOT, 'bench/results');
const TMP = join(RESULTS, 'tmp');
/** A compiled script of the suite, by its path under bench/src (without .js). */
export const script = (name: string): string => join(OUT, `bench/src/${name}.js`);
export const HOOK = script('servers/gc-hook');
export const LOADGEN = script('loadgen');

export const STAMP = new Date().toISOString().replace(/[:.]/g, '-');
/** Logs, users file, profiles of this run: bench/results/tmp/<stamp>/ (removed unless --keep-logs). */
export const RUN_TMP = join(TMP, STAMP);

export function log(line: string): void {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

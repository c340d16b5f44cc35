/**
 * Bundles the demo page with esbuild: src/web/{index.html, main.ts, styles.css} ->
 * <outDir>/{index.html, assets/app.js, assets/style.css}. Run by `npm run build` (as
 * dist/web/build.js, after `nest build`, which empties dist/) and by the browser tests
 * (buildWebBundle() in beforeAll). esbuild is a dev dependency: the gateway never loads this file.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';
import { WEB_BUNDLE_DIR, WEB_SOURCE_DIR } from './web-paths';

export interface BuildWebOptions {
  /** Default true. */
  minify?: boolean;
}

/** Builds the bundle into `outDir` (default dist/public); returns the files written. */
export async function buildWebBundle(outDir: string = WEB_BUNDLE_DIR, options: BuildWebOptions = {}): Promise<string[]> {
  const result = await build({
    entryPoints: { app: join(WEB_SOURCE_DIR, 'main.ts'), style: join(WEB_SOURCE_DIR, 'styles.css') },
    outdir: join(outDir, 'assets'),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: ['chrome109', 'edge109', 'firefox115', 'safari15.6'],
    minify: options.minify ?? true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'silent',
  });
  const written: string[] = [];
  for (const file of result.outputFiles) {
    writeAtomically(file.path, file.contents);
    written.push(file.path);
  }
  const index = join(outDir, 'index.html');
  writeAtomically(index, readFileSync(join(WEB_SOURCE_DIR, 'index.html')));
  written.push(index);
  return written;
}

/** Readers (a running gateway, a parallel build) never see a half-written file. */
function writeAtomically(path: string, data: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(temp, data);
  renameSync(temp, path);
}

if (require.main === module) {
  const started = Date.now();
  buildWebBundle().then(
    (files) => {
      const list = files.map((f) => relative(process.cwd(), f)).join(', ');
      process.stdout.write(`demo page bundled in ${Date.now() - started} ms: ${list}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`demo page build failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

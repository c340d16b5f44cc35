/**
 * Bundles the demo page with esbuild: src/web/{index.html, main.ts, styles.css} ->
 * <outDir>/{index.html, assets/app.js, assets/style.css}. Run by `npm run build` (as
 * dist/web/build.js, after `nest build`, which empties dist/), by the browser tests
 * (buildWebBundle() in beforeAll), and by a gateway started from a build without the page
 * (`nest start`: web-autobuild.ts loads this file only then, and only when esbuild, a dev
 * dependency, is installed; never in the Docker image, whose build bundled the page).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';
import { WEB_BUNDLE_DIR, WEB_SOURCE_DIR } from './web-paths';

export interface BuildWebOptions {
  /** Default true. */
  minify?: boolean;
  /** Where index.html, main.ts and styles.css are; default WEB_SOURCE_DIR (the project's src/web). */
  sourceDir?: string;
}

/** Builds the bundle into `outDir` (default WEB_BUNDLE_DIR: dist/public); returns the files written. */
export async function buildWebBundle(outDir: string = WEB_BUNDLE_DIR, options: BuildWebOptions = {}): Promise<string[]> {
  const sourceDir = options.sourceDir ?? WEB_SOURCE_DIR;
  const result = await build({
    entryPoints: { app: join(sourceDir, 'main.ts'), style: join(sourceDir, 'styles.css') },
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
  writeAtomically(index, readFileSync(join(sourceDir, 'index.html')));
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

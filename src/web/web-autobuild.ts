import { Logger } from '@nestjs/common';
import type { WebBundle } from './web-bundle';
import { findWebSources, RUNNING_FROM_BUILD } from './web-paths';

/** What happened to a missing bundle at start. */
export type AutoBuildOutcome = 'present' | 'built' | 'not-from-build' | 'no-sources' | 'no-esbuild' | 'failed';

/** Where the outcome is told (a Nest Logger by default). */
export type AutoBuildLogger = Pick<Logger, 'log' | 'warn'>;

export interface AutoBuildEnv {
  /** The gateway runs from a build output (default RUNNING_FROM_BUILD). */
  fromBuild: boolean;
  /** The page sources, or undefined (default findWebSources()). */
  sourceDir: string | undefined;
  /** esbuild (a dev dependency) can be loaded. */
  esbuildInstalled: () => boolean;
  /** Bundles `sourceDir` into `outDir` (default src/web/build.ts, loaded only here). */
  build: (outDir: string, sourceDir: string) => Promise<unknown>;
}

function esbuildInstalled(): boolean {
  try {
    require.resolve('esbuild');
    return true;
  } catch {
    return false;
  }
}

const defaultEnv = (): AutoBuildEnv => ({
  fromBuild: RUNNING_FROM_BUILD,
  sourceDir: findWebSources(),
  esbuildInstalled,
  build: async (outDir, sourceDir) => (await import('./build')).buildWebBundle(outDir, { sourceDir }),
});

/**
 * Completes a build output that lacks the page, before the gateway listens. `nest build` and
 * `nest start` compile the server only (and `deleteOutDir` empties the outDir first); `npm run
 * build` bundles the page after them. So a gateway started from a build whose `<outDir>/public`
 * has no page bundles it there itself (esbuild, a fraction of a second), when it can:
 * - only from a build: its bundle directory is its own outDir's (from src/, under ts-jest or
 *   ts-node, it is the shared dist/public, which the gateway leaves to `npm run build`);
 * - only with the page sources at hand and esbuild installed (a dev dependency): never in the
 *   Docker image, whose `npm run build` bundled the page already and which has neither.
 * Otherwise, or when the build fails (logged), GET / answers 404 saying how to build the page.
 */
export async function buildBundleIfMissing(
  bundle: WebBundle,
  logger: AutoBuildLogger = new Logger('WebModule'),
  env: AutoBuildEnv = defaultEnv(),
): Promise<AutoBuildOutcome> {
  if (bundle.load()) return 'present';
  if (!env.fromBuild) return 'not-from-build';
  const sourceDir = env.sourceDir;
  if (sourceDir === undefined) return 'no-sources';
  if (!env.esbuildInstalled()) {
    logger.warn(`the demo page is not built in ${bundle.dir} and esbuild is not installed: GET / answers 404 (npm run build bundles it)`);
    return 'no-esbuild';
  }
  const started = Date.now();
  try {
    await env.build(bundle.dir, sourceDir);
  } catch (err) {
    logger.warn(`the demo page could not be built into ${bundle.dir}: ${err instanceof Error ? err.message : String(err)}`);
    return 'failed';
  }
  if (!bundle.load()) {
    logger.warn(`the demo page build wrote no index.html into ${bundle.dir}`);
    return 'failed';
  }
  logger.log(`the build had no demo page: bundled ${sourceDir} into ${bundle.dir} in ${Date.now() - started} ms`);
  return 'built';
}

import { existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';

/**
 * True when this file runs from a build output (`<outDir>/web/web-paths.js`: `npm start`,
 * `nest start`, the Docker image), false when it runs from src/web (ts-jest, ts-node).
 */
export const RUNNING_FROM_BUILD = extname(__filename) === '.js';

/**
 * Where the page bundle lives, written by src/web/build.ts and served by WebModule: `<outDir>/public`,
 * beside the compiled server code of the build that runs (dist/public for `npm run build` and
 * `nest start`; a build into another outDir has its own), so the Docker image (which copies dist/)
 * carries it, and nothing else of the build is ever served. From src/ (ts-jest, ts-node):
 * `<project>/dist/public`.
 */
export const WEB_BUNDLE_DIR = RUNNING_FROM_BUILD ? resolve(__dirname, '..', 'public') : resolve(__dirname, '..', '..', 'dist', 'public');

/** What a directory must hold to be the page sources. */
const PAGE_SOURCES = ['index.html', 'main.ts', 'styles.css'];

/**
 * The page sources (`src/web` with index.html, main.ts, styles.css) under the first of `roots`
 * that has them, or undefined. The default roots: the project this file belongs to (src/ and
 * dist/ side by side), then the working directory (`nest start` runs from the project root,
 * whatever its outDir). The Docker image ships no sources: undefined there.
 */
export function findWebSources(roots: readonly string[] = [resolve(__dirname, '..', '..'), process.cwd()]): string | undefined {
  for (const root of roots) {
    const dir = join(root, 'src', 'web');
    if (PAGE_SOURCES.every((file) => existsSync(join(dir, file)))) return dir;
  }
  return undefined;
}

/** The page sources, read at build time only (src/web/build.ts). */
export const WEB_SOURCE_DIR = findWebSources() ?? resolve(__dirname, '..', '..', 'src', 'web');

/** Replaced in index.html, when served, by the gateway's WS_PATH and AVATAR_MAX_BYTES. */
export const WS_PATH_PLACEHOLDER = '__WS_PATH__';
export const AVATAR_MAX_BYTES_PLACEHOLDER = '__AVATAR_MAX_BYTES__';

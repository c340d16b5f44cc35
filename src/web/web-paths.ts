import { resolve } from 'node:path';

/**
 * Where the page bundle lives: written by `npm run build` (src/web/build.ts) and served by
 * WebModule. The same directory whether this file runs from src/web (ts-jest, ts-node) or from
 * dist/web (compiled): `<project>/dist/public`. It sits beside the compiled server code, so the
 * Docker image (which copies dist/) carries it, and nothing else in dist/ is ever served.
 */
export const WEB_BUNDLE_DIR = resolve(__dirname, '..', '..', 'dist', 'public');

/** The page sources (index.html, main.ts, styles.css), read at build time only. */
export const WEB_SOURCE_DIR = resolve(__dirname, '..', '..', 'src', 'web');

/** Replaced in index.html, when served, by the gateway's WS_PATH and AVATAR_MAX_BYTES. */
export const WS_PATH_PLACEHOLDER = '__WS_PATH__';
export const AVATAR_MAX_BYTES_PLACEHOLDER = '__AVATAR_MAX_BYTES__';

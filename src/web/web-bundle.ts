import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { extname, join } from 'node:path';
import { AVATAR_MAX_BYTES_PLACEHOLDER, WS_PATH_PLACEHOLDER } from './web-paths';

export interface WebAsset {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** The only kinds of file served; anything else in the bundle directory is ignored. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** A served name: one path segment under assets/ of safe characters (no dot files, no traversal). */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** What the page needs to know of the gateway's configuration, filled into index.html. */
export interface PageSettings {
  wsPath: string;
  avatarMaxBytes: number;
}

/**
 * The built page, read from its directory into memory: `index.html` (with the gateway's WS_PATH
 * and AVATAR_MAX_BYTES filled in) and `assets/<file>`. Nothing is built here: when the directory has no index.html the
 * bundle is "not built" and is looked for again on the next request; when index.html changes
 * (a rebuild while the gateway runs) everything is read again.
 */
export class WebBundle {
  private files?: Map<string, WebAsset>;
  private indexMtimeMs = -1;

  constructor(
    readonly dir: string,
    private readonly settings: PageSettings,
  ) {}

  /** The files by served path (`index.html`, `assets/app.js`, ...), or undefined when not built. */
  load(): ReadonlyMap<string, WebAsset> | undefined {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(join(this.dir, 'index.html')).mtimeMs;
    } catch {
      this.files = undefined;
      this.indexMtimeMs = -1;
      return undefined;
    }
    if (this.files && mtimeMs === this.indexMtimeMs) return this.files;
    const files = new Map<string, WebAsset>();
    const html = readFileSync(join(this.dir, 'index.html'), 'utf8')
      .split(WS_PATH_PLACEHOLDER)
      .join(escapeHtml(this.settings.wsPath))
      .split(AVATAR_MAX_BYTES_PLACEHOLDER)
      .join(String(this.settings.avatarMaxBytes));
    files.set('index.html', asset(Buffer.from(html), '.html'));
    let names: string[] = [];
    try {
      names = readdirSync(join(this.dir, 'assets'));
    } catch {
      // no assets directory: only index.html
    }
    for (const name of names) {
      const ext = extname(name);
      if (!ASSET_NAME.test(name) || !(ext in CONTENT_TYPES)) continue;
      try {
        files.set(`assets/${name}`, asset(readFileSync(join(this.dir, 'assets', name)), ext));
      } catch {
        // vanished between readdir and read (a concurrent build): the next reload gets it
      }
    }
    this.files = files;
    this.indexMtimeMs = mtimeMs;
    return files;
  }

  /** One asset by its name under assets/, undefined when unknown or not built. */
  asset(name: string): WebAsset | undefined {
    if (!ASSET_NAME.test(name)) return undefined;
    return (this.files ?? this.load())?.get(`assets/${name}`);
  }
}

function asset(body: Buffer, ext: string): WebAsset {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { body, contentType: CONTENT_TYPES[ext], etag };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

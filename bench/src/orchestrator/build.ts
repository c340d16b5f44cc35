/** The gateway's production build, its commit, and the node flags it runs with. */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { options } from '../cli/options';
import { GATEWAY_BUILD, ROOT, log } from './paths';

/** `nest build` of the gateway into a private directory (dist/ belongs to whoever builds it). */
export function buildGateway(): { built: boolean; commit: string; dirty: boolean } {
  const stamp = join(GATEWAY_BUILD, '.bench-built');
  const newest = newestMtime(join(ROOT, 'src'));
  const fresh = existsSync(stamp) && statSync(stamp).mtimeMs >= newest;
  let built = false;
  if (options.build && !fresh) {
    log('building the gateway: nest build -p bench/tsconfig.gateway.json');
    execSync('npx nest build -p bench/tsconfig.gateway.json', { cwd: ROOT, stdio: 'inherit' });
    writeFileSync(stamp, new Date().toISOString());
    built = true;
  } else if (!existsSync(join(GATEWAY_BUILD, 'main.js'))) {
    throw new Error('no gateway build: run without --no-build');
  } else {
    log('gateway build is up to date');
  }
  let commit = 'unknown';
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  } catch {
    // not a git checkout
  }
  return { built, commit, dirty };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Node flags of `start:prod` (e.g. GC settings), so the bench runs the gateway as production does.
 * BENCH_GATEWAY_NODE_FLAGS replaces them for an experiment (recorded in the results).
 */
export function startProdFlags(): string[] {
  const override = process.env.BENCH_GATEWAY_NODE_FLAGS;
  if (override !== undefined) return override.trim().split(/\s+/).filter(Boolean);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const script = pkg.scripts?.['start:prod'] ?? '';
  const match = /\bnode((?:\s+-[^\s]+)*)\s+\S*main/.exec(script);
  return match ? match[1].trim().split(/\s+/).filter(Boolean) : [];
}

/** The gateway's limits an attacker meets (hostile-clients scenario), at their defaults. */
export interface GatewayDefaults {
  preAuthMaxFrameBytes: number;
  maxMessageFrameBytes: number;
  maxFrameBytes: number;
  maxJsonDepth: number;
  rateLimitPerSec: number;
  rateLimitBurst: number;
  inboundBytesPerSec: number;
  inboundQueueMaxBytes: number;
  maxConnections: number;
}

/** As of src/config/gateway-config.ts when this was written: used only when the build cannot be asked. */
const DOCUMENTED_DEFAULTS: GatewayDefaults = {
  preAuthMaxFrameBytes: 16_384,
  maxMessageFrameBytes: 65_536,
  maxFrameBytes: 1_463_640,
  maxJsonDepth: 32,
  rateLimitPerSec: 50,
  rateLimitBurst: 100,
  inboundBytesPerSec: 1_048_576,
  inboundQueueMaxBytes: 4_194_304,
  maxConnections: 10_000,
};

/**
 * The defaults of the gateway build under test, read from its own config loader (an empty
 * production environment), so that the attackers' frames follow the limits as they are.
 */
export function gatewayDefaults(): { limits: GatewayDefaults; source: string } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the gateway build, loaded at run time
    const mod = require(join(GATEWAY_BUILD, 'config/gateway-config.js')) as { loadConfig(env: NodeJS.ProcessEnv): Record<string, unknown> };
    const config = mod.loadConfig({ NODE_ENV: 'production', AUTH_SERVER_URL: 'http://127.0.0.1:1' });
    const limits = {} as Record<keyof GatewayDefaults, number>;
    for (const key of Object.keys(DOCUMENTED_DEFAULTS) as (keyof GatewayDefaults)[]) {
      const value = config[key];
      if (typeof value !== 'number') throw new Error(`no ${key} in the gateway's config`);
      limits[key] = value;
    }
    return { limits, source: 'loadConfig of the gateway build' };
  } catch (err) {
    return { limits: DOCUMENTED_DEFAULTS, source: `documented defaults (the build's loadConfig failed: ${err instanceof Error ? err.message : String(err)})` };
  }
}

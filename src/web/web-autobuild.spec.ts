/**
 * buildBundleIfMissing: a gateway started from a build without the page (`nest start`) bundles it
 * into its own outDir before it listens, and only then: never over a present bundle, never from
 * src/, never without the sources or esbuild; a failed build leaves GET / at its 404.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { strictMock } from '../../test/support/strict-mock';
import { buildWebBundle } from './build';
import { buildBundleIfMissing, type AutoBuildEnv, type AutoBuildLogger as Log } from './web-autobuild';
import { WebBundle } from './web-bundle';
import { findWebSources, RUNNING_FROM_BUILD, WEB_SOURCE_DIR } from './web-paths';

describe('buildBundleIfMissing', () => {
  let dir: string;
  let bundle: WebBundle;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'web-autobuild-'));
    bundle = new WebBundle(join(dir, 'public'), { wsPath: '/ws', avatarMaxBytes: 1000 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const env = (overrides: Partial<AutoBuildEnv>): AutoBuildEnv =>
    strictMock<AutoBuildEnv>({ fromBuild: true, sourceDir: WEB_SOURCE_DIR, esbuildInstalled: () => true, ...overrides }, 'env');

  it('bundles the missing page into the bundle directory of a build, with the sources and esbuild at hand', async () => {
    const log = jest.fn();
    const logger = strictMock<Log>({ log }, 'logger');
    const build = jest.fn((outDir: string, sourceDir: string) => buildWebBundle(outDir, { sourceDir, minify: false }));
    await expect(buildBundleIfMissing(bundle, logger, env({ build }))).resolves.toBe('built');
    expect(build).toHaveBeenCalledWith(join(dir, 'public'), WEB_SOURCE_DIR);
    expect(bundle.load()?.get('index.html')?.body.toString()).toContain('<meta name="chat-ws-path" content="/ws" />');
    expect(bundle.asset('app.js')?.contentType).toBe('text/javascript; charset=utf-8');
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/^the build had no demo page: bundled .* into .*public in \d+ ms$/));
  }, 30_000);

  it('leaves a present bundle alone', async () => {
    mkdirSync(join(dir, 'public'));
    writeFileSync(join(dir, 'public', 'index.html'), '<!doctype html>');
    await expect(buildBundleIfMissing(bundle, strictMock<Log>({}, 'logger'), env({}))).resolves.toBe('present');
  });

  it('builds nothing when running from src/ (the shared dist/public is left to npm run build)', async () => {
    await expect(buildBundleIfMissing(bundle, strictMock<Log>({}, 'logger'), env({ fromBuild: false }))).resolves.toBe('not-from-build');
    expect(existsSync(join(dir, 'public'))).toBe(false);
  });

  it('builds nothing without the page sources (the Docker image)', async () => {
    await expect(buildBundleIfMissing(bundle, strictMock<Log>({}, 'logger'), env({ sourceDir: undefined }))).resolves.toBe('no-sources');
  });

  it('says so when esbuild is not installed', async () => {
    const warn = jest.fn();
    await expect(buildBundleIfMissing(bundle, strictMock<Log>({ warn }, 'logger'), env({ esbuildInstalled: () => false }))).resolves.toBe('no-esbuild');
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('esbuild is not installed'));
  });

  it('logs a failed build and goes on without the page', async () => {
    const warn = jest.fn();
    const build = jest.fn(() => Promise.reject(new Error('syntax error in main.ts')));
    await expect(buildBundleIfMissing(bundle, strictMock<Log>({ warn }, 'logger'), env({ build }))).resolves.toBe('failed');
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('could not be built into'));
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('syntax error in main.ts'));
    expect(bundle.load()).toBeUndefined();
  });
});

describe('web paths', () => {
  it('run from src/ under ts-jest, and find the sources of this project', () => {
    expect(RUNNING_FROM_BUILD).toBe(false);
    const project = resolve(__dirname, '..', '..');
    expect(WEB_SOURCE_DIR).toBe(join(project, 'src', 'web'));
    expect(findWebSources(['/nonexistent-root', project])).toBe(join(project, 'src', 'web'));
    expect(findWebSources(['/nonexistent-root'])).toBeUndefined();
  });
});

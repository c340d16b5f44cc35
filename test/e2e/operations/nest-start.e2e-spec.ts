/**
 * `nest start` gives the server of `npm start` (issue 11): the Nest CLI compiles the project
 * (deleteOutDir: an empty outDir without the page), runs it with the `exec` of nest-cli.json
 * (node with the flags of `start:prod`), and the gateway, finding no page in its outDir, bundles
 * it there before it listens (src/web/web-autobuild.ts).
 *
 * The real `npx nest start`, with the project's nest-cli.json; only the outDir differs (`-p` a
 * tsconfig extending the project's, into node_modules/.cache/chat-nest-start/), so that it never
 * empties anyone's dist/ while other tests run. The node flags are read from the kernel: the
 * /proc/<pid>/cmdline of the process that owns the socket listening on PORT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { freePort } from '../../support/free-port';
import { gatewayProcessEnv } from '../../support/gateway';
import { eventually, sleep } from '../../support/time';

// Compiling the whole project with tsc takes 10-60 s depending on the machine's load.
jest.setTimeout(300_000);

const ROOT = resolve(__dirname, '../../..');
const START_DEADLINE_MS = 240_000;

/** The node flags of a command line `node <flags> [entry]` (a package.json script, nest-cli.json's exec). */
function nodeFlags(command: string): string[] {
  const words = command.trim().split(/\s+/);
  if (words[0] !== 'node') throw new Error(`not a node command: ${command}`);
  const flags: string[] = [];
  for (const word of words.slice(1)) {
    if (!word.startsWith('-')) break;
    flags.push(word);
  }
  return flags;
}

function startProdFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  return nodeFlags(pkg.scripts['start:prod']);
}

/** Pids whose process group is `pgid` (the detached `npx` and everything it started). */
function processGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** The inode of the TCP socket listening on 127.0.0.1:port, if any. */
function listeningInode(port: number): string | undefined {
  const wanted = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === wanted && f[3] === '0A') return f[9];
  }
  return undefined;
}

/** Which of `pids` holds the socket with this inode. */
function socketOwner(pids: readonly number[], inode: string): number | undefined {
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
}

describe('nest start', () => {
  it('is configured with the node flags of start:prod, like the Dockerfile', () => {
    const expected = startProdFlags();
    expect(expected).toContain('--max-semi-space-size=32');
    const nestCli = JSON.parse(readFileSync(join(ROOT, 'nest-cli.json'), 'utf8')) as { exec?: string; compilerOptions?: { assets?: unknown } };
    expect(nodeFlags(nestCli.exec ?? 'node')).toEqual(expected);
    const cmd = /^CMD (\[.*\])\s*$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    expect(cmd).not.toBeNull();
    expect(nodeFlags((JSON.parse(cmd![1]) as string[]).join(' '))).toEqual(expected);
  });

  describe('the real `npx nest start`', () => {
    let work: string;
    let outDir: string;
    let child: ChildProcess | undefined;
    let output = '';
    let port: number;
    let base: string;

    const tail = (): string => output.slice(-4000);

    beforeAll(async () => {
      const cache = join(ROOT, 'node_modules', '.cache', 'chat-nest-start');
      mkdirSync(cache, { recursive: true });
      work = mkdtempSync(join(cache, 'run-'));
      outDir = join(work, 'out');
      const tsconfig = join(work, 'tsconfig.json');
      writeFileSync(tsconfig, JSON.stringify({ extends: join(ROOT, 'tsconfig.json'), compilerOptions: { outDir } }, null, 2));
      port = await freePort();
      base = `http://127.0.0.1:${port}`;
      // The CLI reads `-p` relative to the working directory.
      child = spawn('npx', ['nest', 'start', '-p', relative(ROOT, tsconfig)], {
        cwd: ROOT,
        detached: true, // its own process group: npx, the CLI, the shell and the gateway stop together
        stdio: ['ignore', 'pipe', 'pipe'],
        env: gatewayProcessEnv(port, {
          npm_config_update_notifier: 'false',
          AVATAR_DIR: join(work, 'avatars'),
          SHUTDOWN_DRAIN_MS: '200',
          LOG_LEVEL: 'info',
        }),
      });
      const collect = (chunk: Buffer): void => {
        output = (output + chunk.toString('utf8')).slice(-64_000);
      };
      child.stdout!.on('data', collect);
      child.stderr!.on('data', collect);

      const deadline = Date.now() + START_DEADLINE_MS;
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`nest start exited (${child.exitCode ?? child.signalCode}) before /health/live answered:\n${tail()}`);
        }
        try {
          const res = await fetch(`${base}/health/live`, { signal: AbortSignal.timeout(2000) });
          if (res.status === 200) break;
        } catch {
          // not listening yet: compiling
        }
        if (Date.now() > deadline) throw new Error(`no /health/live within ${START_DEADLINE_MS} ms:\n${tail()}`);
        await sleep(250);
      }
    }, START_DEADLINE_MS + 30_000);

    afterAll(async () => {
      const pgid = child?.pid;
      if (pgid !== undefined) {
        const signal = (sig: NodeJS.Signals): void => {
          try {
            process.kill(-pgid, sig);
          } catch {
            // the group is gone
          }
        };
        signal('SIGTERM');
        const until = Date.now() + 15_000;
        while (processGroup(pgid).length > 0 && Date.now() < until) await sleep(100);
        signal('SIGKILL');
      }
      if (work) rmSync(work, { recursive: true, force: true });
    }, 30_000);

    it('serves the demo page at GET /, bundled into its own outDir at start', async () => {
      const page = await fetch(`${base}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const html = await page.text();
      expect(html).toContain('<meta name="chat-ws-path" content="/ws" />');
      const script = /<script src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      const style = /<link rel="stylesheet" href="(\/assets\/[^"]+\.css)"/.exec(html)?.[1];
      expect(script).toBe('/assets/app.js');
      expect(style).toBe('/assets/style.css');

      const js = await fetch(`${base}${script}`);
      expect(js.status).toBe(200);
      expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      const code = await js.text();
      expect(code.length).toBeGreaterThan(1000);
      expect(code).toContain('AUTH_MESSAGE'); // the typed client is in the bundle
      const css = await fetch(`${base}${style}`);
      expect(css.status).toBe(200);
      expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');

      // Bundled by the gateway into <outDir>/public (the CLI had emptied the outDir), said in the log.
      expect(existsSync(join(outDir, 'public', 'index.html'))).toBe(true);
      expect(existsSync(join(outDir, 'public', 'assets', 'app.js'))).toBe(true);
      // Logged through pino-pretty's worker thread (a development start): its lines reach the pipe
      // asynchronously, on a loaded machine after /health/live already answered.
      const bundled = /the build had no demo page: bundled \S+ into \S+[/\\]out[/\\]public/;
      await eventually(() => bundled.test(output), 15_000, 'the bundling log line');
    });

    it('runs the gateway as node with the flags of start:prod (--max-semi-space-size=32)', () => {
      const inode = listeningInode(port);
      expect(inode).toBeDefined();
      const pid = socketOwner(processGroup(child!.pid!), inode!);
      if (pid === undefined) throw new Error(`no process of the nest start group listens on ${port}:\n${tail()}`);
      const argv = cmdline(pid);
      expect(basename(argv[0])).toMatch(/^node(\.exe)?$/);
      const entry = argv.findIndex((arg, i) => i > 0 && !arg.startsWith('-'));
      expect(argv[entry]).toBe(join(outDir, 'main'));
      const flags = argv.slice(1, entry);
      expect(flags).toContain('--max-semi-space-size=32');
      const expected = startProdFlags();
      for (const flag of expected) expect(flags).toContain(flag);
      // Besides them, only what the Nest CLI always adds.
      expect(flags.filter((flag) => !expected.includes(flag))).toEqual(['--enable-source-maps']);
    });
  });
});

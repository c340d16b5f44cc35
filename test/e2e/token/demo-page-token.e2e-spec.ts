/**
 * The demo page and the token lifecycle, in a real Chromium (Debian's, driven by playwright-core)
 * against the real gateway, the reference authorization server (demo users whose windowed tokens
 * live 3 s here) and the real Server API: a session that refreshes its token in band and outlives
 * it, one that lets it expire (4401 `token expired` shown), and one kicked by the application's
 * backend (`POST /api/v1/users/{id}/disconnect`: 4403 shown, no reconnect). Every frame the pages
 * receive and send is checked against docs/asyncapi.yaml; console errors fail the test.
 * Screenshots go to test-artifacts/browser/token-*.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { loadUsers } from '../../../src/demo-users/users';
import { buildWebBundle } from '../../../src/web/build';
import { assertValidClientFrame, serverFrameProblem } from '../../support/contract';
import { freePort } from '../../support/free-port';
import type { TestGateway } from '../../support/gateway';
import { httpRequest } from '../../support/http';
import { Scope } from '../../support/scope';
import { sleep } from '../../support/time';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(__dirname, '..', '..', '..', 'test-artifacts', 'browser');
const API_KEY = 'token-page-test-key-9f3Kq2';
const TTL = 3000;

jest.setTimeout(40_000);

describe('demo page: refreshed, expired and kicked sessions (real browser)', () => {
  // The bundled demo users, their windowed tokens living TTL ms.
  const scope = new Scope({ users: loadUsers().map((u) => ({ ...u, tokenTtlMs: TTL })), ownAuthServer: true });
  let gw: TestGateway;
  let apiPort: number;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];
  let launched: Promise<unknown> | undefined;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    apiPort = await freePort();
    // Chromium kept as soon as it is up: when the rest fails, afterAll still closes it (an open
    // Chromium keeps jest from exiting: CI would hang). The gateway is the scope's.
    const launching = chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] }).then((b) => (browser = b));
    launched = launching.catch(() => undefined);
    const [, gateway] = await Promise.all([buildWebBundle(), scope.gateway({ LOG_LEVEL: 'warn', API_KEYS: API_KEY, API_PORT: String(apiPort) }), launching]);
    gw = gateway;
  }, 60_000);

  afterAll(async () => {
    await launched;
    await Promise.all(contexts.map((c) => c.close().catch(() => undefined)));
    await browser?.close();
    await scope.closeAll();
  });

  afterEach(() => {
    expect(problems).toEqual([]);
  });

  async function openPage(label: string): Promise<Page> {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on('websocket', (ws) => {
      ws.on('framereceived', ({ payload }) => {
        const problem = serverFrameProblem(JSON.parse(String(payload)));
        if (problem) problems.push(`${label}: ${problem}`);
      });
      ws.on('framesent', ({ payload }) => {
        try {
          assertValidClientFrame(JSON.parse(String(payload)));
        } catch (err) {
          problems.push(`${label} sent: ${String(err)}`);
        }
      });
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${label} console ${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`${label} page error: ${err.message}`));
    await page.goto(`${gw.httpUrl}/`);
    return page;
  }

  async function loginAs(page: Page, nickname: string, autoRefresh: boolean): Promise<void> {
    await page.getByLabel('Demo user').selectOption({ label: nickname });
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await page.getByRole('status').filter({ hasText: `Connected as ${nickname}` }).waitFor();
    if (!autoRefresh) await page.getByLabel('Refresh it before it expires').uncheck();
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `token-${name}.png`), fullPage: true });

  it('a session that refreshes its token in band outlives the token it logged in with', async () => {
    const alice = await openPage('alice');
    const loggedInAt = Date.now();
    await loginAs(alice, 'alice', true);
    await alice.locator('#token-expiry').filter({ hasText: /It expires at .*, in \d+ s\./ }).waitFor();
    await alice.locator('#token-note').filter({ hasText: /Token refreshed at .*: valid until/ }).waitFor({ timeout: 5000 });
    await sleep(loggedInAt + TTL + 800 - Date.now());
    expect(await alice.getByRole('status').filter({ hasText: 'Connected as alice' }).count()).toBe(1);
    await shot(alice, '01-refreshed');
  });

  it('a session that does not refresh shows its expiry: 4401 token expired', async () => {
    const bob = await openPage('bob');
    await loginAs(bob, 'bob', false);
    await bob.locator('#token-note').filter({ hasText: /Your token expires in \d+ s/ }).waitFor({ timeout: 5000 });
    await bob.getByRole('status').filter({ hasText: 'Your token expired (4401)' }).waitFor({ timeout: 5000 });
    expect(await bob.locator('#status').getAttribute('data-state')).toBe('expired');
    await shot(bob, '02-expired');
  });

  it("a session kicked by the application's backend (Server API) shows 4403 and does not reconnect", async () => {
    const carol = await openPage('carol');
    await loginAs(carol, 'carol', true);
    const reply = await httpRequest(`http://127.0.0.1:${apiPort}/api/v1/users/3/disconnect`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason: 'banned for the demo' }),
    });
    expect([reply.status, JSON.parse(reply.body)]).toEqual([200, { disconnected: true }]);
    const status = carol.getByRole('status').filter({ hasText: "Disconnected by the application's backend (4403: banned for the demo). Not reconnecting." });
    await status.waitFor();
    expect(await carol.locator('#status').getAttribute('data-state')).toBe('kicked');
    await sleep(1000);
    expect(await status.count()).toBe(1); // still: no reconnect replaced it
    await shot(carol, '03-kicked');
  });
});

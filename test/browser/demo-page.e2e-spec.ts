/**
 * The demo page (GET /) in a real browser: Debian's Chromium driven by playwright-core, against
 * the real gateway. Two users log in, see each other online, chat, exchange a private message
 * that shows delivered, one uploads an avatar that the other then sees; a third page with a bad
 * token sees a clear error. Every WebSocket frame the pages receive is validated against
 * docs/asyncapi.yaml (and every frame they send too); console errors, page errors and CSP
 * violations fail the test. Screenshots of each step go to test-artifacts/browser/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { buildWebBundle } from '../../src/web/build';
import { assertValidClientFrame, serverFrameProblem } from '../support/contract';
import { startGateway, type TestGateway } from '../support/gateway';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts', 'browser');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-quic',
  '--no-first-run',
  '--disable-sync',
];

jest.setTimeout(30_000);

describe('demo page in a real browser', () => {
  let gw: TestGateway | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];
  let framesChecked = 0;
  let alice: Page;
  let bob: Page;
  let settled: Promise<unknown> | undefined;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium not found at ${CHROMIUM}: the browser tests drive a real Chromium. ` +
          'Install Debian\'s package (apt-get install -y chromium; .ci/run does this when it is missing) or set CHROMIUM_PATH.',
      );
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    // Each one kept as soon as it is up: when another fails, afterAll still closes it (a Chromium
    // or a gateway left open keeps jest from exiting: CI would hang).
    const starting = [startGateway({ LOG_LEVEL: 'warn' }).then((g) => (gw = g)), chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }).then((b) => (browser = b))];
    settled = Promise.allSettled(starting);
    await Promise.all([buildWebBundle(), ...starting]);
  }, 60_000);

  afterAll(async () => {
    await settled;
    await Promise.all(contexts.map((c) => c.close().catch(() => undefined)));
    await browser?.close();
    await gw?.close();
  });

  afterEach(() => {
    expect(problems).toEqual([]);
  });

  /** A page in its own browser context (its own storage), with every frame and error watched. */
  async function openPage(label: string, viewport = { width: 1280, height: 860 }): Promise<Page> {
    const context = await browser!.newContext({ viewport });
    contexts.push(context);
    const page = await context.newPage();
    page.on('websocket', (ws) => {
      ws.on('framereceived', ({ payload }) => {
        framesChecked++;
        let frame: unknown;
        try {
          frame = JSON.parse(typeof payload === 'string' ? payload : payload.toString());
        } catch {
          problems.push(`${label}: a frame that is not JSON: ${String(payload).slice(0, 200)}`);
          return;
        }
        const problem = serverFrameProblem(frame);
        if (problem) problems.push(`${label}: ${problem}`);
      });
      ws.on('framesent', ({ payload }) => {
        try {
          assertValidClientFrame(JSON.parse(typeof payload === 'string' ? payload : payload.toString()));
        } catch (err) {
          problems.push(`${label} sent: ${String(err)}`);
        }
      });
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${label} console ${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`${label} page error: ${err.message}`));
    const response = await page.goto(`${gw!.httpUrl}/`);
    expect(response?.status()).toBe(200);
    return page;
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  async function loginAs(page: Page, nickname: string): Promise<void> {
    await page.getByLabel('Demo user').selectOption({ label: nickname });
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await page.getByRole('status').filter({ hasText: `Connected as ${nickname}` }).waitFor();
    await page.locator('#app').waitFor({ state: 'visible' });
  }

  const onlineEntry = (page: Page, userId: string) => page.locator(`#online li[data-user-id="${userId}"]`);

  it('logs in two demo users who see each other online', async () => {
    alice = await openPage('alice');
    await shot(alice, '01-login-page');
    await loginAs(alice, 'alice');
    await onlineEntry(alice, '1').getByText('(you)').waitFor();
    await shot(alice, '02-alice-logged-in');

    bob = await openPage('bob');
    await loginAs(bob, 'bob');
    await onlineEntry(alice, '2').getByText('bob').waitFor();
    await onlineEntry(bob, '1').getByText('alice').waitFor();
    expect(await alice.locator('#online-count').textContent()).toBe('(2)');
    await shot(alice, '03-alice-sees-bob-online');
    await shot(bob, '03-bob-sees-alice-online');
  });

  it('chats: a message reaches both pages', async () => {
    await alice.getByLabel('Message to everyone', { exact: true }).fill('Hello from Alice \u{1F44B}');
    await alice.getByLabel('Message to everyone', { exact: true }).press('Enter');
    for (const page of [alice, bob]) {
      await page.locator('#chat-log li').filter({ hasText: 'Hello from Alice \u{1F44B}' }).filter({ hasText: 'alice' }).waitFor();
    }
    await expect(alice.getByLabel('Message to everyone', { exact: true }).inputValue()).resolves.toBe('');
    await shot(alice, '04-chat-alice');
    await shot(bob, '04-chat-bob');
  });

  it('sends a private dialog that shows delivered', async () => {
    await alice.getByLabel('With', { exact: true }).selectOption({ label: 'bob' });
    await alice.getByLabel('Private message', { exact: true }).fill('Hi Bob, just between us');
    await alice.getByLabel('Private message', { exact: true }).press('Enter');
    await bob.locator('#dialog-log li').filter({ hasText: 'Hi Bob, just between us' }).filter({ hasText: 'alice \u2192 you' }).waitFor();
    const sent = alice.locator('#dialog-log li').filter({ hasText: 'Hi Bob, just between us' });
    await sent.locator('.tick[data-delivery="SUCCESS"]').waitFor();
    expect(await sent.locator('.tick').textContent()).toContain('delivered');
    // Not in the public chat.
    expect(await bob.locator('#chat-log').textContent()).not.toContain('just between us');
    await shot(alice, '05-dialog-delivered-alice');
    await shot(bob, '05-dialog-received-bob');
  });

  it('uploads an avatar on one page that the other page then shows', async () => {
    const png = await sharp({
      create: { width: 96, height: 96, channels: 3, background: { r: 230, g: 120, b: 30 } },
    })
      .png()
      .toBuffer();
    await bob.getByLabel(/Change your avatar/).setInputFiles({ name: 'bob.png', mimeType: 'image/png', buffer: png });
    await bob.getByText('Avatar saved').waitFor();

    const img = onlineEntry(alice, '2').locator('img.avatar');
    await img.waitFor();
    const src = await img.getAttribute('src');
    expect(src).toMatch(new RegExp(`^${gw!.httpUrl}/avatars/`));
    // Loaded for real (the CSP lets it in, the server serves an image).
    await alice.waitForFunction((el) => el instanceof HTMLImageElement && el.complete && el.naturalWidth > 0, await img.elementHandle());
    // And bob's own entry shows it too.
    expect(await onlineEntry(bob, '2').locator('img.avatar').getAttribute('src')).toBe(src);
    await shot(bob, '06-avatar-uploaded-bob');
    await shot(alice, '06-avatar-seen-by-alice');

    // Over AVATAR_MAX_BYTES: refused by the page itself (sending it would end the connection with 1009).
    await bob.getByLabel(/Change your avatar/).setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: Buffer.alloc(1_100_000, 1) });
    await bob.getByText(/Avatar not saved: that image is too large/).waitFor();
    expect(await bob.getByRole('status').filter({ hasText: 'Connected as bob' }).count()).toBe(1);
  });

  it('shows a clear error for a bad token', async () => {
    const stranger = await openPage('bad token');
    await stranger.getByLabel('Or paste a token').fill('definitely-not-a-token');
    await stranger.getByRole('button', { name: 'Log in with token' }).click();
    const alert = stranger.getByRole('alert');
    await alert.waitFor({ state: 'visible' });
    expect(await alert.textContent()).toMatch(/Login refused: The token was not found or is invalid\. \(error 2, close code 4401\)/);
    expect(await stranger.locator('#app').isHidden()).toBe(true);
    await shot(stranger, '07-bad-token-error');
  });

  it('lays out for a phone screen', async () => {
    await alice.setViewportSize({ width: 390, height: 844 });
    const [online, chat] = await Promise.all([
      alice.locator('section.online').boundingBox(),
      alice.locator('section.chat').boundingBox(),
    ]);
    // Stacked, not side by side, and nothing wider than the screen.
    expect(chat!.y).toBeGreaterThan(online!.y + online!.height - 1);
    expect(await alice.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(alice, '08-phone-layout');
    expect(framesChecked).toBeGreaterThanOrEqual(10);
  });
});

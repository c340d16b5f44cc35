/**
 * GET / and its assets, served by the real gateway from the bundle that src/web/build.ts writes:
 * content types, nosniff, the CSP, revalidation, 404s, DEMO_PAGE=false; and the "not built"
 * answer, on a bundle directory that has no page.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/gateway-config';
import { startGateway, type TestGateway } from '../../test/support/gateway';
import { httpGet, httpRequest } from '../../test/support/http';
import { buildWebBundle } from './build';
import { escapeHtml, WebBundle } from './web-bundle';
import { WebController } from './web.controller';
import { demoPageCsp } from './web-headers';
import { WEB_BUNDLE_DIR } from './web-paths';

describe('demo page (WebModule)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    await buildWebBundle();
    gw = await startGateway({ LOG_LEVEL: 'warn' });
  }, 30_000);
  afterAll(() => gw.close());

  it('serves the page at GET / with a strict CSP, nosniff and the WebSocket path', async () => {
    const res = await httpGet(`${gw.httpUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("style-src 'self';");
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${gw.port} wss://127.0.0.1:${gw.port}`);
    expect(csp).toContain(`img-src 'self' data: blob: ${gw.httpUrl}`);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(res.body).toContain('<meta name="chat-ws-path" content="/ws" />');
    expect(res.body).toContain('<meta name="chat-avatar-max-bytes" content="1048576" />');
    expect(res.body).not.toMatch(/__[A-Z_]+__/);
    expect(res.body).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/); // no CDN, nothing external
  });

  it.each([
    ['app.js', 'text/javascript; charset=utf-8'],
    ['style.css', 'text/css; charset=utf-8'],
  ])('serves /assets/%s as %s', async (file, type) => {
    const res = await httpGet(`${gw.httpUrl}/assets/${file}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(type);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.body.length).toBeGreaterThan(500);
  });

  it('answers 304 while the file is unchanged', async () => {
    const first = await httpGet(`${gw.httpUrl}/assets/app.js`);
    const again = await httpGet(`${gw.httpUrl}/assets/app.js`, { 'If-None-Match': String(first.headers.etag) });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });

  it.each(['nope.js', '.hidden.js', 'app.js.map', '..%2Fpackage.json', '..%2F..%2Fpackage.json', 'index.html'])(
    'answers 404 for /assets/%s',
    async (file) => {
      const res = await httpGet(`${gw.httpUrl}/assets/${file}`);
      expect(res.status).toBe(404);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body).not.toContain('"name"');
    },
  );

  it('puts only a well-formed Host into the CSP', async () => {
    const res = await httpGet(`${gw.httpUrl}/`, { Host: "evil.example; script-src 'unsafe-inline'" });
    expect(res.status).toBe(200);
    expect(String(res.headers['content-security-policy'])).toContain("connect-src 'self'; ");
    expect(String(res.headers['content-security-policy'])).not.toContain('evil');
  });

  it('fills in a custom WS_PATH, escaped', async () => {
    const other = await startGateway({ WS_PATH: "/chat/it's", LOG_LEVEL: 'warn' });
    try {
      const res = await httpGet(`${other.httpUrl}/`);
      expect(res.body).toContain('content="/chat/it&#39;s"');
    } finally {
      await other.close();
    }
  });

  it('is off with DEMO_PAGE=false', async () => {
    expect(loadConfig({}).demoPage).toBe(true);
    expect(loadConfig({ DEMO_PAGE: 'false' }).demoPage).toBe(false);
    expect(() => loadConfig({ DEMO_PAGE: 'maybe' })).toThrow(/DEMO_PAGE/);
    const off = await startGateway({ DEMO_PAGE: 'false', LOG_LEVEL: 'warn' });
    try {
      expect((await httpGet(`${off.httpUrl}/`)).status).toBe(404);
      expect((await httpGet(`${off.httpUrl}/assets/app.js`)).status).toBe(404);
      expect((await httpGet(`${off.httpUrl}/health/live`)).status).toBe(200);
    } finally {
      await off.close();
    }
  });

  describe('without a built bundle', () => {
    let dir: string;
    let server: Server;
    let url: string;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'web-bundle-'));
      const controller = new WebController(new WebBundle(dir, { wsPath: '/ws', avatarMaxBytes: 1000 }), loadConfig({}));
      server = createServer((req, res) => {
        if (req.url === '/') controller.index(req, res);
        else controller.asset(req.url!.replace('/assets/', ''), req, res);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    });

    it('answers GET / with 404 and how to build it, and serves it once built', async () => {
      const res = await httpGet(`${url}/`);
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body).toMatch(/demo page is not built.*npm run build/s);
      expect((await httpGet(`${url}/assets/app.js`)).body).toMatch(/not built/);

      // Built while running: picked up without a restart, and rebuilt content too.
      writeFileSync(join(dir, 'index.html'), '<p>v1 __WS_PATH__ __AVATAR_MAX_BYTES__</p>');
      expect((await httpGet(`${url}/`)).body).toBe('<p>v1 /ws 1000</p>');
      writeFileSync(join(dir, 'index.html'), '<p>v2</p>');
      const later = new Date(Date.now() + 5000);
      utimesSync(join(dir, 'index.html'), later, later);
      expect((await httpGet(`${url}/`)).body).toBe('<p>v2</p>');
      expect((await httpRequest(`${url}/`, { method: 'HEAD' })).status).toBe(200);
    });
  });

  it('has helpers that escape and build a CSP', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
    expect(demoPageCsp('[::1]:8080', 'https://chat.example.com/base')).toContain(
      "img-src 'self' data: blob: https://chat.example.com; connect-src 'self' ws://[::1]:8080 wss://[::1]:8080",
    );
    expect(demoPageCsp(undefined, 'not a url')).toContain("img-src 'self' data: blob:; connect-src 'self';");
    expect(WEB_BUNDLE_DIR).toMatch(/[/\\]dist[/\\]public$/);
  });
});

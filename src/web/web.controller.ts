import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Inject, Param, Req, Res } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import type { WebAsset } from './web-bundle';
import { WebBundle } from './web-bundle';
import { demoPageHeaders } from './web-headers';

const NOT_BUILT =
  'The demo page is not built. `npm run build` bundles it (src/web -> dist/public), then `npm run start:prod`;\n' +
  '`npm start` and `nest start` build it themselves (with the sources and esbuild installed). Set DEMO_PAGE=false\n' +
  'to turn this page off.\n';

/**
 * GET / (the demo chat page) and GET /assets/<file> (its script and stylesheet), from the bundle
 * in memory; strict CSP and nosniff on every answer. Written against node's IncomingMessage and
 * ServerResponse (which express's extend), like the avatar controller.
 */
@Controller()
export class WebController {
  constructor(
    private readonly bundle: WebBundle,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Get()
  index(@Req() req: IncomingMessage, @Res() res: ServerResponse): void {
    const files = this.bundle.load();
    const index = files?.get('index.html');
    if (!index) return this.notFound(req, res, NOT_BUILT);
    this.send(req, res, index);
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Req() req: IncomingMessage, @Res() res: ServerResponse): void {
    const found = this.bundle.asset(file);
    if (!found) return this.notFound(req, res, this.bundle.load() ? 'no such asset\n' : NOT_BUILT);
    this.send(req, res, found);
  }

  private send(req: IncomingMessage, res: ServerResponse, asset: WebAsset): void {
    this.common(req, res);
    res.setHeader('Content-Type', asset.contentType);
    res.setHeader('ETag', asset.etag);
    // Fixed file names: always revalidate (cheap, 304 while unchanged).
    res.setHeader('Cache-Control', 'no-cache');
    if (req.headers['if-none-match'] === asset.etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.statusCode = 200;
    res.setHeader('Content-Length', asset.body.length);
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  }

  private notFound(req: IncomingMessage, res: ServerResponse, message: string): void {
    this.common(req, res);
    res.statusCode = 404;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(message));
    res.end(req.method === 'HEAD' ? undefined : message);
  }

  private common(req: IncomingMessage, res: ServerResponse): void {
    for (const [name, value] of Object.entries(demoPageHeaders(req.headers.host, this.config.publicUrl))) res.setHeader(name, value);
  }
}

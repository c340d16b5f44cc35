import { Module } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { WebBundle } from './web-bundle';
import { WebController } from './web.controller';
import { WEB_BUNDLE_DIR } from './web-paths';

/**
 * The demo chat page at GET / (imported by AppModule unless DEMO_PAGE=false). It serves the
 * bundle that `npm run build` wrote to dist/public and builds nothing itself: without a bundle,
 * GET / answers 404 with a message saying how to build it.
 */
@Module({
  controllers: [WebController],
  providers: [
    {
      provide: WebBundle,
      inject: [GATEWAY_CONFIG],
      useFactory: (config: GatewayConfig) =>
        new WebBundle(WEB_BUNDLE_DIR, { wsPath: config.wsPath, avatarMaxBytes: config.avatarMaxBytes }),
    },
  ],
})
export class WebModule {}

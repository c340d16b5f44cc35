import { Module } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { buildBundleIfMissing } from './web-autobuild';
import { WebBundle } from './web-bundle';
import { WebController } from './web.controller';
import { WEB_BUNDLE_DIR } from './web-paths';

/**
 * The demo chat page at GET / (imported by AppModule unless DEMO_PAGE=false). It serves the
 * bundle in `<outDir>/public` (dist/public), written by `npm run build`; a gateway started from a
 * build without it (`nest start`) bundles it there before it listens, when the sources and
 * esbuild are at hand (web-autobuild.ts). Without a bundle, GET / answers 404 with a message
 * saying how to build it.
 */
@Module({
  controllers: [WebController],
  providers: [
    {
      provide: WebBundle,
      inject: [GATEWAY_CONFIG],
      useFactory: async (config: GatewayConfig) => {
        const bundle = new WebBundle(WEB_BUNDLE_DIR, { wsPath: config.wsPath, avatarMaxBytes: config.avatarMaxBytes });
        await buildBundleIfMissing(bundle);
        return bundle;
      },
    },
  ],
})
export class WebModule {}

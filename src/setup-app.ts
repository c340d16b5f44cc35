import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { setupServerApi } from './api/setup-server-api';
import { AppModule, type AppOptions } from './app.module';
import type { GatewayConfig } from './config/gateway-config';
import { GatewayWsAdapter } from './gateway/gateway-ws.adapter';
import { GatewayHttpAdapter, nosniff } from './http/gateway-http.adapter';

/** Builds the gateway application; shared by main.ts and the e2e tests so both run the same app. */
export async function createGatewayApp(config: GatewayConfig, options: AppOptions = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, options), new GatewayHttpAdapter(config), {
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  app.use(nosniff);
  // Server API (API_KEYS set): its listener's middleware goes in before Nest's body parser and
  // routes, to keep the API off the public port and everything else off the API's port; the API's
  // own listener (API_HOST:API_PORT) opens with the app (ApiListener, src/api/api-listener.ts).
  if (config.apiKeys) setupServerApi(app);
  app.useWebSocketAdapter(new GatewayWsAdapter(app, config));
  app.disable('x-powered-by');
  return app;
}

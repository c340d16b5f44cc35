import 'reflect-metadata';
import { ConfigError, loadConfig } from './config/gateway-config';
import { createGatewayApp } from './setup-app';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chat-gateway: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const app = await createGatewayApp(config);
  await app.listen(config.port, config.host ?? '0.0.0.0');
  app.get(require('nestjs-pino').Logger).log(`chat gateway listening on port ${config.port}, WebSocket path ${config.wsPath}`, 'Main');
}

main().catch((err: unknown) => {
  process.stderr.write(`chat-gateway: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

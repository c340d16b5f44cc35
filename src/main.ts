import 'reflect-metadata';
import { Logger } from 'nestjs-pino';
import { ConfigError, loadConfig, type GatewayConfig } from './config/gateway-config';
import { WsGateway } from './gateway/ws.gateway';
import { DrainState } from './lifecycle/drain-state';
import { createGatewayApp } from './setup-app';

async function main(): Promise<void> {
  let config: GatewayConfig;
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
  const logger = app.get(Logger);
  process.on('unhandledRejection', (reason) => logger.error(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`, 'Main'));
  await app.listen(config.port, config.host);
  logger.log(`chat gateway listening on ${config.host}:${config.port}, WebSocket path ${config.wsPath}`, 'Main');

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Hard stop: whatever happens, the process is gone within SHUTDOWN_DRAIN_MS + 5 s.
    setTimeout(() => {
      logger.error('shutdown took too long: exiting', 'Main');
      process.exit(1);
    }, config.shutdownDrainMs + 4500).unref();
    logger.log(`${signal}: shutting down (readiness 503, new upgrades refused, draining over ${config.shutdownDrainMs} ms)`, 'Main');
    app.get(DrainState).start();
    try {
      await app.get(WsGateway).drain(config.shutdownDrainMs);
      await app.close();
    } catch (err) {
      logger.error(`shutdown failed: ${err instanceof Error ? err.stack : String(err)}`, 'Main');
      process.exit(1);
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`chat-gateway: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

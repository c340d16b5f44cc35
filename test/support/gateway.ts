import type { NestExpressApplication } from '@nestjs/platform-express';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import { loadConfig } from '../../src/config/gateway-config';
import type { AppOptions } from '../../src/app.module';
import { createGatewayApp } from '../../src/setup-app';
import { freePort } from './free-port';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestGateway {
  app: NestExpressApplication;
  port: number;
  /** http://127.0.0.1:<port> */
  httpUrl: string;
  /** ws://127.0.0.1:<port>/ws (or the WS_PATH given) */
  wsUrl: string;
  /**
   * http://127.0.0.1:<API_PORT>, the Server API's listener, when API_KEYS is set (API_PORT, unless
   * given, is another free port, so that several nodes can run in one process).
   */
  apiUrl?: string;
  /** Every log line the app wrote (JSON), for leak checks. */
  logs: string[];
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * The environment of a gateway run as a child process on `port` of 127.0.0.1: of this process's
 * own environment only PATH and HOME (a developer's settings must not leak in), then `env`.
 */
export function gatewayProcessEnv(port: number, env: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' };
}

/**
 * Starts the real gateway application (the same createGatewayApp as main.ts) on a free port of
 * 127.0.0.1, with its log lines captured. `env` is validated exactly as at a real boot.
 */
export async function startGateway(env: Record<string, string> = {}, options: Pick<AppOptions, 'imports'> = {}): Promise<TestGateway> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const ownDir = env.AVATAR_DIR ? undefined : mkdtempSync(join(tmpdir(), 'gw-avatars-'));
  const fullEnv: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'debug',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    AVATAR_DIR: ownDir ?? env.AVATAR_DIR,
    ...(env.API_KEYS && !env.API_PORT ? { API_PORT: String(await freePort()) } : {}),
    ...env,
  };
  const config = loadConfig(fullEnv);
  const logs: string[] = [];
  // nestjs-pino and Nest's static Logger are process-wide: without this reset, a second app in the
  // same test process would write into the first app's stream. With several apps alive at once,
  // lines of any of them may land in the newest app's array: check leaks over all of them.
  __resetOutOfContextForTests();
  const app = await createGatewayApp(config, { ...options, logDestination: { write: (line: string) => void logs.push(line) } });
  await app.listen(port, '127.0.0.1');
  let closed = false;
  return {
    app,
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}${config.wsPath}`,
    apiUrl: config.apiKeys ? `http://127.0.0.1:${config.apiPort}` : undefined,
    logs,
    env: fullEnv,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    },
  };
}

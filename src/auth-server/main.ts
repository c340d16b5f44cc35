/**
 * CLI entry of the reference authorization server.
 *
 *   AUTH_PORT   port to listen on (default 8081; 0 picks a free one)
 *   AUTH_HOST   address to bind (default 127.0.0.1; 0.0.0.0 in a container)
 *   USERS_FILE  JSON users file (default: the bundled demo users); an entry's optional
 *               "tokenTtlMs" gives its user time-windowed tokens that expire (src/demo-users/users.ts)
 *
 * Logs JSON lines (one on start, one on shutdown); never a token.
 */
import { AuthServerHandle, startAuthServer } from './auth-server';
import { BUNDLED_USERS_SOURCE, loadUsers } from '../demo-users/users';

export const DEFAULT_AUTH_PORT = 8081;
export const DEFAULT_AUTH_HOST = '127.0.0.1';

export interface AuthServerConfig {
  port: number;
  host: string;
  usersFile: string | undefined;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

export function readConfig(env: NodeJS.ProcessEnv): AuthServerConfig {
  const rawPort = nonEmpty(env.AUTH_PORT);
  let port = DEFAULT_AUTH_PORT;
  if (rawPort !== undefined) {
    port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN;
    if (!(port >= 0 && port <= 65535)) {
      throw new ConfigError(`AUTH_PORT must be an integer from 0 to 65535, got ${JSON.stringify(rawPort)}`);
    }
  }
  return {
    port,
    host: nonEmpty(env.AUTH_HOST) ?? DEFAULT_AUTH_HOST,
    usersFile: nonEmpty(env.USERS_FILE),
  };
}

type Level = 'info' | 'warn' | 'error';

function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, name: 'auth-server', msg, ...fields });
  (level === 'info' ? process.stdout : process.stderr).write(`${line}\n`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Starts the server from the environment and stops it on SIGTERM/SIGINT. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<AuthServerHandle> {
  const config = readConfig(env);
  const users = loadUsers(config.usersFile);
  const server = await startAuthServer({ users, port: config.port, host: config.host });
  log('info', 'auth server listening', {
    url: server.url,
    host: config.host,
    port: server.port,
    users: users.length,
    usersFile: config.usersFile ?? BUNDLED_USERS_SOURCE,
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log('warn', 'second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    server.close().then(
      () => {
        log('info', 'auth server stopped', { signal });
        process.exit(0);
      },
      (err: unknown) => {
        log('error', 'auth server failed to stop cleanly', { signal, error: errorMessage(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    log('error', 'auth server failed to start', { error: errorMessage(err) });
    process.exitCode = 1;
  });
}

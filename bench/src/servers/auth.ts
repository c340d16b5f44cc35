/**
 * The CHECK_TOKEN server of the bench: the reference authorization server of the repo
 * (src/auth-server) with the generated users, in its own process.
 */
import { startAuthServer } from '../../../src/auth-server/auth-server';
import { loadUsers } from '../../../src/auth-server/users';

async function main(): Promise<void> {
  const file = process.env.USERS_FILE;
  if (!file) throw new Error('USERS_FILE is required');
  const server = await startAuthServer({ users: loadUsers(file), port: 0, host: '127.0.0.1' });
  process.send?.({ ready: true, url: server.url });
  process.on('disconnect', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench auth server: ${String(err)}\n`);
  process.exit(1);
});

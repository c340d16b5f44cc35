import { Logger } from '@nestjs/common';
import { loadUsers, UserDirectory } from '../demo-users/users';
import type { TokenCheck, TokenVerifier } from './token-verifier';

/**
 * Development only (AUTH_SERVER_URL unset, NODE_ENV not production): the demo users (src/demo-users,
 * which the reference authorization server serves too), in-process so that `npm start` gives a
 * working chat at once.
 */
export class DemoTokenVerifier implements TokenVerifier {
  private readonly directory: UserDirectory;

  constructor(logger = new Logger('DemoAuth')) {
    const users = loadUsers();
    this.directory = new UserDirectory(users);
    // The only place a token is ever printed: demo tokens, so that a newcomer can log in.
    logger.warn(
      `AUTH_SERVER_URL is not set: using the built-in demo users (development only). Demo tokens: ${users
        .map((u) => `${u.profile.nickname || u.profile.userId}=${u.token}`)
        .join(', ')}`,
    );
  }

  async verify(token: string): Promise<TokenCheck> {
    const profile = this.directory.check(token);
    return profile ? { outcome: 'valid', profile: { ...profile } } : { outcome: 'invalid' };
  }
}

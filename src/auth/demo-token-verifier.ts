import { Logger } from '@nestjs/common';
import { loadUsers, UserDirectory } from '../demo-users/users';
import type { TokenCheck, TokenVerifier } from './token-verifier';

/**
 * Development only (AUTH_SERVER_URL unset, NODE_ENV not production): the demo users (src/demo-users,
 * which the reference authorization server serves too), in-process so that `npm start` gives a
 * working chat at once. Time-windowed tokens of the demo users (`alice-token~<now>`, see
 * src/demo-users/users.ts) expire, so the demo page shows expiry and refresh without a server.
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

  /** The clock (replaceable in unit tests). */
  now: () => number = Date.now;

  /** A user's token, or one of its time-windowed tokens (`<token>~<issuedAt>`, with its expiresAt). */
  async verify(token: string): Promise<TokenCheck> {
    const grant = this.directory.grant(token, this.now());
    if (!grant) return { outcome: 'invalid' };
    return grant.expiresAt === undefined
      ? { outcome: 'valid', profile: grant.profile }
      : { outcome: 'valid', profile: grant.profile, expiresAt: grant.expiresAt };
  }
}

import { CanActivate, ExecutionContext, Inject, Injectable, Optional } from '@nestjs/common';
import { AUTH_OPTIONS, type AuthOptions } from './auth.options';
import { AuthError } from '../protocol/errors';
import { HANDSHAKE_LOGIN } from '../protocol/inbound';
import { MessageType } from '../protocol/protocol';
import type { ChatClient } from '../messaging/chat-client';
import { extractToken } from './token-extractor';
import { TokenHolders } from './token-holders';
import { TokenService } from './token.service';

/**
 * Where a token is checked (docs/protocol.md, "Authentication"). On a logged-in connection it
 * lets every guarded handler run. On the connection's own login (the gateway's AUTH_MESSAGE
 * pipeline) it finds the token, in the order of the protocol (the `authToken` header, an
 * `authToken.<base64url>` subprotocol, the query when allowed, else the AUTH_MESSAGE frame), asks
 * the TokenService (cache, single flight, breaker, CHECK_TOKEN) and attaches the verified user to
 * the client, with the token and its expiry (kept in memory for the token lifecycle, announced to
 * TokenHolders); a refused token throws the AuthError that the login answers with.
 * Anything else is refused: a handler guarded with it never runs for a connection that is not
 * logged in.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly tokens: TokenService,
    @Inject(AUTH_OPTIONS) private readonly config: Pick<AuthOptions, 'allowQueryToken'>,
    @Optional() private readonly holders?: TokenHolders,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    // The client is the first argument of a WebSocket handler (what switchToWs().getClient() reads,
    // without its per-call allocations: this runs for every frame).
    const client = context.getArgByIndex<ChatClient>(0);
    if (client.isJoined) return true;
    const ws = context.switchToWs();
    if (ws.getPattern() !== MessageType.AUTH || !client.isOpen) return false;
    if (client.user) return true;
    return this.authenticate(client, this.findToken(client, ws.getData<unknown>()));
  }

  /** The token of a login: from the AUTH_MESSAGE frame when there is one, else from the upgrade request. */
  private findToken(client: ChatClient, frame: unknown): string {
    if (frame !== HANDSHAKE_LOGIN) {
      const serverData = typeof frame === 'object' && frame !== null ? (frame as { serverData?: unknown }).serverData : undefined;
      const token = typeof serverData === 'object' && serverData !== null ? (serverData as { authToken?: unknown }).authToken : undefined;
      if (typeof token !== 'string' || token.length === 0) throw AuthError.missing('AUTH_MESSAGE without a token');
      return token;
    }
    // Read once: the connection keeps nothing of its upgrade request after its login.
    const request = client.takeRequest();
    const extracted = request ? extractToken(request, this.config.allowQueryToken) : ({ kind: 'none' } as const);
    if (extracted.kind === 'token') return extracted.token;
    throw extracted.kind === 'malformed' ? AuthError.invalid(`malformed token in ${extracted.source}`) : AuthError.missing();
  }

  private async authenticate(client: ChatClient, token: string): Promise<boolean> {
    const check = await this.tokens.verify(token);
    // Closed while its token was checked: nothing to log in (the login's close has happened).
    if (!client.isOpen) return false;
    if (check.outcome === 'valid') {
      client.authenticate(check.profile, check.expiresAt === undefined ? { token } : { token, expiresAt: check.expiresAt });
      this.holders?.accepted(client);
      return true;
    }
    throw check.outcome === 'invalid' ? AuthError.invalid() : AuthError.unavailable(`auth server: ${check.reason}`);
  }
}

import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';

/** What the guard needs to know of a client. */
export interface Authenticatable {
  readonly authenticated: boolean;
}

/**
 * Gates every message handler on the connection being authenticated (AUTH SUCCESS sent). The
 * gateway's router asks it before each handler, through `allows` (a plain call on the hot path:
 * no ExecutionContext per frame); frames it refuses are dropped without an answer. It also works
 * as a Nest guard (`canActivate`) for anything routed by Nest itself.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  allows(client: Authenticatable): boolean {
    return client.authenticated === true;
  }

  canActivate(context: ExecutionContext): boolean {
    return this.allows(context.switchToWs().getClient<Authenticatable>());
  }
}

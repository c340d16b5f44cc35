import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';

/** What the guard needs to know of a client. */
export interface Authenticatable {
  readonly authenticated: boolean;
}

/**
 * Gates every message handler on the connection being authenticated (AUTH SUCCESS sent). The
 * gateway's router runs it before each handler; frames it refuses are dropped without an answer.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToWs().getClient<Authenticatable>().authenticated === true;
  }
}

import { Injectable, Logger } from '@nestjs/common';
import type { ChatClient } from '../messaging/chat-client';

/**
 * Where AuthGuard announces the connections whose token it has just verified (the client now
 * holds the token and its expiry: ChatClient.token, tokenExpiresAt). The token lifecycle
 * (src/token) listens, to schedule the expiry and re-check the token; without a listener this is
 * one branch per login. A listener that throws is logged and never fails the login.
 */
@Injectable()
export class TokenHolders {
  private readonly logger = new Logger(TokenHolders.name);
  private listener?: (client: ChatClient) => void;

  /** Sets the one listener (the token lifecycle); returns a function that removes it. */
  listen(listener: (client: ChatClient) => void): () => void {
    this.listener = listener;
    return () => {
      if (this.listener === listener) this.listener = undefined;
    };
  }

  /** AuthGuard: `client` holds a verified token now. */
  accepted(client: ChatClient): void {
    const listener = this.listener;
    if (!listener) return;
    try {
      listener(client);
    } catch (err) {
      this.logger.error({ connId: client.id, err: err instanceof Error ? err.stack : String(err) }, 'token holder listener failed');
    }
  }
}

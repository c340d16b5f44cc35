import { Inject, Injectable, Logger, UseGuards, UsePipes } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { AuthGuard } from '../auth/auth.guard';
import { TokenService } from '../auth/token.service';
import { AVATAR_INDEX, type AvatarIndex } from '../engine/engine.ports';
import type { ChatClient } from '../messaging/chat-client';
import { FrameValidationPipe } from '../protocol/frame-validation.pipe';
import type { TokenRefreshErrorFrame, TokenRefreshSuccessFrame } from '../protocol/frames';
import {
  MessageType,
  PROFILE_FIELDS,
  Status,
  TokenCloseReason,
  TokenRefreshErrorCode,
  type UserProfile,
} from '../protocol/protocol';
import { SessionService } from '../session/session.service';
import { TokenRefreshDto } from './dto/token-refresh.dto';
import { TokenLifecycle } from './token-lifecycle.service';

const INVALID_MESSAGE = 'token not found or invalid';
const FOREIGN_MESSAGE = 'token of another user';
const UNAVAILABLE_MESSAGE = 'authorization server unavailable, try again later';

/**
 * TOKEN_REFRESH_MESSAGE (docs/protocol.md, "Token lifecycle"): a logged-in connection hands over a
 * new token without reconnecting. It is checked like a login's (TokenService: cache, single
 * flight, breaker, AUTH_TOKEN_MAX_BYTES):
 * - valid and the same user: the connection holds it from now on, its expiry moves to the new
 *   `expiresAt` (or goes), SUCCESS answers with it; the profile fields the authorization server
 *   now reports differently, both from its previous answer and from the online profile, reach
 *   everyone (USER_UPDATE_MESSAGE through the session core). A saved avatar (SAVE_AVATAR) wins over
 *   the authorization server's, as at login;
 * - invalid, expired, or another user's: ERROR "2", then the connection is closed with 4401 and
 *   its DISCONNECT goes out;
 * - the authorization server could not answer: ERROR "3", the connection is kept with its old
 *   token and expiry.
 * The connection's next frames wait for the answer (one frame at a time per connection).
 */
@Injectable()
export class TokenRefreshHandler {
  private readonly logger = new Logger(TokenRefreshHandler.name);

  constructor(
    private readonly tokens: TokenService,
    private readonly lifecycle: TokenLifecycle,
    private readonly sessions: SessionService,
    @Inject(AVATAR_INDEX) private readonly avatars: AvatarIndex,
  ) {}

  @UseGuards(AuthGuard)
  @UsePipes(FrameValidationPipe)
  @SubscribeMessage(MessageType.TOKEN_REFRESH)
  async refresh(@ConnectedSocket() client: ChatClient, @MessageBody() frame: TokenRefreshDto): Promise<TokenRefreshSuccessFrame | TokenRefreshErrorFrame | undefined> {
    const token = frame.serverData.authToken;
    const check = await this.tokens.verify(token);
    if (!client.isOpen) return undefined;
    if (check.outcome === 'unavailable') {
      this.lifecycle.count('refresh_unavailable');
      this.logger.log({ connId: client.id }, `token refresh: authorization server unavailable (${check.reason}), kept`);
      return refreshError(TokenRefreshErrorCode.AUTH_UNAVAILABLE, UNAVAILABLE_MESSAGE);
    }
    if (check.outcome === 'invalid' || check.profile.userId !== client.userId) {
      this.lifecycle.count('refresh_invalid');
      const message = check.outcome === 'invalid' ? INVALID_MESSAGE : FOREIGN_MESSAGE;
      client.send(refreshError(TokenRefreshErrorCode.INVALID_TOKEN, message));
      await this.lifecycle.closeUnauthorized(client, TokenCloseReason.REFRESH_REFUSED);
      return undefined;
    }
    const previous = client.user;
    const online = client.profile;
    client.renewCredential(check.expiresAt === undefined ? { token } : { token, expiresAt: check.expiresAt }, check.profile);
    this.lifecycle.track(client);
    this.lifecycle.count('refreshed');
    const changed = previous && online ? await this.changedFields(previous, online, check.profile) : {};
    if (Object.keys(changed).length > 0) {
      try {
        await this.sessions.updateProfile(client.userId, changed);
      } catch (err) {
        // Told to this node's clients all the same (updateProfile broadcasts before it rethrows).
        this.logger.warn({ connId: client.id, err: String(err) }, 'token refresh: the shared profile could not be written');
      }
    }
    return {
      type: MessageType.TOKEN_REFRESH,
      status: Status.SUCCESS,
      serverData: check.expiresAt === undefined ? {} : { expiresAt: String(check.expiresAt) },
    };
  }

  /**
   * What the refresh changes in the online profile: the fields the authorization server now
   * reports differently from its previous answer (so a change made online, such as a profile set
   * through the Server API, is not undone by a refresh that did not touch it), and that differ
   * from the online value; never the avatar while the user has a saved one.
   */
  private async changedFields(previous: UserProfile, online: UserProfile, fresh: UserProfile): Promise<Partial<UserProfile>> {
    const changed: Partial<UserProfile> = {};
    for (const field of PROFILE_FIELDS) {
      if (field === 'userId') continue;
      if (fresh[field] !== previous[field] && fresh[field] !== online[field]) changed[field] = fresh[field];
    }
    if (changed.avatar !== undefined) {
      try {
        if (await this.avatars.get(fresh.userId)) delete changed.avatar;
      } catch {
        // The saved avatars cannot be read now: keep the online avatar rather than risk undoing a save.
        delete changed.avatar;
      }
    }
    return changed;
  }
}

function refreshError(errorCode: TokenRefreshErrorCode, message: string): TokenRefreshErrorFrame {
  return { type: MessageType.TOKEN_REFRESH, status: Status.ERROR, error: { errorCode, message } };
}

import { Inject, Injectable, Logger, UseGuards, UsePipes } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { AuthGuard } from '../auth/auth.guard';
import { AVATAR_INDEX, QUOTA_STORE, type AvatarIndex, type QuotaStore } from '../engine/engine.ports';
import type { ChatClient } from '../messaging/chat-client';
import { AvatarError } from '../protocol/errors';
import { FrameValidationPipe } from '../protocol/frame-validation.pipe';
import { AvatarErrorCode, MessageType, Status } from '../protocol/protocol';
import { decodeAvatarBase64, reencodeAvatar } from './avatar-image';
import { AVATAR_OPTIONS, type AvatarOptions } from './avatar.options';
import { AVATAR_STORE, avatarFileNameOf, avatarUrl, type AvatarStore } from './avatar-store';
import { SaveAvatarDto } from './dto/save-avatar.dto';
import { SessionService } from '../session/session.service';
import { Semaphore } from './semaphore';

/** The window of AVATAR_SAVES_PER_MINUTE. */
export const AVATAR_QUOTA_WINDOW_MS = 60_000;

/** The quota key of a user's SAVE_AVATARs (shared by every node). */
export function avatarQuotaKey(userId: string): string {
  return `avatar-saves:${userId}`;
}

/**
 * SAVE_AVATAR: validates and re-encodes the image, stores it, makes its URL the user's avatar
 * everywhere (index + online profile), tells everyone else with USER_UPDATE_MESSAGE, and deletes
 * the avatar it replaced. Against hostile clients:
 * - every SAVE_AVATAR of a user counts toward AVATAR_SAVES_PER_MINUTE (deployment-wide, sliding
 *   window), invalid images included; beyond it, "4" without decoding anything;
 * - an image over AVATAR_MAX_PIXELS is "2", refused on its header, before its pixels are decoded;
 * - this node decodes at most AVATAR_CONCURRENCY images at once, the others wait in FIFO order;
 * - one stored file per user: the new file is deleted if it cannot be indexed, the replaced one
 *   once the index and the online profile name the new URL.
 */
@Injectable()
@UseGuards(AuthGuard)
@UsePipes(FrameValidationPipe)
export class AvatarService {
  private readonly logger = new Logger(AvatarService.name);
  private readonly decodeSlots: Semaphore;

  constructor(
    @Inject(AVATAR_STORE) private readonly store: AvatarStore,
    @Inject(AVATAR_INDEX) private readonly index: AvatarIndex,
    @Inject(QUOTA_STORE) private readonly quotas: QuotaStore,
    private readonly sessions: SessionService,
    @Inject(AVATAR_OPTIONS) private readonly config: AvatarOptions,
  ) {
    this.decodeSlots = new Semaphore(config.avatarConcurrency);
  }

  @SubscribeMessage(MessageType.SAVE_AVATAR)
  async saveAvatar(@ConnectedSocket() client: ChatClient, @MessageBody() frame: SaveAvatarDto): Promise<void> {
    if (!(await this.withinQuota(client))) {
      throw new AvatarError(AvatarErrorCode.TOO_MANY_UPLOADS, 'too many uploads, try again later');
    }
    const serverData = frame.serverData;
    const imageBase64 = typeof serverData === 'object' && serverData !== null ? (serverData as { imageBase64?: unknown }).imageBase64 : undefined;
    const image = decodeAvatarBase64(imageBase64, this.config.avatarMaxBytes);
    if (this.decodeSlots.waiting > 0 || this.decodeSlots.running >= this.decodeSlots.limit) {
      this.logger.debug({ connId: client.id, waiting: this.decodeSlots.waiting + 1 }, 'avatar decode waiting for a free slot');
    }
    const avatar = await this.decodeSlots.run(() => reencodeAvatar(image, { maxPixels: this.config.avatarMaxPixels }));

    let fileName: string;
    try {
      fileName = await this.store.put(avatar.data, avatar.ext, avatar.contentType);
    } catch (err) {
      this.logger.error({ connId: client.id, err: String(err) }, 'avatar could not be stored');
      throw storeFailed();
    }
    const url = avatarUrl(this.config.publicUrl, fileName);
    let previous: string | undefined;
    try {
      previous = await this.index.set(client.userId, url);
    } catch (err) {
      this.logger.error({ connId: client.id, err: String(err) }, 'avatar could not be indexed');
      await this.deleteFile(client, fileName, 'unindexed');
      throw storeFailed();
    }
    // The online profile everywhere, and USER_UPDATE_MESSAGE to everyone else.
    const profileUpdated = await this.sessions.updateProfile(client.userId, { avatar: url }).then(
      () => true,
      (err: unknown) => {
        this.logger.warn({ connId: client.id, err: String(err) }, 'online profile not updated (the index has the avatar)');
        return false;
      },
    );
    client.send({ type: MessageType.SAVE_AVATAR, status: Status.SUCCESS, serverData: { avatar: url } });

    // The replaced file: only one of ours (never, say, the authorization server's avatar), and
    // only once no userList can name it: the index names the new URL, and so does the online
    // profile unless its update failed (then the online profile may still name the old file,
    // which is kept rather than shown broken; it is logged).
    const replaced = previous === undefined || previous === url ? undefined : avatarFileNameOf(this.config.publicUrl, previous);
    if (replaced === undefined) return;
    if (!profileUpdated) {
      this.logger.warn({ connId: client.id, file: replaced }, 'replaced avatar kept: the online profile may still name it');
      return;
    }
    await this.deleteFile(client, replaced, 'replaced');
  }

  /** Counts this attempt; true when within the quota, or when the quota cannot be checked. */
  private async withinQuota(client: ChatClient): Promise<boolean> {
    try {
      return await this.quotas.take(avatarQuotaKey(client.userId), this.config.avatarSavesPerMinute, AVATAR_QUOTA_WINDOW_MS);
    } catch (err) {
      // Shared state unreachable: an upload is not refused for that (the rest of the pipeline
      // still bounds the cost: one frame at a time per connection, AVATAR_CONCURRENCY decodes).
      this.logger.debug({ connId: client.id, err: String(err) }, 'avatar quota unavailable: upload allowed');
      return true;
    }
  }

  /** Deletes a stored avatar; a failure is logged, never reported to the client. */
  private async deleteFile(client: ChatClient, fileName: string, why: 'replaced' | 'unindexed'): Promise<void> {
    try {
      await this.store.delete(fileName);
    } catch (err) {
      this.logger.warn({ connId: client.id, file: fileName, err: String(err) }, `${why} avatar not deleted`);
    }
  }
}

function storeFailed(): AvatarError {
  return new AvatarError(AvatarErrorCode.STORE_FAILED, 'the avatar could not be stored, try again later');
}

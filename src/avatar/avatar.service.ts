import { Inject, Injectable, Logger } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import type { ClientHandle, InboundFrame } from '../messaging/client';
import { Messenger } from '../messaging/messenger';
import { OnMessage } from '../messaging/on-message.decorator';
import { PresenceService } from '../presence/presence.service';
import { AvatarError } from '../protocol/errors';
import { AvatarErrorCode, MessageType, Status } from '../protocol/protocol';
import { isObject } from '../protocol/validation';
import { decodeAvatarBase64, reencodeAvatar } from './avatar-image';
import { AVATAR_INDEX, type AvatarIndex } from './avatar-index';
import { AVATAR_STORE, avatarUrl, type AvatarStore } from './avatar-store';

/**
 * SAVE_AVATAR: validates and re-encodes the image, stores it, makes its URL the user's avatar
 * everywhere (index + online profile) and tells everyone else with USER_UPDATE_MESSAGE.
 */
@Injectable()
export class AvatarService {
  private readonly logger = new Logger(AvatarService.name);

  constructor(
    @Inject(AVATAR_STORE) private readonly store: AvatarStore,
    @Inject(AVATAR_INDEX) private readonly index: AvatarIndex,
    private readonly presence: PresenceService,
    private readonly messenger: Messenger,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @OnMessage(MessageType.SAVE_AVATAR)
  async handleSaveAvatar(client: ClientHandle, frame: InboundFrame): Promise<void> {
    const serverData = isObject(frame.serverData) ? frame.serverData : {};
    const image = decodeAvatarBase64(serverData.imageBase64, this.config.avatarMaxBytes);
    const avatar = await reencodeAvatar(image);
    let url: string;
    try {
      const fileName = await this.store.put(avatar.data, avatar.ext, avatar.contentType);
      url = avatarUrl(this.config.publicUrl, fileName);
      await this.index.set(client.userId, url);
    } catch (err) {
      this.logger.error({ connId: client.id, err: String(err) }, 'avatar could not be stored');
      throw new AvatarError(AvatarErrorCode.STORE_FAILED, 'the avatar could not be stored, try again later');
    }
    await this.presence.updateProfile(client.userId, { avatar: url }).catch((err: unknown) =>
      this.logger.warn({ connId: client.id, err: String(err) }, 'online profile not updated (the index has the avatar)'),
    );
    client.send({ type: MessageType.SAVE_AVATAR, status: Status.SUCCESS, serverData: { avatar: url } });
    this.messenger.broadcast({ type: MessageType.USER_UPDATE, serverData: { userId: client.userId, avatar: url } }, client.userId);
  }
}

import { Allow, Equals } from 'class-validator';
import { MessageType } from '../../protocol/protocol';

/**
 * SAVE_AVATAR, client -> server: `{"type":"SAVE_AVATAR","serverData":{"imageBase64":"<base64>"}}`.
 * The image (standard base64, optionally behind a `data:image/<type>;base64,` prefix) is not
 * validated here: a missing serverData, a missing, non-string or undecodable image is SAVE_AVATAR
 * error "2" (an oversize one "1"), which the avatar pipeline answers, not an INVALID_MESSAGE.
 */
export class SaveAvatarDto {
  @Equals(MessageType.SAVE_AVATAR)
  type!: MessageType.SAVE_AVATAR;

  @Allow()
  serverData?: { imageBase64?: unknown } | unknown;
}

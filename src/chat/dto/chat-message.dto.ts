import { Type } from 'class-transformer';
import { Equals, IsNotEmpty, IsObject, IsString, ValidateNested } from 'class-validator';
import { MessageType } from '../../protocol/protocol';

export class ChatServerDataDto {
  /** The text: a non-empty string (at most CHAT_MAX_LENGTH code points, checked by ChatService). */
  @IsString()
  @IsNotEmpty()
  message!: string;
}

/** CHAT_MESSAGE, client -> server: `{"type":"CHAT_MESSAGE","serverData":{"message":"text"}}`. */
export class ChatMessageDto {
  @Equals(MessageType.CHAT)
  type!: MessageType.CHAT;

  @IsObject()
  @ValidateNested()
  @Type(() => ChatServerDataDto)
  serverData!: ChatServerDataDto;
}

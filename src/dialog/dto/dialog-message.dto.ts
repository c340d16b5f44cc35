import { Type } from 'class-transformer';
import { Equals, IsDefined, IsNotEmpty, IsObject, IsString, Matches, ValidateIf, ValidateNested } from 'class-validator';
import { MESSAGE_ID_PATTERN, MessageType } from '../../protocol/protocol';

export class DialogServerDataDto {
  @IsString()
  @IsNotEmpty()
  receiver!: string;

  /** A client-chosen id (dedup of retries): 1 to 64 characters of A-Za-z0-9_-. */
  @ValidateIf((serverData: DialogServerDataDto) => serverData.messageId !== undefined)
  @IsString({ message: 'serverData.messageId must be 1 to 64 characters of A-Za-z0-9_-' })
  @Matches(MESSAGE_ID_PATTERN, { message: 'serverData.messageId must be 1 to 64 characters of A-Za-z0-9_-' })
  messageId?: string;
}

/**
 * DIALOG_MESSAGE, client -> server:
 * `{"type":"DIALOG_MESSAGE","clientData":<any JSON>,"serverData":{"receiver":"<userId>","messageId":"optional"}}`.
 * clientData belongs to the clients: required, never inspected, forwarded as written (at most
 * DIALOG_MAX_BYTES, checked by DialogService).
 */
export class DialogMessageDto {
  @Equals(MessageType.DIALOG)
  type!: MessageType.DIALOG;

  /** Any JSON value, null included: only its absence is refused. */
  @ValidateIf((frame: DialogMessageDto) => frame.clientData === undefined)
  @IsDefined({ message: 'clientData is required' })
  clientData!: unknown;

  @IsObject()
  @ValidateNested()
  @Type(() => DialogServerDataDto)
  serverData!: DialogServerDataDto;
}

import { Type } from 'class-transformer';
import { Equals, IsObject, IsOptional, IsString, ValidateNested } from 'class-validator';
import { MessageType } from '../../protocol/protocol';

export class AuthServerDataDto {
  @IsString()
  authToken!: string;
}

/**
 * AUTH_MESSAGE, client -> server: `{"type":"AUTH_MESSAGE","serverData":{"authToken":"..."}}`, the
 * token of a connection that brought none with its upgrade; no serverData when the token came with
 * the upgrade (the gateway's handshake login). AuthGuard reads the token before this is validated,
 * so a frame without a string token is refused as a missing token ("2"), as the protocol says.
 */
export class AuthMessageDto {
  @Equals(MessageType.AUTH)
  type!: MessageType.AUTH;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => AuthServerDataDto)
  serverData?: AuthServerDataDto;
}

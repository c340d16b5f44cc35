import { Type } from 'class-transformer';
import { Equals, IsNotEmpty, IsObject, IsString, ValidateNested } from 'class-validator';
import { MessageType } from '../../protocol/protocol';

export class TokenRefreshServerDataDto {
  /** The new token: a non-empty string (over AUTH_TOKEN_MAX_BYTES it is invalid, "2", like at login). */
  @IsString()
  @IsNotEmpty()
  authToken!: string;
}

/**
 * TOKEN_REFRESH_MESSAGE, client -> server:
 * `{"type":"TOKEN_REFRESH_MESSAGE","serverData":{"authToken":"<new token>"}}`. A frame without a
 * non-empty string token is an invalid frame (ERROR_MESSAGE INVALID_MESSAGE, connection kept),
 * not a refused token.
 */
export class TokenRefreshDto {
  @Equals(MessageType.TOKEN_REFRESH)
  type!: MessageType.TOKEN_REFRESH;

  @IsObject()
  @ValidateNested()
  @Type(() => TokenRefreshServerDataDto)
  serverData!: TokenRefreshServerDataDto;
}

import { ApiProperty } from '@nestjs/swagger';
import { IsNotEmpty, IsString } from 'class-validator';

/** POST /api/v1/chat: a CHAT_MESSAGE from `sender` to everyone online. */
export class PostChatDto {
  @ApiProperty({ description: 'The userId the message is from (need not be online)', example: '1' })
  @IsString()
  @IsNotEmpty()
  sender!: string;

  @ApiProperty({ description: 'The text: at most CHAT_MAX_LENGTH code points', example: 'maintenance at 22:00' })
  @IsString()
  @IsNotEmpty()
  message!: string;
}

export class ChatAcceptedDto {
  @ApiProperty({ description: "The message's sendTime (Unix ms), as everyone received it", example: '1767139200000' })
  sendTime!: string;
}

import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDefined, IsNotEmpty, IsString, Matches, ValidateIf } from 'class-validator';
import { MESSAGE_ID_PATTERN, Status } from '../../protocol/protocol';

const MESSAGE_ID_RULE = 'messageId must be 1 to 64 characters of A-Za-z0-9_-';

/** POST /api/v1/dialog: a DIALOG_MESSAGE from `sender` to `receiver`, wherever the receiver is. */
export class PostDialogDto {
  @ApiProperty({ description: 'The userId the message is from (need not be online)', example: '1' })
  @IsString()
  @IsNotEmpty()
  sender!: string;

  @ApiProperty({ description: 'The userId it is for', example: '2' })
  @IsString()
  @IsNotEmpty()
  receiver!: string;

  /** Any JSON value, null included: only its absence is refused. Forwarded as written. */
  @ApiProperty({
    description:
      'Any JSON value (null included), at most DIALOG_MAX_BYTES, forwarded to the receiver as written ' +
      '(byte-exact but for the whitespace between tokens, numbers beyond a double included)',
    example: { message: 'your order has shipped' },
    // Any JSON value: OpenAPI 3.0 has no "any" type, so each JSON type, or null.
    nullable: true,
    oneOf: [{ type: 'object' }, { type: 'array', items: {} }, { type: 'string' }, { type: 'number' }, { type: 'boolean' }],
  })
  @ValidateIf((body: PostDialogDto) => body.clientData === undefined)
  @IsDefined({ message: 'clientData is required' })
  clientData!: unknown;

  @ApiPropertyOptional({
    description: 'Makes retries safe: one delivery per (sender, messageId) within DEDUP_WINDOW_MS, shared with the WebSocket DIALOG_MESSAGE',
    pattern: MESSAGE_ID_PATTERN.source,
    example: 'order-1234-shipped',
  })
  @ValidateIf((body: PostDialogDto) => body.messageId !== undefined)
  @IsString({ message: MESSAGE_ID_RULE })
  @Matches(MESSAGE_ID_PATTERN, { message: MESSAGE_ID_RULE })
  messageId?: string;
}

export class DialogOutcomeDto {
  @ApiProperty({
    enum: [Status.SUCCESS, Status.ERROR],
    description: "SUCCESS: written to the receiver's connection; ERROR: not known to be delivered (the rules of DELIVERY_MESSAGE)",
  })
  status!: Status;

  @ApiProperty({ description: 'The messageId given, or the one the gateway chose', example: 'order-1234-shipped' })
  messageId!: string;
}

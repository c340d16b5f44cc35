import { randomUUID } from 'node:crypto';
import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ChatService } from '../chat/chat.service';
import { DialogService } from '../dialog/dialog.service';
import { FrameError } from '../protocol/errors';
import type { DeliveryStatus } from '../protocol/protocol';
import { badRequest } from './api-errors';
import { ChatAcceptedDto, PostChatDto } from './dto/chat.dto';
import { DialogOutcomeDto, PostDialogDto } from './dto/dialog.dto';
import { ClientDataJson, ServerApiController, TakesJsonBody } from './server-api.decorators';

/** The backend's messages: a chat message to everyone, a dialog to one user anywhere in the deployment. */
@ApiTags('messages')
@Controller('api/v1')
@ServerApiController()
export class MessagesController {
  constructor(
    private readonly chats: ChatService,
    private readonly dialogs: DialogService,
  ) {}

  @Post('chat')
  @HttpCode(202)
  @ApiOperation({ summary: 'A CHAT_MESSAGE from `sender` (who need not be online) to everyone online, as if sent by a client' })
  @ApiAcceptedResponse({ type: ChatAcceptedDto, description: 'Sent to everyone online' })
  @TakesJsonBody()
  chat(@Body() body: PostChatDto): ChatAcceptedDto {
    return { sendTime: refusedAsBadRequest(() => this.chats.post(body.sender, body.message), 'message') };
  }

  @Post('dialog')
  @HttpCode(200)
  @ApiOperation({
    summary: 'A DIALOG_MESSAGE from `sender` to `receiver`, answered once its outcome is known (the rules of DELIVERY_MESSAGE, dedup by sender and messageId included)',
  })
  @ApiOkResponse({ type: DialogOutcomeDto, description: 'The outcome, as DELIVERY_MESSAGE would tell it' })
  @TakesJsonBody()
  async dialog(@Body() body: PostDialogDto, @ClientDataJson() clientJson: string): Promise<DialogOutcomeDto> {
    refusedAsBadRequest(() => this.dialogs.checkSize(clientJson), 'clientData');
    const messageId = body.messageId ?? randomUUID();
    const status = await new Promise<DeliveryStatus>((resolve, reject) => {
      const reserving = this.dialogs.send(body.sender, body.receiver, clientJson, messageId, body.messageId !== undefined, resolve);
      reserving?.catch(reject);
    });
    return { status, messageId };
  }
}

/** A feature's refusal of a value (FrameError INVALID_MESSAGE: too long, too large) as a 400 naming `field`. */
function refusedAsBadRequest<T>(run: () => T, field: string): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof FrameError) throw badRequest(err.message, [field]);
    throw err;
  }
}

import { Inject, Injectable, UseGuards, UsePipes } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { AuthGuard } from '../auth/auth.guard';
import { ActivityFeed } from '../messaging/activity';
import type { ChatClient } from '../messaging/chat-client';
import { Messenger } from '../messaging/messenger';
import { invalidMessage } from '../protocol/errors';
import type { ChatServerFrame } from '../protocol/frames';
import { FrameValidationPipe } from '../protocol/frame-validation.pipe';
import { MessageType } from '../protocol/protocol';
import { codePointsUpTo } from '../protocol/validation';
import { CHAT_OPTIONS, type ChatOptions } from './chat.options';
import { ChatMessageDto } from './dto/chat-message.dto';

/** CHAT_MESSAGE: a message to everyone in the chat, the sender included. */
@Injectable()
@UseGuards(AuthGuard)
@UsePipes(FrameValidationPipe)
export class ChatService {
  constructor(
    private readonly messenger: Messenger,
    private readonly activity: ActivityFeed,
    @Inject(CHAT_OPTIONS) private readonly options: ChatOptions,
  ) {}

  @SubscribeMessage(MessageType.CHAT)
  chat(@ConnectedSocket() client: ChatClient, @MessageBody() frame: ChatMessageDto): void {
    this.post(client.userId, frame.serverData.message);
  }

  /**
   * A chat message from `sender` to everyone online (the sender's clients included), and its fact;
   * resolves with its sendTime. Also the Server API's chat (the sender need not be online).
   */
  post(sender: string, message: string): string {
    const max = this.options.chatMaxLength;
    if (codePointsUpTo(message, max) > max) throw invalidMessage(`serverData.message is longer than ${max} characters`);
    const sendTime = String(Date.now());
    const chat: ChatServerFrame = { type: MessageType.CHAT, serverData: { message, sender, sendTime } };
    this.messenger.broadcast(chat);
    if (this.activity.active) this.activity.report({ kind: 'chat', message, sender, sendTime });
    return sendTime;
  }
}

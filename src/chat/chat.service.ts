import { Inject, Injectable, UseGuards, UsePipes } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { AuthGuard } from '../auth/auth.guard';
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
    @Inject(CHAT_OPTIONS) private readonly options: ChatOptions,
  ) {}

  @SubscribeMessage(MessageType.CHAT)
  chat(@ConnectedSocket() client: ChatClient, @MessageBody() frame: ChatMessageDto): void {
    const { message } = frame.serverData;
    const max = this.options.chatMaxLength;
    if (codePointsUpTo(message, max) > max) throw invalidMessage(`serverData.message is longer than ${max} characters`);
    const chat: ChatServerFrame = { type: MessageType.CHAT, serverData: { message, sender: client.userId, sendTime: String(Date.now()) } };
    this.messenger.broadcast(chat);
  }
}

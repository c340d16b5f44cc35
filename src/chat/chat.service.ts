import { Inject, Injectable } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import type { ClientHandle, InboundFrame } from '../messaging/client';
import { Messenger } from '../messaging/messenger';
import { OnMessage } from '../messaging/on-message.decorator';
import { invalidMessage } from '../protocol/errors';
import { MessageType } from '../protocol/protocol';
import { codePointsUpTo, requireObject, requireString } from '../protocol/validation';

/** CHAT_MESSAGE: a message to everyone in the chat, the sender included. */
@Injectable()
export class ChatService {
  constructor(
    private readonly messenger: Messenger,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @OnMessage(MessageType.CHAT)
  handleChat(client: ClientHandle, frame: InboundFrame): void {
    const message = requireString(requireObject(frame, 'serverData'), 'message', 'serverData.message');
    if (codePointsUpTo(message, this.config.chatMaxLength) > this.config.chatMaxLength) {
      throw invalidMessage(`serverData.message is longer than ${this.config.chatMaxLength} characters`);
    }
    this.messenger.broadcast(
      JSON.stringify({
        type: MessageType.CHAT,
        serverData: { message, sender: client.userId, sendTime: String(Date.now()) },
      }),
    );
  }
}

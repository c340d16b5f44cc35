import { DiscoveryService } from '@nestjs/core';

/**
 * Marks a provider method as the handler of one inbound message type. The gateway discovers
 * handlers at start, so adding a message type means adding a module, not editing the gateway.
 *
 *   @OnMessage(MessageType.CHAT)
 *   handleChat(client: ClientHandle, frame: InboundFrame) { ... }
 */
export const OnMessage = DiscoveryService.createDecorator<string>();

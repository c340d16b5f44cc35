import WebSocket from 'ws';
import { ChatClient, type ChatClientOptions, type WebSocketConstructorLike } from './chat-client';

/**
 * A ChatClient for Node: the `ws` package, token in the `authToken` header (unless `auth` says
 * otherwise). Node-only; the browser-safe core is './index'.
 */
export function createNodeChatClient(options: Omit<ChatClientOptions, 'WebSocket'>): ChatClient {
  const Ctor: WebSocketConstructorLike = WebSocket;
  return new ChatClient({ auth: 'header', ...options, WebSocket: Ctor });
}

export * from './index';

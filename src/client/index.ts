/**
 * The chat gateway's typed client, browser-safe core: no Node or Nest imports. In Node use
 * `createNodeChatClient` from './node' (the `ws` package, header authentication).
 */
export {
  ChatClient,
  ChatClientError,
  type AuthMode,
  type AuthResult,
  type ChatClientErrorCode,
  type ChatClientEvents,
  type ChatClientOptions,
  type CloseInfo,
  type ConnectionState,
  type DialogMessage,
  type WebSocketConstructorLike,
  type WebSocketLike,
} from './chat-client';
export { base64url, randomMessageId, tokenSubprotocol } from './encoding';
export { backoffDelay, NO_RECONNECT_CLOSE_CODES, RECONNECT_CLOSE_CODES, shouldReconnect, type BackoffOptions } from './reconnect';
export * from './types';

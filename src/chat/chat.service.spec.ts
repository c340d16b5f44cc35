import { FakeClient } from '../../test/support/fake-client';
import { strictMock } from '../../test/support/strict-mock';
import type { GatewayConfig } from '../config/gateway-config';
import type { InboundFrame } from '../messaging/client';
import type { Messenger } from '../messaging/messenger';
import { FrameError } from '../protocol/errors';
import { FrameErrorCode } from '../protocol/protocol';
import { ChatService } from './chat.service';

const MAX = 8;
const NOW = 1_700_000_000_123;

function errorOf(fn: () => unknown): FrameError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FrameError) return err;
    throw err;
  }
  throw new Error('expected a FrameError, nothing was thrown');
}

describe('ChatService', () => {
  let broadcast: jest.Mock<void, [object | string, string?]>;
  let service: ChatService;
  let client: FakeClient;

  const chat = (serverData: unknown, extra: Record<string, unknown> = {}): InboundFrame => ({ type: 'CHAT_MESSAGE', serverData, ...extra });

  beforeEach(() => {
    jest.useFakeTimers({ now: NOW });
    broadcast = jest.fn();
    const messenger = strictMock<Messenger>({ broadcast }, 'messenger');
    service = new ChatService(messenger, strictMock<GatewayConfig>({ chatMaxLength: MAX }, 'config'));
    client = new FakeClient('alice');
  });

  afterEach(() => jest.useRealTimers());

  it('broadcasts to everyone, the sender included, with sender and sendTime', () => {
    service.handleChat(client, chat({ message: 'hi "x"' }, { messageType: 'legacy' }));
    expect(broadcast).toHaveBeenCalledTimes(1);
    const [frame, exceptUserId] = broadcast.mock.calls[0];
    expect(exceptUserId).toBeUndefined();
    expect(typeof frame).toBe('string');
    expect(JSON.parse(frame as string)).toEqual({
      type: 'CHAT_MESSAGE',
      serverData: { message: 'hi "x"', sender: 'alice', sendTime: String(NOW) },
    });
    expect(client.sent).toEqual([]); // the sender gets it through the broadcast, not directly
  });

  it('stamps the time the message was accepted', () => {
    jest.setSystemTime(NOW + 42);
    service.handleChat(client, chat({ message: 'a' }));
    expect(JSON.parse(broadcast.mock.calls[0][0] as string).serverData.sendTime).toBe(String(NOW + 42));
  });

  it('counts code points, not UTF-16 units: CHAT_MAX_LENGTH astral characters pass', () => {
    const message = '😀'.repeat(MAX);
    expect(message.length).toBe(MAX * 2);
    service.handleChat(client, chat({ message }));
    expect(JSON.parse(broadcast.mock.calls[0][0] as string).serverData.message).toBe(message);
  });

  it.each([
    ['one code point over', 'x'.repeat(MAX + 1)],
    ['astral characters over', '😀'.repeat(MAX + 1)],
  ])('refuses a message %s with INVALID_MESSAGE', (_case, message) => {
    const err = errorOf(() => service.handleChat(client, chat({ message })));
    expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
    expect(broadcast).not.toHaveBeenCalled();
  });

  it.each([
    ['no serverData', undefined],
    ['a string serverData', 'hello'],
    ['an array serverData', [{ message: 'x' }]],
    ['no message', {}],
    ['an empty message', { message: '' }],
    ['a numeric message', { message: 42 }],
    ['an object message', { message: { text: 'x' } }],
  ])('refuses %s with INVALID_MESSAGE', (_case, serverData) => {
    const err = errorOf(() => service.handleChat(client, chat(serverData)));
    expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
    expect(broadcast).not.toHaveBeenCalled();
  });
});

import { thrownBy } from '../../test/support/errors';
import { joinedClient, type FakeConnection } from '../../test/support/fake-client';
import { strictMock } from '../../test/support/strict-mock';
import type { Messenger } from '../messaging/messenger';
import { FrameError } from '../protocol/errors';
import type { ServerFrame } from '../protocol/frames';
import { FrameErrorCode, MessageType } from '../protocol/protocol';
import type { ChatOptions } from './chat.options';
import { ActivityFeed, type Activity } from '../messaging/activity';
import { ChatService } from './chat.service';
import type { ChatMessageDto } from './dto/chat-message.dto';

const MAX = 8;
const NOW = 1_700_000_000_123;

const errorOf = (fn: () => unknown): FrameError => thrownBy(FrameError, fn);

/** A CHAT_MESSAGE as the handler gets it: the frame as received, validated by its DTO (unknown fields kept). */
const chat = (message: string, extra: Record<string, unknown> = {}): ChatMessageDto =>
  ({ type: MessageType.CHAT, serverData: { message }, ...extra }) as ChatMessageDto;

describe('ChatService', () => {
  let broadcast: jest.Mock<void, [ServerFrame | string, string?]>;
  let service: ChatService;
  let alice: FakeConnection;

  /** The n-th broadcast frame, parsed whether it was handed over as an object or serialized. */
  const broadcastFrame = (n = 0) => {
    const frame = broadcast.mock.calls[n][0];
    return (typeof frame === 'string' ? JSON.parse(frame) : JSON.parse(JSON.stringify(frame))) as { type: string; serverData: Record<string, string> };
  };

  let feed: ActivityFeed;

  beforeEach(() => {
    jest.useFakeTimers({ now: NOW });
    broadcast = jest.fn();
    const messenger = strictMock<Messenger>({ broadcast }, 'messenger');
    feed = new ActivityFeed();
    service = new ChatService(messenger, feed, strictMock<ChatOptions>({ chatMaxLength: MAX }, 'options'));
    alice = joinedClient('alice');
  });

  afterEach(() => jest.useRealTimers());

  describe('the chat fact (for events)', () => {
    it('reports each chat once, with message, sender and sendTime, when someone listens', () => {
      const facts: Activity[] = [];
      feed.listen((a) => facts.push(a));
      service.chat(alice.client, chat('noted'));
      expect(facts).toEqual([{ kind: 'chat', message: 'noted', sender: 'alice', sendTime: String(NOW) }]);
    });

    it('reports nothing for a refused chat', () => {
      const facts: Activity[] = [];
      feed.listen((a) => facts.push(a));
      expect(() => service.chat(alice.client, chat('x'.repeat(MAX + 1)))).toThrow();
      expect(facts).toEqual([]);
    });

    it('posts for a sender that is not online (the Server API), returning the sendTime', () => {
      expect(service.post('backend-bot', 'at noon')).toBe(String(NOW));
      expect(broadcastFrame()).toEqual({ type: 'CHAT_MESSAGE', serverData: { message: 'at noon', sender: 'backend-bot', sendTime: String(NOW) } });
    });
  });

  it('broadcasts to everyone, the sender included, with sender and sendTime (and nothing of the unknown fields)', () => {
    service.chat(alice.client, chat('hi "x"', { messageType: 'legacy' }));
    expect(broadcast).toHaveBeenCalledTimes(1);
    const [, exceptUserId] = broadcast.mock.calls[0];
    expect(exceptUserId).toBeUndefined();
    expect(broadcastFrame()).toEqual({
      type: 'CHAT_MESSAGE',
      serverData: { message: 'hi "x"', sender: 'alice', sendTime: String(NOW) },
    });
    expect(alice.transport.writes).toEqual([]); // the sender gets it through the broadcast, not directly
  });

  it('names the sender by the user id of its connection', () => {
    const bob = joinedClient('bob');
    service.chat(bob.client, chat('yo'));
    expect(broadcastFrame().serverData.sender).toBe('bob');
  });

  it('stamps the time the message was accepted', () => {
    jest.setSystemTime(NOW + 42);
    service.chat(alice.client, chat('a'));
    expect(broadcastFrame().serverData.sendTime).toBe(String(NOW + 42));
  });

  describe('CHAT_MAX_LENGTH counts code points, not UTF-16 units', () => {
    it.each([
      ['exactly CHAT_MAX_LENGTH ASCII characters', 'x'.repeat(MAX)],
      ['CHAT_MAX_LENGTH astral characters (twice as many UTF-16 units)', '😀'.repeat(MAX)],
      ['astral and ASCII characters mixed, CHAT_MAX_LENGTH in all', '😀a'.repeat(MAX / 2)],
      ['a flag (two code points) and CHAT_MAX_LENGTH - 2 letters', '🇫🇷' + 'x'.repeat(MAX - 2)],
      ['lone surrogates (one code point each)', '\ud83d'.repeat(MAX)],
    ])('passes %s', (_case, message) => {
      service.chat(alice.client, chat(message));
      expect(broadcastFrame().serverData.message).toBe(message);
    });

    it.each([
      ['one ASCII character over', 'x'.repeat(MAX + 1)],
      ['one astral character over', '😀'.repeat(MAX + 1)],
      ['one code point over, astral and ASCII mixed', '😀'.repeat(MAX) + 'a'],
      ['a flag and CHAT_MAX_LENGTH - 1 letters', '🇫🇷' + 'x'.repeat(MAX - 1)],
      ['lone surrogates, one over', '\udc00'.repeat(MAX + 1)],
    ])('refuses %s with INVALID_MESSAGE, and broadcasts nothing', (_case, message) => {
      const err = errorOf(() => service.chat(alice.client, chat(message)));
      expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
      expect(err.message).toBe(`serverData.message is longer than ${MAX} characters`);
      expect(broadcast).not.toHaveBeenCalled();
      expect(alice.transport.writes).toEqual([]);
    });

    it('reads the limit from its config slice', () => {
      const wide = new ChatService(strictMock<Messenger>({ broadcast }, 'messenger'), feed, strictMock<ChatOptions>({ chatMaxLength: MAX * 2 }, 'options'));
      wide.chat(alice.client, chat('😀'.repeat(MAX * 2)));
      expect(broadcast).toHaveBeenCalledTimes(1);
    });
  });
});

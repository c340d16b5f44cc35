import { MessageType } from '../protocol/protocol';
import { outboundType } from './client-connection';

describe('outboundType (the sent-frames metric label)', () => {
  it.each(Object.values(MessageType))('reads %s from a serialized frame', (type) => {
    expect(outboundType(JSON.stringify({ type, status: 'SUCCESS' }))).toBe(type);
  });

  it.each([
    ['a type that only starts like a known one', '{"type":"CHAT_MESSAGES","x":1}'],
    ['an unknown type', '{"type":"NOPE"}'],
    ['no type first', '{"status":"SUCCESS","type":"CHAT_MESSAGE"}'],
    ['not an object', '"CHAT_MESSAGE"'],
  ])('labels %s "other"', (_case, frame) => {
    expect(outboundType(frame)).toBe('other');
  });

  it('answers the same for the same frame twice (memoized for broadcasts) and then for a different one', () => {
    const chat = '{"type":"CHAT_MESSAGE"}';
    expect(outboundType(chat)).toBe(MessageType.CHAT);
    expect(outboundType(chat)).toBe(MessageType.CHAT);
    expect(outboundType('{"type":"DELIVERY_MESSAGE"}')).toBe(MessageType.DELIVERY);
  });
});

import { MessageType } from '../protocol/protocol';
import type { WebSocket } from 'ws';
import { ClientConnection, outboundType, type ConnectionHooks } from './client-connection';
import { WriteBatch } from './write-batch';

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

describe('ClientConnection slow-consumer check with broadcast batching', () => {
  /** A ws socket whose buffered amount grows with every send and drains only on uncork. */
  function fakeSocket() {
    const net = { corked: 0, cork: () => net.corked++, uncork: () => net.corked-- };
    const socket = {
      readyState: 1,
      bufferedAmount: 0,
      _socket: net,
      send(data: string | Buffer) {
        socket.bufferedAmount += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      },
    };
    return socket;
  }

  function connection(socket: ReturnType<typeof fakeSocket>, batch: WriteBatch | undefined, drops: ClientConnection[]) {
    const hooks: ConnectionHooks = {
      sendBufferMaxBytes: 1000,
      rateLimitPerSec: 10,
      rateLimitBurst: 10,
      preAuthBudget: { capacity: 1e9, perSecond: 1e9, frameOverhead: 0 },
      joinedBudget: { capacity: 1e9, perSecond: 1e9, frameOverhead: 0 },
      batch,
      onSlowConsumer: (c) => drops.push(c),
      countSent: () => undefined,
    };
    const c = new ClientConnection(socket as unknown as WebSocket, hooks);
    c.completeJoin('{"type":"AUTH_MESSAGE"}');
    socket.bufferedAmount = 0;
    return c;
  }

  it('does not count the frames corked in this turn as a backlog, but counts what earlier turns left', () => {
    const scheduled: (() => void)[] = [];
    const batch = new WriteBatch((fn) => scheduled.push(fn));
    const socket = fakeSocket();
    const drops: ClientConnection[] = [];
    const c = connection(socket, batch, drops);
    const frame = `{"type":"CHAT_MESSAGE","m":"${'x'.repeat(400)}"}`;
    for (let i = 0; i < 10; i++) c.sendEncoded(frame, Buffer.from(frame)); // 4 KB in one turn, limit 1000
    expect(drops).toEqual([]);
    expect(socket._socket.corked).toBe(1);
    scheduled.splice(0).forEach((fn) => fn()); // end of turn: the peer read nothing, all 4 KB stay queued
    c.sendEncoded(frame, Buffer.from(frame));
    expect(drops).toEqual([c]);
  });

  it('without a batch (BROADCAST_BATCHING=false) corks nothing and counts every queued byte', () => {
    const socket = fakeSocket();
    const drops: ClientConnection[] = [];
    const c = connection(socket, undefined, drops);
    const frame = `{"type":"CHAT_MESSAGE","m":"${'x'.repeat(400)}"}`;
    for (let i = 0; i < 3; i++) c.sendEncoded(frame, Buffer.from(frame));
    expect(socket._socket.corked).toBe(0);
    expect(drops).toEqual([]); // two frames (~860 bytes) queued when the third was written: under the limit
    c.sendEncoded(frame, Buffer.from(frame));
    expect(drops).toEqual([c]);
  });
});

import { EventEmitter } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { MessageType } from '../protocol/protocol';
import { WriteBatch } from './write-batch';
import { CLOSE_GRACE_MS, frameHeader, outboundType, WsTransport, type TransportOptions } from './ws-transport';

/**
 * A ws socket whose buffered amount grows with every send (the peer reads nothing) and which
 * records its pings, closes, terminations and pauses. `pong()` is the peer answering a ping.
 */
class FakeSocket extends EventEmitter {
  readyState = 1;
  /** What ws queued itself; the bytes written to the net socket under it count too, as in ws. */
  queued = 0;
  net?: { bytes: number };
  readonly sent: { data: string | Buffer; options?: object }[] = [];
  readonly calls: string[] = [];
  pingThrows = false;

  get bufferedAmount(): number {
    return this.queued + (this.net?.bytes ?? 0);
  }

  set bufferedAmount(bytes: number) {
    this.queued = bytes;
  }

  send(data: string | Buffer, optionsOrDone?: object | ((err?: Error) => void), done?: (err?: Error) => void): void {
    const options = typeof optionsOrDone === 'object' ? optionsOrDone : undefined;
    const callback = typeof optionsOrDone === 'function' ? optionsOrDone : done;
    this.queued += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    this.sent.push({ data, options });
    callback?.();
  }

  ping(): void {
    this.calls.push('ping');
    if (this.pingThrows) throw new Error('WebSocket is not open');
  }

  pong(): void {
    this.emit('pong');
  }

  close(code: number, reason: string): void {
    this.calls.push(`close ${code} ${reason}`);
    this.readyState = 2;
  }

  terminate(): void {
    this.calls.push('terminate');
    this.readyState = 3;
  }

  pause(): void {
    this.calls.push('pause');
  }

  resume(): void {
    this.calls.push('resume');
  }
}

/** The net socket under it: cork/uncork (WriteBatch) and the writes of writeParts, with the cork depth each was made at. */
function fakeNet() {
  const net = {
    corked: 0,
    written: [] as { chunk: Buffer; corked: number }[],
    /** Written and not read by the peer (which reads nothing). */
    bytes: 0,
    cork: () => void net.corked++,
    uncork: () => void net.corked--,
    write: (chunk: Buffer) => {
      net.written.push({ chunk, corked: net.corked });
      net.bytes += chunk.length;
    },
  };
  return net;
}

const LIMIT = 1000;
const FRAME = `{"type":"CHAT_MESSAGE","m":"${'x'.repeat(400)}"}`; // ~430 bytes

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

/** What the gateway keeps for the connection: handed back on a slow consumer. */
const OWNER = { link: 'of this connection' };

describe('WsTransport', () => {
  let socket: FakeSocket;
  let net: ReturnType<typeof fakeNet>;
  let drops: number;
  let counted: string[];

  function transportOptions(): TransportOptions {
    return { sendBufferMaxBytes: LIMIT, preAuthBudget: { capacity: 1e9, perSecond: 1e9, frameOverhead: 0 }, countSent: () => undefined, onSlowConsumer: () => undefined };
  }

  function transport(batch?: WriteBatch, overrides: Partial<TransportOptions> = {}): WsTransport {
    const options: TransportOptions = {
      sendBufferMaxBytes: LIMIT,
      preAuthBudget: { capacity: 1e9, perSecond: 1e9, frameOverhead: 0 },
      batch,
      countSent: (type) => counted.push(type),
      onSlowConsumer: (owner) => {
        expect(owner).toBe(OWNER);
        drops++;
      },
      ...overrides,
    };
    const t = new WsTransport(socket as unknown as WebSocket, net as unknown as Socket, options, OWNER);
    // The gateway's one 'pong' listener hands every pong to its transport.
    socket.on('pong', () => t.onPong());
    return t;
  }

  beforeEach(() => {
    socket = new FakeSocket();
    net = fakeNet();
    socket.net = net;
    drops = 0;
    counted = [];
  });

  afterEach(() => jest.useRealTimers());

  describe('writes', () => {
    it('writes a frame as text, passes the callback, counts it by type', () => {
      const t = transport();
      const done = jest.fn();
      expect(t.write('{"type":"DELIVERY_MESSAGE"}', done)).toBe(true);
      expect(socket.sent).toEqual([{ data: '{"type":"DELIVERY_MESSAGE"}', options: undefined }]);
      expect(done).toHaveBeenCalledWith();
      expect(counted).toEqual(['DELIVERY_MESSAGE']);
    });

    it('writes a broadcast as one whole text frame made once for all its receivers, to the net socket', () => {
      const t = transport();
      const other = new WsTransport(new FakeSocket() as unknown as WebSocket, net as unknown as Socket, transportOptions(), OWNER);
      const bytes = Buffer.from(FRAME);
      t.writeBroadcast(FRAME, bytes);
      other.writeBroadcast(FRAME, bytes);
      expect(socket.sent).toEqual([]); // not through ws's sender
      expect(net.written).toHaveLength(2);
      expect(net.written[0].chunk).toEqual(Buffer.concat([frameHeader(bytes.length), bytes]));
      expect(net.written[1].chunk).toBe(net.written[0].chunk); // the same bytes for every receiver
      expect(counted).toEqual(['CHAT_MESSAGE']);
      t.writeBroadcast('{"type":"CHAT_MESSAGE"}', Buffer.from('{"type":"CHAT_MESSAGE"}'));
      expect(net.written[2].chunk.subarray(2).toString()).toBe('{"type":"CHAT_MESSAGE"}'); // a new broadcast, a new frame
    });

    it('writes nothing and answers false when the socket is not open, or once closed', () => {
      const t = transport();
      socket.readyState = 0;
      expect(t.write('{"a":1}')).toBe(false);
      socket.readyState = 1;
      t.close(1000, 'bye');
      expect(t.write('{"a":2}')).toBe(false);
      t.writeBroadcast(FRAME, Buffer.from(FRAME));
      expect(socket.sent).toEqual([]);
      expect(net.written).toEqual([]);
      expect(counted).toEqual([]);
      expect(drops).toBe(0);
    });

    it('lets one frame larger than the limit through when nothing is queued (an AUTH SUCCESS with a long list)', () => {
      const t = transport();
      expect(t.write(`{"type":"AUTH_MESSAGE","l":"${'x'.repeat(5 * LIMIT)}"}`)).toBe(true);
      expect(drops).toBe(0);
      expect(t.write('{"type":"CHAT_MESSAGE"}')).toBe(false); // now 5 KB are queued
      expect(drops).toBe(1);
    });
  });

  describe('slow-consumer check with broadcast batching', () => {
    it('does not count the frames corked in this turn as a backlog, but counts what earlier turns left', () => {
      const scheduled: (() => void)[] = [];
      const batch = new WriteBatch((fn) => scheduled.push(fn));
      const t = transport(batch);
      for (let i = 0; i < 10; i++) t.writeBroadcast(FRAME, Buffer.from(FRAME)); // 4 KB in one turn, limit 1000
      expect(drops).toBe(0);
      expect(net.written).toHaveLength(10);
      expect(net.corked).toBe(1); // corked once for the turn
      scheduled.splice(0).forEach((fn) => fn()); // end of turn: uncorked, the peer read nothing, all 4 KB stay queued
      expect(net.corked).toBe(0);
      t.writeBroadcast(FRAME, Buffer.from(FRAME));
      expect(drops).toBe(1);
      expect(net.written).toHaveLength(10); // the frame that found the backlog is not written
    });

    it('counts a direct write of the same turn as part of the batch (a dialog after broadcasts)', () => {
      const scheduled: (() => void)[] = [];
      const batch = new WriteBatch((fn) => scheduled.push(fn));
      const t = transport(batch);
      for (let i = 0; i < 5; i++) t.writeBroadcast(FRAME, Buffer.from(FRAME));
      expect(t.write(FRAME)).toBe(true);
      expect(t.write(FRAME)).toBe(true);
      expect(drops).toBe(0);
      scheduled.splice(0).forEach((fn) => fn());
      expect(t.write(FRAME)).toBe(false);
      expect(drops).toBe(1);
    });

    it('does not cork a closed socket', () => {
      const batch = new WriteBatch(() => undefined);
      const t = transport(batch);
      t.close(1000, 'bye');
      t.writeBroadcast(FRAME, Buffer.from(FRAME));
      expect(net.corked).toBe(0);
      expect(batch.size).toBe(0);
    });

    it('without a batch (BROADCAST_BATCHING=false) corks nothing and counts every queued byte', () => {
      const t = transport(undefined);
      for (let i = 0; i < 3; i++) t.writeBroadcast(FRAME, Buffer.from(FRAME));
      expect(net.corked).toBe(0);
      expect(drops).toBe(0); // two frames (~860 bytes) queued when the third was written: under the limit
      t.writeBroadcast(FRAME, Buffer.from(FRAME));
      expect(drops).toBe(1);
    });
  });

  describe('close', () => {
    it('closes with a close frame once, remembers the code, and is no longer open', () => {
      jest.useFakeTimers();
      const t = transport();
      expect(t.isOpen).toBe(true);
      t.close(4401, 'token not found or invalid');
      t.close(1000, 'again');
      expect(t.closeCode).toBe(4401);
      expect(t.isOpen).toBe(false);
      expect(socket.calls).toEqual(['close 4401 token not found or invalid']);
    });

    it('drops a peer that does not complete the close handshake within CLOSE_GRACE_MS', () => {
      jest.useFakeTimers();
      const t = transport();
      t.close(4429, 'flooding');
      jest.advanceTimersByTime(CLOSE_GRACE_MS - 1);
      expect(socket.calls).toEqual(['close 4429 flooding']);
      jest.advanceTimersByTime(1);
      expect(socket.calls).toEqual(['close 4429 flooding', 'terminate']);
    });

    it('leaves no timer behind once the socket closed within the grace', () => {
      jest.useFakeTimers();
      const t = transport();
      t.close(1000, 'bye');
      t.closed();
      expect(jest.getTimerCount()).toBe(0);
      jest.advanceTimersByTime(CLOSE_GRACE_MS * 2);
      expect(socket.calls).toEqual(['close 1000 bye']);
    });

    it('drops without a close frame (1006 unless told), keeping an earlier close code', () => {
      const t = transport();
      t.drop();
      expect(t.closeCode).toBe(1006);
      expect(socket.calls).toEqual(['terminate']);

      socket = new FakeSocket();
      const slow = transport();
      slow.drop(4413);
      expect(slow.closeCode).toBe(4413);

      socket = new FakeSocket();
      const closing = transport();
      closing.close(4429, 'flooding');
      closing.drop(4413);
      expect(closing.closeCode).toBe(4429);
      expect(socket.calls).toEqual(['close 4429 flooding', 'terminate']);
      closing.closed();
    });

    it('stops its inbound budget when closed (no resume timer left)', () => {
      jest.useFakeTimers();
      const t = transport(undefined, { preAuthBudget: { capacity: 100, perSecond: 100, frameOverhead: 0 } });
      t.inbound.charge(1000, Date.now());
      expect(socket.calls).toEqual(['pause']);
      expect(t.inbound.paused).toBe(true);
      t.closed();
      expect(t.inbound.paused).toBe(false);
      expect(jest.getTimerCount()).toBe(0);
    });
  });

  describe('probe', () => {
    it('pings and resolves true when the pong comes', async () => {
      jest.useFakeTimers();
      const t = transport();
      const answer = t.probe(2000);
      expect(socket.calls).toEqual(['ping']);
      jest.advanceTimersByTime(1999);
      socket.pong();
      await expect(answer).resolves.toBe(true);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('resolves false when no pong comes within the timeout, and a late pong changes nothing', async () => {
      jest.useFakeTimers();
      const t = transport();
      const answer = t.probe(2000);
      jest.advanceTimersByTime(2000);
      await expect(answer).resolves.toBe(false);
      socket.pong();
      await expect(answer).resolves.toBe(false);
    });

    it('answers several probes with one pong', async () => {
      jest.useFakeTimers();
      const t = transport();
      const first = t.probe(2000);
      const second = t.probe(500);
      socket.pong();
      await expect(Promise.all([first, second])).resolves.toEqual([true, true]);
    });

    it('resolves false at once when not open, without a ping', async () => {
      const t = transport();
      t.close(1000, 'bye');
      await expect(t.probe(2000)).resolves.toBe(false);
      expect(socket.calls).toEqual(['close 1000 bye']);
    });

    it('resolves false when the socket closes while it waits', async () => {
      jest.useFakeTimers();
      const t = transport();
      const answer = t.probe(2000);
      socket.readyState = 3;
      t.closed();
      await expect(answer).resolves.toBe(false);
    });

    it('reads a socket paused for its inbound budget again, so that the pong gets through', async () => {
      jest.useFakeTimers();
      const t = transport(undefined, { preAuthBudget: { capacity: 100, perSecond: 100, frameOverhead: 0 } });
      t.inbound.charge(10_000, Date.now()); // paused for ~100 s
      const answer = t.probe(2000);
      expect(socket.calls).toEqual(['pause', 'resume', 'ping']);
      socket.pong();
      await expect(answer).resolves.toBe(true);
    });

    it('resolves false on timeout when the ping throws (closing)', async () => {
      jest.useFakeTimers();
      socket.pingThrows = true;
      const t = transport();
      const answer = t.probe(100);
      jest.advanceTimersByTime(100);
      await expect(answer).resolves.toBe(false);
    });
  });

  describe('writeParts (an AUTH SUCCESS around the cached online list)', () => {
    it('writes one text frame header, then the parts themselves (not copies), in one corked write, and counts the frame by its type', () => {
      const t = transport();
      const parts = [Buffer.from('{"type":"AUTH_MESSAGE","l":['), Buffer.alloc(0), Buffer.from('1,2'), Buffer.from(']}')];
      expect(t.writeParts(parts, MessageType.AUTH)).toBe(true);
      expect(net.written.map((w) => w.corked)).toEqual([1, 1, 1, 1]); // all while corked: one writev
      expect(net.corked).toBe(0);
      expect(net.written[0].chunk).toEqual(frameHeader(Buffer.concat(parts).length));
      expect(net.written.slice(1).map((w) => w.chunk)).toEqual([parts[0], parts[2], parts[3]]);
      expect(net.written[2].chunk).toBe(parts[2]);
      expect(socket.sent).toEqual([]); // not through ws's sender
      expect(counted).toEqual(['AUTH_MESSAGE']);
    });

    it('writes nothing when closed, and meets the slow-consumer check like any write', () => {
      const t = transport();
      socket.bufferedAmount = LIMIT + 1;
      expect(t.writeParts([Buffer.from('{}')], MessageType.AUTH)).toBe(false);
      expect(drops).toBe(1);
      socket.bufferedAmount = 0;
      t.close(1000, 'bye');
      expect(t.writeParts([Buffer.from('{}')], MessageType.AUTH)).toBe(false);
      expect(net.written).toEqual([]);
      expect(counted).toEqual([]);
    });

    it('is one text message to a real ws client, in order with the frames ws itself sends before and after it (and so is a broadcast)', async () => {
      const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as AddressInfo;
      const big = Buffer.from(`,${'"x",'.repeat(30_000)}"y"`); // over 64 KiB: the 8-byte length
      server.on('connection', (ws, request) => {
        const t = new WsTransport(ws, request.socket as Socket, { ...transportOptions(), batch: undefined }, OWNER);
        t.write('{"n":1}');
        t.writeParts([Buffer.from('{"list":['), big.subarray(1), Buffer.from(']}')], MessageType.AUTH);
        t.write('{"n":2}');
        t.writeBroadcast('{"b":"ü"}', Buffer.from('{"b":"ü"}'));
        t.write('{"n":3}');
      });
      const client = new WebSocket(`ws://127.0.0.1:${port}`);
      const received: { text: string; binary: boolean }[] = [];
      await new Promise<void>((resolve, reject) => {
        client.on('message', (data: Buffer, binary) => {
          received.push({ text: data.toString(), binary });
          if (received.length === 5) resolve();
        });
        client.on('error', reject);
      });
      client.close();
      await new Promise((resolve) => server.close(resolve));
      expect(received.map((r) => r.binary)).toEqual([false, false, false, false, false]);
      expect(received[0].text).toBe('{"n":1}');
      expect(JSON.parse(received[1].text)).toEqual({ list: [...Array(30_000).fill('x'), 'y'] });
      expect(received.slice(2).map((r) => r.text)).toEqual(['{"n":2}', '{"b":"ü"}', '{"n":3}']);
    });

    it.each([
      [0, [0x81, 0]],
      [125, [0x81, 125]],
      [126, [0x81, 126, 0, 126]],
      [65535, [0x81, 126, 0xff, 0xff]],
      [65536, [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]],
      [3_300_000, [0x81, 127, 0, 0, 0, 0, 0, 0x32, 0x5a, 0xa0]],
    ])('frameHeader(%i): FIN, text, unmasked, the shortest length encoding', (length, bytes) => {
      expect([...frameHeader(length)]).toEqual(bytes);
    });
  });

  describe('beat (heartbeat)', () => {
    it('pings while the peer answers, and says false (drop it) once a ping went unanswered', () => {
      const t = transport();
      expect(t.beat()).toBe(true);
      expect(socket.calls).toEqual(['ping']);
      socket.pong();
      expect(t.beat()).toBe(true);
      expect(socket.calls).toEqual(['ping', 'ping']);
      expect(t.beat()).toBe(false); // no pong since the last ping
      expect(socket.calls).toEqual(['ping', 'ping']); // no ping for a dead peer
    });

    it('counts a pong of a probe as an answer', async () => {
      const t = transport();
      t.beat();
      const answer = t.probe(1000);
      socket.pong();
      await answer;
      expect(t.beat()).toBe(true);
    });

    it('survives a ping that throws (closing)', () => {
      socket.pingThrows = true;
      const t = transport();
      expect(t.beat()).toBe(true);
      expect(t.beat()).toBe(false);
    });
  });
});

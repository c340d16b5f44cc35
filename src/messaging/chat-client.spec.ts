import type { IncomingMessage } from 'node:http';
import { makeProfile } from '../../test/support/factories';
import { Status, type DeliveryStatus } from '../protocol/protocol';
import { ChatClient, ClientState, type Transport } from './chat-client';

/**
 * A transport that records every call in order. `accepts` decides what write() returns; a write
 * it accepts calls `done` at once unless `failWrites` (then with an error), or keeps it in
 * `pendingDone` when `deferDone`.
 */
class FakeTransport implements Transport {
  open = true;
  accepts = true;
  failWrites = false;
  deferDone = false;
  readonly calls: string[] = [];
  readonly pendingDone: ((err?: Error) => void)[] = [];
  probeAnswer = true;
  readonly probes: number[] = [];

  get isOpen(): boolean {
    return this.open;
  }

  write(text: string, done?: (err?: Error) => void): boolean {
    if (!this.open || !this.accepts) return false;
    this.calls.push(`write ${text}`);
    if (done && this.deferDone) this.pendingDone.push(done);
    else done?.(this.failWrites ? new Error('write failed') : undefined);
    return true;
  }

  writeBroadcast(text: string, bytes: Buffer): void {
    if (!bytes.equals(Buffer.from(text))) throw new Error('bytes are not the UTF-8 encoding of text');
    this.calls.push(`broadcast ${text}`);
  }

  probe(timeoutMs: number): Promise<boolean> {
    this.probes.push(timeoutMs);
    return Promise.resolve(this.probeAnswer);
  }

  close(code: number, reason: string): void {
    this.calls.push(`close ${code} ${reason}`);
  }

  drop(): void {
    this.calls.push('drop');
  }
}

describe('ChatClient', () => {
  let transport: FakeTransport;
  let client: ChatClient;
  let statuses: DeliveryStatus[];
  const request = { headers: { authtoken: 't' }, url: '/ws' } as unknown as IncomingMessage;
  const record = (status: DeliveryStatus) => statuses.push(status);
  const broadcast = (text: string) => client.sendBroadcast(text, Buffer.from(text));

  beforeEach(() => {
    transport = new FakeTransport();
    client = new ChatClient(transport, request);
    statuses = [];
  });

  describe('PRE_AUTH', () => {
    it('starts PRE_AUTH, open, not joined, without a user, keeping its upgrade request', () => {
      expect(client.state).toBe(ClientState.PRE_AUTH);
      expect(client.isOpen).toBe(true);
      expect(client.isJoined).toBe(false);
      expect(client.user).toBeUndefined();
      expect(client.profile).toBeUndefined();
      expect(client.userId).toBe('');
      expect(client.request).toBe(request);
    });

    it('has a unique id that says nothing about the user', () => {
      const other = new ChatClient(transport, request);
      expect(other.id).not.toBe(client.id);
      expect(client.id).toMatch(/^[0-9a-f]{6}-[0-9a-z]+$/);
    });

    it('is open only while its transport is', () => {
      transport.open = false;
      expect(client.isOpen).toBe(false);
    });

    it('takes the verified user (AuthGuard) and stays PRE_AUTH', () => {
      const alice = makeProfile('1');
      client.authenticate(alice);
      expect(client.user).toBe(alice);
      expect(client.userId).toBe('1');
      expect(client.profile).toBe(alice);
      expect(client.state).toBe(ClientState.PRE_AUTH);
    });

    it('writes what is sent at once (an AUTH error, say)', () => {
      client.send({ type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: '2', message: 'token not found or invalid' } });
      client.send('{"raw":1}');
      expect(transport.calls).toEqual(['write {"type":"AUTH_MESSAGE","status":"ERROR","error":{"errorCode":"2","message":"token not found or invalid"}}', 'write {"raw":1}']);
    });

    it('ignores completeJoin before beginJoin', () => {
      client.completeJoin('{"type":"AUTH_MESSAGE","status":"SUCCESS"}');
      expect(client.state).toBe(ClientState.PRE_AUTH);
      expect(transport.calls).toEqual([]);
    });
  });

  describe('the upgrade request', () => {
    it('is handed over once by takeRequest, then forgotten', () => {
      const request = { headers: { authtoken: 't' } } as unknown as IncomingMessage;
      const fresh = new ChatClient(transport, request);
      expect(fresh.request).toBe(request);
      expect(fresh.takeRequest()).toBe(request);
      expect(fresh.request).toBeUndefined();
      expect(fresh.takeRequest()).toBeUndefined();
    });
  });

  describe('JOINING -> JOINED', () => {
    it('holds every frame while JOINING, then writes the AUTH SUCCESS first and the held frames in order', () => {
      client.authenticate(makeProfile('1'));
      const online = makeProfile('1', { avatar: 'http://gw/avatars/1.webp' });
      client.beginJoin(online);
      expect(client.state).toBe(ClientState.JOINING);
      expect(client.isJoined).toBe(false);
      expect(client.profile).toBe(online);

      client.send('{"n":1}');
      broadcast('{"n":2}');
      client.deliver('{"n":3}', record);
      client.send({ type: 'CHAT_MESSAGE', serverData: { message: 'm', sender: '2', sendTime: '1' } });
      expect(transport.calls).toEqual([]);
      expect(statuses).toEqual([]);

      client.completeJoin('{"type":"AUTH_MESSAGE","status":"SUCCESS"}');
      expect(client.state).toBe(ClientState.JOINED);
      expect(client.isJoined).toBe(true);
      expect(transport.calls).toEqual([
        'write {"type":"AUTH_MESSAGE","status":"SUCCESS"}',
        'write {"n":1}',
        'write {"n":2}', // a held broadcast leaves as a plain write, in its place
        'write {"n":3}',
        'write {"type":"CHAT_MESSAGE","serverData":{"message":"m","sender":"2","sendTime":"1"}}',
      ]);
      expect(statuses).toEqual([Status.SUCCESS]);
    });

    it('writes an AUTH SUCCESS given in pieces with writeParts, as they are, before the held frames', () => {
      const parts: Buffer[][] = [];
      const writeParts = jest.fn((p: readonly Buffer[], type: string) => {
        parts.push([...p]);
        transport.calls.push(`parts ${type}`);
        return true;
      });
      (transport as Transport).writeParts = writeParts;
      client.beginJoin(makeProfile('1'));
      client.send('{"n":1}');
      const pieces = [Buffer.from('{"auth":['), Buffer.from('1,2'), Buffer.from(']}')];
      client.completeJoin(pieces);
      expect(transport.calls).toEqual(['parts AUTH_MESSAGE', 'write {"n":1}']);
      expect(parts[0][1]).toBe(pieces[1]);
    });

    it('joins the pieces of an AUTH SUCCESS into one text for a transport without writeParts', () => {
      client.beginJoin(makeProfile('1'));
      client.completeJoin([Buffer.from('{"auth":['), Buffer.from('"ü"'), Buffer.from(']}')]);
      expect(transport.calls).toEqual(['write {"auth":["ü"]}']);
    });

    it('reports ERROR for a held delivery whose write is refused after the AUTH SUCCESS', () => {
      client.beginJoin(makeProfile('1'));
      client.deliver('{"n":1}', record);
      const write = transport.write.bind(transport);
      jest.spyOn(transport, 'write').mockImplementation((text, done) => {
        const written = write(text, done);
        transport.accepts = false; // the AUTH SUCCESS filled the send buffer
        return written;
      });
      client.completeJoin('{"auth":1}');
      expect(transport.calls).toEqual(['write {"auth":1}']);
      expect(statuses).toEqual([Status.ERROR]);
    });

    it('moves forward only: beginJoin and authenticate are ignored once JOINING or JOINED', () => {
      const first = makeProfile('1');
      client.authenticate(first);
      client.beginJoin(first);
      client.beginJoin(makeProfile('2'));
      client.authenticate(makeProfile('3'));
      expect(client.profile).toBe(first);
      expect(client.user).toBe(first);
      client.completeJoin('{"auth":1}');
      client.beginJoin(makeProfile('4'));
      client.completeJoin('{"auth":2}');
      expect(client.state).toBe(ClientState.JOINED);
      expect(client.userId).toBe('1');
      expect(transport.calls).toEqual(['write {"auth":1}']);
    });

    it('drops what was held when the join is aborted (deliveries report ERROR); later frames are written at once', () => {
      client.beginJoin(makeProfile('1'));
      client.send('{"n":1}');
      client.deliver('{"n":2}', record);
      client.abortJoin();
      expect(statuses).toEqual([Status.ERROR]);
      client.send('{"type":"AUTH_MESSAGE","status":"ERROR"}');
      expect(transport.calls).toEqual(['write {"type":"AUTH_MESSAGE","status":"ERROR"}']);
      client.abortJoin(); // twice: nothing more
      expect(statuses).toEqual([Status.ERROR]);
    });

    it('replaces its online profile with a new value', () => {
      client.beginJoin(makeProfile('1'));
      const next = makeProfile('1', { avatar: 'new' });
      client.replaceProfile(next);
      expect(client.profile).toBe(next);
    });
  });

  describe('JOINED', () => {
    beforeEach(() => {
      client.authenticate(makeProfile('1'));
      client.beginJoin(makeProfile('1'));
      client.completeJoin('{"auth":1}');
      transport.calls.length = 0;
    });

    it('writes frames and broadcasts (the encoded bytes go to the transport)', () => {
      client.send('{"n":1}');
      broadcast('{"n":2}');
      expect(transport.calls).toEqual(['write {"n":1}', 'broadcast {"n":2}']);
    });

    it('reports SUCCESS for a delivery once its write completes', () => {
      transport.deferDone = true;
      client.deliver('{"n":1}', record);
      expect(statuses).toEqual([]);
      transport.pendingDone[0]();
      expect(statuses).toEqual([Status.SUCCESS]);
    });

    it('reports ERROR for a delivery whose write fails', () => {
      transport.failWrites = true;
      client.deliver('{"n":1}', record);
      expect(statuses).toEqual([Status.ERROR]);
    });

    it('reports ERROR at once for a delivery the transport refuses (closed or over its send buffer)', () => {
      transport.accepts = false;
      client.deliver('{"n":1}', record);
      expect(statuses).toEqual([Status.ERROR]);
      expect(transport.calls).toEqual([]);
    });

    it('probes through the transport', async () => {
      transport.probeAnswer = false;
      await expect(client.probe(2000)).resolves.toBe(false);
      expect(transport.probes).toEqual([2000]);
    });
  });

  describe('close and drop', () => {
    it('closes once with a close frame: CLOSING, not open even while the transport still is', () => {
      client.close(4401, 'token not found or invalid');
      client.close(1000, 'again');
      client.drop();
      expect(client.state).toBe(ClientState.CLOSING);
      expect(client.isOpen).toBe(false);
      expect(transport.open).toBe(true);
      expect(transport.calls).toEqual(['close 4401 token not found or invalid']);
    });

    it('drops once without a close frame; a close after it does nothing', () => {
      client.drop();
      client.drop();
      client.close(1000, 'late');
      expect(client.state).toBe(ClientState.CLOSING);
      expect(transport.calls).toEqual(['drop']);
    });

    it.each<[string, (c: ChatClient) => void, string]>([
      ['close', (c) => c.close(1001, 'server shutting down'), 'close 1001 server shutting down'],
      ['drop', (c) => c.drop(), 'drop'],
    ])('%s aborts a join: held deliveries report ERROR, nothing held is written, completeJoin is ignored', (_how, end, call) => {
      client.beginJoin(makeProfile('1'));
      client.send('{"n":1}');
      client.deliver('{"n":2}', record);
      end(client);
      expect(statuses).toEqual([Status.ERROR]);
      client.completeJoin('{"auth":1}');
      expect(client.state).toBe(ClientState.CLOSING);
      expect(client.isJoined).toBe(false);
      expect(transport.calls).toEqual([call]);
    });

    it('ignores beginJoin and authenticate after a close', () => {
      client.close(1000, 'bye');
      client.authenticate(makeProfile('1'));
      client.beginJoin(makeProfile('1'));
      expect(client.user).toBeUndefined();
      expect(client.state).toBe(ClientState.CLOSING);
    });
  });

  describe('closed(): the socket is gone', () => {
    it('runs the onClosed hooks once, in order, and moves to CLOSING', () => {
      const order: string[] = [];
      client.onClosed(() => order.push('a'));
      client.onClosed(() => order.push('b'));
      client.closed();
      client.closed();
      expect(order).toEqual(['a', 'b']);
      expect(client.state).toBe(ClientState.CLOSING);
      expect(client.isOpen).toBe(false);
      expect(transport.calls).toEqual([]); // the transport is already closed: nothing is written or closed
    });

    it('runs a single hook once, as it does one of many (a lone hook is kept without an array)', () => {
      const hook = jest.fn();
      client.onClosed(hook);
      client.closed();
      client.closed();
      expect(hook).toHaveBeenCalledTimes(1);
    });

    it('runs the other hooks when one throws', () => {
      const order: string[] = [];
      client.onClosed(() => order.push('a'));
      client.onClosed(() => {
        throw new Error('a gateway disconnect hook failed');
      });
      client.onClosed(() => order.push('c'));
      expect(() => client.closed()).not.toThrow();
      expect(order).toEqual(['a', 'c']);
    });

    it('runs the hooks after a close() too (close does not run them: the socket is not gone yet)', () => {
      const hook = jest.fn();
      client.onClosed(hook);
      client.close(1000, 'bye');
      expect(hook).not.toHaveBeenCalled();
      client.closed();
      expect(hook).toHaveBeenCalledTimes(1);
    });

    it('aborts a join in progress', () => {
      client.beginJoin(makeProfile('1'));
      client.deliver('{"n":1}', record);
      client.closed();
      expect(statuses).toEqual([Status.ERROR]);
      client.completeJoin('{"auth":1}');
      expect(transport.calls).toEqual([]);
    });

    it('is fine without hooks', () => {
      expect(() => client.closed()).not.toThrow();
    });
  });
});

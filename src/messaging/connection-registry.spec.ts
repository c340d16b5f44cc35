import { makeProfile } from '../../test/support/factories';
import { joinedClient, verifiedClient, WriteOutcome, type FakeConnection } from '../../test/support/fake-client';
import { flushPromises } from '../../test/support/time';
import { Status, type DeliveryStatus } from '../protocol/protocol';
import { ConnectionRegistry } from './connection-registry';

/** A client that has begun its join (session claimed, AUTH SUCCESS not sent yet). */
function joiningClient(userId: string): FakeConnection {
  const connection = verifiedClient(userId);
  connection.client.beginJoin(makeProfile(userId));
  return connection;
}

const AUTH_SUCCESS = '{"type":"AUTH_MESSAGE","status":"SUCCESS","serverData":{"userId":"carol","userList":[]}}';

describe('ConnectionRegistry', () => {
  let registry: ConnectionRegistry;

  beforeEach(() => {
    registry = new ConnectionRegistry();
  });

  describe('the table', () => {
    it('makes a client reachable by its user id', () => {
      const alice = joinedClient('alice');
      const bob = joinedClient('bob');
      expect(registry.size).toBe(0);
      registry.register(alice.client);
      registry.register(bob.client);
      expect(registry.size).toBe(2);
      expect(registry.get('alice')).toBe(alice.client);
      expect(registry.get('bob')).toBe(bob.client);
      expect(registry.get('carol')).toBeUndefined();
    });

    it('removes a client on unregister', () => {
      const alice = joinedClient('alice');
      registry.register(alice.client);
      registry.unregister(alice.client);
      expect(registry.get('alice')).toBeUndefined();
      expect(registry.size).toBe(0);
    });

    it('keeps the newer client of a user when an older one unregisters', () => {
      const older = joinedClient('alice');
      const newer = joinedClient('alice');
      registry.register(older.client);
      registry.register(newer.client);
      expect(registry.size).toBe(1);
      registry.unregister(older.client);
      expect(registry.get('alice')).toBe(newer.client);
    });

    it('unregistering a client that was never registered touches nothing', () => {
      const alice = joinedClient('alice');
      registry.register(alice.client);
      registry.unregister(joinedClient('bob').client);
      expect(registry.size).toBe(1);
    });
  });

  describe('broadcastLocal', () => {
    it('sends the frame to every client but the excepted user, encoded once for all of them', () => {
      const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((id) => joinedClient(id));
      for (const c of [alice, bob, carol]) registry.register(c.client);
      const frame = '{"type":"CHAT_MESSAGE","serverData":{"message":"héllo 😀"}}';
      registry.broadcastLocal(frame, 'alice');
      expect(alice.transport.writes).toEqual([]);
      expect(bob.transport.writes).toEqual([{ text: frame, via: 'broadcast', bytes: Buffer.from(frame) }]);
      expect(carol.transport.written).toEqual([frame]);
      expect(bob.transport.writes[0].bytes).toBe(carol.transport.writes[0].bytes); // one Buffer for all
    });

    it('sends to everyone, the sender included, without an excepted user', () => {
      const [alice, bob] = ['alice', 'bob'].map((id) => joinedClient(id));
      registry.register(alice.client);
      registry.register(bob.client);
      registry.broadcastLocal('{"type":"X"}');
      expect(alice.transport.written).toEqual(['{"type":"X"}']);
      expect(bob.transport.written).toEqual(['{"type":"X"}']);
    });

    it('does nothing on a node without clients', () => {
      expect(() => registry.broadcastLocal('{"type":"X"}')).not.toThrow();
    });

    it('holds a broadcast to a joining client back until its AUTH SUCCESS is written', () => {
      const carol = joiningClient('carol');
      registry.register(carol.client);
      registry.broadcastLocal('{"type":"USER_CONNECTION_MESSAGE"}');
      expect(carol.transport.writes).toEqual([]);
      carol.client.completeJoin(AUTH_SUCCESS);
      expect(carol.transport.written).toEqual([AUTH_SUCCESS, '{"type":"USER_CONNECTION_MESSAGE"}']);
    });
  });

  describe('deliverLocal', () => {
    /** Calls deliverLocal and collects the outcomes it reports. */
    function deliverTo(userId: string, frame = '{"type":"DIALOG_MESSAGE"}'): { here: boolean; outcomes: DeliveryStatus[] } {
      const outcomes: DeliveryStatus[] = [];
      const here = registry.deliverLocal(userId, frame, (status) => outcomes.push(status));
      return { here, outcomes };
    }

    it('false, and no outcome ever, for a user not on this node', async () => {
      registry.register(joinedClient('alice').client);
      const { here, outcomes } = deliverTo('bob');
      expect(here).toBe(false);
      await flushPromises();
      expect(outcomes).toEqual([]);
    });

    it('writes the frame to the user\'s client and reports SUCCESS once the write completed', async () => {
      const bob = joinedClient('bob');
      bob.transport.writeOutcome = WriteOutcome.HELD;
      registry.register(bob.client);
      const { here, outcomes } = deliverTo('bob', '{"type":"DIALOG_MESSAGE","n":1}');
      expect(here).toBe(true);
      expect(bob.transport.writes).toEqual([{ text: '{"type":"DIALOG_MESSAGE","n":1}', via: 'write' }]);
      await flushPromises();
      expect(outcomes).toEqual([]); // not before the socket says so
      bob.transport.completeWrites();
      expect(outcomes).toEqual([Status.SUCCESS]);
    });

    it('reports ERROR when the write fails', async () => {
      const bob = joinedClient('bob');
      bob.transport.writeOutcome = WriteOutcome.FAILED;
      registry.register(bob.client);
      const { here, outcomes } = deliverTo('bob');
      expect(here).toBe(true);
      await flushPromises();
      expect(outcomes).toEqual([Status.ERROR]);
    });

    it('reports ERROR at once when the transport refuses the frame (closed, or over its send buffer)', () => {
      const bob = joinedClient('bob');
      bob.transport.writeOutcome = WriteOutcome.REFUSED;
      registry.register(bob.client);
      const { here, outcomes } = deliverTo('bob');
      expect(here).toBe(true);
      expect(outcomes).toEqual([Status.ERROR]);
      expect(bob.transport.writes).toEqual([]);
    });

    it('a joining client gets the frame after its AUTH SUCCESS, and SUCCESS is reported only then', async () => {
      const carol = joiningClient('carol');
      registry.register(carol.client);
      const { here, outcomes } = deliverTo('carol', '{"type":"DIALOG_MESSAGE"}');
      expect(here).toBe(true);
      await flushPromises();
      expect(carol.transport.writes).toEqual([]);
      expect(outcomes).toEqual([]);
      carol.client.completeJoin(AUTH_SUCCESS);
      expect(carol.transport.written).toEqual([AUTH_SUCCESS, '{"type":"DIALOG_MESSAGE"}']);
      await flushPromises();
      expect(outcomes).toEqual([Status.SUCCESS]);
    });

    it('a joining client that closes before its AUTH SUCCESS: ERROR, nothing written', () => {
      const carol = joiningClient('carol');
      registry.register(carol.client);
      const { outcomes } = deliverTo('carol');
      carol.client.closed();
      expect(outcomes).toEqual([Status.ERROR]);
      expect(carol.transport.writes).toEqual([]);
    });
  });
});

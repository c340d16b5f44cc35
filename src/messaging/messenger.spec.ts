import { Logger } from '@nestjs/common';
import { makeProfile } from '../../test/support/factories';
import { strictMock } from '../../test/support/strict-mock';
import { flushPromises } from '../../test/support/time';
import type { BroadcastEvent, ClusterBus, DeliveryRequest, PresenceRegistry, Session } from '../engine/engine.ports';
import type { ChatServerFrame } from '../protocol/frames';
import { Status, type DeliveryStatus } from '../protocol/protocol';
import type { ConnectionRegistry } from './connection-registry';
import { Messenger } from './messenger';

const THIS_NODE = 'node-a';
const session = (userId: string, nodeId: string): Session => ({ userId, nodeId, connId: `c-${userId}`, profile: makeProfile(userId) });

describe('Messenger', () => {
  let broadcastLocal: jest.Mock<void, [string, string | undefined]>;
  let deliverLocal: jest.Mock<boolean, [string, string, (status: DeliveryStatus) => void]>;
  let publish: jest.Mock<void, [BroadcastEvent]>;
  let busDeliver: jest.Mock<Promise<DeliveryStatus>, [string, DeliveryRequest, number]>;
  let locate: jest.Mock<Promise<Session | undefined>, [string]>;
  let onBroadcast: jest.Mock<void, [(event: BroadcastEvent) => void]>;
  let onDeliver: jest.Mock<void, [(request: DeliveryRequest) => Promise<DeliveryStatus>]>;
  let messenger: Messenger;

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    broadcastLocal = jest.fn();
    deliverLocal = jest.fn();
    publish = jest.fn();
    busDeliver = jest.fn();
    locate = jest.fn();
    onBroadcast = jest.fn();
    onDeliver = jest.fn();
    const connections = strictMock<ConnectionRegistry>({ broadcastLocal, deliverLocal }, 'connections');
    const bus = strictMock<ClusterBus>({ nodeId: THIS_NODE, publish, deliver: busDeliver, onBroadcast, onDeliver }, 'bus');
    const presence = strictMock<PresenceRegistry>({ locate }, 'presence');
    messenger = new Messenger(connections, bus, presence);
  });

  describe('broadcast', () => {
    it('serializes an object once, sends it locally and publishes it once to the other nodes', () => {
      const frame: ChatServerFrame = { type: 'CHAT_MESSAGE', serverData: { message: 'hi "there"', sender: 'u1', sendTime: '1' } };
      messenger.broadcast(frame, 'u1');
      const data = JSON.stringify(frame);
      expect(broadcastLocal).toHaveBeenCalledTimes(1);
      expect(broadcastLocal).toHaveBeenCalledWith(data, 'u1');
      expect(publish).toHaveBeenCalledTimes(1);
      expect(publish).toHaveBeenCalledWith({ frame: data, exceptUserId: 'u1' });
    });

    it('passes an already serialized frame through unchanged, with no exception by default', () => {
      messenger.broadcast('{"type":"X"}');
      expect(broadcastLocal).toHaveBeenCalledWith('{"type":"X"}', undefined);
      expect(publish).toHaveBeenCalledWith({ frame: '{"type":"X"}', exceptUserId: undefined });
    });
  });

  /** A local connection that is here and reports `status` when the write completes. */
  const hereWith = (status: DeliveryStatus) =>
    deliverLocal.mockImplementationOnce((_user, _frame, done) => {
      setImmediate(() => done(status));
      return true;
    });

  /** Calls deliver and collects every outcome it reports (it must report exactly one). */
  async function deliverOutcomes(userId: string, frame: string, timeoutMs: number): Promise<DeliveryStatus[]> {
    const outcomes: DeliveryStatus[] = [];
    messenger.deliver(userId, frame, timeoutMs, (status) => outcomes.push(status));
    await new Promise((resolve) => setImmediate(resolve));
    await flushPromises();
    return outcomes;
  }

  describe('deliver', () => {
    it('hands the frame to a local connection first, without asking presence or the bus', async () => {
      hereWith(Status.SUCCESS);
      expect(await deliverOutcomes('bob', 'frame', 1000)).toEqual([Status.SUCCESS]);
      expect(deliverLocal).toHaveBeenCalledWith('bob', 'frame', expect.any(Function));
      expect(locate).not.toHaveBeenCalled();
      expect(busDeliver).not.toHaveBeenCalled();
    });

    it('reports a local outcome only when the write completes, with no promise in between', () => {
      let complete!: (status: DeliveryStatus) => void;
      deliverLocal.mockImplementationOnce((_user, _frame, done) => {
        complete = done;
        return true;
      });
      const outcomes: DeliveryStatus[] = [];
      messenger.deliver('bob', 'frame', 1000, (status) => outcomes.push(status));
      expect(outcomes).toEqual([]);
      complete(Status.SUCCESS);
      expect(outcomes).toEqual([Status.SUCCESS]);
    });

    it('hands the caller\'s callback itself to the local connection: nothing is wrapped on the hot path', () => {
      deliverLocal.mockReturnValueOnce(true);
      const done = jest.fn();
      messenger.deliver('bob', 'frame', 1000, done);
      expect(deliverLocal.mock.calls[0][2]).toBe(done);
      expect(done).not.toHaveBeenCalled();
    });

    it('answers ERROR when the local write fails, without trying elsewhere', async () => {
      hereWith(Status.ERROR);
      expect(await deliverOutcomes('bob', 'frame', 1000)).toEqual([Status.ERROR]);
      expect(locate).not.toHaveBeenCalled();
      expect(busDeliver).not.toHaveBeenCalled();
    });

    it.each([Status.SUCCESS, Status.ERROR] as const)(
      'delivers through the bus to the node of the session and answers what that node reports (%s)',
      async (reported) => {
        deliverLocal.mockReturnValueOnce(false);
        locate.mockResolvedValueOnce(session('bob', 'node-b'));
        busDeliver.mockResolvedValueOnce(reported);
        expect(await deliverOutcomes('bob', 'frame', 1234)).toEqual([reported]);
        expect(locate).toHaveBeenCalledWith('bob');
        expect(busDeliver).toHaveBeenCalledTimes(1);
        expect(busDeliver).toHaveBeenCalledWith('node-b', { userId: 'bob', frame: 'frame' }, 1234);
      },
    );

    it('answers ERROR for an offline user', async () => {
      deliverLocal.mockReturnValueOnce(false);
      locate.mockResolvedValueOnce(undefined);
      expect(await deliverOutcomes('bob', 'frame', 1000)).toEqual([Status.ERROR]);
      expect(busDeliver).not.toHaveBeenCalled();
    });

    it('answers ERROR for a session of this node that has no local connection (it is leaving)', async () => {
      deliverLocal.mockReturnValueOnce(false);
      locate.mockResolvedValueOnce(session('bob', THIS_NODE));
      expect(await deliverOutcomes('bob', 'frame', 1000)).toEqual([Status.ERROR]);
      expect(busDeliver).not.toHaveBeenCalled();
    });

    it('answers ERROR (once) when the shared state cannot be read', async () => {
      deliverLocal.mockReturnValueOnce(false);
      locate.mockRejectedValueOnce(new Error('redis down'));
      expect(await deliverOutcomes('bob', 'frame', 1000)).toEqual([Status.ERROR]);
      expect(busDeliver).not.toHaveBeenCalled();
    });
  });

  describe('onModuleInit: serving the other nodes', () => {
    beforeEach(() => messenger.onModuleInit());

    it('hands broadcasts from other nodes to the local connections', () => {
      expect(onBroadcast).toHaveBeenCalledTimes(1);
      const handler = onBroadcast.mock.calls[0][0];
      handler({ frame: '{"type":"X"}', exceptUserId: 'u9' });
      expect(broadcastLocal).toHaveBeenCalledWith('{"type":"X"}', 'u9');
      expect(publish).not.toHaveBeenCalled(); // never re-published
    });

    it.each<[string, DeliveryStatus | undefined, DeliveryStatus]>([
      ['written', Status.SUCCESS, Status.SUCCESS],
      ['failed', Status.ERROR, Status.ERROR],
      ['not here', undefined, Status.ERROR],
    ])('answers a delivery addressed to this node: %s', async (_case, local, expected) => {
      expect(onDeliver).toHaveBeenCalledTimes(1);
      const handler = onDeliver.mock.calls[0][0];
      if (local === undefined) deliverLocal.mockReturnValueOnce(false);
      else hereWith(local);
      await expect(handler({ userId: 'bob', frame: 'f' })).resolves.toBe(expected);
      expect(deliverLocal).toHaveBeenCalledWith('bob', 'f', expect.any(Function));
    });
  });
});

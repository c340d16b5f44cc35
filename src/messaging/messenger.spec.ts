import { strictMock } from '../../test/support/strict-mock';
import type { BroadcastEvent, ClusterBus, DeliveryRequest, PresenceRegistry, Session } from '../engine/engine.ports';
import { Status, type DeliveryStatus } from '../protocol/protocol';
import { testProfile } from '../../test/support/fake-client';
import { SendResult } from './client';
import type { ConnectionRegistry } from './connection-registry';
import { Messenger } from './messenger';

const THIS_NODE = 'node-a';
const session = (userId: string, nodeId: string): Session => ({ userId, nodeId, connId: `c-${userId}`, profile: testProfile(userId) });

describe('Messenger', () => {
  let broadcastLocal: jest.Mock<void, [string, string | undefined]>;
  let deliverLocal: jest.Mock<Promise<SendResult> | undefined, [string, string]>;
  let publish: jest.Mock<void, [BroadcastEvent]>;
  let busDeliver: jest.Mock<Promise<DeliveryStatus>, [string, DeliveryRequest, number]>;
  let locate: jest.Mock<Promise<Session | undefined>, [string]>;
  let onBroadcast: jest.Mock<void, [(event: BroadcastEvent) => void]>;
  let onDeliver: jest.Mock<void, [(request: DeliveryRequest) => Promise<DeliveryStatus>]>;
  let messenger: Messenger;

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
      const frame = { type: 'CHAT_MESSAGE', serverData: { message: 'hi "there"', sender: 'u1' } };
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

  describe('deliver', () => {
    it('hands the frame to a local connection first, without asking presence or the bus', async () => {
      deliverLocal.mockReturnValueOnce(Promise.resolve(SendResult.OK));
      await expect(messenger.deliver('bob', 'frame', 1000)).resolves.toBe(Status.SUCCESS);
      expect(deliverLocal).toHaveBeenCalledWith('bob', 'frame');
      expect(locate).not.toHaveBeenCalled();
      expect(busDeliver).not.toHaveBeenCalled();
    });

    it('answers ERROR when the local write fails, without trying elsewhere', async () => {
      deliverLocal.mockReturnValueOnce(Promise.resolve(SendResult.FAILED));
      await expect(messenger.deliver('bob', 'frame', 1000)).resolves.toBe(Status.ERROR);
      expect(locate).not.toHaveBeenCalled();
      expect(busDeliver).not.toHaveBeenCalled();
    });

    it.each([Status.SUCCESS, Status.ERROR] as const)(
      'delivers through the bus to the node of the session and answers what that node reports (%s)',
      async (reported) => {
        deliverLocal.mockReturnValueOnce(undefined);
        locate.mockResolvedValueOnce(session('bob', 'node-b'));
        busDeliver.mockResolvedValueOnce(reported);
        await expect(messenger.deliver('bob', 'frame', 1234)).resolves.toBe(reported);
        expect(locate).toHaveBeenCalledWith('bob');
        expect(busDeliver).toHaveBeenCalledTimes(1);
        expect(busDeliver).toHaveBeenCalledWith('node-b', { userId: 'bob', frame: 'frame' }, 1234);
      },
    );

    it('answers ERROR for an offline user', async () => {
      deliverLocal.mockReturnValueOnce(undefined);
      locate.mockResolvedValueOnce(undefined);
      await expect(messenger.deliver('bob', 'frame', 1000)).resolves.toBe(Status.ERROR);
      expect(busDeliver).not.toHaveBeenCalled();
    });

    it('answers ERROR for a session of this node that has no local connection (it is leaving)', async () => {
      deliverLocal.mockReturnValueOnce(undefined);
      locate.mockResolvedValueOnce(session('bob', THIS_NODE));
      await expect(messenger.deliver('bob', 'frame', 1000)).resolves.toBe(Status.ERROR);
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

    it.each<[string, Promise<SendResult> | undefined, DeliveryStatus]>([
      ['written', Promise.resolve(SendResult.OK), Status.SUCCESS],
      ['failed', Promise.resolve(SendResult.FAILED), Status.ERROR],
      ['not here', undefined, Status.ERROR],
    ])('answers a delivery addressed to this node: %s', async (_case, local, expected) => {
      expect(onDeliver).toHaveBeenCalledTimes(1);
      const handler = onDeliver.mock.calls[0][0];
      deliverLocal.mockReturnValueOnce(local);
      await expect(handler({ userId: 'bob', frame: 'f' })).resolves.toBe(expected);
      expect(deliverLocal).toHaveBeenCalledWith('bob', 'f');
    });
  });
});

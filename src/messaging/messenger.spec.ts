import { Logger } from '@nestjs/common';
import { strictMock } from '../../test/support/strict-mock';
import { flushPromises } from '../../test/support/time';
import type { BroadcastEvent, ClusterBus, DeliveryRequest } from '../engine/engine.ports';
import type { ChatServerFrame } from '../protocol/frames';
import { Status, type DeliveryStatus } from '../protocol/protocol';
import type { ConnectionRegistry } from './connection-registry';
import { Messenger } from './messenger';
import type { RemoteRoutes } from './remote-routes';

const THIS_NODE = 'node-a';

describe('Messenger', () => {
  let broadcastLocal: jest.Mock<void, [string, string | undefined]>;
  let deliverLocal: jest.Mock<boolean, [string, string, (status: DeliveryStatus) => void]>;
  let publish: jest.Mock<void, [BroadcastEvent]>;
  let routesDeliver: jest.Mock<void, [string, string, number, (status: DeliveryStatus) => void]>;
  let onBroadcast: jest.Mock<void, [(event: BroadcastEvent) => void]>;
  let onDeliver: jest.Mock<void, [(request: DeliveryRequest) => Promise<DeliveryStatus>]>;
  let messenger: Messenger;

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    broadcastLocal = jest.fn();
    deliverLocal = jest.fn();
    publish = jest.fn();
    routesDeliver = jest.fn();
    onBroadcast = jest.fn();
    onDeliver = jest.fn();
    const connections = strictMock<ConnectionRegistry>({ broadcastLocal, deliverLocal }, 'connections');
    const bus = strictMock<ClusterBus>({ nodeId: THIS_NODE, publish, onBroadcast, onDeliver }, 'bus');
    const routes = strictMock<RemoteRoutes>({ deliver: routesDeliver }, 'routes');
    messenger = new Messenger(connections, bus, routes);
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
    it('hands the frame to a local connection first, without asking RemoteRoutes', async () => {
      hereWith(Status.SUCCESS);
      expect(await deliverOutcomes('bob', 'frame', 1000)).toEqual([Status.SUCCESS]);
      expect(deliverLocal).toHaveBeenCalledWith('bob', 'frame', expect.any(Function));
      expect(routesDeliver).not.toHaveBeenCalled();
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
      expect(routesDeliver).not.toHaveBeenCalled();
    });

    it('hands a user who is not on this node to RemoteRoutes, with the caller\'s callback', () => {
      deliverLocal.mockReturnValueOnce(false);
      const done = jest.fn();
      messenger.deliver('bob', 'frame', 1234, done);
      expect(routesDeliver).toHaveBeenCalledTimes(1);
      expect(routesDeliver).toHaveBeenCalledWith('bob', 'frame', 1234, done);
      expect(done).not.toHaveBeenCalled();
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

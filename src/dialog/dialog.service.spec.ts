import { Logger } from '@nestjs/common';
import { FakeClient, flushPromises } from '../../test/support/fake-client';
import { strictMock } from '../../test/support/strict-mock';
import type { GatewayConfig } from '../config/gateway-config';
import { DedupState, type DedupStore } from '../engine/engine.ports';
import type { InboundFrame } from '../messaging/client';
import type { DeliveryCallback, Messenger } from '../messaging/messenger';
import type { MetricsService } from '../observability/metrics.service';
import { FrameError } from '../protocol/errors';
import { FrameErrorCode, Status, type DeliveryStatus } from '../protocol/protocol';
import { DialogService } from './dialog.service';

const NOW = 1_700_000_000_000;
const TIMEOUT = 5000;
const MAX_BYTES = 40;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function frameErrorOf(fn: () => unknown): FrameError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FrameError) return err;
    throw err;
  }
  throw new Error('expected a FrameError, nothing was thrown');
}

const dialog = (serverData: unknown, clientData: unknown = { text: 'hi' }): InboundFrame => ({ type: 'DIALOG_MESSAGE', clientData, serverData });

const delivery = (status: DeliveryStatus, messageId: string) => ({ type: 'DELIVERY_MESSAGE', status, serverData: { messageId } });

describe('DialogService', () => {
  let deliver: jest.Mock<void, [string, string, number, DeliveryCallback]>;
  let dedupStubs: Partial<DedupStore>;
  let observeDialogDelivery: jest.Mock<void, [string, number]>;
  let service: DialogService;
  let client: FakeClient;
  let log: string[];

  function create(): DialogService {
    const messenger = strictMock<Messenger>({ deliver }, 'messenger');
    const dedup = strictMock<DedupStore>(dedupStubs, 'dedup');
    const config = strictMock<GatewayConfig>({ dialogMaxBytes: MAX_BYTES, deliveryTimeoutMs: TIMEOUT }, 'config');
    const metrics = strictMock<MetricsService>({ observeDialogDelivery }, 'metrics');
    return new DialogService(messenger, dedup, config, metrics);
  }

  /** The next deliver call reports `status` later (as a socket write callback would). */
  const deliverReports = (status: DeliveryStatus) =>
    deliver.mockImplementationOnce((_receiver, _frame, _timeout, done) => {
      void Promise.resolve().then(() => done(status));
    });
  /** Every deliver call from now on reports `status` later. */
  const deliverAlwaysReports = (status: DeliveryStatus) =>
    deliver.mockImplementation((_receiver, _frame, _timeout, done) => {
      void Promise.resolve().then(() => done(status));
    });
  /** The outcome callback of the n-th deliver call. */
  const doneOf = (n = 0) => deliver.mock.calls[n][3];

  /** The outbound DIALOG frame handed to the messenger by the n-th deliver call, parsed. */
  const outbound = (n = 0) => JSON.parse(deliver.mock.calls[n][1]) as { type: string; clientData: unknown; serverData: Record<string, string> };

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    jest.useFakeTimers({ now: NOW });
    log = [];
    deliver = jest.fn();
    dedupStubs = {};
    observeDialogDelivery = jest.fn();
    client = new FakeClient('alice');
    const send = client.send.bind(client);
    client.send = (frame) => {
      log.push('send');
      send(frame);
    };
    service = create();
  });

  afterEach(() => jest.useRealTimers());

  describe('without a client messageId', () => {
    it('starts the delivery before returning, and answers DELIVERY SUCCESS once it is known', async () => {
      const result = service.handleDialog(client, dialog({ receiver: 'bob' }, { text: 'hi', n: [1, 2] }));
      expect(result).toBeUndefined(); // does not hold up the connection's next frames
      expect(deliver).toHaveBeenCalledTimes(1);
      expect(deliver.mock.calls[0][0]).toBe('bob');
      expect(deliver.mock.calls[0][2]).toBe(TIMEOUT);
      const sent = outbound();
      expect(sent).toEqual({
        type: 'DIALOG_MESSAGE',
        clientData: { text: 'hi', n: [1, 2] },
        serverData: { messageId: expect.stringMatching(UUID), sender: 'alice', sendTime: String(NOW) },
      });
      await flushPromises();
      expect(client.sent).toEqual([]);
      expect(observeDialogDelivery).not.toHaveBeenCalled();
      doneOf()(Status.SUCCESS);
      expect(client.frames).toEqual([delivery(Status.SUCCESS, sent.serverData.messageId)]);
      expect(observeDialogDelivery).toHaveBeenCalledWith(Status.SUCCESS, expect.any(Number));
      doneOf()(Status.ERROR); // a second report of the same dialog is ignored
      expect(client.sent).toHaveLength(1);
      expect(observeDialogDelivery).toHaveBeenCalledTimes(1);
    });

    it('assigns a different id to every message', async () => {
      deliverAlwaysReports(Status.SUCCESS);
      service.handleDialog(client, dialog({ receiver: 'bob' }));
      service.handleDialog(client, dialog({ receiver: 'bob' }));
      expect(outbound(0).serverData.messageId).not.toBe(outbound(1).serverData.messageId);
    });

    it('answers DELIVERY ERROR when the delivery fails', async () => {
      deliverReports(Status.ERROR);
      service.handleDialog(client, dialog({ receiver: 'bob' }));
      await flushPromises();
      expect(client.frames).toEqual([delivery(Status.ERROR, outbound().serverData.messageId)]);
    });

    it('answers at once when the outcome is known before deliver returns (a failed local write)', () => {
      deliver.mockImplementationOnce((_receiver, _frame, _timeout, done) => done(Status.ERROR));
      service.handleDialog(client, dialog({ receiver: 'bob' }));
      expect(client.frames).toEqual([delivery(Status.ERROR, outbound().serverData.messageId)]);
    });

    it('answers one client\'s dialogs to one receiver in order, whatever order their outcomes come in', () => {
      for (const text of ['one', 'two', 'three']) service.handleDialog(client, dialog({ receiver: 'bob' }, text));
      const ids = [0, 1, 2].map((n) => outbound(n).serverData.messageId);
      doneOf(2)(Status.SUCCESS);
      doneOf(1)(Status.ERROR);
      expect(client.sent).toEqual([]);
      doneOf(0)(Status.SUCCESS);
      expect(client.frames).toEqual([delivery(Status.SUCCESS, ids[0]), delivery(Status.ERROR, ids[1]), delivery(Status.SUCCESS, ids[2])]);
    });

    it('does not hold one receiver\'s DELIVERY behind another receiver\'s', () => {
      service.handleDialog(client, dialog({ receiver: 'bob' }));
      service.handleDialog(client, dialog({ receiver: 'carol' }));
      doneOf(1)(Status.SUCCESS);
      expect(client.frames).toEqual([delivery(Status.SUCCESS, outbound(1).serverData.messageId)]);
      doneOf(0)(Status.SUCCESS);
      expect(client.frames).toHaveLength(2);
    });

    it('keeps the order per client: another sender\'s pending dialog to the same receiver holds nothing up', () => {
      const other = new FakeClient('zoe');
      service.handleDialog(other, dialog({ receiver: 'bob' }));
      service.handleDialog(client, dialog({ receiver: 'bob' }));
      doneOf(1)(Status.SUCCESS);
      expect(client.frames).toEqual([delivery(Status.SUCCESS, outbound(1).serverData.messageId)]);
      expect(other.sent).toEqual([]);
    });

    it('hands one connection\'s dialogs to the messenger in the order received', () => {
      deliverAlwaysReports(Status.SUCCESS);
      for (const text of ['one', 'two', 'three']) service.handleDialog(client, dialog({ receiver: 'bob' }, text));
      expect(deliver.mock.calls.map((_c, i) => outbound(i).clientData)).toEqual(['one', 'two', 'three']);
    });

    it('routes a dialog to oneself like any other', async () => {
      deliverReports(Status.SUCCESS);
      service.handleDialog(client, dialog({ receiver: 'alice' }));
      expect(deliver.mock.calls[0][0]).toBe('alice');
      await flushPromises();
      expect(client.frames).toEqual([delivery(Status.SUCCESS, outbound().serverData.messageId)]);
    });
  });

  describe('clientData', () => {
    it.each([
      ['a string', 'secret-ciphertext=='],
      ['a number', 42],
      ['false', false],
      ['null', null],
      ['an array', [1, 'two', { three: 3 }]],
      ['a nested object', { a: { b: ['c', { d: 'é😀"\\' }] } }],
    ])('forwards %s as an equal JSON value', (_case, clientData) => {
      deliverReports(Status.SUCCESS);
      service.handleDialog(client, dialog({ receiver: 'bob' }, clientData));
      expect(outbound().clientData).toEqual(clientData);
    });

    it('accepts clientData of exactly DIALOG_MAX_BYTES UTF-8 bytes of compact JSON', () => {
      deliverReports(Status.SUCCESS);
      const clientData = 'é'.repeat((MAX_BYTES - 2) / 2); // 2 quotes + 2 bytes per é
      expect(Buffer.byteLength(JSON.stringify(clientData))).toBe(MAX_BYTES);
      service.handleDialog(client, dialog({ receiver: 'bob' }, clientData));
      expect(deliver).toHaveBeenCalledTimes(1);
    });

    it('counts bytes, not characters: one more é is over the limit', () => {
      const clientData = 'é'.repeat((MAX_BYTES - 2) / 2 + 1);
      expect(JSON.stringify(clientData).length).toBeLessThan(MAX_BYTES);
      const err = frameErrorOf(() => service.handleDialog(client, dialog({ receiver: 'bob' }, clientData)));
      expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
      expect(deliver).not.toHaveBeenCalled();
    });
  });

  describe('invalid frames get INVALID_MESSAGE, no delivery and no DELIVERY_MESSAGE', () => {
    it.each<[string, InboundFrame]>([
      ['no serverData', { type: 'DIALOG_MESSAGE', clientData: 'x' }],
      ['no receiver', dialog({})],
      ['an empty receiver', dialog({ receiver: '' })],
      ['a numeric receiver', dialog({ receiver: 7 })],
      ['no clientData', { type: 'DIALOG_MESSAGE', serverData: { receiver: 'bob' } }],
      ['an over-size clientData', dialog({ receiver: 'bob' }, 'x'.repeat(MAX_BYTES))],
      ['an empty messageId', dialog({ receiver: 'bob', messageId: '' })],
      ['a 65-character messageId', dialog({ receiver: 'bob', messageId: 'a'.repeat(65) })],
      ['a messageId with a space', dialog({ receiver: 'bob', messageId: 'a b' })],
      ['a messageId with a quote', dialog({ receiver: 'bob', messageId: 'a"b' })],
      ['a messageId with a non-ASCII letter', dialog({ receiver: 'bob', messageId: 'ümlaut' })],
      ['a numeric messageId', dialog({ receiver: 'bob', messageId: 123 })],
      ['a null messageId', dialog({ receiver: 'bob', messageId: null })],
    ])('%s', async (_case, frame) => {
      const err = frameErrorOf(() => service.handleDialog(client, frame));
      expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
      await flushPromises();
      expect(deliver).not.toHaveBeenCalled();
      expect(client.sent).toEqual([]);
    });
  });

  describe('with a client messageId (dedup)', () => {
    let reserve: jest.Mock<Promise<DedupState>, [string, string]>;
    let settle: jest.Mock<Promise<void>, [string, string, DeliveryStatus]>;
    let outcome: jest.Mock<Promise<DeliveryStatus>, [string, string, number]>;

    beforeEach(() => {
      reserve = jest.fn();
      settle = jest.fn<Promise<void>, [string, string, DeliveryStatus]>(async () => {
        log.push('settle');
      });
      outcome = jest.fn();
      dedupStubs = { reserve, settle, outcome };
      service = create();
    });

    it('NEW: delivers with the client id, remembers the outcome, then answers', async () => {
      const id = 'A'.repeat(30) + '_-' + '9'.repeat(32); // 64 characters
      reserve.mockResolvedValueOnce(DedupState.NEW);
      deliverReports(Status.SUCCESS);
      const result = service.handleDialog(client, dialog({ receiver: 'bob', messageId: id }));
      expect(result).toBeInstanceOf(Promise);
      await result;
      expect(reserve).toHaveBeenCalledWith('alice', id);
      expect(deliver).toHaveBeenCalledTimes(1); // started by the time the router resumes
      expect(outbound().serverData).toEqual({ messageId: id, sender: 'alice', sendTime: String(NOW) });
      await flushPromises();
      expect(settle).toHaveBeenCalledWith('alice', id, Status.SUCCESS);
      expect(client.frames).toEqual([delivery(Status.SUCCESS, id)]);
      expect(log).toEqual(['settle', 'send']); // a retry after the answer finds it remembered
    });

    it('NEW, delivery ERROR: settles ERROR (forgotten) and answers ERROR', async () => {
      reserve.mockResolvedValueOnce(DedupState.NEW);
      deliverReports(Status.ERROR);
      await service.handleDialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(settle).toHaveBeenCalledWith('alice', 'm1', Status.ERROR);
      expect(client.frames).toEqual([delivery(Status.ERROR, 'm1')]);
    });

    it('DELIVERED: answers SUCCESS without delivering again', async () => {
      reserve.mockResolvedValueOnce(DedupState.DELIVERED);
      await service.handleDialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(deliver).not.toHaveBeenCalled();
      expect(settle).not.toHaveBeenCalled();
      expect(client.frames).toEqual([delivery(Status.SUCCESS, 'm1')]);
    });

    it.each([Status.SUCCESS, Status.ERROR] as const)('PENDING: answers the first attempt\'s outcome (%s) without delivering', async (first) => {
      const pending = deferred<DeliveryStatus>();
      reserve.mockResolvedValueOnce(DedupState.PENDING);
      outcome.mockReturnValueOnce(pending.promise);
      await service.handleDialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      expect(outcome).toHaveBeenCalledWith('alice', 'm1', TIMEOUT * 2);
      await flushPromises();
      expect(client.sent).toEqual([]);
      pending.resolve(first);
      await flushPromises();
      expect(deliver).not.toHaveBeenCalled();
      expect(client.frames).toEqual([delivery(first, 'm1')]);
    });

    it('delivers anyway when the dedup store cannot reserve', async () => {
      reserve.mockRejectedValueOnce(new Error('redis down'));
      deliverReports(Status.SUCCESS);
      await service.handleDialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(deliver).toHaveBeenCalledTimes(1);
      expect(client.frames).toEqual([delivery(Status.SUCCESS, 'm1')]);
    });

    it('answers the delivery outcome even when the dedup store cannot settle', async () => {
      reserve.mockResolvedValueOnce(DedupState.NEW);
      deliverReports(Status.SUCCESS);
      settle.mockRejectedValueOnce(new Error('redis down'));
      await service.handleDialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(client.frames).toEqual([delivery(Status.SUCCESS, 'm1')]);
    });

    it('keys the dedup by sender and id, whatever the receiver', async () => {
      reserve.mockResolvedValue(DedupState.DELIVERED);
      await service.handleDialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await service.handleDialog(client, dialog({ receiver: 'carol', messageId: 'm1' }));
      expect(reserve.mock.calls).toEqual([
        ['alice', 'm1'],
        ['alice', 'm1'],
      ]);
    });
  });
});

import { Logger } from '@nestjs/common';
import { thrownBy } from '../../test/support/errors';
import { joinedClient, logSends, type FakeConnection } from '../../test/support/fake-client';
import { strictMock } from '../../test/support/strict-mock';
import { deferred, flushPromises } from '../../test/support/time';
import { DedupState, type DedupStore } from '../engine/engine.ports';
import type { DeliveryCallback, Messenger } from '../messaging/messenger';
import type { MetricsService } from '../observability/metrics.service';
import { FrameError } from '../protocol/errors';
import { RAW_CLIENT_DATA } from '../protocol/inbound';
import { FrameErrorCode, MessageType, Status, type DeliveryStatus } from '../protocol/protocol';
import type { DialogOptions } from './dialog.options';
import { ActivityFeed, type Activity } from '../messaging/activity';
import { DialogService } from './dialog.service';
import type { DialogMessageDto } from './dto/dialog-message.dto';

const NOW = 1_700_000_000_000;
const TIMEOUT = 5000;
const MAX_BYTES = 40;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const frameErrorOf = (fn: () => unknown): FrameError => thrownBy(FrameError, fn);

/** A DIALOG_MESSAGE as the handler gets it: the frame as received (the DTO validated its shape). */
const dialog = (serverData: { receiver: string; messageId?: string }, clientData: unknown = { text: 'hi' }): DialogMessageDto =>
  ({ type: MessageType.DIALOG, clientData, serverData }) as DialogMessageDto;

/** A DIALOG_MESSAGE whose clientData the gateway kept as the client wrote it (src/gateway/inbound-frame.ts). */
function withRaw(frame: DialogMessageDto, raw: string): DialogMessageDto {
  Object.defineProperty(frame, RAW_CLIENT_DATA, { value: raw });
  return frame;
}

const delivery = (status: DeliveryStatus, messageId: string) => ({ type: 'DELIVERY_MESSAGE', status, serverData: { messageId } });

describe('DialogService', () => {
  let deliver: jest.Mock<void, [string, string, number, DeliveryCallback]>;
  let dedupStubs: Partial<DedupStore>;
  let observeDialogDelivery: jest.Mock<void, [string, number]>;
  let service: DialogService;
  let alice: FakeConnection;
  let client: FakeConnection['client'];
  let log: string[];
  let feed: ActivityFeed;
  let facts: Activity[];

  function create(): DialogService {
    const messenger = strictMock<Messenger>({ deliver }, 'messenger');
    const dedup = strictMock<DedupStore>(dedupStubs, 'dedup');
    const config = strictMock<DialogOptions>({ dialogMaxBytes: MAX_BYTES, deliveryTimeoutMs: TIMEOUT }, 'options');
    const metrics = strictMock<MetricsService>({ observeDialogDelivery }, 'metrics');
    return new DialogService(messenger, dedup, config, metrics, feed);
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
    feed = new ActivityFeed();
    facts = [];
    feed.listen((a) => facts.push(a));
    deliver = jest.fn();
    dedupStubs = {};
    observeDialogDelivery = jest.fn();
    alice = joinedClient('alice');
    client = alice.client;
    logSends(client, log);
    service = create();
  });

  afterEach(() => jest.useRealTimers());

  describe('without a client messageId', () => {
    it('starts the delivery before returning, and answers DELIVERY SUCCESS once it is known', async () => {
      const result = service.dialog(client, dialog({ receiver: 'bob' }, { text: 'hi', n: [1, 2] }));
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
      expect(alice.transport.written).toEqual([]);
      expect(observeDialogDelivery).not.toHaveBeenCalled();
      doneOf()(Status.SUCCESS);
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, sent.serverData.messageId)]);
      expect(observeDialogDelivery).toHaveBeenCalledWith(Status.SUCCESS, expect.any(Number));
      doneOf()(Status.ERROR); // a second report of the same dialog is ignored
      expect(alice.transport.written).toHaveLength(1);
      expect(observeDialogDelivery).toHaveBeenCalledTimes(1);
    });

    it('assigns a different id to every message', async () => {
      deliverAlwaysReports(Status.SUCCESS);
      service.dialog(client, dialog({ receiver: 'bob' }));
      service.dialog(client, dialog({ receiver: 'bob' }));
      expect(outbound(0).serverData.messageId).not.toBe(outbound(1).serverData.messageId);
    });

    it('answers DELIVERY ERROR when the delivery fails', async () => {
      deliverReports(Status.ERROR);
      service.dialog(client, dialog({ receiver: 'bob' }));
      await flushPromises();
      expect(alice.transport.frames).toEqual([delivery(Status.ERROR, outbound().serverData.messageId)]);
    });

    it('answers at once when the outcome is known before deliver returns (a failed local write)', () => {
      deliver.mockImplementationOnce((_receiver, _frame, _timeout, done) => done(Status.ERROR));
      service.dialog(client, dialog({ receiver: 'bob' }));
      expect(alice.transport.frames).toEqual([delivery(Status.ERROR, outbound().serverData.messageId)]);
    });

    it('answers one client\'s dialogs to one receiver in order, whatever order their outcomes come in', () => {
      for (const text of ['one', 'two', 'three']) service.dialog(client, dialog({ receiver: 'bob' }, text));
      const ids = [0, 1, 2].map((n) => outbound(n).serverData.messageId);
      doneOf(2)(Status.SUCCESS);
      doneOf(1)(Status.ERROR);
      expect(alice.transport.written).toEqual([]);
      doneOf(0)(Status.SUCCESS);
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, ids[0]), delivery(Status.ERROR, ids[1]), delivery(Status.SUCCESS, ids[2])]);
    });

    it('does not hold one receiver\'s DELIVERY behind another receiver\'s', () => {
      service.dialog(client, dialog({ receiver: 'bob' }));
      service.dialog(client, dialog({ receiver: 'carol' }));
      doneOf(1)(Status.SUCCESS);
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, outbound(1).serverData.messageId)]);
      doneOf(0)(Status.SUCCESS);
      expect(alice.transport.frames).toHaveLength(2);
    });

    it('keeps the order per client: another sender\'s pending dialog to the same receiver holds nothing up', () => {
      const other = joinedClient('zoe');
      service.dialog(other.client, dialog({ receiver: 'bob' }));
      service.dialog(client, dialog({ receiver: 'bob' }));
      doneOf(1)(Status.SUCCESS);
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, outbound(1).serverData.messageId)]);
      expect(other.transport.writes).toEqual([]);
    });

    it('hands one connection\'s dialogs to the messenger in the order received', () => {
      deliverAlwaysReports(Status.SUCCESS);
      for (const text of ['one', 'two', 'three']) service.dialog(client, dialog({ receiver: 'bob' }, text));
      expect(deliver.mock.calls.map((_c, i) => outbound(i).clientData)).toEqual(['one', 'two', 'three']);
    });

    it('writes the sender\'s id as a JSON string, whatever characters it holds', () => {
      const odd = joinedClient('a"b\\c\u2028');
      service.dialog(odd.client, dialog({ receiver: 'bob' }));
      expect(outbound().serverData.sender).toBe('a"b\\c\u2028');
    });

    it('routes a dialog to oneself like any other', async () => {
      deliverReports(Status.SUCCESS);
      service.dialog(client, dialog({ receiver: 'alice' }));
      expect(deliver.mock.calls[0][0]).toBe('alice');
      await flushPromises();
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, outbound().serverData.messageId)]);
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
      service.dialog(client, dialog({ receiver: 'bob' }, clientData));
      expect(outbound().clientData).toEqual(clientData);
    });

    it('accepts clientData of exactly DIALOG_MAX_BYTES UTF-8 bytes of compact JSON', () => {
      deliverReports(Status.SUCCESS);
      const clientData = 'é'.repeat((MAX_BYTES - 2) / 2); // 2 quotes + 2 bytes per é
      expect(Buffer.byteLength(JSON.stringify(clientData))).toBe(MAX_BYTES);
      service.dialog(client, dialog({ receiver: 'bob' }, clientData));
      expect(deliver).toHaveBeenCalledTimes(1);
    });

    it('counts bytes, not characters: one more é is over the limit', () => {
      const clientData = 'é'.repeat((MAX_BYTES - 2) / 2 + 1);
      expect(JSON.stringify(clientData).length).toBeLessThan(MAX_BYTES);
      const err = frameErrorOf(() => service.dialog(client, dialog({ receiver: 'bob' }, clientData)));
      expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
      expect(deliver).not.toHaveBeenCalled();
    });

    describe('as the client wrote it (RAW_CLIENT_DATA)', () => {
      /** The text of the n-th outbound frame between `"clientData":` and `,"serverData":`. */
      const forwardedText = (n = 0) => {
        const text = deliver.mock.calls[n][1];
        const start = text.indexOf('"clientData":') + '"clientData":'.length;
        return text.slice(start, text.lastIndexOf(',"serverData":'));
      };

      it.each([
        ['a number beyond a double', '1e400', Infinity],
        ['a 23-digit integer', '12345678901234567890123', 12345678901234567890123],
        ['a tiny number', '1e-400', 0],
        ['minus zero', '-0', -0],
        ['string escapes', '{"s":"\\u0041\\n\\/"}', { s: 'A\n/' }],
        ['a nested value', '[1e400,{"a":["\\u00e9",null,true]}]', [Infinity, { a: ['é', null, true] }]],
      ])('forwards %s byte-exact, not re-serialized', (_case, raw, parsed) => {
        deliverReports(Status.SUCCESS);
        service.dialog(client, withRaw(dialog({ receiver: 'bob' }, parsed), raw));
        expect(forwardedText()).toBe(raw);
        expect(() => JSON.parse(deliver.mock.calls[0][1]) as unknown).not.toThrow();
      });

      it('forwards JSON.stringify of the value when the frame has no raw text', () => {
        deliverReports(Status.SUCCESS);
        const clientData = { n: 1.5, s: 'é"\\' };
        service.dialog(client, dialog({ receiver: 'bob' }, clientData));
        expect(forwardedText()).toBe(JSON.stringify(clientData));
      });

      it('forwards the raw text with a client messageId too', async () => {
        const reserve = jest.fn<Promise<DedupState>, [string, string]>().mockResolvedValueOnce(DedupState.NEW);
        dedupStubs = { reserve, settle: jest.fn(async () => undefined) };
        service = create();
        deliverReports(Status.SUCCESS);
        await service.dialog(client, withRaw(dialog({ receiver: 'bob', messageId: 'm1' }, Infinity), '1e400'));
        expect(forwardedText()).toBe('1e400');
      });

      it('accepts a raw text of exactly DIALOG_MAX_BYTES bytes, whatever its value re-serialized', () => {
        deliverReports(Status.SUCCESS);
        const raw = `"${'\\u0041'.repeat(6)}é"`; // 2 quotes + 36 + 2 bytes
        expect(Buffer.byteLength(raw)).toBe(MAX_BYTES);
        service.dialog(client, withRaw(dialog({ receiver: 'bob' }, 'AAAAAAé'), raw));
        expect(forwardedText()).toBe(raw);
      });
    });
  });

  describe('refused with INVALID_MESSAGE: no delivery, no dedup reservation, no DELIVERY_MESSAGE', () => {
    // The shape of the frame (receiver, clientData present, messageId pattern) is the DTO's: tested with it.
    let reserve: jest.Mock<Promise<DedupState>, [string, string]>;

    beforeEach(() => {
      reserve = jest.fn();
      dedupStubs = { reserve };
      service = create();
    });

    it.each<[string, () => DialogMessageDto]>([
      ['an over-size clientData', () => dialog({ receiver: 'bob' }, 'x'.repeat(MAX_BYTES))],
      ['an over-size clientData with a messageId (refused before the dedup store is asked)', () => dialog({ receiver: 'bob', messageId: 'm1' }, 'x'.repeat(MAX_BYTES))],
      ['an over-size clientData as written, whatever its value re-serialized', () => withRaw(dialog({ receiver: 'bob' }, 'AAAAAAA'), `"${'\\u0041'.repeat(7)}"`)],
      ['a clientData that cannot be serialized (a cycle)', () => {
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        return dialog({ receiver: 'bob' }, cyclic);
      }],
      ['a clientData that cannot be serialized (a BigInt)', () => dialog({ receiver: 'bob' }, { n: BigInt(1) })],
    ])('%s', async (_case, frame) => {
      const err = frameErrorOf(() => service.dialog(client, frame()));
      expect(err.code).toBe(FrameErrorCode.INVALID_MESSAGE);
      await flushPromises();
      expect(deliver).not.toHaveBeenCalled();
      expect(reserve).not.toHaveBeenCalled();
      expect(alice.transport.written).toEqual([]);
      expect(observeDialogDelivery).not.toHaveBeenCalled();
    });

    it('names the limit, or what could not be forwarded', () => {
      expect(frameErrorOf(() => service.dialog(client, dialog({ receiver: 'bob' }, 'x'.repeat(MAX_BYTES)))).message).toBe(
        `clientData is larger than ${MAX_BYTES} bytes`,
      );
      expect(frameErrorOf(() => service.dialog(client, dialog({ receiver: 'bob' }, { n: BigInt(1) }))).message).toBe('clientData cannot be forwarded');
    });
  });

  describe('the dialog fact (for events)', () => {
    it('is reported once the outcome is known, with the clientData as forwarded', () => {
      service.dialog(client, dialog({ receiver: 'bob' }, { text: 'hi' }));
      expect(facts).toEqual([]);
      doneOf()(Status.ERROR);
      expect(facts).toEqual([
        {
          kind: 'dialog',
          messageId: outbound().serverData.messageId,
          sender: 'alice',
          receiver: 'bob',
          clientDataJson: '{"text":"hi"}',
          sendTime: String(NOW),
          status: Status.ERROR,
        },
      ]);
    });

    it('is not reported for a refused dialog', () => {
      expect(() => service.dialog(client, dialog({ receiver: 'bob' }, 'x'.repeat(MAX_BYTES)))).toThrow();
      expect(facts).toEqual([]);
    });

    it('send: the Server API\'s dialog, from a sender that is no connection, reports its outcome to its callback', () => {
      const outcomes: DeliveryStatus[] = [];
      expect(service.send('backend', 'bob', '[1,2]', 'api-1', false, (status) => outcomes.push(status))).toBeUndefined();
      expect(outbound()).toEqual({ type: 'DIALOG_MESSAGE', clientData: [1, 2], serverData: { messageId: 'api-1', sender: 'backend', sendTime: String(NOW) } });
      doneOf()(Status.SUCCESS);
      expect(outcomes).toEqual([Status.SUCCESS]);
      expect(facts).toMatchObject([{ kind: 'dialog', sender: 'backend', messageId: 'api-1', status: Status.SUCCESS }]);
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
      const result = service.dialog(client, dialog({ receiver: 'bob', messageId: id }));
      expect(result).toBeInstanceOf(Promise);
      await result;
      expect(reserve).toHaveBeenCalledWith('alice', id);
      expect(deliver).toHaveBeenCalledTimes(1); // started by the time the router resumes
      expect(outbound().serverData).toEqual({ messageId: id, sender: 'alice', sendTime: String(NOW) });
      await flushPromises();
      expect(settle).toHaveBeenCalledWith('alice', id, Status.SUCCESS);
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, id)]);
      expect(log).toEqual(['settle', 'send']); // a retry after the answer finds it remembered
    });

    it('NEW, delivery ERROR: settles ERROR (forgotten) and answers ERROR', async () => {
      reserve.mockResolvedValueOnce(DedupState.NEW);
      deliverReports(Status.ERROR);
      await service.dialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(settle).toHaveBeenCalledWith('alice', 'm1', Status.ERROR);
      expect(alice.transport.frames).toEqual([delivery(Status.ERROR, 'm1')]);
    });

    it('DELIVERED: answers SUCCESS without delivering again (and reports no second fact)', async () => {
      reserve.mockResolvedValueOnce(DedupState.DELIVERED);
      await service.dialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(deliver).not.toHaveBeenCalled();
      expect(settle).not.toHaveBeenCalled();
      expect(facts).toEqual([]);
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, 'm1')]);
    });

    it.each([Status.SUCCESS, Status.ERROR] as const)('PENDING: answers the first attempt\'s outcome (%s) without delivering', async (first) => {
      const pending = deferred<DeliveryStatus>();
      reserve.mockResolvedValueOnce(DedupState.PENDING);
      outcome.mockReturnValueOnce(pending.promise);
      await service.dialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      expect(outcome).toHaveBeenCalledWith('alice', 'm1', TIMEOUT * 2);
      await flushPromises();
      expect(alice.transport.written).toEqual([]);
      pending.resolve(first);
      await flushPromises();
      expect(deliver).not.toHaveBeenCalled();
      expect(alice.transport.frames).toEqual([delivery(first, 'm1')]);
    });

    it('delivers anyway when the dedup store cannot reserve', async () => {
      reserve.mockRejectedValueOnce(new Error('redis down'));
      deliverReports(Status.SUCCESS);
      await service.dialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(deliver).toHaveBeenCalledTimes(1);
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, 'm1')]);
    });

    it('answers the delivery outcome even when the dedup store cannot settle', async () => {
      reserve.mockResolvedValueOnce(DedupState.NEW);
      deliverReports(Status.SUCCESS);
      settle.mockRejectedValueOnce(new Error('redis down'));
      await service.dialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(alice.transport.frames).toEqual([delivery(Status.SUCCESS, 'm1')]);
    });

    it('PENDING: answers ERROR when the first attempt\'s outcome cannot be read', async () => {
      reserve.mockResolvedValueOnce(DedupState.PENDING);
      outcome.mockRejectedValueOnce(new Error('redis down'));
      await service.dialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await flushPromises();
      expect(deliver).not.toHaveBeenCalled();
      expect(alice.transport.frames).toEqual([delivery(Status.ERROR, 'm1')]);
      expect(observeDialogDelivery).toHaveBeenCalledWith(Status.ERROR, expect.any(Number));
    });

    it('keeps one client\'s DELIVERYs to one receiver in order across dialogs with and without a messageId', async () => {
      reserve.mockResolvedValueOnce(DedupState.NEW);
      await service.dialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      service.dialog(client, dialog({ receiver: 'bob' }));
      const second = outbound(1).serverData.messageId;
      doneOf(1)(Status.SUCCESS);
      await flushPromises();
      expect(alice.transport.written).toEqual([]); // behind m1
      doneOf(0)(Status.ERROR);
      await flushPromises();
      expect(alice.transport.frames).toEqual([delivery(Status.ERROR, 'm1'), delivery(Status.SUCCESS, second)]);
    });

    it('keys the dedup by sender and id, whatever the receiver', async () => {
      reserve.mockResolvedValue(DedupState.DELIVERED);
      await service.dialog(client, dialog({ receiver: 'bob', messageId: 'm1' }));
      await service.dialog(client, dialog({ receiver: 'carol', messageId: 'm1' }));
      expect(reserve.mock.calls).toEqual([
        ['alice', 'm1'],
        ['alice', 'm1'],
      ]);
    });
  });
});

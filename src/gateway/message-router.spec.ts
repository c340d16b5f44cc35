import { Logger } from '@nestjs/common';
import { DiscoveryService, type MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';
import type { RawData } from 'ws';
import { flushPromises } from '../../test/support/fake-client';
import { strictMock } from '../../test/support/strict-mock';
import type { AuthGuard } from '../auth/auth.guard';
import type { GatewayConfig } from '../config/gateway-config';
import { RAW_CLIENT_DATA, type ClientHandle, type InboundFrame } from '../messaging/client';
import { OnMessage } from '../messaging/on-message.decorator';
import type { MetricsService } from '../observability/metrics.service';
import { AvatarError, FrameError, invalidMessage } from '../protocol/errors';
import { AvatarErrorCode, FrameErrorCode } from '../protocol/protocol';
import type { ClientConnection } from './client-connection';
import { byteLength, MessageRouter, parseFrame } from './message-router';

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** What the fake feature handlers saw, in order: "<type>:<frame.n>". */
let seen: string[];
/** Promises the ASYNC handler returns, in order; when empty it returns a resolved one. */
let pendingResults: Promise<void>[];
/** Errors the SYNC handler throws for a given frame.n. */
let throwFor: Map<number, unknown>;

class FakeFeature {
  readonly tag = 'feature';

  @OnMessage('SYNC')
  handleSync(client: ClientHandle, frame: InboundFrame): void {
    expect(this.tag).toBe('feature'); // bound to its instance
    seen.push(`SYNC:${String(frame.n)}:${client.id}`);
    const err = throwFor.get(frame.n as number);
    if (err !== undefined) throw err;
  }

  @OnMessage('ASYNC')
  handleAsync(_client: ClientHandle, frame: InboundFrame): Promise<void> {
    seen.push(`ASYNC:${String(frame.n)}`);
    return pendingResults.shift() ?? Promise.resolve();
  }

  notAHandler(): void {
    throw new Error('never called');
  }
}

class OtherFeature {
  @OnMessage('OTHER')
  handleOther(_client: ClientHandle, frame: InboundFrame): void {
    seen.push(`OTHER:${String(frame.n)}`);
  }
}

class DuplicateSync {
  @OnMessage('SYNC')
  again(): void {}
}

const wrapper = (instance: unknown, isAlias = false) => ({ instance, isAlias }) as unknown as InstanceWrapper;

function discoveryOf(wrappers: InstanceWrapper[]): DiscoveryService {
  return strictMock<DiscoveryService>(
    {
      getProviders: () => wrappers,
      // the real lookup of the decorator's metadata (it uses nothing of the service)
      getMetadataByDecorator: (decorator, w, method) => DiscoveryService.prototype.getMetadataByDecorator(decorator, w, method),
    },
    'discovery',
  );
}

const scanner = strictMock<MetadataScanner>(
  { getAllMethodNames: (prototype: object | null) => (prototype ? Object.getOwnPropertyNames(prototype).filter((n) => n !== 'constructor') : []) },
  'scanner',
);

const LIMITS = { maxJsonDepth: 32, maxMessageFrameBytes: 65_536, inboundQueueMaxBytes: 4_194_304 };
const text = (value: unknown): RawData => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('parseFrame', () => {
  const codeOf = (data: RawData, isBinary = false): FrameErrorCode => {
    try {
      parseFrame(data, isBinary, LIMITS);
    } catch (err) {
      if (err instanceof FrameError) return err.code;
      throw err;
    }
    throw new Error('parseFrame did not throw');
  };

  it('parses a JSON object with a string type, keeping unknown fields', () => {
    expect(parseFrame(text({ type: 'CHAT_MESSAGE', serverData: { message: 'é' }, messageType: 1 }), false, LIMITS)).toEqual({
      type: 'CHAT_MESSAGE',
      serverData: { message: 'é' },
      messageType: 1,
    });
  });

  it('joins a fragmented message', () => {
    const whole = Buffer.from('{"type":"X","v":"été"}');
    expect(parseFrame([whole.subarray(0, 13), whole.subarray(13)], false, LIMITS)).toEqual({ type: 'X', v: 'été' });
  });

  it('refuses JSON nested deeper than MAX_JSON_DEPTH with INVALID_MESSAGE without parsing it, and accepts the limit', () => {
    const nested = (depth: number) => `{"type":"X","v":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
    expect(parseFrame(text(nested(32)), false, LIMITS)).toMatchObject({ type: 'X' });
    expect(codeOf(text(nested(33)))).toBe(FrameErrorCode.INVALID_MESSAGE);
    const parse = jest.spyOn(JSON, 'parse');
    try {
      expect(codeOf(text('['.repeat(1_400_000)))).toBe(FrameErrorCode.INVALID_MESSAGE);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it('refuses a frame over MAX_MESSAGE_FRAME_BYTES unless it is a SAVE_AVATAR whose bulk is string content', () => {
    const pad = 'A'.repeat(LIMITS.maxMessageFrameBytes);
    expect(codeOf(text({ type: 'CHAT_MESSAGE', serverData: { message: pad } }))).toBe(FrameErrorCode.INVALID_MESSAGE);
    expect(parseFrame(text({ type: 'SAVE_AVATAR', serverData: { imageBase64: pad } }), false, LIMITS)).toMatchObject({ type: 'SAVE_AVATAR' });
    // A SAVE_AVATAR made large by structure (many values) costs a parse per value: refused.
    const structure = Array(LIMITS.maxMessageFrameBytes / 2).fill(0);
    expect(codeOf(text({ type: 'SAVE_AVATAR', serverData: { imageBase64: 'AAAA' }, junk: structure }))).toBe(FrameErrorCode.INVALID_MESSAGE);
    // At the limit, any type passes.
    const chat = { type: 'CHAT_MESSAGE', serverData: { message: '' } };
    const exact = { ...chat, serverData: { message: 'x'.repeat(LIMITS.maxMessageFrameBytes - JSON.stringify(chat).length) } };
    expect(byteLength(text(exact))).toBe(LIMITS.maxMessageFrameBytes);
    expect(parseFrame(text(exact), false, LIMITS)).toMatchObject({ type: 'CHAT_MESSAGE' });
  });

  it('reports the type of a refused frame as soon as the scan knows it', () => {
    const types: string[] = [];
    expect(() => parseFrame(text(`{"type":"DIALOG_MESSAGE","clientData":${'['.repeat(40)}`), false, LIMITS, (t) => types.push(t))).toThrow(FrameError);
    expect(types).toEqual(['DIALOG_MESSAGE']);
  });

  it('keeps a top-level clientData as written: numbers beyond a double, escapes, without whitespace', () => {
    const frame = parseFrame(text('{"type":"DIALOG_MESSAGE", "clientData" : { "big" : 1e400, "id": 12345678901234567890123, "s":"\u0041" }}'), false, LIMITS);
    expect(frame[RAW_CLIENT_DATA]).toBe('{"big":1e400,"id":12345678901234567890123,"s":"\u0041"}');
    expect(parseFrame(text({ type: 'X' }), false, LIMITS)[RAW_CLIENT_DATA]).toBeUndefined();
  });

  it('refuses binary frames with INVALID_JSON, even when they hold JSON', () => {
    expect(codeOf(text({ type: 'X' }), true)).toBe(FrameErrorCode.INVALID_JSON);
  });

  it.each(['not json', '{"type":', '', "{'type':'X'}"])('refuses %p with INVALID_JSON', (raw) => {
    expect(codeOf(text(raw))).toBe(FrameErrorCode.INVALID_JSON);
  });

  it.each(['[]', '[{"type":"X"}]', 'null', '42', '"X"', 'true', '{}', '{"type":42}', '{"type":null}', '{"Type":"X"}'])(
    'refuses %s with INVALID_MESSAGE',
    (raw) => {
      expect(codeOf(text(raw))).toBe(FrameErrorCode.INVALID_MESSAGE);
    },
  );
});

describe('MessageRouter', () => {
  let router: MessageRouter;
  let allows: jest.Mock<boolean, [unknown]>;
  let countReceived: jest.Mock<void, [string | undefined]>;
  let allow: boolean;
  let connection: ClientConnection & { isOpen: boolean };
  let send: jest.Mock<void, [object | string]>;

  const sentFrames = () => send.mock.calls.map(([f]) => (typeof f === 'string' ? (JSON.parse(f) as unknown) : f));
  const route = (frame: unknown, isBinary = false) => router.route(connection, text(frame), isBinary);

  function create(wrappers: InstanceWrapper[]): MessageRouter {
    const guard = strictMock<AuthGuard>({ allows }, 'guard');
    const metrics = strictMock<MetricsService>({ countReceived }, 'metrics');
    return new MessageRouter(discoveryOf(wrappers), scanner, guard, metrics, LIMITS as unknown as GatewayConfig);
  }

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(() => {
    seen = [];
    pendingResults = [];
    throwFor = new Map();
    allow = true;
    send = jest.fn();
    connection = strictMock<ClientConnection & { isOpen: boolean }>(
      { id: 'conn-1', busy: false, queue: [], queuedBytes: 0, isOpen: true, send },
      'connection',
    );
    allows = jest.fn((client: unknown) => {
      expect(client).toBe(connection);
      return allow;
    });
    countReceived = jest.fn();
    router = create([wrapper(new FakeFeature()), wrapper(new OtherFeature()), wrapper('a string provider'), wrapper(undefined)]);
    router.onModuleInit();
  });

  describe('discovery', () => {
    it('registers every @OnMessage method of every provider', () => {
      expect(router.types.sort()).toEqual(['ASYNC', 'OTHER', 'SYNC']);
    });

    it('refuses two handlers for one type', () => {
      const twice = create([wrapper(new FakeFeature()), wrapper(new DuplicateSync())]);
      expect(() => twice.onModuleInit()).toThrow(/two handlers for message type SYNC/);
    });

    it('skips alias providers (the same instance under another token)', () => {
      const feature = new FakeFeature();
      const withAlias = create([wrapper(feature), wrapper(feature, true)]);
      expect(() => withAlias.onModuleInit()).not.toThrow();
      expect(withAlias.types.sort()).toEqual(['ASYNC', 'SYNC']);
    });
  });

  describe('routing', () => {
    it('calls the handler of the type with the connection and the parsed frame', () => {
      route({ type: 'SYNC', n: 1 });
      route({ type: 'OTHER', n: 2 });
      expect(seen).toEqual(['SYNC:1:conn-1', 'OTHER:2']);
      expect(countReceived.mock.calls).toEqual([['SYNC'], ['OTHER']]);
      expect(send).not.toHaveBeenCalled();
    });

    it('answers UNKNOWN_TYPE for a type without a handler, with requestType', () => {
      route({ type: 'AUTH_MESSAGE', serverData: {} });
      expect(sentFrames()).toEqual([
        { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'UNKNOWN_TYPE', message: expect.any(String) }, requestType: 'AUTH_MESSAGE' },
      ]);
      expect(seen).toEqual([]);
    });

    it('answers INVALID_JSON without requestType for a frame that is not JSON, and keeps going', () => {
      router.route(connection, Buffer.from('nope'), false);
      route({ type: 'SYNC', n: 1 });
      expect(sentFrames()).toEqual([{ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_JSON', message: expect.any(String) } }]);
      expect(seen).toEqual(['SYNC:1:conn-1']);
    });

    it('answers INVALID_JSON for a binary frame', () => {
      route({ type: 'SYNC', n: 1 }, true);
      expect(sentFrames()).toEqual([{ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_JSON', message: expect.any(String) } }]);
      expect(seen).toEqual([]);
    });

    it('maps a FrameError thrown by a handler, with requestType, and keeps going', () => {
      throwFor.set(1, invalidMessage('serverData.message must be a non-empty string'));
      route({ type: 'SYNC', n: 1 });
      route({ type: 'SYNC', n: 2 });
      expect(sentFrames()).toEqual([
        {
          type: 'ERROR_MESSAGE',
          status: 'ERROR',
          error: { errorCode: 'INVALID_MESSAGE', message: 'serverData.message must be a non-empty string' },
          requestType: 'SYNC',
        },
      ]);
      expect(seen).toEqual(['SYNC:1:conn-1', 'SYNC:2:conn-1']);
    });

    it('answers nothing for an unexpected error (a bug), and keeps going', () => {
      throwFor.set(1, new TypeError('boom'));
      route({ type: 'SYNC', n: 1 });
      route({ type: 'SYNC', n: 2 });
      expect(send).not.toHaveBeenCalled();
      expect(seen).toEqual(['SYNC:1:conn-1', 'SYNC:2:conn-1']);
    });

    it('drops the frame without an answer when the guard refuses', () => {
      allow = false;
      route({ type: 'SYNC', n: 1 });
      expect(allows).toHaveBeenCalledTimes(1);
      expect(seen).toEqual([]);
      expect(send).not.toHaveBeenCalled();
    });
  });

  describe('inbound queue bound', () => {
    it('queues frames behind a pending handler up to INBOUND_QUEUE_MAX_BYTES and refuses the one beyond, without queuing it', async () => {
      const first = deferred();
      pendingResults.push(first.promise);
      route({ type: 'ASYNC', n: 1 });
      const big = { type: 'SYNC', n: 2, pad: 'x'.repeat(60_000) };
      const size = byteLength(text(big));
      const fit = Math.floor(LIMITS.inboundQueueMaxBytes / size);
      for (let i = 0; i < fit; i++) expect(route(big)).toBe(true);
      expect(connection.queuedBytes).toBe(fit * size);
      expect(route(big)).toBe(false);
      expect(connection.queue).toHaveLength(fit);
      first.resolve();
      await flushPromises();
      expect(seen).toHaveLength(1 + fit);
      expect(connection.queuedBytes).toBe(0);
    });
  });

  describe('ordering', () => {
    it('queues the frames that arrive while a handler\'s promise is pending, then processes them in order', async () => {
      const first = deferred();
      pendingResults.push(first.promise);
      route({ type: 'ASYNC', n: 1 });
      route({ type: 'SYNC', n: 2 });
      route({ type: 'OTHER', n: 3 });
      router.route(connection, Buffer.from('garbage'), false);
      route({ type: 'SYNC', n: 5 });
      await flushPromises();
      expect(seen).toEqual(['ASYNC:1']);
      expect(send).not.toHaveBeenCalled(); // even the invalid frame waits its turn

      first.resolve();
      await flushPromises();
      expect(seen).toEqual(['ASYNC:1', 'SYNC:2:conn-1', 'OTHER:3', 'SYNC:5:conn-1']);
      expect(sentFrames()).toEqual([{ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_JSON', message: expect.any(String) } }]);
      expect(connection.busy).toBe(false);
      expect(connection.queue).toHaveLength(0);
    });

    it('waits again for a pending handler found in the queue', async () => {
      const first = deferred();
      const second = deferred();
      pendingResults.push(first.promise, second.promise);
      route({ type: 'ASYNC', n: 1 });
      route({ type: 'ASYNC', n: 2 });
      route({ type: 'SYNC', n: 3 });
      first.resolve();
      await flushPromises();
      expect(seen).toEqual(['ASYNC:1', 'ASYNC:2']);
      route({ type: 'SYNC', n: 4 }); // arrives while the second is pending: behind 3
      second.resolve();
      await flushPromises();
      expect(seen).toEqual(['ASYNC:1', 'ASYNC:2', 'SYNC:3:conn-1', 'SYNC:4:conn-1']);
    });

    it('answers the mapped error of a rejected promise and continues with the queue', async () => {
      const first = deferred();
      pendingResults.push(first.promise);
      route({ type: 'ASYNC', n: 1 });
      route({ type: 'SYNC', n: 2 });
      first.reject(new AvatarError(AvatarErrorCode.TOO_LARGE, 'image too large'));
      await flushPromises();
      expect(sentFrames()).toEqual([{ type: 'SAVE_AVATAR', status: 'ERROR', error: { errorCode: '1', message: 'image too large' } }]);
      expect(seen).toEqual(['ASYNC:1', 'SYNC:2:conn-1']);
    });

    it('maps a rejected FrameError with the requestType of the frame that caused it', async () => {
      const first = deferred();
      pendingResults.push(first.promise);
      route({ type: 'ASYNC', n: 1 });
      route({ type: 'SYNC', n: 2 });
      first.reject(invalidMessage('bad'));
      await flushPromises();
      expect(sentFrames()).toEqual([{ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_MESSAGE', message: 'bad' }, requestType: 'ASYNC' }]);
    });

    it('continues after a promise rejected with an unexpected error, answering nothing for it', async () => {
      const first = deferred();
      pendingResults.push(first.promise);
      route({ type: 'ASYNC', n: 1 });
      route({ type: 'SYNC', n: 2 });
      first.reject(new Error('bug'));
      await flushPromises();
      expect(send).not.toHaveBeenCalled();
      expect(seen).toEqual(['ASYNC:1', 'SYNC:2:conn-1']);
    });

    it('drops the queued frames of a connection that closed meanwhile', async () => {
      const first = deferred();
      pendingResults.push(first.promise);
      route({ type: 'ASYNC', n: 1 });
      route({ type: 'SYNC', n: 2 });
      route({ type: 'SYNC', n: 3 });
      connection.isOpen = false;
      first.resolve();
      await flushPromises();
      expect(seen).toEqual(['ASYNC:1']);
      expect(connection.queue).toHaveLength(0);
    });

    it('processes a frame at once after a handler\'s promise settled', async () => {
      route({ type: 'ASYNC', n: 1 }); // resolved promise
      await flushPromises();
      expect(connection.busy).toBe(false);
      route({ type: 'SYNC', n: 2 });
      expect(seen).toEqual(['ASYNC:1', 'SYNC:2:conn-1']);
    });
  });
});

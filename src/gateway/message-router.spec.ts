import type { IncomingMessage } from 'node:http';
import {
  Catch,
  Injectable,
  Logger,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type LoggerService,
  type NestInterceptor,
  type PipeTransform,
  type Provider,
} from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { IsInt, Min } from 'class-validator';
import { tap, type Observable } from 'rxjs';
import type { RawData } from 'ws';
import { makeProfile } from '../../test/support/factories';
import { FakeTransport } from '../../test/support/fake-client';
import { frameError } from '../../test/support/frames';
import { strictMock } from '../../test/support/strict-mock';
import { deferred, flushPromises } from '../../test/support/time';
import { ChatClient } from '../messaging/chat-client';
import { MetricsService } from '../observability/metrics.service';
import { AuthError, AvatarError, FrameError, invalidMessage } from '../protocol/errors';
import { HANDSHAKE_LOGIN, type InboundFrame } from '../protocol/inbound';
import { AvatarErrorCode, MessageType, type UserProfile } from '../protocol/protocol';
import { GATEWAY_LIMITS, type GatewayLimits } from './gateway-limits';
import { byteLength } from './inbound-frame';
import { FrameQueue, MessageRouter } from './message-router';
import { ProtocolExceptionFilter } from './protocol-exception.filter';

// ---- what the fake handlers and enhancers saw, in one timeline ----

/** Handler calls, enhancer steps and frames written to the client, in the order they happened. */
let events: string[];
/** Promises the ASYNC handler returns, in order; when empty it returns a resolved one. */
let pending: Promise<void>[];
/** Errors the SYNC handler throws for a given frame.n. */
let throwFor: Map<number, unknown>;
/** The clients and frames the handlers were called with. */
let calls: { type: string; client: unknown; body: unknown }[];
let guardAllows: boolean | Promise<boolean>;
let loginError: unknown;

const n = (frame: unknown) => String((frame as { n?: unknown }).n);

// ---- fake handlers: plain providers and a @WebSocketGateway, as an app's modules write them ----

@Injectable()
class LoginStub {
  @SubscribeMessage(MessageType.AUTH)
  login(@ConnectedSocket() client: ChatClient, @MessageBody() frame: unknown): void {
    events.push('login');
    calls.push({ type: MessageType.AUTH, client, body: frame });
    if (loginError !== undefined) throw loginError;
  }
}

@Injectable()
class Feature {
  private readonly tag = 'feature';

  @SubscribeMessage('SYNC')
  sync(@ConnectedSocket() client: ChatClient, @MessageBody() frame: InboundFrame): void {
    if (this.tag !== 'feature') throw new Error('not bound to its instance');
    events.push(`SYNC:${n(frame)}`);
    calls.push({ type: 'SYNC', client, body: frame });
    const err = throwFor.get(frame.n as number);
    if (err !== undefined) throw err;
  }

  @SubscribeMessage('ASYNC')
  slow(@MessageBody() frame: InboundFrame): Promise<void> {
    events.push(`ASYNC:${n(frame)}`);
    return pending.shift() ?? Promise.resolve();
  }

  @SubscribeMessage('PART')
  part(@MessageBody('serverData') serverData: unknown, @ConnectedSocket() client: ChatClient): void {
    calls.push({ type: 'PART', client, body: serverData });
  }

  @SubscribeMessage('ECHO')
  echo(@MessageBody() frame: InboundFrame): unknown {
    return frame.n === 1 ? { type: 'ECHO', n: 1 } : frame.n === 2 ? '{"type":"ECHO","n":2}' : undefined;
  }

  notAHandler(): void {
    throw new Error('never called');
  }
}

@WebSocketGateway()
class FeatureGateway {
  @SubscribeMessage('GW')
  handle(@ConnectedSocket() client: ChatClient, @MessageBody() frame: InboundFrame): void {
    events.push(`GW:${n(frame)}`);
    calls.push({ type: 'GW', client, body: frame });
  }
}

// ---- Nest enhancers ----

@Injectable()
class ToggleGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    events.push(`guard:${String(context.switchToWs().getPattern())}`);
    return guardAllows;
  }
}

@Injectable()
class TraceInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    events.push('interceptor:before');
    return next.handle().pipe(tap(() => events.push('interceptor:after')));
  }
}

@Injectable()
class TracePipe implements PipeTransform {
  transform(value: unknown): unknown {
    events.push('pipe');
    return value;
  }
}

/** A handler's own filter: catches only FrameErrors. */
@Catch(FrameError)
class OwnFrameErrorFilter implements ExceptionFilter {
  catch(err: FrameError, host: ArgumentsHost): void {
    events.push(`own-filter:${err.message}:${String(host.switchToWs().getPattern())}`);
  }
}

class CountDto {
  @IsInt()
  @Min(1)
  n!: number;
}

@Injectable()
class Enhanced {
  @UseGuards(ToggleGuard)
  @SubscribeMessage('GUARDED')
  guarded(@MessageBody() frame: InboundFrame): void {
    events.push(`GUARDED:${n(frame)}`);
  }

  @UseFilters(OwnFrameErrorFilter)
  @SubscribeMessage('FILTERED')
  filtered(@MessageBody() frame: InboundFrame): void {
    events.push(`FILTERED:${n(frame)}`);
    if (frame.n === 1) throw invalidMessage('caught by its own filter');
    throw new AvatarError(AvatarErrorCode.STORE_FAILED, 'not a FrameError: the default filter answers');
  }

  @UsePipes(new ValidationPipe())
  @SubscribeMessage('VALIDATED')
  validated(@MessageBody() frame: CountDto): void {
    events.push(`VALIDATED:${frame.n}`);
  }

  @UseGuards(ToggleGuard)
  @UseInterceptors(TraceInterceptor)
  @UsePipes(TracePipe)
  @SubscribeMessage('ORDERED')
  ordered(@MessageBody() frame: InboundFrame): void {
    events.push(`ORDERED:${n(frame)}`);
  }
}

// ---- duplicates and gaps, for discovery ----

@Injectable()
class DuplicateSync {
  @SubscribeMessage('SYNC')
  again(): void {}
}

@Injectable()
class TwoMethodsOneType {
  @SubscribeMessage('TWICE')
  first(): void {}

  @SubscribeMessage('TWICE')
  second(): void {}
}

@Injectable()
class SecondLogin {
  @SubscribeMessage(MessageType.AUTH)
  login(): void {}
}

@Injectable()
class ObjectPattern {
  @SubscribeMessage({ cmd: 'x' })
  handle(): void {}
}

// ---- the client side ----

/** A FakeTransport that logs every frame written into `events` as "sent:<type>[/<errorCode>]". */
function loggingTransport(): FakeTransport {
  const transport = new FakeTransport();
  transport.onWrite = (text) => {
    const frame = JSON.parse(text) as { type: string; error?: { errorCode: string } };
    events.push(`sent:${frame.type}${frame.error ? `/${frame.error.errorCode}` : ''}`);
  };
  return transport;
}

const ALICE: UserProfile = makeProfile('1', { nickname: 'alice' });

function joinedClient(transport: FakeTransport): ChatClient {
  const client = new ChatClient(transport, { headers: {} } as IncomingMessage);
  client.authenticate(ALICE);
  client.beginJoin(ALICE);
  client.completeJoin('{"type":"AUTH_MESSAGE","status":"SUCCESS"}');
  transport.clear();
  events.splice(events.lastIndexOf('sent:AUTH_MESSAGE'), 1);
  return client;
}

/** Nest's testing module logs errors by default: the tests read what matters through spies. */
const SILENT: LoggerService = { log: () => undefined, error: () => undefined, warn: () => undefined, debug: () => undefined, verbose: () => undefined, fatal: () => undefined };

const LIMITS = { maxJsonDepth: 32, maxMessageFrameBytes: 65_536, inboundQueueMaxBytes: 10_000 } as GatewayLimits;
const text = (value: unknown): RawData => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('MessageRouter', () => {
  let module: TestingModule | undefined;
  let countReceived: jest.Mock<void, [string | undefined]>;

  /** A Nest testing module with the router, its collaborators and `providers`; onModuleInit ran. */
  async function routerWith(providers: Provider[]): Promise<MessageRouter> {
    const metrics = strictMock<MetricsService>(
      // The lifecycle hooks Nest looks for on every provider: absent.
      { countReceived, onModuleInit: undefined, onApplicationBootstrap: undefined, onModuleDestroy: undefined, beforeApplicationShutdown: undefined, onApplicationShutdown: undefined } as Partial<MetricsService>,
      'metrics',
    );
    const compiled = await Test.createTestingModule({
      imports: [DiscoveryModule],
      providers: [MessageRouter, ProtocolExceptionFilter, { provide: MetricsService, useValue: metrics }, { provide: GATEWAY_LIMITS, useValue: LIMITS }, ...providers],
    })
      .setLogger(SILENT)
      .compile();
    // A module whose init failed has nothing to close (its close() rethrows the init error).
    await compiled.init();
    module = compiled;
    return compiled.get(MessageRouter);
  }

  beforeEach(() => {
    events = [];
    pending = [];
    throwFor = new Map();
    calls = [];
    guardAllows = true;
    loginError = undefined;
    countReceived = jest.fn();
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await module?.close();
    module = undefined;
  });

  describe('discovery', () => {
    it('registers every @SubscribeMessage method of plain providers and @WebSocketGateway classes, AUTH_MESSAGE apart', async () => {
      const router = await routerWith([LoginStub, Feature, FeatureGateway, Enhanced]);
      expect(router.types.sort()).toEqual(['ASYNC', 'ECHO', 'FILTERED', 'GUARDED', 'GW', 'ORDERED', 'PART', 'SYNC', 'VALIDATED']);
    });

    it('refuses two handlers for one type, in two providers or in one', async () => {
      await expect(routerWith([LoginStub, Feature, DuplicateSync])).rejects.toThrow(/two handlers for message type SYNC/);
      await expect(routerWith([LoginStub, TwoMethodsOneType])).rejects.toThrow(/two handlers for message type TWICE/);
    });

    it('refuses two login handlers', async () => {
      await expect(routerWith([LoginStub, SecondLogin])).rejects.toThrow(/two handlers for message type AUTH_MESSAGE/);
    });

    it('refuses to start without a login handler: nobody could log in', async () => {
      await expect(routerWith([Feature])).rejects.toThrow(/no handler for AUTH_MESSAGE/);
    });

    it('refuses a message pattern that is not a string', async () => {
      await expect(routerWith([LoginStub, ObjectPattern])).rejects.toThrow(/ObjectPattern\.handle: @SubscribeMessage needs a string message type/);
    });

    it('skips alias providers (the same instance under another token)', async () => {
      const router = await routerWith([LoginStub, Feature, { provide: 'FEATURE_ALIAS', useExisting: Feature }]);
      expect(router.types.sort()).toEqual(['ASYNC', 'ECHO', 'PART', 'SYNC']);
    });
  });

  describe('login: the AUTH_MESSAGE pipeline', () => {
    let transport: FakeTransport;
    let client: ChatClient;

    beforeEach(() => {
      transport = loggingTransport();
      client = new ChatClient(transport, { headers: {} } as IncomingMessage);
    });

    it('runs the login handler with @ConnectedSocket() and @MessageBody(), for the upgrade login and for a frame', async () => {
      const router = await routerWith([LoginStub, Feature]);
      await router.login(client, HANDSHAKE_LOGIN);
      const frame = { type: MessageType.AUTH, serverData: { authToken: 't' } };
      await router.login(client, frame);
      expect(calls).toEqual([
        { type: MessageType.AUTH, client, body: HANDSHAKE_LOGIN },
        { type: MessageType.AUTH, client, body: frame },
      ]);
    });

    it("answers a refused login through the filter (AUTH_MESSAGE ERROR, then the close) and resolves", async () => {
      const router = await routerWith([LoginStub, Feature]);
      loginError = AuthError.invalid();
      await expect(router.login(client, HANDSHAKE_LOGIN)).resolves.toBeUndefined();
      expect(transport.frames).toEqual([{ type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: '2', message: 'token not found or invalid' } }]);
      expect(transport.closes.map((c) => c.code)).toEqual([4401]);
    });

    it('answers AUTH_MESSAGE after login as an UNKNOWN_TYPE: the login is never routed', async () => {
      const router = await routerWith([LoginStub, Feature]);
      const joined = joinedClient(transport);
      router.route(joined, new FrameQueue(), text({ type: MessageType.AUTH, serverData: { authToken: 't' } }), false);
      await flushPromises();
      expect(calls).toEqual([]);
      expect(transport.frames).toEqual([frameError('UNKNOWN_TYPE', MessageType.AUTH)]);
    });

    it('answers an error outside any handler (answer) through the same filter', async () => {
      const router = await routerWith([LoginStub]);
      router.answer(client, AuthError.deadline(), MessageType.AUTH);
      expect(transport.frames).toEqual([{ type: 'AUTH_MESSAGE', status: 'ERROR', error: { errorCode: '2', message: 'no token arrived in time' } }]);
      expect(transport.closes.map((c) => c.code)).toEqual([4408]);
      const other = loggingTransport();
      router.answer(joinedClient(other), invalidMessage('no'), undefined);
      expect(other.frames).toEqual([frameError('INVALID_MESSAGE')]);
    });
  });

  describe('routing', () => {
    let router: MessageRouter;
    let transport: FakeTransport;
    let client: ChatClient;
    let queue: FrameQueue;
    const route = (frame: unknown, isBinary = false) => router.route(client, queue, text(frame), isBinary);

    beforeEach(async () => {
      router = await routerWith([LoginStub, Feature, FeatureGateway, Enhanced]);
      transport = loggingTransport();
      client = joinedClient(transport);
      queue = new FrameQueue();
    });

    it('calls the handler of the type with the client (@ConnectedSocket) and the parsed frame (@MessageBody)', async () => {
      const frame = { type: 'SYNC', n: 1, extra: { kept: true } };
      expect(route(frame)).toBe(true);
      route({ type: 'GW', n: 2 });
      await flushPromises();
      expect(calls).toEqual([
        { type: 'SYNC', client, body: frame },
        { type: 'GW', client, body: { type: 'GW', n: 2 } },
      ]);
      expect(countReceived.mock.calls).toEqual([['SYNC'], ['GW']]);
      expect(transport.written).toEqual([]);
    });

    it('hands a @MessageBody(property) its property of the frame', async () => {
      route({ type: 'PART', serverData: { x: 1 } });
      await flushPromises();
      expect(calls).toEqual([{ type: 'PART', client, body: { x: 1 } }]);
    });

    it('sends what a handler returns: an object as JSON, a string as is, nothing for undefined', async () => {
      route({ type: 'ECHO', n: 1 });
      route({ type: 'ECHO', n: 2 });
      route({ type: 'ECHO', n: 3 });
      await flushPromises();
      expect(transport.frames).toEqual([{ type: 'ECHO', n: 1 }, { type: 'ECHO', n: 2 }]);
    });

    describe('answers with requestType rules', () => {
      it('answers UNKNOWN_TYPE for a type without a handler, with requestType', async () => {
        route({ type: 'NOPE', n: 1 });
        route({ type: 'USER_CONNECTION_MESSAGE' });
        route({ type: '' });
        await flushPromises();
        expect(transport.frames).toEqual([frameError('UNKNOWN_TYPE', 'NOPE'), frameError('UNKNOWN_TYPE', 'USER_CONNECTION_MESSAGE'), frameError('UNKNOWN_TYPE', '')]);
        expect(countReceived.mock.calls).toEqual([['NOPE'], ['USER_CONNECTION_MESSAGE'], ['']]);
      });

      it('answers INVALID_JSON without requestType for text that is not JSON, and for a binary frame', async () => {
        router.route(client, queue, Buffer.from('nope'), false);
        route({ type: 'SYNC', n: 1 }, true);
        await flushPromises();
        expect(transport.frames).toEqual([frameError('INVALID_JSON'), frameError('INVALID_JSON')]);
        expect(calls).toEqual([]);
        expect(countReceived).not.toHaveBeenCalled();
      });

      it('answers INVALID_MESSAGE without requestType when the frame has no string type', async () => {
        router.route(client, queue, Buffer.from('[1]'), false);
        route({ type: 42 });
        route({ n: 1 });
        await flushPromises();
        expect(transport.frames).toEqual([frameError('INVALID_MESSAGE'), frameError('INVALID_MESSAGE'), frameError('INVALID_MESSAGE')]);
      });

      it('answers INVALID_MESSAGE with the requestType the scan read for a frame refused unparsed (too deep, too large)', async () => {
        router.route(client, queue, Buffer.from(`{"type":"SYNC","v":${'['.repeat(40)}`), false);
        route({ type: 'SYNC', pad: 'x'.repeat(LIMITS.maxMessageFrameBytes) });
        await flushPromises();
        expect(transport.frames).toEqual([frameError('INVALID_MESSAGE', 'SYNC'), frameError('INVALID_MESSAGE', 'SYNC')]);
        expect(calls).toEqual([]);
      });

      it("answers a handler's FrameError with its frame's type as requestType, and keeps going", async () => {
        throwFor.set(1, invalidMessage('serverData.message must be a string'));
        route({ type: 'SYNC', n: 1 });
        route({ type: 'SYNC', n: 2 });
        await flushPromises();
        expect(transport.frames).toEqual([
          { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_MESSAGE', message: 'serverData.message must be a string' }, requestType: 'SYNC' },
        ]);
        expect(events).toEqual(['SYNC:1', 'sent:ERROR_MESSAGE/INVALID_MESSAGE', 'SYNC:2']);
      });

      it('answers UNKNOWN_TYPE with requestType for a frame whose type is the string "unknown"', async () => {
        // docs/protocol.md: "requestType is present whenever the frame had a string type". The
        // router hands the filter 'unknown' for "no type" (Nest's WsProxy default), and the
        // filter drops it, so a frame typed "unknown" loses its requestType.
        route({ type: 'unknown' });
        await flushPromises();
        expect(transport.frames).toEqual([frameError('UNKNOWN_TYPE', 'unknown')]);
      });
    });

    describe('Nest enhancers behave as for gateways', () => {
      it("lets a handler's own @UseFilters filter catch what it catches, before ProtocolExceptionFilter", async () => {
        route({ type: 'FILTERED', n: 1 });
        await flushPromises();
        expect(events).toEqual(['FILTERED:1', 'own-filter:caught by its own filter:FILTERED']);
        expect(transport.written).toEqual([]);
      });

      it('falls back to ProtocolExceptionFilter for what its own filter does not catch', async () => {
        route({ type: 'FILTERED', n: 2 });
        await flushPromises();
        expect(transport.frames).toEqual([{ type: 'SAVE_AVATAR', status: 'ERROR', error: { errorCode: '3', message: 'not a FrameError: the default filter answers' } }]);
      });

      it('answers FORBIDDEN, with requestType, when a guard returns false; the handler does not run', async () => {
        guardAllows = false;
        route({ type: 'GUARDED', n: 1 });
        guardAllows = Promise.resolve(false);
        route({ type: 'GUARDED', n: 2 });
        await flushPromises();
        expect(events).toEqual(['guard:GUARDED', 'sent:ERROR_MESSAGE/FORBIDDEN', 'guard:GUARDED', 'sent:ERROR_MESSAGE/FORBIDDEN']);
        expect(transport.frames).toEqual([
          { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'FORBIDDEN', message: 'Forbidden resource' }, requestType: 'GUARDED' },
          { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'FORBIDDEN', message: 'Forbidden resource' }, requestType: 'GUARDED' },
        ]);
      });

      it('runs the handler when the guard allows, synchronously or not', async () => {
        route({ type: 'GUARDED', n: 1 });
        guardAllows = Promise.resolve(true);
        route({ type: 'GUARDED', n: 2 });
        await flushPromises();
        expect(events).toEqual(['guard:GUARDED', 'GUARDED:1', 'guard:GUARDED', 'GUARDED:2']);
      });

      it("answers a ValidationPipe's BadRequestException as INVALID_MESSAGE with class-validator's message", async () => {
        route({ type: 'VALIDATED', n: 0 });
        route({ type: 'VALIDATED', n: 3 });
        await flushPromises();
        expect(transport.frames).toEqual([
          { type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_MESSAGE', message: 'n must not be less than 1' }, requestType: 'VALIDATED' },
        ]);
        expect(events).toEqual(['sent:ERROR_MESSAGE/INVALID_MESSAGE', 'VALIDATED:3']);
      });

      it("runs guards, then interceptors, then pipes, then the handler, in Nest's order", async () => {
        route({ type: 'ORDERED', n: 1 });
        await flushPromises();
        expect(events).toEqual(['guard:ORDERED', 'interceptor:before', 'pipe', 'ORDERED:1', 'interceptor:after']);
      });

      it('logs an error no filter maps (a bug) with the connection id, answers nothing, and keeps going', async () => {
        const logError = jest.spyOn(Logger.prototype, 'error');
        const bug = new TypeError('boom');
        throwFor.set(1, bug);
        route({ type: 'SYNC', n: 1 });
        route({ type: 'SYNC', n: 2 });
        await flushPromises();
        expect(transport.written).toEqual([]);
        expect(client.isOpen).toBe(true);
        expect(events).toEqual(['SYNC:1', 'SYNC:2']);
        expect(logError).toHaveBeenCalledWith({ connId: client.id, requestType: 'SYNC', err: bug.stack }, 'handler failed');
      });
    });

    describe('order per connection', () => {
      it("holds the frames that arrive while a handler's promise is pending, then runs them in order (answers included)", async () => {
        const first = deferred();
        pending.push(first.promise);
        route({ type: 'ASYNC', n: 1 });
        route({ type: 'SYNC', n: 2 });
        route({ type: 'GW', n: 3 });
        router.route(client, queue, Buffer.from('garbage'), false);
        route({ type: 'NOPE' });
        route({ type: 'SYNC', n: 6 });
        await flushPromises();
        expect(events).toEqual(['ASYNC:1']); // even the invalid frames wait their turn
        expect(queue.length).toBe(5);

        first.resolve();
        await flushPromises();
        expect(events).toEqual(['ASYNC:1', 'SYNC:2', 'GW:3', 'sent:ERROR_MESSAGE/INVALID_JSON', 'sent:ERROR_MESSAGE/UNKNOWN_TYPE', 'SYNC:6']);
        expect(queue.busy).toBe(false);
        expect(queue.length).toBe(0);
        expect(queue.queuedBytes).toBe(0);
      });

      it('waits again for a pending handler found in the queue; a frame arriving meanwhile goes behind', async () => {
        const first = deferred();
        const second = deferred();
        pending.push(first.promise, second.promise);
        route({ type: 'ASYNC', n: 1 });
        route({ type: 'ASYNC', n: 2 });
        route({ type: 'SYNC', n: 3 });
        first.resolve();
        await flushPromises();
        expect(events).toEqual(['ASYNC:1', 'ASYNC:2']);
        route({ type: 'SYNC', n: 4 });
        second.resolve();
        await flushPromises();
        expect(events).toEqual(['ASYNC:1', 'ASYNC:2', 'SYNC:3', 'SYNC:4']);
      });

      it('answers the mapped error of a rejected handler promise with its requestType, then continues with the queue', async () => {
        const first = deferred();
        const second = deferred();
        pending.push(first.promise, second.promise);
        route({ type: 'ASYNC', n: 1 });
        route({ type: 'ASYNC', n: 2 });
        route({ type: 'SYNC', n: 3 });
        first.reject(invalidMessage('bad'));
        await flushPromises();
        second.reject(new AvatarError(AvatarErrorCode.TOO_LARGE, 'image too large'));
        await flushPromises();
        expect(events).toEqual(['ASYNC:1', 'sent:ERROR_MESSAGE/INVALID_MESSAGE', 'ASYNC:2', 'sent:SAVE_AVATAR/1', 'SYNC:3']);
        expect(transport.frames[0]).toEqual({ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'INVALID_MESSAGE', message: 'bad' }, requestType: 'ASYNC' });
      });

      it('continues after a handler promise rejected with an unknown error, answering nothing for it', async () => {
        const first = deferred();
        pending.push(first.promise);
        route({ type: 'ASYNC', n: 1 });
        route({ type: 'SYNC', n: 2 });
        first.reject(new Error('bug'));
        await flushPromises();
        expect(transport.written).toEqual([]);
        expect(events).toEqual(['ASYNC:1', 'SYNC:2']);
      });

      it("processes a frame at once once a handler's promise settled", async () => {
        route({ type: 'ASYNC', n: 1 }); // a resolved promise
        await flushPromises();
        expect(queue.busy).toBe(false);
        route({ type: 'SYNC', n: 2 });
        await flushPromises();
        expect(events).toEqual(['ASYNC:1', 'SYNC:2']);
      });

      it('drops the waiting frames of a client that closed meanwhile', async () => {
        const first = deferred();
        pending.push(first.promise);
        route({ type: 'ASYNC', n: 1 });
        route({ type: 'SYNC', n: 2 });
        route({ type: 'NOPE' });
        client.close(1000, 'bye');
        first.resolve();
        await flushPromises();
        expect(events).toEqual(['ASYNC:1']);
        expect(queue.length).toBe(0);
        expect(queue.queuedBytes).toBe(0);
        expect(transport.written).toEqual([]);
      });
    });

    describe('the queue bound (INBOUND_QUEUE_MAX_BYTES)', () => {
      it('queues frames behind a pending handler up to the bound and refuses the one beyond, without queuing it', async () => {
        const first = deferred();
        pending.push(first.promise);
        route({ type: 'ASYNC', n: 1 });
        const big = { type: 'SYNC', n: 2, pad: 'x'.repeat(3000) };
        const size = byteLength(text(big));
        const fit = Math.floor(LIMITS.inboundQueueMaxBytes / size);
        expect(fit).toBe(3);
        for (let i = 0; i < fit; i++) expect(route(big)).toBe(true);
        expect(queue.queuedBytes).toBe(fit * size);
        expect(route(big)).toBe(false);
        expect(queue.length).toBe(fit);
        expect(queue.queuedBytes).toBe(fit * size);
        // A smaller frame that still fits is taken.
        const small = { type: 'SYNC', n: 3 };
        expect(route(small)).toBe(true);

        first.resolve();
        await flushPromises();
        expect(events).toEqual(['ASYNC:1', 'SYNC:2', 'SYNC:2', 'SYNC:2', 'SYNC:3']);
        expect(queue.queuedBytes).toBe(0);
      });

      it('refuses a single frame larger than the bound behind a pending handler', () => {
        pending.push(deferred().promise);
        route({ type: 'ASYNC', n: 1 });
        expect(route({ type: 'SYNC', pad: 'x'.repeat(LIMITS.inboundQueueMaxBytes) })).toBe(false);
        expect(queue.length).toBe(0);
      });

      it('takes a frame larger than the bound when nothing is pending: only waiting frames count', async () => {
        const big = { type: 'SYNC', n: 1, pad: 'x'.repeat(LIMITS.inboundQueueMaxBytes) };
        expect(route(big)).toBe(true);
        await flushPromises();
        expect(route(big)).toBe(true);
        await flushPromises();
        expect(events).toEqual(['SYNC:1', 'SYNC:1']);
      });
    });
  });
});

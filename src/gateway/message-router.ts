import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, ModuleRef, type NestContainer } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { MESSAGE_MAPPING_METADATA, MESSAGE_METADATA } from '@nestjs/websockets/constants';
import { isObservable, lastValueFrom } from 'rxjs';
import type { RawData } from 'ws';
import { MetricsService } from '../observability/metrics.service';
import { FrameError } from '../protocol/errors';
import { FrameErrorCode, MessageType } from '../protocol/protocol';
import type { ChatClient } from '../messaging/chat-client';
import { GATEWAY_LIMITS, type GatewayLimits } from './gateway-limits';
import { byteLength, parseFrame } from './inbound-frame';
import { HandlerPipelineFactory, type Pipeline } from './handler-pipeline';
import { ProtocolExceptionFilter } from './protocol-exception.filter';

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';

/** The inbound side of one connection: frames wait here, in order, while a handler runs. */
export class FrameQueue {
  busy = false;
  /** Made at the first frame that has to wait (most connections never need one). */
  private frames?: [RawData, boolean][];
  private bytes = 0;

  /** False when the frame would make the queue hold more than `maxBytes` (it is not queued). */
  push(data: RawData, isBinary: boolean, maxBytes: number): boolean {
    const size = byteLength(data);
    if (this.bytes + size > maxBytes) return false;
    this.bytes += size;
    (this.frames ??= []).push([data, isBinary]);
    return true;
  }

  shift(): [RawData, boolean] | undefined {
    const next = this.frames?.shift();
    if (next) this.bytes -= byteLength(next[0]);
    return next;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  get length(): number {
    return this.frames?.length ?? 0;
  }

  clear(): void {
    this.frames = undefined;
    this.bytes = 0;
  }
}

/**
 * Frames of logged-in connections to their handlers: every `@SubscribeMessage(type)` method of any
 * provider (a `@WebSocketGateway()` class or a plain provider), found with Nest's own metadata and
 * built once, at start, from the guards, interceptors, pipes and exception filters Nest's own
 * context creators resolve for it (HandlerPipelineFactory), so that they behave as Nest documents
 * for gateways. One frame at a time per connection:
 * while a handler's pipeline runs, the connection's next frames wait (bounded by
 * INBOUND_QUEUE_MAX_BYTES), so they are processed in the order received. No per-connection binding
 * or observable: the handlers take the client as an argument.
 */
@Injectable()
export class MessageRouter implements OnModuleInit {
  private readonly logger = new Logger(MessageRouter.name);
  private readonly handlers = new Map<string, Pipeline>();
  /** The AUTH_MESSAGE handler: a connection's own login, never routed after it. */
  private loginPipeline?: Pipeline;
  private pipelines?: HandlerPipelineFactory;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly moduleRef: ModuleRef,
    private readonly filter: ProtocolExceptionFilter,
    private readonly metrics: MetricsService,
    @Inject(GATEWAY_LIMITS) private readonly limits: GatewayLimits,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object' || wrapper.isAlias || !wrapper.host) continue;
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const callback = (instance as Record<string, unknown>)[method];
        if (typeof callback !== 'function' || !Reflect.getMetadata(MESSAGE_MAPPING_METADATA, callback)) continue;
        const type: unknown = Reflect.getMetadata(MESSAGE_METADATA, callback);
        if (typeof type !== 'string') throw new Error(`${instance.constructor.name}.${method}: @SubscribeMessage needs a string message type`);
        if (this.handlers.has(type) || (type === MessageType.AUTH && this.loginPipeline)) throw new Error(`two handlers for message type ${type}`);
        const pipeline = this.build(instance, method, wrapper.host.token, type);
        if (type === MessageType.AUTH) this.loginPipeline = pipeline;
        else this.handlers.set(type, pipeline);
      }
    }
    if (!this.loginPipeline) throw new Error(`no handler for ${MessageType.AUTH}: the gateway cannot log anyone in`);
    this.logger.log(`message types: ${this.types.join(', ')}`);
  }

  /**
   * Runs a connection's login: the AUTH_MESSAGE pipeline with the frame that brought the token, or
   * HANDSHAKE_LOGIN when it came with the upgrade. Errors are answered by the filters; resolves when done.
   */
  async login(client: ChatClient, data: unknown): Promise<void> {
    const result = this.loginPipeline!(client, data);
    if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
    else await result;
  }

  /** The registered message types. */
  get types(): string[] {
    return [...this.handlers.keys()];
  }

  /** Builds the pipeline of one method, with ProtocolExceptionFilter as the default filter. */
  private build(instance: object, method: string, moduleKey: string, type: string): Pipeline {
    // ModuleRef holds the application's container (as every Nest provider's ModuleRef does).
    const container = (this.moduleRef as unknown as { container: NestContainer }).container;
    this.pipelines ??= new HandlerPipelineFactory(container, this.filter);
    return this.pipelines.create(instance, method, moduleKey, type);
  }

  /**
   * Takes one inbound frame of a logged-in connection; false when it would make the frames waiting
   * behind a running handler hold more than INBOUND_QUEUE_MAX_BYTES (the caller closes the
   * connection with 4429; nothing is queued).
   */
  route(client: ChatClient, queue: FrameQueue, data: RawData, isBinary: boolean): boolean {
    if (queue.busy) return queue.push(data, isBinary, this.limits.inboundQueueMaxBytes);
    this.process(client, queue, data, isBinary);
    return true;
  }

  private process(client: ChatClient, queue: FrameQueue, data: RawData, isBinary: boolean): void {
    let requestType: string | undefined;
    try {
      const frame = parseFrame(data, isBinary, this.limits);
      requestType = frame.type;
      this.metrics.countReceived(requestType);
      const handler = this.handlers.get(requestType);
      if (!handler) throw new FrameError(FrameErrorCode.UNKNOWN_TYPE, 'unknown message type');
      const result = handler(client, frame);
      if (!isThenable(result)) {
        this.respond(client, queue, result, false);
        return;
      }
      // An asynchronous step: the connection's next frames wait for it.
      queue.busy = true;
      result.then(
        (value) => this.respond(client, queue, value, true),
        (err: unknown) => {
          // The pipeline hands every error to the filters; this is a failure of the pipeline itself.
          this.logger.error({ connId: client.id, requestType, err: String(err) }, 'message pipeline failed');
          this.resume(client, queue);
        },
      );
    } catch (err) {
      this.answer(client, err, err instanceof FrameError && err.requestType !== undefined ? err.requestType : requestType);
    }
  }

  /**
   * What a handler returns is sent to its client, as Nest's platform-ws does: a value (an object
   * as JSON, a string as is), or every value of an Observable (what interceptors make of it); the
   * connection's next frame waits until the Observable completes. Nothing for undefined or null.
   */
  private respond(client: ChatClient, queue: FrameQueue, result: unknown, waited: boolean): void {
    if (!isObservable(result)) {
      this.reply(client, result);
      if (waited) this.resume(client, queue);
      return;
    }
    queue.busy = true;
    result.subscribe({
      next: (value) => this.reply(client, value),
      // WsProxy routes a handler's error to the filters before it reaches here: this is the pipeline's own.
      error: (err: unknown) => {
        this.logger.error({ connId: client.id, err: String(err) }, 'message pipeline failed');
        this.resume(client, queue);
      },
      complete: () => this.resume(client, queue),
    });
  }

  private reply(client: ChatClient, value: unknown): void {
    if (value === undefined || value === null || !client.isOpen) return;
    client.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  private resume(client: ChatClient, queue: FrameQueue): void {
    queue.busy = false;
    while (!queue.busy) {
      const next = queue.shift();
      if (!next) return;
      if (!client.isOpen) {
        queue.clear();
        return;
      }
      this.process(client, queue, next[0], next[1]);
    }
  }

  /** An error outside any handler (a refused frame, a missed deadline): answered by the same filter as the handlers' errors. */
  answer(client: ChatClient, err: unknown, requestType: string | undefined): void {
    const host = new ExecutionContextHost([client, undefined, requestType]);
    host.setType('ws');
    this.filter.catch(err, host);
  }
}

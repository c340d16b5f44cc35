import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { RawData } from 'ws';
import { AuthGuard } from '../auth/auth.guard';
import type { InboundFrame, MessageHandlerFn } from '../messaging/client';
import { OnMessage } from '../messaging/on-message.decorator';
import { FrameError, toWireError } from '../protocol/errors';
import { FrameErrorCode } from '../protocol/protocol';
import { MetricsService } from '../observability/metrics.service';
import type { ClientConnection } from './client-connection';

/**
 * Routes the frames of authenticated connections to the feature handlers registered with
 * @OnMessage, one frame at a time per connection: when a handler returns a promise, the
 * connection's next frames wait for it (so they are processed in the order received).
 */
@Injectable()
export class MessageRouter implements OnModuleInit {
  private readonly logger = new Logger(MessageRouter.name);
  private readonly handlers = new Map<string, MessageHandlerFn>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly guard: AuthGuard,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object' || wrapper.isAlias) continue;
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const type = this.discovery.getMetadataByDecorator(OnMessage, wrapper, method);
        if (type === undefined) continue;
        if (this.handlers.has(type)) throw new Error(`two handlers for message type ${type}`);
        const fn = (instance as Record<string, MessageHandlerFn>)[method];
        this.handlers.set(type, fn.bind(instance));
      }
    }
    this.logger.log(`message types: ${[...this.handlers.keys()].join(', ')}`);
  }

  /** The registered message types (for tests and docs). */
  get types(): string[] {
    return [...this.handlers.keys()];
  }

  /** Takes one inbound frame of an authenticated connection. */
  route(connection: ClientConnection, data: RawData, isBinary: boolean): void {
    if (connection.busy) {
      connection.queue.push([data, isBinary]);
      return;
    }
    this.process(connection, data, isBinary);
  }

  private process(connection: ClientConnection, data: RawData, isBinary: boolean): void {
    let requestType: string | undefined;
    try {
      const frame = parseFrame(data, isBinary);
      requestType = frame.type;
      this.metrics.countReceived(requestType);
      const handler = this.handlers.get(frame.type);
      if (!handler) throw new FrameError(FrameErrorCode.UNKNOWN_TYPE, `unknown message type`);
      if (!this.guard.allows(connection)) return;
      const result = handler(connection, frame);
      if (result && typeof (result as Promise<void>).then === 'function') {
        connection.busy = true;
        const type = requestType;
        (result as Promise<void>).then(
          () => this.resume(connection),
          (err: unknown) => {
            this.answerError(connection, err, type);
            this.resume(connection);
          },
        );
      }
    } catch (err) {
      this.answerError(connection, err, requestType);
    }
  }

  private resume(connection: ClientConnection): void {
    connection.busy = false;
    while (!connection.busy && connection.queue.length > 0) {
      const [data, isBinary] = connection.queue.shift()!;
      if (!connection.isOpen) {
        connection.queue.length = 0;
        return;
      }
      this.process(connection, data, isBinary);
    }
  }

  private answerError(connection: ClientConnection, err: unknown, requestType: string | undefined): void {
    const frame = toWireError(err, requestType);
    if (frame) {
      connection.send(frame);
      return;
    }
    this.logger.error({ connId: connection.id, requestType, err: err instanceof Error ? err.stack : String(err) }, 'handler failed');
  }
}

/** Parses a data frame into an object with a string type, or throws the FrameError that says why not. */
export function parseFrame(data: RawData, isBinary: boolean): InboundFrame {
  if (isBinary) throw new FrameError(FrameErrorCode.INVALID_JSON, 'binary frames are not accepted: send JSON text');
  let value: unknown;
  try {
    value = JSON.parse(Array.isArray(data) ? Buffer.concat(data).toString() : data.toString());
  } catch {
    throw new FrameError(FrameErrorCode.INVALID_JSON, 'the frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FrameError(FrameErrorCode.INVALID_MESSAGE, 'a frame must be a JSON object');
  }
  if (typeof (value as { type?: unknown }).type !== 'string') {
    throw new FrameError(FrameErrorCode.INVALID_MESSAGE, 'a frame must have a string field "type"');
  }
  return value as InboundFrame;
}

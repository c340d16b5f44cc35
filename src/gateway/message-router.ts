import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { RawData } from 'ws';
import { AuthGuard } from '../auth/auth.guard';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config/gateway-config';
import { RAW_CLIENT_DATA, type InboundFrame, type MessageHandlerFn } from '../messaging/client';
import { OnMessage } from '../messaging/on-message.decorator';
import { FrameError, toWireError } from '../protocol/errors';
import { compactJsonText, scanFrame } from '../protocol/frame-scan';
import { FrameErrorCode, MessageType } from '../protocol/protocol';
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
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
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

  /**
   * Takes one inbound frame of an authenticated connection; false when it would make the frames
   * waiting behind a running handler hold more than INBOUND_QUEUE_MAX_BYTES (the caller closes
   * the connection with 4429; nothing is queued).
   */
  route(connection: ClientConnection, data: RawData, isBinary: boolean): boolean {
    if (connection.busy) {
      const size = byteLength(data);
      if (connection.queuedBytes + size > this.config.inboundQueueMaxBytes) return false;
      connection.queuedBytes += size;
      connection.queue.push([data, isBinary]);
      return true;
    }
    this.process(connection, data, isBinary);
    return true;
  }

  private process(connection: ClientConnection, data: RawData, isBinary: boolean): void {
    let requestType: string | undefined;
    try {
      const frame = parseFrame(data, isBinary, this.config, (type) => (requestType = type));
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
      connection.queuedBytes -= byteLength(data);
      if (!connection.isOpen) {
        connection.queue.length = 0;
        connection.queuedBytes = 0;
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

export interface FrameLimits {
  readonly maxJsonDepth: number;
  readonly maxMessageFrameBytes: number;
}

/** A frame's bytes as one Buffer, whichever shape ws hands them in. */
export function frameBytes(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? Buffer.from(data) : data;
}

export function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, chunk) => sum + chunk.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

/**
 * Parses a data frame into an object with a string type, or throws the FrameError that says why
 * not. One linear scan comes first (docs/protocol.md, "Invalid frames"): a frame nested deeper
 * than MAX_JSON_DEPTH, or larger than MAX_MESSAGE_FRAME_BYTES in anything but the string content
 * of a SAVE_AVATAR, is refused without being parsed. `onType` learns the frame's type as soon as
 * it is known (for the error's requestType). A top-level clientData is kept as written, without
 * whitespace (RAW_CLIENT_DATA), so that it is forwarded byte-exact.
 */
export function parseFrame(data: RawData, isBinary: boolean, limits: FrameLimits, onType?: (type: string) => void): InboundFrame {
  if (isBinary) throw new FrameError(FrameErrorCode.INVALID_JSON, 'binary frames are not accepted: send JSON text');
  const bytes = frameBytes(data);
  const scan = scanFrame(bytes, limits.maxJsonDepth);
  // Refused unparsed: the requestType is the scan's reading of the type.
  if (scan.tooDeep) {
    if (scan.type !== undefined) onType?.(scan.type);
    throw new FrameError(FrameErrorCode.INVALID_MESSAGE, `JSON nested deeper than ${limits.maxJsonDepth} levels`);
  }
  if (bytes.length > limits.maxMessageFrameBytes && (scan.type !== MessageType.SAVE_AVATAR || scan.structureBytes > limits.maxMessageFrameBytes)) {
    if (scan.type !== undefined) onType?.(scan.type);
    throw new FrameError(
      FrameErrorCode.INVALID_MESSAGE,
      `frame larger than ${limits.maxMessageFrameBytes} bytes: only a SAVE_AVATAR image may make a frame that large`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString());
  } catch {
    throw new FrameError(FrameErrorCode.INVALID_JSON, 'the frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FrameError(FrameErrorCode.INVALID_MESSAGE, 'a frame must be a JSON object');
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') {
    throw new FrameError(FrameErrorCode.INVALID_MESSAGE, 'a frame must have a string field "type"');
  }
  onType?.(type);
  const frame = value as InboundFrame;
  if (scan.clientDataStart >= 0 && !scan.escapedKey) {
    Object.defineProperty(frame, RAW_CLIENT_DATA, { value: compactJsonText(bytes, scan.clientDataStart, scan.clientDataEnd) });
  }
  return frame;
}

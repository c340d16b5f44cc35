import type { RawData } from 'ws';
import { RAW_CLIENT_DATA, type InboundFrame } from '../protocol/inbound';
import { FrameError } from '../protocol/errors';
import { compactJsonText, readTopLevelType, scanFrame } from '../protocol/frame-scan';
import { FrameErrorCode, MessageType } from '../protocol/protocol';

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
 * of a SAVE_AVATAR, is refused without being parsed (the FrameError then carries the frame's
 * top-level type, read from the bytes, for the error's requestType). A top-level clientData is kept as written, without
 * whitespace (RAW_CLIENT_DATA), so that it is forwarded byte-exact.
 */
export function parseFrame(data: RawData, isBinary: boolean, limits: FrameLimits): InboundFrame {
  if (isBinary) throw new FrameError(FrameErrorCode.INVALID_JSON, 'binary frames are not accepted: send JSON text');
  const bytes = frameBytes(data);
  // A frame over MAX_MESSAGE_FRAME_BYTES can only be a SAVE_AVATAR image: its structure is bounded
  // and it needs no escapes (base64 has none), so the scan stops at the first sign it is not one.
  const large = bytes.length > limits.maxMessageFrameBytes;
  const scan = scanFrame(bytes, limits.maxJsonDepth, large ? { maxStructureBytes: limits.maxMessageFrameBytes, noEscapes: true } : {});
  // Refused unparsed: the requestType is read from the bytes (readTopLevelType), wherever the
  // scan stopped.
  if (scan.tooDeep) {
    throw new FrameError(FrameErrorCode.INVALID_MESSAGE, `JSON nested deeper than ${limits.maxJsonDepth} levels`, readTopLevelType(bytes));
  }
  if (large && (scan.stoppedAt !== undefined || scan.type !== MessageType.SAVE_AVATAR || scan.structureBytes > limits.maxMessageFrameBytes)) {
    throw new FrameError(
      FrameErrorCode.INVALID_MESSAGE,
      `frame larger than ${limits.maxMessageFrameBytes} bytes: only a SAVE_AVATAR image (base64, no escapes) may make a frame that large`,
      readTopLevelType(bytes),
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
  const frame = value as InboundFrame;
  if (scan.clientDataStart >= 0 && !scan.escapedKey) {
    // A symbol key: not a field of the frame for JSON, Object.keys or class-validator.
    (frame as Record<symbol, string>)[RAW_CLIENT_DATA] = compactJsonText(bytes, scan.clientDataStart, scan.clientDataEnd);
  }
  return frame;
}

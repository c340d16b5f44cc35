/**
 * One linear pass over an inbound frame's bytes, before (and instead of) parsing it: how deep it
 * nests, its top-level `type`, how many of its bytes are structure rather than string content,
 * and where its top-level `clientData` value lies. It does not validate JSON (JSON.parse does,
 * afterwards, for the frames that pass); it only has to be right about frames that are valid, and
 * never slower than linear on any input.
 *
 * Why: JSON.parse is recursive and its cost grows with the number of values, not bytes. A 1.4 MB
 * frame of `[` costs it ~80 ms and ~5000 levels overflow JSON.stringify later. The gateway refuses
 * such frames from this scan alone (docs/protocol.md, "Invalid frames"): deeper than
 * MAX_JSON_DEPTH, or larger than MAX_MESSAGE_FRAME_BYTES in anything but the string content of a
 * SAVE_AVATAR.
 */

import { MessageType } from './protocol';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

export interface FrameScan {
  /** The frame nests deeper than the limit (the scan stopped there; nothing else is known). */
  readonly tooDeep: boolean;
  /**
   * The top-level `type` when it is a plain string (no escapes) of a top-level object; undefined
   * otherwise. Only a hint for refusing a frame before parsing: the parsed value is the truth.
   */
  readonly type: string | undefined;
  /** Bytes outside string contents (quotes included): what parsing costs grow with. */
  readonly structureBytes: number;
  /** Byte range [start, end) of the last top-level `clientData` value; start is -1 when there is none. */
  readonly clientDataStart: number;
  readonly clientDataEnd: number;
  /** A top-level key holds an escape: `type` and the `clientData` range may not be what JSON.parse sees. */
  readonly escapedKey: boolean;
  /**
   * Scanning was stopped by a bound of `options` (the frame is refused whatever else it holds):
   * more structure than `maxStructureBytes`, or an escape (`\`) where `noEscapes` forbids them.
   */
  readonly stoppedAt?: 'structure' | 'escape';
}

export interface ScanBounds {
  /** Stop once the bytes outside string contents exceed this. */
  readonly maxStructureBytes?: number;
  /** Stop at the first backslash (an image in base64 never needs one). */
  readonly noEscapes?: boolean;
}

/**
 * Scans `bytes` (UTF-8 JSON text) and stops at the first nesting deeper than `maxDepth`, or at the
 * first sign that a bound of `bounds` is broken (for large frames: the scan then stays cheap).
 */
export function scanFrame(bytes: Uint8Array, maxDepth: number, bounds: ScanBounds = {}): FrameScan {
  const maxStructure = bounds.maxStructureBytes ?? Infinity;
  const noEscapes = bounds.noEscapes === true;
  const length = bytes.length;
  let depth = 0;
  let stringBytes = 0;
  let type: string | undefined;
  let escapedKey = false;
  // Top-level object state: expecting a key, the last key read, a value pending for clientData.
  let expectKey = false;
  let key = Key.OTHER;
  let clientDataStart = -1;
  let clientDataEnd = -1;
  let openValue = -1; // start of the top-level value being read, when its key is clientData
  let lastTokenEnd = 0;
  const first = firstSignificant(bytes);
  const topIsObject = first < length && bytes[first] === OPEN_OBJECT;

  for (let i = 0; i < length; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      // A string: find its closing quote with a native search, skipping escaped quotes.
      const start = i;
      let end = i;
      for (;;) {
        end = indexOfByte(bytes, QUOTE, end + 1);
        if (end < 0) {
          end = length; // unterminated: JSON.parse will say so
          break;
        }
        if (noEscapes && bytes[end - 1] === BACKSLASH) return stopped('escape');
        let backslashes = 0;
        for (let j = end - 1; j > start && bytes[j] === BACKSLASH; j--) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      if (noEscapes && indexOfByteIn(bytes, BACKSLASH, start + 1, end)) return stopped('escape');
      stringBytes += Math.max(0, end - start - 1);
      if (depth === 1 && topIsObject) {
        // Keys and top-level string values: scanned once more for escapes (linear overall).
        const escaped = hasByte(bytes, BACKSLASH, start + 1, end);
        if (expectKey) {
          key = escaped ? Key.OTHER : keyAt(bytes, start + 1, end);
          if (escaped) escapedKey = true;
          expectKey = false;
        } else if (key === Key.TYPE) {
          type = escaped ? undefined : typeAt(bytes, start + 1, end);
        }
      }
      i = end;
      lastTokenEnd = Math.min(end + 1, length);
      continue;
    }
    if (isWhitespace(byte)) continue;
    if (i - stringBytes > maxStructure) return stopped('structure');
    switch (byte) {
      case OPEN_OBJECT:
      case OPEN_ARRAY:
        if (++depth > maxDepth) return tooDeep();
        if (depth === 1 && topIsObject) expectKey = true;
        break;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        if (depth === 1 && topIsObject && openValue >= 0) {
          clientDataStart = openValue;
          clientDataEnd = lastTokenEnd;
          openValue = -1;
        }
        depth--;
        break;
      case COMMA:
        if (depth === 1 && topIsObject) {
          if (openValue >= 0) {
            clientDataStart = openValue;
            clientDataEnd = lastTokenEnd;
            openValue = -1;
          }
          expectKey = true;
        }
        break;
      case COLON:
        if (depth === 1 && topIsObject && key === Key.CLIENT_DATA) {
          // The value starts at the next significant byte.
          let j = i + 1;
          while (j < length && isWhitespace(bytes[j])) j++;
          openValue = j;
        }
        break;
      default:
        break;
    }
    lastTokenEnd = i + 1;
  }
  return {
    tooDeep: false,
    type,
    structureBytes: length - stringBytes,
    clientDataStart,
    clientDataEnd,
    escapedKey,
  };

  function tooDeep(): FrameScan {
    return { tooDeep: true, type, structureBytes: length - stringBytes, clientDataStart: -1, clientDataEnd: -1, escapedKey };
  }

  function stopped(at: 'structure' | 'escape'): FrameScan {
    return { tooDeep: false, type, structureBytes: length - stringBytes, clientDataStart: -1, clientDataEnd: -1, escapedKey, stoppedAt: at };
  }
}

/**
 * The JSON text in bytes [start, end) without the whitespace between its tokens (string contents
 * untouched): a value forwarded exactly as the client wrote it, numbers and escapes included.
 */
export function compactJsonText(bytes: Uint8Array, start: number, end: number): string {
  let hasWhitespace = false;
  for (let i = start; i < end; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      i = stringEnd(bytes, i, end);
    } else if (isWhitespace(byte)) {
      hasWhitespace = true;
      break;
    }
  }
  if (!hasWhitespace) return utf8(bytes, start, end);
  const parts: string[] = [];
  let from = start;
  for (let i = start; i < end; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      i = stringEnd(bytes, i, end);
    } else if (isWhitespace(byte)) {
      if (i > from) parts.push(utf8(bytes, from, i));
      from = i + 1;
    }
  }
  if (end > from) parts.push(utf8(bytes, from, end));
  return parts.join('');
}

/** The index of the closing quote of the string opening at `start` (or `limit`). */
function stringEnd(bytes: Uint8Array, start: number, limit: number): number {
  for (let i = start + 1; i < limit; i++) {
    const byte = bytes[i];
    if (byte === BACKSLASH) i++;
    else if (byte === QUOTE) return i;
  }
  return limit;
}

function firstSignificant(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length && isWhitespace(bytes[i])) i++;
  return i;
}

/** The next `byte` at or after `from`: a plain loop over the first bytes (short strings, the common case), then a native search. */
function indexOfByte(bytes: Uint8Array, byte: number, from: number): number {
  const length = bytes.length;
  const near = Math.min(length, from + 32);
  for (let i = from; i < near; i++) if (bytes[i] === byte) return i;
  if (near >= length) return -1;
  return Buffer.isBuffer(bytes) ? bytes.indexOf(byte, near) : Uint8Array.prototype.indexOf.call(bytes, byte, near);
}

/** Whether `byte` occurs in [from, to): a loop for a short range, a native search bounded to the range for a long one. */
function indexOfByteIn(bytes: Uint8Array, byte: number, from: number, to: number): boolean {
  if (to - from <= 64) return hasByte(bytes, byte, from, to);
  return bytes.subarray(from, to).indexOf(byte) >= 0;
}

function hasByte(bytes: Uint8Array, byte: number, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] === byte) return true;
  return false;
}

/** The top-level keys the scan cares about, recognized from their bytes (no string per key). */
const enum Key {
  OTHER,
  TYPE,
  CLIENT_DATA,
}

const TYPE_KEY = Buffer.from('type');
const CLIENT_DATA_KEY = Buffer.from('clientData');
/** The protocol's message types as bytes: a frame's type is read without allocating a string. */
const KNOWN_TYPES: readonly { text: string; bytes: Uint8Array }[] = Object.values(MessageType).map((text) => ({ text, bytes: Buffer.from(text) }));

function keyAt(bytes: Uint8Array, start: number, end: number): Key {
  if (equalBytes(bytes, start, end, TYPE_KEY)) return Key.TYPE;
  if (equalBytes(bytes, start, end, CLIENT_DATA_KEY)) return Key.CLIENT_DATA;
  return Key.OTHER;
}

/** The string in bytes [start, end) (no escapes): a protocol type's own constant, or decoded (a feature module's type). */
function typeAt(bytes: Uint8Array, start: number, end: number): string {
  for (const known of KNOWN_TYPES) if (equalBytes(bytes, start, end, known.bytes)) return known.text;
  return utf8(bytes, start, end);
}

function equalBytes(bytes: Uint8Array, start: number, end: number, want: Uint8Array): boolean {
  if (end - start !== want.length) return false;
  for (let k = 0; k < want.length; k++) if (bytes[start + k] !== want[k]) return false;
  return true;
}

function utf8(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8');
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

/**
 * The top-level `type` of a frame refused before parsing, wherever it stands and however it is
 * written (escapes in the key or the value included): PROTOCOL.md gives every error of a frame
 * with a string `type` its `requestType`, and scanFrame stops early on the frames it refuses.
 * One byte loop to the end of the object, no native call per string or escape, so it stays linear
 * and cheap on the worst frames (escaped quotes, `[`, tiny strings); undefined when the frame is not an
 * object or its `type` is not a string; of several top-level `type` keys, the last (JSON.parse's
 * choice). Called only for frames refused unparsed.
 */
export function readTopLevelType(bytes: Uint8Array): string | undefined {
  const length = bytes.length;
  let i = firstSignificant(bytes);
  if (i >= length || bytes[i] !== OPEN_OBJECT) return undefined;
  let depth = 0;
  let expectKey = false;
  let keyIsType = false;
  let valueOfType = false;
  let type: string | undefined;
  for (; i < length; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      const start = i;
      let escaped = false;
      for (i++; i < length; i++) {
        const b = bytes[i];
        if (b === BACKSLASH) {
          escaped = true;
          i++;
        } else if (b === QUOTE) break;
      }
      if (i >= length) return type;
      if (depth !== 1) continue;
      if (valueOfType) {
        // The last one wins, as in JSON.parse: read on.
        type = stringAt(bytes, start, i + 1, escaped);
        valueOfType = false;
        continue;
      }
      if (expectKey) {
        keyIsType = escaped ? stringAt(bytes, start, i + 1, true) === 'type' : i - start === 5 && latin1(bytes, start + 1, i) === 'type';
        expectKey = false;
      }
      continue;
    }
    if (isWhitespace(byte)) continue;
    if (valueOfType) {
      type = undefined; // this `type` holds something else than a string
      valueOfType = false;
    }
    if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      depth++;
      if (depth === 1) {
        expectKey = true;
        continue;
      }
      // A nested value: skip to its end with the least work per byte (brackets and strings only).
      for (i++; i < length && depth > 1; i++) {
        const b = bytes[i];
        if (b === QUOTE) {
          for (i++; i < length; i++) {
            const c = bytes[i];
            if (c === BACKSLASH) i++;
            else if (c === QUOTE) break;
          }
        } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++;
        else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
      }
      i--; // the closing bracket of the nested value was consumed: the loop's i++ moves past it
      if (depth > 1) return type; // unterminated
    } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      depth--;
      if (depth === 0) return type;
    } else if (depth === 1 && byte === COMMA) {
      expectKey = true;
      keyIsType = false;
    } else if (depth === 1 && byte === COLON) {
      valueOfType = keyIsType;
    }
  }
  return type;
}

/** The string whose JSON text (quotes included) is bytes [start, end). */
function stringAt(bytes: Uint8Array, start: number, end: number, escaped: boolean): string | undefined {
  if (!escaped) return utf8(bytes, start + 1, end - 1);
  try {
    const value: unknown = JSON.parse(utf8(bytes, start, end));
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

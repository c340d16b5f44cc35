/**
 * Framing of the links between nodes (NodeLinks): each frame is a 4-byte big-endian length, then
 * that many bytes of UTF-8 text (the same messages the node channel carries on Redis).
 */

const EMPTY = Buffer.alloc(0);

/** Raised by FrameDecoder for a frame longer than its bound: the link is then closed. */
export class LinkFrameTooLarge extends Error {
  constructor(readonly length: number, readonly maxBytes: number) {
    super(`node link frame of ${length} bytes over the limit of ${maxBytes}`);
  }
}

export function encodeFrame(message: string): Buffer {
  const length = Buffer.byteLength(message);
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE(length, 0);
  frame.write(message, 4, 'utf8');
  return frame;
}

/**
 * Splits a byte stream into frames. A frame that arrives in pieces is joined once, when its last
 * piece is in (no quadratic copying); one longer than `maxBytes` throws before it is buffered.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the frame being collected, once its 4 length bytes are in. */
  private expected = -1;

  constructor(public maxBytes: number) {}

  /** Buffered bytes not yet part of a whole frame. */
  get pendingBytes(): number {
    return this.buffered + (this.expected >= 0 ? 4 : 0);
  }

  push(chunk: Buffer, onFrame: (message: string) => void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < 4) return;
        const head = this.take(4);
        const length = head.readUInt32BE(0);
        if (length > this.maxBytes) throw new LinkFrameTooLarge(length, this.maxBytes);
        this.expected = length;
      }
      if (this.buffered < this.expected) return;
      const body = this.take(this.expected);
      this.expected = -1;
      onFrame(body.toString('utf8'));
    }
  }

  /** Removes and returns the first `count` buffered bytes (count <= buffered). */
  private take(count: number): Buffer {
    if (count === 0) return EMPTY;
    const first = this.chunks[0];
    if (first.length >= count) {
      if (first.length === count) this.chunks.shift();
      else this.chunks[0] = first.subarray(count);
      this.buffered -= count;
      return first.subarray(0, count);
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0];
      const part = Math.min(chunk.length, count - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    this.buffered -= count;
    return out;
  }
}

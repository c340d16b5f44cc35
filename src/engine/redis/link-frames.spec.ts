import { encodeFrame, FrameDecoder, LinkFrameTooLarge } from './link-frames';

function decodeAll(decoder: FrameDecoder, chunks: Buffer[]): string[] {
  const out: string[] = [];
  for (const chunk of chunks) decoder.push(chunk, (message) => out.push(message));
  return out;
}

describe('node link frames', () => {
  const messages = ['["D","n1","1","alice",5]\n{"type":"DIALOG_MESSAGE"}', '', 'ünïcødé ✓ 💬', 'x'.repeat(70_000)];
  const stream = Buffer.concat(messages.map(encodeFrame));

  it('round-trips messages sent in one chunk', () => {
    expect(decodeAll(new FrameDecoder(100_000), [stream])).toEqual(messages);
  });

  it.each([1, 2, 3, 5, 7, 4096])('round-trips messages cut into chunks of %i bytes (length prefix and UTF-8 split too)', (size) => {
    const chunks: Buffer[] = [];
    for (let at = 0; at < stream.length; at += size) chunks.push(stream.subarray(at, at + size));
    const decoder = new FrameDecoder(100_000);
    expect(decodeAll(decoder, chunks)).toEqual(messages);
    expect(decoder.pendingBytes).toBe(0);
  });

  it('keeps an incomplete frame until its last byte comes', () => {
    const frame = encodeFrame('hello');
    const decoder = new FrameDecoder(100);
    expect(decodeAll(decoder, [frame.subarray(0, 6)])).toEqual([]);
    expect(decoder.pendingBytes).toBe(6);
    expect(decodeAll(decoder, [frame.subarray(6)])).toEqual(['hello']);
  });

  it('refuses a frame over the bound from its length alone, before buffering its body', () => {
    const decoder = new FrameDecoder(10);
    const header = encodeFrame('x'.repeat(11)).subarray(0, 4);
    expect(() => decoder.push(header, () => undefined)).toThrow(LinkFrameTooLarge);
  });

  it('accepts a frame of exactly the bound', () => {
    expect(decodeAll(new FrameDecoder(10), [encodeFrame('0123456789')])).toEqual(['0123456789']);
  });

  it('applies a raised bound to the frames after the change (hello first, then deliveries)', () => {
    const decoder = new FrameDecoder(5);
    const out: string[] = [];
    decoder.push(encodeFrame('hi'), (message) => {
      out.push(message);
      decoder.maxBytes = 100;
    });
    decoder.push(encodeFrame('a longer message'), (message) => out.push(message));
    expect(out).toEqual(['hi', 'a longer message']);
  });
});

import type { RawData } from 'ws';
import { FrameError } from '../protocol/errors';
import { RAW_CLIENT_DATA } from '../protocol/inbound';
import { FrameErrorCode } from '../protocol/protocol';
import { byteLength, frameBytes, parseFrame } from './inbound-frame';

const LIMITS = { maxJsonDepth: 32, maxMessageFrameBytes: 65_536 };
const text = (value: unknown): RawData => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

/** The FrameError parseFrame throws, with the type the scan read (failing the test if it parses). */
function refusal(data: RawData, isBinary = false): { code: FrameErrorCode; message: string; type?: string } {
  try {
    parseFrame(data, isBinary, LIMITS);
  } catch (err) {
    if (err instanceof FrameError) return { code: err.code, message: err.message, ...(err.requestType !== undefined ? { type: err.requestType } : {}) };
    throw err;
  }
  throw new Error('parseFrame did not throw');
}

describe('frameBytes and byteLength', () => {
  const whole = Buffer.from('{"type":"X","v":"été"}');

  it.each<[string, RawData]>([
    ['a Buffer', whole],
    ['fragments', [whole.subarray(0, 13), whole.subarray(13)]],
    ['an ArrayBuffer', whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.length)],
  ])('read %s as the same bytes', (_case, data) => {
    expect(frameBytes(data).equals(whole)).toBe(true);
    expect(byteLength(data)).toBe(whole.length);
  });

  it('hands a Buffer back without copying it', () => {
    expect(frameBytes(whole)).toBe(whole);
  });
});

describe('parseFrame', () => {
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

  describe('depth (MAX_JSON_DEPTH)', () => {
    const nested = (depth: number) => `{"type":"X","v":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;

    it('accepts the limit (the frame object is level 1) and refuses one more with INVALID_MESSAGE', () => {
      expect(parseFrame(text(nested(32)), false, LIMITS)).toMatchObject({ type: 'X' });
      expect(refusal(text(nested(33)))).toEqual({ code: FrameErrorCode.INVALID_MESSAGE, message: 'JSON nested deeper than 32 levels', type: 'X' });
    });

    it('refuses a megabyte of "[" without parsing it', () => {
      const parse = jest.spyOn(JSON, 'parse');
      try {
        expect(refusal(text('['.repeat(1_400_000)))).toMatchObject({ code: FrameErrorCode.INVALID_MESSAGE });
        expect(parse).not.toHaveBeenCalled();
      } finally {
        parse.mockRestore();
      }
    });

    it('reports the type of a refused frame wherever it stands and however it is written, and none when the frame has no string type', () => {
      const deep = `${'['.repeat(40)}${']'.repeat(40)}`;
      expect(refusal(text(`{"type":"DIALOG_MESSAGE","clientData":${deep}}`)).type).toBe('DIALOG_MESSAGE');
      expect(refusal(text(`{"clientData":${deep},"type":"DIALOG_MESSAGE"}`)).type).toBe('DIALOG_MESSAGE');
      expect(refusal(text(`{"\\u0074ype":"DIALOG_MESSAGE","clientData":${deep}}`)).type).toBe('DIALOG_MESSAGE');
      expect(refusal(text(`{"clientData":${deep}}`)).type).toBeUndefined();
      expect(refusal(text(`{"clientData":${deep},"type":5}`)).type).toBeUndefined();
    });
  });

  describe('size (MAX_MESSAGE_FRAME_BYTES)', () => {
    const pad = 'A'.repeat(LIMITS.maxMessageFrameBytes);

    it('refuses a frame over the limit unless it is a SAVE_AVATAR whose bulk is string content', () => {
      const chat = refusal(text({ type: 'CHAT_MESSAGE', serverData: { message: pad } }));
      expect(chat).toMatchObject({ code: FrameErrorCode.INVALID_MESSAGE, type: 'CHAT_MESSAGE' });
      expect(chat.message).toMatch(/frame larger than 65536 bytes/);
      expect(parseFrame(text({ type: 'SAVE_AVATAR', serverData: { imageBase64: pad } }), false, LIMITS)).toMatchObject({ type: 'SAVE_AVATAR' });
    });

    it('refuses a SAVE_AVATAR made large by structure (many values, each a parse)', () => {
      const structure = Array(LIMITS.maxMessageFrameBytes / 2).fill(0);
      expect(refusal(text({ type: 'SAVE_AVATAR', serverData: { imageBase64: 'AAAA' }, junk: structure }))).toMatchObject({
        code: FrameErrorCode.INVALID_MESSAGE,
        type: 'SAVE_AVATAR',
      });
    });

    it('accepts any type at exactly the limit', () => {
      const chat = { type: 'CHAT_MESSAGE', serverData: { message: '' } };
      const exact = { ...chat, serverData: { message: 'x'.repeat(LIMITS.maxMessageFrameBytes - JSON.stringify(chat).length) } };
      expect(byteLength(text(exact))).toBe(LIMITS.maxMessageFrameBytes);
      expect(parseFrame(text(exact), false, LIMITS)).toMatchObject({ type: 'CHAT_MESSAGE' });
      const over = { ...chat, serverData: { message: `${exact.serverData.message}x` } };
      expect(refusal(text(over)).code).toBe(FrameErrorCode.INVALID_MESSAGE);
    });

    it('does not let a type written with escapes pass as SAVE_AVATAR', () => {
      expect(refusal(text(`{"type":"SAVE_\\u0041VATAR","serverData":{"imageBase64":"${pad}"}}`))).toMatchObject({ code: FrameErrorCode.INVALID_MESSAGE });
    });
  });

  describe('RAW_CLIENT_DATA: clientData byte-exact', () => {
    it('keeps a top-level clientData as written: numbers beyond a double, escapes, without whitespace', () => {
      const frame = parseFrame(text('{"type":"DIALOG_MESSAGE", "clientData" : { "big" : 1e400, "id": 12345678901234567890123, "s":"\\u0041", "neg": -0 }}'), false, LIMITS);
      expect(frame[RAW_CLIENT_DATA]).toBe('{"big":1e400,"id":12345678901234567890123,"s":"\\u0041","neg":-0}');
      expect(frame.clientData).toEqual({ big: Infinity, id: 12345678901234567890123, s: 'A', neg: -0 });
    });

    it('keeps the whitespace inside strings', () => {
      const frame = parseFrame(text('{"type":"DIALOG_MESSAGE","clientData":{ "m" : " a  b " }}'), false, LIMITS);
      expect(frame[RAW_CLIENT_DATA]).toBe('{"m":" a  b "}');
    });

    it('keeps a scalar or null clientData too', () => {
      expect(parseFrame(text('{"type":"X","clientData": 1e400 }'), false, LIMITS)[RAW_CLIENT_DATA]).toBe('1e400');
      expect(parseFrame(text('{"type":"X","clientData":null}'), false, LIMITS)[RAW_CLIENT_DATA]).toBe('null');
    });

    it('is absent without a top-level clientData (a nested one does not count)', () => {
      expect(parseFrame(text({ type: 'X' }), false, LIMITS)[RAW_CLIENT_DATA]).toBeUndefined();
      expect(parseFrame(text({ type: 'X', serverData: { clientData: 1 } }), false, LIMITS)[RAW_CLIENT_DATA]).toBeUndefined();
    });

    it('is absent when a key is written with escapes (the scan cannot tell which key is which)', () => {
      expect(parseFrame(text('{"type":"X","client\\u0044ata":1,"clientData":2}'), false, LIMITS)[RAW_CLIENT_DATA]).toBeUndefined();
    });

    it('is not an enumerable property: JSON.stringify and spreads do not see it', () => {
      const frame = parseFrame(text('{"type":"X","clientData":1}'), false, LIMITS);
      expect(Object.keys(frame)).toEqual(['type', 'clientData']);
      expect(JSON.stringify(frame)).toBe('{"type":"X","clientData":1}');
    });
  });

  describe('refusals', () => {
    it('refuses binary frames with INVALID_JSON, even when they hold JSON', () => {
      expect(refusal(text({ type: 'X' }), true)).toEqual({ code: FrameErrorCode.INVALID_JSON, message: 'binary frames are not accepted: send JSON text' });
    });

    it.each(['not json', '{"type":', '', "{'type':'X'}", '{"type":"X"} trailing'])('refuses %p with INVALID_JSON and no type', (raw) => {
      expect(refusal(text(raw))).toEqual({ code: FrameErrorCode.INVALID_JSON, message: 'the frame is not valid JSON' });
    });

    it.each(['[]', '[{"type":"X"}]', 'null', '42', '"X"', 'true'])('refuses %s (not an object) with INVALID_MESSAGE and no type', (raw) => {
      expect(refusal(text(raw))).toEqual({ code: FrameErrorCode.INVALID_MESSAGE, message: 'a frame must be a JSON object' });
    });

    it.each(['{}', '{"type":42}', '{"type":null}', '{"Type":"X"}', '{"type":["X"]}'])('refuses %s (no string type) with INVALID_MESSAGE and no type', (raw) => {
      expect(refusal(text(raw))).toEqual({ code: FrameErrorCode.INVALID_MESSAGE, message: 'a frame must have a string field "type"' });
    });
  });
});

import fc from 'fast-check';
import { compactJsonText, readTopLevelType, scanFrame } from './frame-scan';

const bytes = (text: string) => Buffer.from(text, 'utf8');

/** The nesting depth of a JSON value as JSON.parse sees it. */
function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + value.reduce<number>((max, v) => Math.max(max, depthOf(v)), 0);
  if (typeof value === 'object' && value !== null) return 1 + Object.values(value).reduce<number>((max, v) => Math.max(max, depthOf(v)), 0);
  return 0;
}

function clientDataOf(text: string): string | undefined {
  const buf = bytes(text);
  const scan = scanFrame(buf, 1000);
  return scan.clientDataStart < 0 ? undefined : compactJsonText(buf, scan.clientDataStart, scan.clientDataEnd);
}

describe('scanFrame', () => {
  it('reads the top-level type of an object, wherever the key is', () => {
    expect(scanFrame(bytes('{"type":"CHAT_MESSAGE","serverData":{"message":"x"}}'), 32).type).toBe('CHAT_MESSAGE');
    expect(scanFrame(bytes('{"serverData":{"type":"NESTED"},"type":"DIALOG_MESSAGE"}'), 32).type).toBe('DIALOG_MESSAGE');
    expect(scanFrame(bytes(' { "type" : "SAVE_AVATAR" } '), 32).type).toBe('SAVE_AVATAR');
  });

  it('reads no type from nested objects, arrays, non-string values or escaped keys', () => {
    expect(scanFrame(bytes('{"serverData":{"type":"X"}}'), 32).type).toBeUndefined();
    expect(scanFrame(bytes('[{"type":"X"}]'), 32).type).toBeUndefined();
    expect(scanFrame(bytes('{"type":5}'), 32).type).toBeUndefined();
    const escaped = scanFrame(bytes('{"typ\\u0065":"X"}'), 32);
    expect(escaped.type).toBeUndefined();
    expect(escaped.escapedKey).toBe(true);
    expect(scanFrame(bytes('{"type":"SAVE\\u005fAVATAR"}'), 32).type).toBeUndefined();
  });

  // Keys and protocol types are compared as bytes (no string per key): near misses must not match.
  it.each([
    ['{"type":"DIALOG_MESSAGE"}', 'DIALOG_MESSAGE'],
    ['{"type":"TYPING_MESSAGE"}', 'TYPING_MESSAGE'], // a feature module's type
    ['{"type":"DIALOG_MESSAGEX"}', 'DIALOG_MESSAGEX'],
    ['{"type":"DIALOG_MESSAG"}', 'DIALOG_MESSAG'],
    ['{"type":"chat_message"}', 'chat_message'],
    ['{"type":"ÉCHO ✓"}', 'ÉCHO ✓'],
    ['{"type":""}', ''],
    ['{"typ":"CHAT_MESSAGE"}', undefined],
    ['{"types":"CHAT_MESSAGE"}', undefined],
  ])('reads the type of %s as %p', (frame, type) => {
    expect(scanFrame(bytes(frame), 32).type).toBe(type);
  });

  it('takes the last of duplicate keys, like JSON.parse', () => {
    expect(scanFrame(bytes('{"type":"A","type":"B"}'), 32).type).toBe('B');
    expect(clientDataOf('{"clientData":1,"x":2,"clientData":[3]}')).toBe('[3]');
  });

  it('refuses nesting deeper than the limit, and accepts exactly the limit', () => {
    expect(scanFrame(bytes('[[[]]]'), 3).tooDeep).toBe(false);
    expect(scanFrame(bytes('[[[[]]]]'), 3).tooDeep).toBe(true);
    expect(scanFrame(bytes('{"a":{"b":{"c":{}}}}'), 3).tooDeep).toBe(true);
    // Brackets inside strings are not nesting.
    expect(scanFrame(bytes(`{"a":"${'['.repeat(100)}"}`), 3).tooDeep).toBe(false);
    expect(scanFrame(bytes(`{"a":"\\"${'['.repeat(100)}"}`), 3).tooDeep).toBe(false);
  });

  it('stops early on a 1.4 MB frame of "[" and stays linear on pathological inputs', () => {
    const started = process.hrtime.bigint();
    expect(scanFrame(bytes('['.repeat(1_400_000)), 32).tooDeep).toBe(true);
    // Many short strings, long whitespace before many brackets, backslash runs.
    scanFrame(bytes(`[${'"a",'.repeat(280_000)}"a"]`), 32);
    scanFrame(bytes(`${' '.repeat(700_000)}${'[]'.repeat(350_000)}`), 32);
    scanFrame(bytes(`"${'\\\\'.repeat(350_000)}"`), 32);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    // Linear: a few ms each on any machine; quadratic would take minutes.
    expect(ms).toBeLessThan(2000);
  });

  describe('bounds for large frames', () => {
    it('stops at the first escape when escapes are forbidden, however long the frame', () => {
      const frame = bytes(`{"type":"SAVE_AVATAR","serverData":{"imageBase64":"${'\\"'.repeat(700_000)}"}}`);
      expect(scanFrame(frame, 32, { noEscapes: true }).stoppedAt).toBe('escape');
      expect(scanFrame(bytes('{"a":"x\\ny"}'), 32, { noEscapes: true }).stoppedAt).toBe('escape');
      expect(scanFrame(bytes('{"a\\u0041":1}'), 32, { noEscapes: true }).stoppedAt).toBe('escape');
      expect(scanFrame(frame, 32).stoppedAt).toBeUndefined();
    });

    it('stops once the structure exceeds its bound, and never for a plain image frame', () => {
      const structure = bytes(`[${'"a",'.repeat(280_000)}"a"]`);
      const scan = scanFrame(structure, 32, { maxStructureBytes: 65_536 });
      expect(scan.stoppedAt).toBe('structure');
      const image = bytes(JSON.stringify({ type: 'SAVE_AVATAR', serverData: { imageBase64: 'A'.repeat(1_400_000) } }));
      expect(scanFrame(image, 32, { maxStructureBytes: 65_536, noEscapes: true })).toMatchObject({ type: 'SAVE_AVATAR' });
      expect(scanFrame(image, 32, { maxStructureBytes: 65_536, noEscapes: true }).stoppedAt).toBeUndefined();
    });

    it('stops early on the worst large frames (escapes, many short strings) instead of walking them', () => {
      // Walked to the end, the first took ~17 ms (a native search per escaped quote); what it costs
      // now is measured by the bench's hostile-clients scenario, not here.
      const bounds = { maxStructureBytes: 65_536, noEscapes: true };
      const escapedQuotes = `{"type":"SAVE_AVATAR","serverData":{"imageBase64":"${'\\"'.repeat(730_000)}"}}`;
      expect(scanFrame(bytes(escapedQuotes), 32, bounds)).toMatchObject({ type: 'SAVE_AVATAR', stoppedAt: 'escape' });
      expect(scanFrame(bytes(`[${'"a",'.repeat(365_000)}"a"]`), 32, bounds).stoppedAt).toBe('structure');
      expect(scanFrame(bytes(`"${'\\\\'.repeat(365_000)}"`), 32, bounds).stoppedAt).toBe('escape');
    });
  });

  it('counts string contents apart from structure', () => {
    const image = 'A'.repeat(10_000);
    const scan = scanFrame(bytes(JSON.stringify({ type: 'SAVE_AVATAR', serverData: { imageBase64: image } })), 32);
    expect(scan.structureBytes).toBeLessThan(100);
    const array = scanFrame(bytes(JSON.stringify(Array(1000).fill(0))), 32);
    expect(array.structureBytes).toBe(JSON.stringify(Array(1000).fill(0)).length);
  });

  it('finds clientData byte-exact: numbers beyond a double and escapes are kept as written', () => {
    expect(clientDataOf('{"type":"DIALOG_MESSAGE","clientData":1e400,"serverData":{}}')).toBe('1e400');
    expect(clientDataOf('{"clientData":{"n":12345678901234567890123,"s":"\\u0041"}}')).toBe('{"n":12345678901234567890123,"s":"\\u0041"}');
    expect(clientDataOf('{"clientData" :  [ 1 , 2.50 , "a b" ] , "type":"X"}')).toBe('[1,2.50,"a b"]');
    expect(clientDataOf('{"clientData":"he said \\"hi\\" {"}')).toBe('"he said \\"hi\\" {"');
    expect(clientDataOf('{"clientData":null}')).toBe('null');
    expect(clientDataOf('{"serverData":{"clientData":1}}')).toBeUndefined();
    expect(clientDataOf('{"type":"X"}')).toBeUndefined();
    expect(clientDataOf('{"clientdata":{"a":1},"clientData2":[1]}')).toBeUndefined();
  });

  it('agrees with JSON.parse on any valid frame (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.string(), fc.jsonValue({ maxDepth: 3 }), fc.boolean(), (clientData, type, other, pretty) => {
        const frame = { other, type, clientData };
        const text = pretty ? JSON.stringify(frame, null, 2) : JSON.stringify(frame);
        const buf = bytes(text);
        const scan = scanFrame(buf, 1000);
        expect(scan.tooDeep).toBe(false);
        expect(scan.escapedKey).toBe(false);
        // JSON.stringify escapes only quotes, backslashes and control characters.
        if (!/["\\\u0000-\u001f]/.test(type)) expect(scan.type).toBe(type);
        const json = compactJsonText(buf, scan.clientDataStart, scan.clientDataEnd);
        expect(JSON.parse(json)).toEqual(JSON.parse(text).clientData);
        expect(json).toBe(JSON.stringify(JSON.parse(text).clientData));
        const depth = depthOf(frame);
        expect(scanFrame(buf, depth).tooDeep).toBe(false);
        expect(scanFrame(buf, depth - 1).tooDeep).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('compactJsonText', () => {
  it('removes whitespace between tokens only', () => {
    const text = '{ "a b" : [ 1 ,\n\t2 ] , "c" : " x " }';
    expect(compactJsonText(bytes(text), 0, Buffer.byteLength(text))).toBe('{"a b":[1,2],"c":" x "}');
  });

  it('keeps multi-byte characters intact', () => {
    const text = '[ "héllo 👋" , "\\"" ]';
    expect(compactJsonText(bytes(text), 0, Buffer.byteLength(text))).toBe('["héllo 👋","\\""]');
  });

  describe('readTopLevelType (the requestType of a frame refused unparsed)', () => {
    it.each<[string, string | undefined]>([
      ['{"type":"CHAT_MESSAGE","a":1}', 'CHAT_MESSAGE'],
      ['{"a":[1,{"b":"]"}],"type":"AFTER"}', 'AFTER'],
      [' {"x":"}\\"","type" : "SPACED"}', 'SPACED'],
      ['{"typ\\u0065":"CHAT\\u005fMESSAGE"}', 'CHAT_MESSAGE'],
      ['{"type":"A","type":"B"}', 'B'],
      ['{"type":"A","type":{}}', undefined],
      ['{"type":1}', undefined],
      ['{"a":{"type":"X"},"b":["type","Y"]}', undefined],
      ['["type","A"]', undefined],
      ['{"x":[[[', undefined],
      ['{"type":"T","x":[[[', 'T'],
      ['{"x":"unterminated', undefined],
    ])('%s -> %s', (text, type) => {
      expect(readTopLevelType(bytes(text))).toBe(type);
    });

    it('reads it behind what stops scanFrame: depth, structure, escapes', () => {
      const bounds = { maxStructureBytes: 65_536, noEscapes: true };
      const frames = [
        `{"x":${'['.repeat(100_000)}${']'.repeat(100_000)},"type":"DEEP"}`,
        `{"x":[${'"a",'.repeat(100_000)}"a"],"type":"WIDE"}`,
        `{"serverData":{"imageBase64":"${'\\"'.repeat(100_000)}"},"type":"ESCAPED"}`,
      ];
      const scans = frames.map((f) => scanFrame(bytes(f), 32, bounds));
      expect(scans.map((scan) => scan.type)).toEqual([undefined, undefined, undefined]);
      expect(frames.map((f) => readTopLevelType(bytes(f)))).toEqual(['DEEP', 'WIDE', 'ESCAPED']);
    });
  });
});

import { HttpException } from '@nestjs/common';
import { parseApiBody } from './api-body.interceptor';

const JSON_TYPE = 'application/json';

/** The status and body of the HttpException `run` throws. */
function refusal(run: () => unknown): { status: number; body: unknown } {
  try {
    run();
  } catch (err) {
    if (err instanceof HttpException) return { status: err.getStatus(), body: err.getResponse() };
    throw err;
  }
  throw new Error('not refused');
}

describe('parseApiBody', () => {
  it('no body: an empty object (the DTO names what is missing), whatever the Content-Type', () => {
    expect(parseApiBody(Buffer.alloc(0), undefined, 32)).toEqual({ body: {} });
    expect(parseApiBody(Buffer.alloc(0), 'text/plain', 32)).toEqual({ body: {} });
  });

  it('a JSON object: parsed; the top-level clientData kept as written, whitespace between tokens removed', () => {
    const text = '{ "sender": "s",\n "clientData" : { "big" : 12345678901234567890123 , "x": [ 1e400, "a b" ] } ,"receiver":"r"}';
    const parsed = parseApiBody(Buffer.from(text), JSON_TYPE, 32);
    expect(parsed.body).toEqual(JSON.parse(text));
    expect(parsed.rawClientData).toBe('{"big":12345678901234567890123,"x":[1e400,"a b"]}');
  });

  it('a clientData that is a scalar, null, or the last of two', () => {
    expect(parseApiBody(Buffer.from('{"clientData": "text" }'), JSON_TYPE, 32).rawClientData).toBe('"text"');
    expect(parseApiBody(Buffer.from('{"clientData":null}'), JSON_TYPE, 32).rawClientData).toBe('null');
    const twice = parseApiBody(Buffer.from('{"clientData":1,"clientData":2.50}'), JSON_TYPE, 32);
    expect([twice.body.clientData, twice.rawClientData]).toEqual([2.5, '2.50']);
  });

  it('no raw clientData when there is none at the top level, or when a key is written with escapes', () => {
    expect(parseApiBody(Buffer.from('{"x":{"clientData":1}}'), JSON_TYPE, 32).rawClientData).toBeUndefined();
    const escaped = parseApiBody(Buffer.from('{"client\\u0044ata":{"n":1}}'), JSON_TYPE, 32);
    expect(escaped).toEqual({ body: { clientData: { n: 1 } } });
  });

  it.each(['application/json', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/merge-patch+json', 'APPLICATION/JSON'])(
    'Content-Type %s: read',
    (type) => {
      expect(parseApiBody(Buffer.from('{"a":1}'), type, 32).body).toEqual({ a: 1 });
    },
  );

  it.each([undefined, 'text/plain', 'application/jsonx', 'application/x-www-form-urlencoded', 'application/json; charset=iso-8859-1', 'multipart/form-data'])(
    'Content-Type %s: 415',
    (type) => {
      expect(refusal(() => parseApiBody(Buffer.from('{"a":1}'), type, 32))).toEqual({ status: 415, body: { error: expect.any(String) } });
    },
  );

  it.each([
    ['{"a":', 'the body is not valid JSON'],
    ['\ufeff{"a":1}', 'the body is not valid JSON'],
    ['[1]', 'the body must be a JSON object'],
    ['1', 'the body must be a JSON object'],
    ['null', 'the body must be a JSON object'],
    [`{"a":${'['.repeat(32)}${']'.repeat(32)}}`, 'the body is nested deeper than 32 levels'],
  ])('%s: 400 %s, no field', (text, error) => {
    expect(refusal(() => parseApiBody(Buffer.from(text), JSON_TYPE, 32))).toEqual({ status: 400, body: { error, fields: [] } });
  });

  it('a body 31 levels deep under its object is read', () => {
    expect(parseApiBody(Buffer.from(`{"a":${'['.repeat(31)}${']'.repeat(31)}}`), JSON_TYPE, 32).body).toHaveProperty('a');
  });

  it('too deep is refused by the scan, before JSON.parse (fast on 80 KB of brackets)', () => {
    const parse = jest.spyOn(JSON, 'parse');
    const started = performance.now();
    refusal(() => parseApiBody(Buffer.from(`{"a":${'['.repeat(80_000)}`), JSON_TYPE, 32));
    // A linear scan takes about a millisecond; the bound leaves room for a loaded CI machine.
    expect(performance.now() - started).toBeLessThan(250);
    expect(parse).not.toHaveBeenCalled();
    parse.mockRestore();
  });
});

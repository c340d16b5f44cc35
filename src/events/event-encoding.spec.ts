import { Status } from '../protocol/protocol';
import { encodeEvent } from './event-encoding';

const NODE = JSON.stringify('node-a');

describe('encodeEvent', () => {
  it('writes the envelope (id, time as a string, node), then the fact’s fields', () => {
    const text = encodeEvent({ kind: 'chat', message: 'hi "you"\n', sender: 'u1', sendTime: '1700000000001' }, 'e-1', 1700000000002, NODE);
    expect(JSON.parse(text)).toEqual({ id: 'e-1', time: '1700000000002', node: 'node-a', message: 'hi "you"\n', sender: 'u1', sendTime: '1700000000001' });
    expect(text.startsWith('{"id":"e-1","time":"1700000000002","node":"node-a",')).toBe(true);
  });

  it('embeds a dialog’s clientData verbatim: numbers beyond a double and escapes survive', () => {
    const clientDataJson = '{"big":123456789012345678901234,"inf":1e400,"s":"\\u0041\\ud83d\\ude00","a":[]}';
    const text = encodeEvent(
      { kind: 'dialog', messageId: 'm', sender: 'u1', receiver: 'u2', clientDataJson, sendTime: '5', status: Status.ERROR },
      'e-2',
      6,
      NODE,
    );
    expect(text).toBe(`{"id":"e-2","time":"6","node":"node-a","messageId":"m","sender":"u1","receiver":"u2","clientData":${clientDataJson},"sendTime":"5","status":"ERROR"}`);
    expect(JSON.parse(text)).toMatchObject({ clientData: { inf: Infinity, s: 'A\u{1F600}', a: [] }, status: 'ERROR' });
  });

  it('writes connect and disconnect (with the close code as a number)', () => {
    expect(JSON.parse(encodeEvent({ kind: 'connect', userId: 'u1' }, 'e', 1, NODE))).toEqual({ id: 'e', time: '1', node: 'node-a', userId: 'u1' });
    expect(JSON.parse(encodeEvent({ kind: 'disconnect', userId: 'u1', code: 4403 }, 'e', 1, NODE))).toEqual({ id: 'e', time: '1', node: 'node-a', userId: 'u1', code: 4403 });
  });

  it('writes a profile change as userId and the changed profile fields only: nothing else a fact carries (a token) gets through', () => {
    const changed = { avatar: 'http://x/a.webp', nickname: 'n', authToken: 'secret-token', token: 'secret-token', expiresAt: 5 } as unknown as Record<string, string>;
    const text = encodeEvent({ kind: 'profile', userId: 'u1', changed }, 'e', 1, NODE);
    expect(JSON.parse(text)).toEqual({ id: 'e', time: '1', node: 'node-a', userId: 'u1', avatar: 'http://x/a.webp', nickname: 'n' });
    // Nothing valid changed: the userId alone, still valid JSON.
    expect(JSON.parse(encodeEvent({ kind: 'profile', userId: 'u1', changed: { token: 'x' } as unknown as Record<string, string> }, 'e', 1, NODE))).toEqual({
      id: 'e',
      time: '1',
      node: 'node-a',
      userId: 'u1',
    });
    expect(text).not.toContain('secret-token');
  });
});

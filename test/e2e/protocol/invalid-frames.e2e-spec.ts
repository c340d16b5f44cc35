/**
 * docs/protocol.md "Invalid frames (extension)" and "Transport": every invalid frame of an
 * authenticated client is answered with ERROR_MESSAGE and the connection stays open; unknown
 * fields are ignored; frames deeper than MAX_JSON_DEPTH and frames of any type but SAVE_AVATAR over
 * MAX_MESSAGE_FRAME_BYTES are INVALID_MESSAGE; frames over MAX_FRAME_BYTES close the connection
 * with 1009.
 */
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { ENGINES } from '../../support/deployment';
import { chat, dialog, frameError, isDisconnect, isType } from '../../support/frames';
import { eventually } from '../../support/time';
import type { Frame } from '../../support/ws-client';
import { expectChatWorks, ID, protocolScope, T } from './harness';

/** `frame` as JSON text padded (in serverData.pad, ignored by the gateway) to exactly `bytes` bytes. */
function paddedTo(frame: Frame, bytes: number): string {
  const empty = JSON.stringify({ ...frame, serverData: { ...frame.serverData, pad: '' } });
  const text = JSON.stringify({ ...frame, serverData: { ...frame.serverData, pad: 'p'.repeat(bytes - Buffer.byteLength(empty)) } });
  expect(Buffer.byteLength(text)).toBe(bytes);
  return text;
}

jest.setTimeout(15_000);

describe.each(ENGINES)('invalid frames (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());

  async function twoUsers(env: Record<string, string> = {}) {
    const dep = await scope.deployment(engine, env);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    return { dep, alice, bob };
  }

  it.each<[string, string]>([
    ['text that is not JSON', 'hello there'],
    ['truncated JSON', '{"type":"CHAT_MESSAGE","serverData":{"message":"hi"}'],
    ['JSON with a trailing comma', '{"type":"CHAT_MESSAGE",}'],
    ['an empty text frame', ''],
  ])('%s: INVALID_JSON without requestType; the connection stays usable', async (_what, text) => {
    const { alice, bob } = await twoUsers();
    alice.send(text);
    const error = await alice.nextOfType('ERROR_MESSAGE');
    expect(error).toEqual(frameError('INVALID_JSON'));
    expect(error).not.toHaveProperty('requestType');
    await expectChatWorks(alice, ID.alice, [bob]);
  });

  it('a binary frame: INVALID_JSON, even when it holds valid JSON', async () => {
    const { alice, bob } = await twoUsers();
    alice.socket.send(Buffer.from(JSON.stringify({ type: 'CHAT_MESSAGE', serverData: { message: 'binary' } })), { binary: true });
    expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_JSON'));
    alice.socket.send(Buffer.from([0xff, 0x00, 0x13]), { binary: true });
    expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_JSON'));
    await expectChatWorks(alice, ID.alice, [bob]);
    expect(bob.frames.map((f) => f.type)).toEqual(['AUTH_MESSAGE', 'CHAT_MESSAGE']);
  });

  it.each<[string, string]>([
    ['a JSON array', '[{"type":"CHAT_MESSAGE"}]'],
    ['a JSON number', '42'],
    ['a JSON string', '"CHAT_MESSAGE"'],
    ['JSON null', 'null'],
    ['JSON true', 'true'],
    ['an object without type', '{"serverData":{"message":"hi"}}'],
    ['an object with a numeric type', '{"type":1,"serverData":{"message":"hi"}}'],
    ['an object with a null type', '{"type":null}'],
    ['an object with an object type', '{"type":{"name":"CHAT_MESSAGE"}}'],
    ['an object with an array type', '{"type":["CHAT_MESSAGE"]}'],
  ])('%s: INVALID_MESSAGE without requestType', async (_what, text) => {
    const { alice, bob } = await twoUsers();
    alice.send(text);
    const error = await alice.nextOfType('ERROR_MESSAGE');
    expect(error).toEqual(frameError('INVALID_MESSAGE'));
    expect(error).not.toHaveProperty('requestType');
    await expectChatWorks(alice, ID.alice, [bob]);
    // In-order processing: had the invalid frame been broadcast, bob would have seen it first.
    expect(bob.frames.map((f) => f.type)).toEqual(['AUTH_MESSAGE', 'CHAT_MESSAGE']);
  });

  it.each([
    'NO_SUCH_TYPE',
    'chat_message',
    '',
    'DELIVERY_MESSAGE',
    'USER_CONNECTION_MESSAGE',
    'USER_UPDATE_MESSAGE',
    'ERROR_MESSAGE',
    'AUTH_MESSAGE',
    'CHECK_TOKEN',
    '__proto__',
    'constructor',
    'toString',
  ])('type %j: UNKNOWN_TYPE with requestType', async (type) => {
    const { alice, bob } = await twoUsers();
    const frame: Frame = { type, status: 'SUCCESS', serverData: { authToken: T.carol, message: 'x', messageId: 'm', userId: ID.alice, connectionStatus: 'DISCONNECT' } };
    alice.send(frame);
    const error = await alice.nextOfType('ERROR_MESSAGE');
    expect(error).toEqual(frameError('UNKNOWN_TYPE', type));
    await expectChatWorks(alice, ID.alice, [bob]);
    // In-order processing: nothing reached bob before the chat (no forged presence, delivery...).
    expect(bob.frames.map((f) => f.type)).toEqual(['AUTH_MESSAGE', 'CHAT_MESSAGE']);
    expect(alice.all('AUTH_MESSAGE')).toHaveLength(1); // an AUTH_MESSAGE after auth re-authenticates nothing
    expect(alice.all('ERROR_MESSAGE')).toHaveLength(1);
  });

  it('unknown extra fields on a valid frame are ignored', async () => {
    const { alice, bob } = await twoUsers();
    alice.send({ type: 'CHAT_MESSAGE', messageType: 'text', serverData: { message: 'with extras', sender: 'forged', sendTime: '1', extra: [1] }, extra: { a: 1 } });
    const got = await bob.nextOfType('CHAT_MESSAGE');
    expect(got).toEqual({ type: 'CHAT_MESSAGE', serverData: { message: 'with extras', sender: ID.alice, sendTime: expect.stringMatching(/^\d{13}$/) } });
    expect(alice.all('ERROR_MESSAGE')).toEqual([]);
  });

  it('a sequence of invalid frames gets one answer each, in order, and then a valid frame works', async () => {
    const { alice, bob } = await twoUsers();
    alice.send('nope');
    alice.send('[]');
    alice.send({ type: 'NOPE' });
    alice.send(chat(''));
    alice.send({ type: 'DIALOG_MESSAGE', clientData: 1, serverData: {} });
    alice.send(chat('finally'));
    expect((await bob.nextOfType('CHAT_MESSAGE')).serverData.message).toBe('finally');
    await eventually(() => alice.all('ERROR_MESSAGE').length >= 5, 3000, 'five errors');
    expect(alice.all('ERROR_MESSAGE').map((f) => [f.error.errorCode, f.requestType])).toEqual([
      ['INVALID_JSON', undefined],
      ['INVALID_MESSAGE', undefined],
      ['UNKNOWN_TYPE', 'NOPE'],
      ['INVALID_MESSAGE', 'CHAT_MESSAGE'],
      ['INVALID_MESSAGE', 'DIALOG_MESSAGE'],
    ]);
    // The answers came before the echo of the later chat: frames are processed in order.
    const types = alice.frames.map((f) => f.type).filter((t) => t === 'ERROR_MESSAGE' || t === 'CHAT_MESSAGE');
    expect(types).toEqual(['ERROR_MESSAGE', 'ERROR_MESSAGE', 'ERROR_MESSAGE', 'ERROR_MESSAGE', 'ERROR_MESSAGE', 'CHAT_MESSAGE']);
  });

  describe('MAX_MESSAGE_FRAME_BYTES', () => {
    const LIMIT = 2048;

    it('a CHAT or DIALOG frame over it is INVALID_MESSAGE with its requestType, not processed, the connection kept; at the limit it is processed; a larger SAVE_AVATAR is processed', async () => {
      const { alice, bob } = await twoUsers({ MAX_MESSAGE_FRAME_BYTES: String(LIMIT), CHAT_MAX_LENGTH: '100000', DIALOG_MAX_BYTES: '100000' });
      // The limit is far below MAX_FRAME_BYTES: nothing here closes the connection (1009).
      alice.send(paddedTo(chat('at the limit'), LIMIT));
      expect((await bob.nextOfType('CHAT_MESSAGE')).serverData.message).toBe('at the limit');

      alice.send(paddedTo(chat('one byte over'), LIMIT + 1));
      expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'CHAT_MESSAGE'));
      alice.send(paddedTo(dialog(ID.bob, { text: 'one byte over' }, 'over-1'), LIMIT + 1));
      expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'DIALOG_MESSAGE'));
      // The same dialog at the limit is delivered: only the frame size was at fault.
      alice.send(paddedTo(dialog(ID.bob, { text: 'at the limit' }, 'at-1'), LIMIT));
      expect(await alice.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'at-1' } });
      expect(alice.all('DELIVERY_MESSAGE')).toHaveLength(1);

      // A SAVE_AVATAR frame may be larger (up to MAX_FRAME_BYTES): an image of noise (it does not compress).
      const noise = randomBytes(40 * 40 * 3);
      const image = await sharp(noise, { raw: { width: 40, height: 40, channels: 3 } }).png().toBuffer();
      const avatarFrame = JSON.stringify({ type: 'SAVE_AVATAR', serverData: { imageBase64: image.toString('base64') } });
      expect(Buffer.byteLength(avatarFrame)).toBeGreaterThan(LIMIT * 2);
      alice.send(avatarFrame);
      const saved = await alice.nextOfType('SAVE_AVATAR', 10_000);
      expect(saved).toEqual({ type: 'SAVE_AVATAR', status: 'SUCCESS', serverData: { avatar: expect.any(String) } });
      expect(await bob.next(isType('USER_UPDATE_MESSAGE'))).toEqual({ type: 'USER_UPDATE_MESSAGE', serverData: { userId: ID.alice, avatar: saved.serverData.avatar } });

      // The requestType wherever the type stands, even after an escape (where the scan of a large frame stops).
      const late = JSON.stringify({ serverData: { message: 'say \"hi\" '.repeat(300) }, type: 'CHAT_MESSAGE' });
      expect(Buffer.byteLength(late)).toBeGreaterThan(LIMIT);
      alice.send(late);
      expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'CHAT_MESSAGE'));

      // Still open and usable; bob got only what was processed: the chat and the dialog at the limit.
      await expectChatWorks(alice, ID.alice, [bob]);
      expect(bob.all('CHAT_MESSAGE').map((f) => f.serverData.message)).toEqual(['at the limit', expect.stringMatching(/^still alive/)]);
      expect(bob.all('DIALOG_MESSAGE').map((f) => f.clientData)).toEqual([{ text: 'at the limit' }]);
      expect(alice.all('ERROR_MESSAGE')).toHaveLength(3);
      expect(alice.closeInfo).toBeUndefined();
    });
  });

  describe('MAX_JSON_DEPTH', () => {
    it('a frame nested deeper is INVALID_MESSAGE with its requestType, refused without being parsed; at the limit it is processed', async () => {
      const { alice, bob } = await twoUsers({ MAX_JSON_DEPTH: '4' });
      // The frame object is level 1, serverData 2, then two levels of arrays: 4.
      alice.send('{"type":"CHAT_MESSAGE","serverData":{"message":"depth four","extra":[["x"]]}}');
      expect((await bob.nextOfType('CHAT_MESSAGE')).serverData.message).toBe('depth four');

      const marker = 'depth-five-marker-Qw8Zr';
      const tooDeep = [
        `{"type":"CHAT_MESSAGE","serverData":{"message":"${marker}","extra":[[["x"]]]}}`,
        `{"type":"DIALOG_MESSAGE","clientData":{"a":{"b":{"c":{"d":"${marker}"}}}},"serverData":{"receiver":"${ID.bob}"}}`,
      ];
      const parse = jest.spyOn(JSON, 'parse');
      try {
        alice.send(tooDeep[0]);
        expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'CHAT_MESSAGE'));
        alice.send(tooDeep[1]);
        expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'DIALOG_MESSAGE'));
        expect(parse.mock.calls.filter(([text]) => typeof text === 'string' && text.includes(marker))).toEqual([]);
      } finally {
        parse.mockRestore();
      }
      // The requestType wherever the type stands and however it is written (the scan stopped before it).
      alice.send('{"serverData":{"message":"x","extra":[[["x"]]]},"type":"CHAT_MESSAGE"}');
      expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'CHAT_MESSAGE'));
      alice.send('{"serverData":{"extra":[[["x"]]]},"typ\\u0065":"CHAT\\u005fMESSAGE"}');
      expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'CHAT_MESSAGE'));
      // No string type: none.
      alice.send('{"serverData":{"extra":[[["x"]]]},"type":7}');
      expect(await alice.nextOfType('ERROR_MESSAGE')).not.toHaveProperty('requestType');
      // Kept open; nothing of the deep frames reached bob, and no DELIVERY was owed.
      await expectChatWorks(alice, ID.alice, [bob]);
      expect(bob.all('CHAT_MESSAGE')).toHaveLength(2);
      expect(bob.all('DIALOG_MESSAGE')).toEqual([]);
      expect(alice.all('DELIVERY_MESSAGE')).toEqual([]);
    });
  });

  describe('MAX_FRAME_BYTES', () => {
    it('a frame over the limit closes the connection with 1009 (and the others see DISCONNECT); one at the limit is fine', async () => {
      const { alice, bob } = await twoUsers({ MAX_FRAME_BYTES: '2048' });
      const envelope = JSON.stringify({ type: 'CHAT_MESSAGE', serverData: { message: '' } });
      const atLimit = JSON.stringify({ type: 'CHAT_MESSAGE', serverData: { message: 'a'.repeat(2048 - envelope.length) } });
      expect(Buffer.byteLength(atLimit)).toBe(2048);
      alice.send(atLimit);
      expect((await bob.nextOfType('CHAT_MESSAGE')).serverData.message).toHaveLength(2048 - envelope.length);

      const over = JSON.stringify({ type: 'CHAT_MESSAGE', serverData: { message: 'b'.repeat(2049 - envelope.length) } });
      expect(Buffer.byteLength(over)).toBe(2049);
      alice.send(over);
      const { code } = await alice.closed;
      expect(code).toBe(1009);
      expect(await bob.next(isDisconnect(ID.alice))).toBeDefined();
      expect(bob.all('CHAT_MESSAGE')).toHaveLength(1);
      // alice may come back.
      const { auth } = await scope.loginWithAuth(alice.socket.url.replace(/\?.*$/, ''), T.alice);
      expect(auth.serverData.userId).toBe(ID.alice);
    });

    it('counts bytes, not characters', async () => {
      const { alice, bob } = await twoUsers({ MAX_FRAME_BYTES: '2048' });
      // 1000 three-byte characters: about 1030 characters but over 3000 bytes.
      const frame = JSON.stringify({ type: 'CHAT_MESSAGE', serverData: { message: '€'.repeat(1000) } });
      expect(frame.length).toBeLessThan(2048);
      alice.send(frame);
      expect((await alice.closed).code).toBe(1009);
      await bob.next(isDisconnect(ID.alice));
    });

    it('applies before authentication too', async () => {
      const dep = await scope.deployment(engine, { MAX_FRAME_BYTES: '2048' });
      const client = await scope.connect(dep.wsUrl(0));
      client.send(JSON.stringify({ type: 'AUTH_MESSAGE', serverData: { authToken: 'x'.repeat(3000) } }));
      expect((await client.closed).code).toBe(1009);
    });
  });
});

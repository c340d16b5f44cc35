/**
 * PROTOCOL.md "Transport", what the other files of this suite do not already show: fields the
 * gateway does not know are ignored on the AUTH_MESSAGE and SAVE_AVATAR frames too (chat.e2e-spec
 * and dialog.e2e-spec show it for CHAT_MESSAGE and DIALOG_MESSAGE), and a frame holds one JSON
 * object (two in one text frame are not two frames). That every frame the gateway sends is one
 * JSON text frame is checked on every frame of every e2e test (test/support/e2e-setup.ts).
 */
import sharp from 'sharp';
import { ENGINES } from '../../support/deployment';
import { chat, frameError, isConnect } from '../../support/frames';
import { expectChatWorks, ID, profileOf, protocolScope, T } from './harness';

jest.setTimeout(20_000);

describe.each(ENGINES)('transport (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());

  it('an AUTH_MESSAGE frame with fields the gateway does not know logs in as it would without them', async () => {
    const dep = await scope.deployment(engine);
    const bob = await scope.login(dep.wsUrl(1), T.bob);
    const alice = await scope.connect(dep.wsUrl(0)); // no token in the upgrade: it comes in the frame
    alice.send({
      type: 'AUTH_MESSAGE',
      messageType: 'auth',
      status: 'SUCCESS',
      clientData: { anything: [1, 2] },
      // A forged userId beside the token must not make alice anyone else.
      serverData: { authToken: T.alice, userId: ID.bob, language: 'ru' },
    });
    const auth = await alice.nextOfType('AUTH_MESSAGE');
    expect(auth).toMatchObject({ type: 'AUTH_MESSAGE', status: 'SUCCESS', serverData: { userId: ID.alice } });
    expect(auth.serverData.userList.find((u: { userId: string }) => u.userId === ID.alice)).toEqual(profileOf(ID.alice));
    expect(await bob.next(isConnect(ID.alice))).toEqual({
      type: 'USER_CONNECTION_MESSAGE',
      serverData: { connectionStatus: 'CONNECT', ...profileOf(ID.alice) },
    });
    await expectChatWorks(alice, ID.alice, [bob]);
  });

  it('a SAVE_AVATAR with fields the gateway does not know is stored as it would be without them', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    const image = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#336699' } }).png().toBuffer();
    alice.send({
      type: 'SAVE_AVATAR',
      messageType: 'avatar',
      clientData: { note: 'ignored' },
      // Fields of the answer or of a profile, forged by the client: neither may be taken over.
      serverData: { imageBase64: image.toString('base64'), avatar: 'https://evil.example.test/x.png', userId: ID.bob, format: 'gif' },
    });
    const reply = await alice.next((f) => f.type === 'SAVE_AVATAR', 10_000);
    expect(reply).toEqual({ type: 'SAVE_AVATAR', status: 'SUCCESS', serverData: { avatar: expect.any(String) } });
    const url: string = reply.serverData.avatar;
    expect(url.startsWith(`${dep.nodes[0].env.PUBLIC_URL}/avatars/`)).toBe(true);
    expect(await bob.nextOfType('USER_UPDATE_MESSAGE')).toEqual({ type: 'USER_UPDATE_MESSAGE', serverData: { userId: ID.alice, avatar: url } });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^image\/(webp|png)$/);
  });

  it('a text frame holding two JSON objects is no frame of the protocol: INVALID_JSON, and neither object is processed', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    const first = JSON.stringify(chat('first of two'));
    const second = JSON.stringify(chat('second of two'));
    alice.send(first + second);
    alice.send(`${first}\n${second}`);
    const errors = [await alice.nextOfType('ERROR_MESSAGE'), await alice.nextOfType('ERROR_MESSAGE')];
    for (const error of errors) {
      expect(error).toEqual(frameError('INVALID_JSON'));
      expect(error).not.toHaveProperty('requestType');
    }
    // Frames are processed in order: had either object been broadcast, it would come before this.
    await expectChatWorks(alice, ID.alice, [bob], 'after the pairs');
    expect(bob.all('CHAT_MESSAGE').map((f) => f.serverData.message)).toEqual(['after the pairs']);
    expect(alice.all('CHAT_MESSAGE').map((f) => f.serverData.message)).toEqual(['after the pairs']);
  });
});

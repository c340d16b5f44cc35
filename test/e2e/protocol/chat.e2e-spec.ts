/**
 * docs/protocol.md "CHAT_MESSAGE": broadcast to every authenticated client, the sender included, with
 * sender and sendTime; validation of `message` (non-empty string of at most CHAT_MAX_LENGTH code
 * points).
 */
import { ENGINES } from '../../support/deployment';
import { authWith, chat, frameError, isConnect } from '../../support/frames';
import { ID, protocolScope, QUIET_MS, T } from './harness';

jest.setTimeout(15_000);

describe.each(ENGINES)('CHAT_MESSAGE (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());

  it('reaches every authenticated client, the sender included, with sender and sendTime', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
    const message = 'Hello, everyone! Привет 👋 "quotes" \\ </script>';
    const before = Date.now();
    bob.send(chat(message));
    for (const client of [alice, bob, carol]) {
      const got = await client.nextOfType('CHAT_MESSAGE');
      expect(got).toEqual({ type: 'CHAT_MESSAGE', serverData: { message, sender: ID.bob, sendTime: expect.any(String) } });
      expect(got.serverData.sendTime).toMatch(/^[1-9][0-9]*$/);
      const sendTime = Number(got.serverData.sendTime);
      expect(sendTime).toBeGreaterThanOrEqual(before - 5);
      expect(sendTime).toBeLessThanOrEqual(Date.now() + 5);
    }
    // Exactly once each.
    await alice.expectSilence(QUIET_MS, (f) => f.type === 'CHAT_MESSAGE');
    for (const client of [alice, bob, carol]) expect(client.all('CHAT_MESSAGE')).toHaveLength(1);
  });

  it('one sender\'s chats arrive in the order sent, with the same sendTime at every receiver', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    for (let i = 0; i < 20; i++) alice.send({ type: 'CHAT_MESSAGE', serverData: { message: `m${i}` } });
    const atBob: string[] = [];
    const timesAtBob: string[] = [];
    for (let i = 0; i < 20; i++) {
      const f = await bob.nextOfType('CHAT_MESSAGE');
      atBob.push(f.serverData.message);
      timesAtBob.push(f.serverData.sendTime);
    }
    const timesAtAlice: string[] = [];
    for (let i = 0; i < 20; i++) timesAtAlice.push((await alice.nextOfType('CHAT_MESSAGE')).serverData.sendTime);
    expect(atBob).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(timesAtBob).toEqual(timesAtAlice);
  });

  it('does not reach a connection that is not authenticated yet, nor later', async () => {
    const dep = await scope.deployment(engine, { AUTH_DEADLINE_MS: '5000' });
    const [alice] = await scope.loginAll(dep, [T.alice]);
    const waiting = await scope.connect(dep.wsUrl(1)); // no token yet: waits for an AUTH_MESSAGE
    alice.send(chat('not for you'));
    await alice.nextOfType('CHAT_MESSAGE');
    await waiting.expectSilence(QUIET_MS);
    waiting.send(authWith(T.bob));
    expect((await waiting.nextOfType('AUTH_MESSAGE')).status).toBe('SUCCESS');
    await alice.next(isConnect(ID.bob));
    await waiting.expectSilence(QUIET_MS);
    expect(waiting.all('CHAT_MESSAGE')).toEqual([]);
    // From now on it does receive.
    alice.send(chat('now for you'));
    expect((await waiting.nextOfType('CHAT_MESSAGE')).serverData.message).toBe('now for you');
  });

  it.each([
    ['an empty message', { serverData: { message: '' } }],
    ['no message', { serverData: {} }],
    ['a numeric message', { serverData: { message: 42 } }],
    ['a null message', { serverData: { message: null } }],
    ['an object message', { serverData: { message: { text: 'hi' } } }],
    ['an array message', { serverData: { message: ['hi'] } }],
    ['no serverData', {}],
    ['serverData a string', { serverData: 'hi' }],
    ['the message at the top level', { message: 'hi' }],
  ])('%s gets INVALID_MESSAGE for CHAT_MESSAGE and is not broadcast', async (_what, body) => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    alice.send({ type: 'CHAT_MESSAGE', ...body });
    const error = await alice.nextOfType('ERROR_MESSAGE');
    expect(error).toEqual(frameError('INVALID_MESSAGE', 'CHAT_MESSAGE'));
    // The connection stays usable; and since one sender's frames are processed and broadcast in
    // order, the next chat bob gets being this one shows the invalid one was not broadcast.
    alice.send(chat('ok'));
    expect(await bob.next()).toMatchObject({ type: 'CHAT_MESSAGE', serverData: { message: 'ok' } });
    expect((await alice.nextOfType('CHAT_MESSAGE')).serverData.message).toBe('ok');
    expect(alice.all('CHAT_MESSAGE')).toHaveLength(1);
  });

  describe('CHAT_MAX_LENGTH counts code points', () => {
    it.each([
      ['5 emoji (10 UTF-16 units)', '😀😁😂🤣😃', true],
      ['5 ASCII characters', 'abcde', true],
      ['5 code points mixing ASCII, BMP and astral', 'a€😀b𝄞', true],
      ['6 ASCII characters', 'abcdef', false],
      ['6 emoji', '😀😁😂🤣😃😄', false],
      ['5 emoji and a letter', '😀😁😂🤣😃x', false],
    ])('CHAT_MAX_LENGTH=5: %s', async (_what, message, accepted) => {
      const dep = await scope.deployment(engine, { CHAT_MAX_LENGTH: '5' });
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      alice.send(chat(message));
      if (accepted) {
        expect((await bob.nextOfType('CHAT_MESSAGE')).serverData).toMatchObject({ message, sender: ID.alice });
        expect((await alice.nextOfType('CHAT_MESSAGE')).serverData.message).toBe(message);
        expect(alice.all('ERROR_MESSAGE')).toEqual([]);
      } else {
        expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'CHAT_MESSAGE'));
        alice.send(chat('next'));
        expect(await bob.next()).toMatchObject({ type: 'CHAT_MESSAGE', serverData: { message: 'next' } });
        expect(bob.all('CHAT_MESSAGE')).toHaveLength(1);
      }
    });
  });

  it('accepts a message of exactly the default CHAT_MAX_LENGTH (4096) and refuses 4097', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    const ok = '😀'.repeat(4096);
    alice.send(chat(ok));
    expect((await bob.nextOfType('CHAT_MESSAGE')).serverData.message).toBe(ok);
    alice.send(chat('x'.repeat(4097)));
    expect(await alice.nextOfType('ERROR_MESSAGE')).toEqual(frameError('INVALID_MESSAGE', 'CHAT_MESSAGE'));
    alice.send(chat('next'));
    expect(await bob.next()).toMatchObject({ type: 'CHAT_MESSAGE', serverData: { message: 'next' } });
  });
});

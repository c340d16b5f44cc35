import { chat } from '../support/frames';
import { Scope } from '../support/scope';

describe('smoke', () => {
  const scope = new Scope();
  afterEach(() => scope.closeAll());

  it('logs in two demo users who chat', async () => {
    const gw = await scope.gateway();
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');
    await alice.nextOfType('USER_CONNECTION_MESSAGE');
    bob.send(chat('hello'));
    const got = await alice.nextOfType('CHAT_MESSAGE');
    expect(got.serverData).toMatchObject({ message: 'hello', sender: '2' });
  });
});

import { startGateway, type TestGateway } from '../support/gateway';
import { TestClient } from '../support/ws-client';

describe('smoke', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('logs in two demo users who chat', async () => {
    const alice = await TestClient.login(gw.wsUrl, 'alice-token');
    const bob = await TestClient.login(gw.wsUrl, 'bob-token');
    await alice.nextOfType('USER_CONNECTION_MESSAGE');
    bob.send({ type: 'CHAT_MESSAGE', serverData: { message: 'hello' } });
    const got = await alice.nextOfType('CHAT_MESSAGE');
    expect(got.serverData).toMatchObject({ message: 'hello', sender: '2' });
    await alice.close();
    await bob.close();
  });
});

/**
 * docs/protocol.md "USER_CONNECTION_MESSAGE": CONNECT with the whole profile to everyone else when a
 * user is authenticated, DISCONNECT with only connectionStatus and userId when its connection
 * ends for any reason; the userList of a later login reflects who is online.
 */
import { ENGINES } from '../../support/deployment';
import { authWith, isConnect, isDisconnect, isType } from '../../support/frames';
import { eventually } from '../../support/time';
import { authFailure, ID, profileOf, protocolScope, QUIET_MS, T } from './harness';

jest.setTimeout(15_000);

const isPresence = isType('USER_CONNECTION_MESSAGE');

describe.each(ENGINES)('presence (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());

  it('CONNECT goes to everyone else with all seven profile fields; never to the user itself', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    const frank = await scope.login(dep.wsUrl(2), T.frank);
    for (const client of [alice, bob]) {
      const frame = await client.next(isConnect(ID.frank));
      expect(frame).toEqual({ type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'CONNECT', ...profileOf(ID.frank) } });
    }
    // alice was told about bob with bob's profile.
    expect(alice.frames.find(isConnect(ID.bob))).toEqual({
      type: 'USER_CONNECTION_MESSAGE',
      serverData: { connectionStatus: 'CONNECT', ...profileOf(ID.bob) },
    });
    await frank.expectSilence(QUIET_MS);
    expect(frank.all('USER_CONNECTION_MESSAGE')).toEqual([]);
    expect(alice.all('USER_CONNECTION_MESSAGE').filter((f) => f.serverData.userId === ID.alice)).toEqual([]);
    expect(bob.all('USER_CONNECTION_MESSAGE').filter((f) => f.serverData.userId === ID.bob)).toEqual([]);
    // Exactly one CONNECT per login.
    expect(alice.all('USER_CONNECTION_MESSAGE').filter(isConnect(ID.frank))).toHaveLength(1);
  });

  it('DISCONNECT (only connectionStatus and userId) goes to everyone else when a user closes', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
    await bob.close();
    for (const client of [alice, carol]) {
      const frame = await client.next(isDisconnect(ID.bob));
      expect(frame).toEqual({ type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'DISCONNECT', userId: ID.bob } });
    }
    await alice.expectSilence(QUIET_MS, isPresence);
    expect(alice.all('USER_CONNECTION_MESSAGE').filter(isDisconnect(ID.bob))).toHaveLength(1);
  });

  it('DISCONNECT goes out when a socket is terminated without a close handshake', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    bob.terminate();
    const frame = await alice.next(isDisconnect(ID.bob));
    expect(frame).toEqual({ type: 'USER_CONNECTION_MESSAGE', serverData: { connectionStatus: 'DISCONNECT', userId: ID.bob } });
    // bob is really gone: he can log in again, and a dialog to him meanwhile failed.
    alice.send({ type: 'DIALOG_MESSAGE', clientData: 'x', serverData: { receiver: ID.bob, messageId: 'to-gone-bob' } });
    expect(await alice.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'ERROR' });
    const { auth } = await scope.loginWithAuth(dep.wsUrl(1), T.bob);
    expect(auth.serverData.userList.map((u: { userId: string }) => u.userId).sort()).toEqual([ID.alice, ID.bob]);
    expect(await alice.next(isConnect(ID.bob))).toBeDefined();
  });

  it('the userList of a later login reflects exactly who is online', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
    await bob.close();
    await alice.next(isDisconnect(ID.bob));
    await carol.next(isDisconnect(ID.bob));
    const { auth } = await scope.loginWithAuth(dep.wsUrl(3), T.dave);
    const list = auth.serverData.userList as { userId: string }[];
    expect(list.map((u) => u.userId).sort()).toEqual([ID.alice, ID.carol, ID.dave]);
    expect(list.find((u) => u.userId === ID.carol)).toEqual(profileOf(ID.carol));
    // One entry per user.
    expect(new Set(list.map((u) => u.userId)).size).toBe(list.length);
  });

  it('the first login of a deployment sees only itself', async () => {
    const dep = await scope.deployment(engine);
    const { auth } = await scope.loginWithAuth(dep.wsUrl(0), T.alice);
    expect(auth.serverData.userList).toEqual([profileOf(ID.alice)]);
  });

  it('connections that never authenticate cause no presence frames', async () => {
    const dep = await scope.deployment(engine);
    const [alice] = await scope.loginAll(dep, [T.alice]);
    const invalid = await scope.connect(dep.wsUrl(1), { token: 'nobody-token' });
    await authFailure(invalid);
    const waiting = await scope.connect(dep.wsUrl(2));
    await waiting.close();
    const duplicate = await scope.connect(dep.wsUrl(3), { token: T.alice });
    expect((await authFailure(duplicate)).code).toBe(4409);
    await alice.expectSilence(QUIET_MS, isPresence);
    expect(alice.all('USER_CONNECTION_MESSAGE')).toEqual([]);
    const { auth } = await scope.loginWithAuth(dep.wsUrl(4), T.bob);
    expect(auth.serverData.userList.map((u: { userId: string }) => u.userId).sort()).toEqual([ID.alice, ID.bob]);
  });

  it('a connection that has not logged in yet is told nothing of presence; its later userList is current', async () => {
    const dep = await scope.deployment(engine, { AUTH_DEADLINE_MS: '10000' });
    // On a cluster: alice and bob on node 0, dave and the waiting connection on node 1.
    const [alice, dave] = await scope.loginAll(dep, [T.alice, T.dave]);
    const waiting = await scope.connect(dep.wsUrl(3)); // no token yet: waits for an AUTH_MESSAGE
    const bob = await scope.login(dep.wsUrl(2), T.bob);
    await alice.next(isConnect(ID.bob));
    await bob.close();
    // dave shares the waiting connection's node: once he has both frames, that node has sent them.
    await dave.next(isConnect(ID.bob));
    await dave.next(isDisconnect(ID.bob));
    await alice.next(isDisconnect(ID.bob));
    await waiting.expectSilence(QUIET_MS);
    expect(waiting.frames).toEqual([]);
    waiting.send(authWith(T.carol));
    const auth = await waiting.nextOfType('AUTH_MESSAGE');
    expect(auth.status).toBe('SUCCESS');
    expect(auth.serverData.userList.map((u: { userId: string }) => u.userId).sort()).toEqual([ID.alice, ID.carol, ID.dave]);
    await alice.next(isConnect(ID.carol));
    await dave.next(isConnect(ID.carol));
    await waiting.expectSilence(QUIET_MS, isPresence);
    expect(waiting.all('USER_CONNECTION_MESSAGE')).toEqual([]);
  });

  it('a user who leaves and comes back is announced again, in order', async () => {
    const dep = await scope.deployment(engine);
    const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
    await bob.close();
    await scope.login(dep.wsUrl(2), T.bob);
    await eventually(() => alice.all('USER_CONNECTION_MESSAGE').length >= 3, 3000, 'three presence frames');
    await alice.expectSilence(QUIET_MS, isPresence);
    expect(alice.all('USER_CONNECTION_MESSAGE').map((f) => `${f.serverData.connectionStatus}:${f.serverData.userId}`)).toEqual([
      `CONNECT:${ID.bob}`,
      `DISCONNECT:${ID.bob}`,
      `CONNECT:${ID.bob}`,
    ]);
  });
});

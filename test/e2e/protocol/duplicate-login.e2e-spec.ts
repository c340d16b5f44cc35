/**
 * docs/protocol.md "AUTH_MESSAGE", the duplicate-login probe: before refusing a newcomer with "1", the
 * gateway pings the user's existing connection, on whichever node it is, and waits up to
 * DUPLICATE_PROBE_MS. A live one keeps its place; one that does not answer (a phone that changed
 * networks, a half-open socket) is dropped, its DISCONNECT goes out, and the newcomer logs in. Of
 * several racing newcomers exactly one wins.
 */
import { ENGINES } from '../../support/deployment';
import { authError, isConnect, isDisconnect } from '../../support/frames';
import { eventually, sleep } from '../../support/time';
import { authFailure, expectChatWorks, ID, protocolScope, T } from './harness';

jest.setTimeout(30_000);

const PROBE_MS = 1000;

describe.each(ENGINES)('duplicate login (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());

  // On a cluster, the newcomer connects to the other node than the existing connection.
  const NEWCOMER_NODE = 1;

  it('a live existing connection keeps its place: the newcomer gets "1"/4409 after one ping round trip', async () => {
    const dep = await scope.deployment(engine, { DUPLICATE_PROBE_MS: String(PROBE_MS) });
    const alice = await scope.login(dep.wsUrl(0), T.alice);
    const bob = await scope.login(dep.wsUrl(NEWCOMER_NODE), T.bob);
    await alice.next(isConnect(ID.bob));

    const started = Date.now();
    const newcomer = await scope.connect(dep.wsUrl(NEWCOMER_NODE), { token: T.alice });
    const { frame, code } = await authFailure(newcomer);
    expect(frame).toEqual(authError('1'));
    expect(code).toBe(4409);
    // It did not wait for the probe time: the existing connection answered at once.
    expect(Date.now() - started).toBeLessThan(PROBE_MS);
    // The existing connection is untouched, and nobody saw it leave.
    await expectChatWorks(alice, ID.alice, [bob]);
    expect(bob.all('USER_CONNECTION_MESSAGE').filter(isDisconnect(ID.alice))).toEqual([]);
  });

  it('an existing connection that stopped answering pings is replaced within DUPLICATE_PROBE_MS + 1 s, with DISCONNECT then CONNECT', async () => {
    const dep = await scope.deployment(engine, { DUPLICATE_PROBE_MS: String(PROBE_MS) });
    const stale = await scope.login(dep.wsUrl(0), T.alice);
    const bob = await scope.login(dep.wsUrl(NEWCOMER_NODE), T.bob);
    await stale.next(isConnect(ID.bob));
    // The phone changed networks: the old socket is still open, but nothing reads it any more.
    stale.socket.pause();

    const started = Date.now();
    const { client: fresh, auth } = await scope.loginWithAuth(dep.wsUrl(NEWCOMER_NODE), T.alice);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(PROBE_MS - 50);
    expect(took).toBeLessThan(PROBE_MS + 1000);
    expect(auth.serverData.userList.filter((u: { userId: string }) => u.userId === ID.alice)).toHaveLength(1);

    // Everyone else saw the old connection leave, then the new one arrive.
    const disconnect = await bob.next(isDisconnect(ID.alice));
    const connect = await bob.next(isConnect(ID.alice));
    expect(bob.frames.indexOf(disconnect)).toBeLessThan(bob.frames.indexOf(connect));
    await expectChatWorks(fresh, ID.alice, [bob]);

    // The old socket was dropped by the gateway (no close handshake: 1006 once it reads again).
    stale.socket.resume();
    expect((await stale.closed).code).toBe(1006);
  });

  it('of several newcomers racing to replace an unresponsive connection, exactly one wins', async () => {
    const dep = await scope.deployment(engine, { DUPLICATE_PROBE_MS: String(PROBE_MS) });
    const stale = await scope.login(dep.wsUrl(0), T.alice);
    const bob = await scope.login(dep.wsUrl(NEWCOMER_NODE), T.bob);
    await stale.next(isConnect(ID.bob));
    stale.socket.pause();

    const newcomers = await Promise.all(Array.from({ length: 4 }, (_, i) => scope.connect(dep.wsUrl(i), { token: T.alice })));
    const answers = await Promise.all(newcomers.map((c) => c.nextOfType('AUTH_MESSAGE', PROBE_MS + 5000)));
    expect(answers.filter((a) => a.status === 'SUCCESS')).toHaveLength(1);
    expect(answers.filter((a) => a.status === 'ERROR').map((a) => a.error.errorCode)).toEqual(['1', '1', '1']);
    const losers = newcomers.filter((_, i) => answers[i].status === 'ERROR');
    for (const loser of losers) expect((await loser.closed).code).toBe(4409);

    // One DISCONNECT for the old connection and one CONNECT for the winner, no more.
    await eventually(() => bob.all('USER_CONNECTION_MESSAGE').filter(isConnect(ID.alice)).length === 1, 3000, 'the CONNECT');
    await sleep(300);
    expect(bob.all('USER_CONNECTION_MESSAGE').filter(isDisconnect(ID.alice))).toHaveLength(1);
    expect(bob.all('USER_CONNECTION_MESSAGE').filter(isConnect(ID.alice))).toHaveLength(1);
    const winner = newcomers[answers.findIndex((a) => a.status === 'SUCCESS')];
    await expectChatWorks(winner, ID.alice, [bob]);
  });
});

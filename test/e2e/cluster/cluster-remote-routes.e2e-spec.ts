/**
 * Issue 13, cross-node dialogs: a node remembers on which node the users it sends dialogs to are
 * (RemoteRoutes, REMOTE_ROUTES_MAX), so a dialog costs one PUBLISH and no registry read (HGET); a
 * route that turned out stale (the user moved to another node, or left) is read again, and the
 * DELIVERY rules hold throughout. Three nodes on one real redis-server.
 */
import { engineOf, startClusterDeployment, type ClusterDeployment } from '../../support/cluster';
import { makeUser } from '../../support/factories';
import { redisInfo } from '../../support/redis-sentinel';
import { Scope } from '../../support/scope';
import { eventually } from '../../support/time';
import type { Frame, TestClient } from '../../support/ws-client';

jest.setTimeout(60_000);

const USERS = Array.from({ length: 4 }, (_, i) => makeUser(`rr${i}`));
const token = (i: number) => USERS[i].token;
const uid = (i: number) => USERS[i].profile.userId;

describe('cluster: remembered routes of cross-node dialogs', () => {
  const shared = new Scope({ users: USERS });
  const scope = new Scope();
  let cluster: ClusterDeployment;

  beforeAll(async () => {
    const auth = await shared.fakeAuthServer();
    cluster = shared.track(await startClusterDeployment({ AUTH_SERVER_URL: auth.url }, { nodes: 3 }), 'app');
  });
  afterAll(() => shared.closeAll());
  afterEach(() => scope.closeAll());

  const login = (node: number, user: number): Promise<TestClient> => scope.login(cluster.wsUrl(node), token(user));

  /** Registry reads of a user's node so far (HGET calls on the cluster's Redis). */
  async function registryReads(): Promise<number> {
    const stats = await redisInfo(cluster.redis.port, 'commandstats');
    return Number(/calls=(\d+)/.exec(stats.cmdstat_hget ?? 'calls=0')![1]);
  }

  /** Sends one dialog from `from` to user `to` and returns its DELIVERY_MESSAGE. */
  async function dialog(from: TestClient, to: number, messageId: string, clientData: unknown = messageId): Promise<Frame> {
    from.send({ type: 'DIALOG_MESSAGE', clientData, serverData: { receiver: uid(to), messageId } });
    const delivery = await from.nextOfType('DELIVERY_MESSAGE');
    expect(delivery.serverData.messageId).toBe(messageId);
    return delivery;
  }

  /** Waits until the user is gone from the registry (their logout reached Redis; HVALS, not HGET). */
  async function offline(user: number): Promise<void> {
    const registry = engineOf(cluster.nodes[0]).presence;
    await eventually(async () => !(await registry.list()).some((p) => p.userId === uid(user)), 5000, `${uid(user)} offline`);
  }

  it('after the first dialog, dialogs to a user on another node read no registry: one PUBLISH each, in order', async () => {
    const alice = await login(0, 0);
    const bob = await login(1, 1);
    expect((await dialog(alice, 1, 'first')).status).toBe('SUCCESS');
    const before = await registryReads();
    // One at a time (each waits for its DELIVERY), then a burst.
    for (let i = 0; i < 5; i++) expect((await dialog(alice, 1, `one-${i}`)).status).toBe('SUCCESS');
    for (let i = 0; i < 5; i++) expect((await bob.nextOfType('DIALOG_MESSAGE')).serverData.messageId).toBe(i === 0 ? 'first' : `one-${i - 1}`);
    expect((await bob.nextOfType('DIALOG_MESSAGE')).serverData.messageId).toBe('one-4');
    for (let i = 0; i < 20; i++) alice.send({ type: 'DIALOG_MESSAGE', clientData: { i }, serverData: { receiver: uid(1) } });
    const deliveries: Frame[] = [];
    for (let i = 0; i < 20; i++) deliveries.push(await alice.nextOfType('DELIVERY_MESSAGE'));
    expect(deliveries.map((d) => d.status)).toEqual(Array.from({ length: 20 }, () => 'SUCCESS'));
    const received: number[] = [];
    for (let i = 0; i < 20; i++) received.push((await bob.nextOfType('DIALOG_MESSAGE')).clientData.i);
    expect(received).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect((await registryReads()) - before).toBe(0);
  });

  it('a receiver who moved to a third node gets the next dialog there: SUCCESS, after one registry read', async () => {
    const alice = await login(0, 0);
    let bob = await login(1, 2);
    expect((await dialog(alice, 2, 'before-move')).status).toBe('SUCCESS');
    await bob.nextOfType('DIALOG_MESSAGE');
    await bob.close();
    await offline(2);
    bob = await login(2, 2);
    const before = await registryReads();
    expect((await dialog(alice, 2, 'after-move', { moved: true })).status).toBe('SUCCESS');
    const got = await bob.nextOfType('DIALOG_MESSAGE');
    expect(got.clientData).toEqual({ moved: true });
    expect(got.serverData.messageId).toBe('after-move');
    expect((await registryReads()) - before).toBe(1);
    // The new node is remembered.
    expect((await dialog(alice, 2, 'again')).status).toBe('SUCCESS');
    expect((await registryReads()) - before).toBe(1);
  });

  it('a receiver who left: ERROR (the remembered node refuses, the registry says offline), and nothing is delivered', async () => {
    const alice = await login(0, 0);
    const bob = await login(1, 3);
    expect((await dialog(alice, 3, 'hello')).status).toBe('SUCCESS');
    await bob.close();
    await offline(3);
    expect((await dialog(alice, 3, 'gone')).status).toBe('ERROR');
    // Back on the node alice's node remembers: delivered again.
    const back = await login(1, 3);
    expect((await dialog(alice, 3, 'back')).status).toBe('SUCCESS');
    expect((await back.nextOfType('DIALOG_MESSAGE')).serverData.messageId).toBe('back');
  });
});

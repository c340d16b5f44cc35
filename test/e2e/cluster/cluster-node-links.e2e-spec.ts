/**
 * Issue 13, cross-node dialogs on direct links (NODE_LINK_HOST): a dialog to a user on another
 * node goes on a TCP link between the two nodes, not through Redis there and back, and the
 * DELIVERY rules hold: in order, SUCCESS only for what the receiver got, ERROR when the receiver's
 * node dies; a node without links is still reached through Redis. Real nodes on a real redis-server.
 */
import { engineOf, startClusterDeployment, type ClusterDeployment } from '../../support/cluster';
import { makeUser } from '../../support/factories';
import { metricValue, scrape } from '../../support/metrics';
import { redisInfo } from '../../support/redis-sentinel';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import type { Frame, TestClient } from '../../support/ws-client';

jest.setTimeout(60_000);

const USERS = Array.from({ length: 4 }, (_, i) => makeUser(`nl${i}`));
const token = (i: number) => USERS[i].token;
const uid = (i: number) => USERS[i].profile.userId;
const LINKS = { NODE_LINK_HOST: '127.0.0.1' };

describe('cluster: node links', () => {
  const shared = new Scope({ users: USERS });
  const scope = new Scope();
  let cluster: ClusterDeployment;

  beforeAll(async () => {
    const auth = await shared.fakeAuthServer();
    cluster = shared.track(await startClusterDeployment({ AUTH_SERVER_URL: auth.url, ...LINKS }, { nodes: 2 }), 'app');
  });
  afterAll(() => shared.closeAll());
  afterEach(() => scope.closeAll());

  /** PUBLISH calls on the cluster's Redis so far. */
  async function publishes(): Promise<number> {
    const stats = await redisInfo(cluster.redis.port, 'commandstats');
    return Number(/calls=(\d+)/.exec(stats.cmdstat_publish ?? 'calls=0')![1]);
  }

  async function dialog(from: TestClient, to: number, messageId: string): Promise<Frame> {
    from.send({ type: 'DIALOG_MESSAGE', clientData: messageId, serverData: { receiver: uid(to), messageId } });
    const delivery = await from.nextOfType('DELIVERY_MESSAGE');
    expect(delivery.serverData.messageId).toBe(messageId);
    return delivery;
  }

  it('carries dialogs between two nodes on their link, both ways, in order, with no PUBLISH', async () => {
    const alice = await scope.login(cluster.wsUrl(0), token(0));
    const bob = await scope.login(cluster.wsUrl(1), token(1));
    // The first dialogs each way open the links (they go through Redis meanwhile).
    expect((await dialog(alice, 1, 'open-1')).status).toBe('SUCCESS');
    expect((await bob.nextOfType('DIALOG_MESSAGE')).serverData.messageId).toBe('open-1');
    expect((await dialog(bob, 0, 'open-0')).status).toBe('SUCCESS');
    expect((await alice.nextOfType('DIALOG_MESSAGE')).serverData.messageId).toBe('open-0');
    await eventually(() => !!engineOf(cluster.nodes[0]).links?.linkTo(engineOf(cluster.nodes[1]).nodeId), 5000, 'link 0 -> 1');
    await eventually(() => !!engineOf(cluster.nodes[1]).links?.linkTo(engineOf(cluster.nodes[0]).nodeId), 5000, 'link 1 -> 0');

    const before = await publishes();
    // A burst each way (one way at a time: a client's frames are read by type, in order).
    for (const [sender, receiver, to] of [
      [alice, bob, 1],
      [bob, alice, 0],
    ] as const) {
      for (let i = 0; i < 30; i++) sender.send({ type: 'DIALOG_MESSAGE', clientData: { i }, serverData: { receiver: uid(to) } });
      const deliveries: string[] = [];
      for (let i = 0; i < 30; i++) deliveries.push((await sender.nextOfType('DELIVERY_MESSAGE')).status as string);
      expect(deliveries).toEqual(Array.from({ length: 30 }, () => 'SUCCESS'));
      const got: number[] = [];
      for (let i = 0; i < 30; i++) got.push((await receiver.nextOfType('DIALOG_MESSAGE')).clientData.i);
      expect(got).toEqual(Array.from({ length: 30 }, (_, i) => i));
    }
    expect((await publishes()) - before).toBe(0);

    // /metrics says which way the deliveries went, and that the links are open.
    for (const node of cluster.nodes.slice(0, 2)) {
      const { samples } = await scrape(node);
      expect(metricValue(samples, 'gateway_node_deliveries_total', { path: 'link' })).toBeGreaterThanOrEqual(30);
      expect(metricValue(samples, 'gateway_node_deliveries_total', { path: 'redis' })).toBeGreaterThanOrEqual(1);
      expect(metricValue(samples, 'gateway_node_links', { direction: 'out' })).toBe(1);
      expect(metricValue(samples, 'gateway_node_links', { direction: 'in' })).toBe(1);
    }
  });

  it('reaches a node without links through Redis, both ways', async () => {
    const plain = await cluster.addNode({ NODE_LINK_HOST: '' });
    const alice = await scope.login(cluster.wsUrl(0), token(0));
    const carol = await scope.login(plain.wsUrl, token(2));
    for (let i = 0; i < 3; i++) {
      expect((await dialog(alice, 2, `to-plain-${i}`)).status).toBe('SUCCESS');
      expect((await carol.nextOfType('DIALOG_MESSAGE')).serverData.messageId).toBe(`to-plain-${i}`);
      expect((await dialog(carol, 0, `from-plain-${i}`)).status).toBe('SUCCESS');
      await sleep(100);
    }
    expect(engineOf(plain).links).toBeUndefined();
    expect(engineOf(cluster.nodes[0]).links?.linkTo(engineOf(plain).nodeId)).toBeUndefined();
  });

  it('a receiver whose node is killed: DELIVERY ERROR, never SUCCESS, and the sender\'s node goes on', async () => {
    const doomed = await cluster.addProcessNode(LINKS);
    const alice = await scope.login(cluster.wsUrl(0), token(0));
    const dave = await scope.login(doomed.wsUrl, token(3));
    expect((await dialog(alice, 3, 'before')).status).toBe('SUCCESS');
    await dave.nextOfType('DIALOG_MESSAGE');
    await eventually(() => linkUsed(), 5000, 'link open');
    await doomed.kill('SIGKILL');
    for (let i = 0; i < 3; i++) expect((await dialog(alice, 3, `after-${i}`)).status).toBe('ERROR');
    // The rest of the cluster is unaffected.
    const bob = await scope.login(cluster.wsUrl(1), token(1));
    expect((await dialog(alice, 1, 'still')).status).toBe('SUCCESS');
    expect((await bob.nextOfType('DIALOG_MESSAGE')).serverData.messageId).toBe('still');

    /** True once a dialog to dave went without a PUBLISH (the link to his node is open). */
    async function linkUsed(): Promise<boolean> {
      const before = await publishes();
      const ok = (await dialog(alice, 3, `probe-${Date.now()}`)).status === 'SUCCESS';
      return ok && (await publishes()) === before;
    }
  });

  it('refuses to start when the link port cannot be bound, and says which setting', async () => {
    const taken = engineOf(cluster.nodes[0]).links!.port!;
    await expect(cluster.addNode({ NODE_LINK_HOST: '127.0.0.1', NODE_LINK_PORT: String(taken) })).rejects.toThrow(/NODE_LINK_HOST, NODE_LINK_PORT.*EADDRINUSE/);
  });
});

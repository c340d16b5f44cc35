/**
 * docs/protocol.md "Server API", a user's node that does not answer: the registry says the user
 * is online on a node that is stopped (SIGSTOP) or killed and not yet swept. Disconnect and
 * profile then answer 503 (nothing is known; retry), never a 404 or `false` that would tell the
 * backend the user is gone while its connection may still be open. Real redis-server, two
 * in-process nodes with the API, and the user's node as a child process running src/main.ts.
 */
import { CLUSTER_PRESENCE_TTL_MS, startClusterDeployment, type ClusterDeployment, type NodeProcess } from '../../support/cluster';
import { isDisconnect, isType } from '../../support/frames';
import { eventually } from '../../support/time';
import { received } from '../../support/ws-client';
import { apiCall, apiScope, API_ENV, ID, T } from './api-harness';

jest.setTimeout(60_000);

// Short, so that the stopped node stays well within its presence lease (CLUSTER_PRESENCE_TTL_MS).
const DELIVERY_TIMEOUT_MS = 600;

describe("Server API when the user's node does not answer", () => {
  const scope = apiScope();
  let cluster: ClusterDeployment;
  let proc: NodeProcess;

  beforeEach(async () => {
    cluster = scope.track(await startClusterDeployment({ ...API_ENV, DELIVERY_TIMEOUT_MS: String(DELIVERY_TIMEOUT_MS) }), 'app');
    // The child serves no API of its own (an API_PORT of the parent's would clash).
    proc = await cluster.addProcessNode({ API_KEYS: '' });
  });
  afterEach(() => scope.closeAll());

  it('a stopped node: disconnect and profile answer 503 with Retry-After after DELIVERY_TIMEOUT_MS; once it runs again, they work', async () => {
    const observer = await scope.login(cluster.wsUrl(0), T.alice);
    const bob = await scope.login(proc.wsUrl, T.bob);
    await proc.kill('SIGSTOP');
    try {
      const started = Date.now();
      const kick = await apiCall(cluster.nodes[0], 'POST', `/api/v1/users/${ID.bob}/disconnect`, { body: { reason: 'bye' } });
      expect(kick.status).toBe(503);
      expect(kick.json).toEqual({ error: "the user's node did not answer" });
      expect(kick.headers['retry-after']).toBe('1');
      expect(Date.now() - started).toBeGreaterThanOrEqual(DELIVERY_TIMEOUT_MS - 50);

      const profile = await apiCall(cluster.nodes[1], 'PATCH', `/api/v1/users/${ID.bob}/profile`, { body: { status: 'away' } });
      expect(profile.status).toBe(503);
      expect(profile.json).toEqual({ error: "the user's node did not answer" });
      // Still listed as online: the registry knows no better until the node is swept.
      expect((await apiCall(cluster.nodes[0], 'GET', `/api/v1/users/${ID.bob}`)).status).toBe(200);
    } finally {
      await proc.kill('SIGCONT');
    }
    // Neither late command was carried out when the node woke up: bob is still connected, unchanged.
    await observer.expectSilence(500, (f) => isType('USER_UPDATE_MESSAGE')(f) || isDisconnect(ID.bob)(f));
    expect(bob.closeInfo).toBeUndefined();

    const profile = await apiCall(cluster.nodes[1], 'PATCH', `/api/v1/users/${ID.bob}/profile`, { body: { status: 'away' } });
    expect(profile.status).toBe(200);
    expect(profile.json).toMatchObject({ userId: ID.bob, status: 'away' });
    const kick = await apiCall(cluster.nodes[0], 'POST', `/api/v1/users/${ID.bob}/disconnect`, { body: { reason: 'bye' } });
    expect(kick).toMatchObject({ status: 200, json: { disconnected: true } });
    expect(await bob.closed).toMatchObject({ code: 4403, reason: 'bye' });
  });

  it('a stopped node: a dialog to its user answers 200 ERROR after DELIVERY_TIMEOUT_MS and is not delivered when the node wakes up; the repeat after that ERROR is delivered', async () => {
    const bob = await scope.login(proc.wsUrl, T.bob);
    const body = { sender: 'shop', receiver: ID.bob, clientData: { n: 1 }, messageId: 'to-a-stopped-node' };
    expect((await apiCall(cluster.nodes[0], 'POST', '/api/v1/dialog', { body: { ...body, messageId: 'warm-up' } })).json.status).toBe('SUCCESS');
    await bob.next(isType('DIALOG_MESSAGE'));
    await proc.kill('SIGSTOP');
    try {
      const started = Date.now();
      const reply = await apiCall(cluster.nodes[1], 'POST', '/api/v1/dialog', { body });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ status: 'ERROR', messageId: 'to-a-stopped-node' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(DELIVERY_TIMEOUT_MS - 50);
    } finally {
      await proc.kill('SIGCONT');
    }
    // The node wakes up well within its lease and drops the request whose deadline passed.
    await bob.expectSilence(700, isType('DIALOG_MESSAGE'));
    const retry = await apiCall(cluster.nodes[0], 'POST', '/api/v1/dialog', { body: { ...body, clientData: { n: 2 } } });
    expect(retry.json).toEqual({ status: 'SUCCESS', messageId: 'to-a-stopped-node' });
    expect(await bob.next(isType('DIALOG_MESSAGE'))).toMatchObject({ clientData: { n: 2 }, serverData: { messageId: 'to-a-stopped-node' } });
    expect(bob.all('DIALOG_MESSAGE')).toHaveLength(2);
  });

  it('a killed node: 503 until its users are swept (PRESENCE_TTL_MS), then the user is not online (false, 404)', async () => {
    const observer = await scope.login(cluster.wsUrl(0), T.alice);
    await scope.login(proc.wsUrl, T.bob);
    await proc.kill('SIGKILL');
    expect((await apiCall(cluster.nodes[0], 'POST', `/api/v1/users/${ID.bob}/disconnect`)).status).toBe(503);

    await received(observer, [isDisconnect(ID.bob)], CLUSTER_PRESENCE_TTL_MS + 3000);
    await eventually(async () => (await apiCall(cluster.nodes[0], 'GET', `/api/v1/users/${ID.bob}`)).status === 404, 2000, 'bob swept');
    expect(await apiCall(cluster.nodes[0], 'POST', `/api/v1/users/${ID.bob}/disconnect`)).toMatchObject({ status: 200, json: { disconnected: false } });
    expect(await apiCall(cluster.nodes[1], 'PATCH', `/api/v1/users/${ID.bob}/profile`, { body: { status: 'x' } })).toMatchObject({
      status: 404,
      json: { error: 'user not online' },
    });
  });
});

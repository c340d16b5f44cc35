/**
 * Issue 3, faults: a node killed without warning, a node that does not answer, Redis down and
 * back (empty), and a node started before Redis. Real redis-server; the nodes that are killed or
 * stopped are real child processes running src/main.ts.
 */
import { CLUSTER_PRESENCE_TTL_MS, engineOf, startClusterDeployment, waitNodeReady, type ClusterDeployment, type NodeProcess } from '../../support/cluster';
import { makeUser } from '../../support/factories';
import { chat, isChat, isConnect, isDisconnect } from '../../support/frames';
import { httpStatus } from '../../support/http';
import { startRedisServer } from '../../support/redis-server';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import { received, type Frame, type TestClient } from '../../support/ws-client';

jest.setTimeout(90_000);

const TTL = CLUSTER_PRESENCE_TTL_MS;
const DELIVERY_TIMEOUT_MS = 1000;

const USERS = Array.from({ length: 20 }, (_, i) => makeUser(`f${i}`));
const token = (i: number) => USERS[i].token;
const uid = (i: number) => USERS[i].profile.userId;

function userIds(auth: Frame): string[] {
  return (auth.serverData.userList as Frame[]).map((u) => u.userId).sort();
}

describe('cluster faults', () => {
  /** The cluster and its authorization server, for the whole file. */
  const shared = new Scope({ users: USERS });
  /** What each test starts. */
  const scope = new Scope();
  let cluster: ClusterDeployment;

  const login = (url: string, user: number): Promise<TestClient> => scope.login(url, token(user));
  const attempt = (url: string, user: number) => scope.attempt(url, token(user));

  beforeAll(async () => {
    const auth = await shared.fakeAuthServer();
    cluster = shared.track(await startClusterDeployment({ AUTH_SERVER_URL: auth.url, DELIVERY_TIMEOUT_MS: String(DELIVERY_TIMEOUT_MS) }), 'app');
  });
  afterAll(() => shared.closeAll());
  afterEach(async () => {
    await scope.closeAll();
    await eventually(async () => (await engineOf(cluster.nodes[0]).presence.list()).length === 0, 8000, 'everyone offline');
  });

  describe('a node running as a child process', () => {
    let proc: NodeProcess;
    beforeAll(async () => {
      proc = await cluster.addProcessNode();
    });

    it('a DIALOG to a node that does not answer gets DELIVERY ERROR after DELIVERY_TIMEOUT_MS, and is not delivered late', async () => {
      const sender = await login(cluster.wsUrl(0), 0);
      const receiver = await login(proc.wsUrl, 1);
      sender.send({ type: 'DIALOG_MESSAGE', clientData: 'warm-up', serverData: { receiver: uid(1), messageId: 'w1' } });
      expect(await sender.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS' });
      await receiver.nextOfType('DIALOG_MESSAGE');

      await proc.kill('SIGSTOP');
      try {
        const sentAt = Date.now();
        sender.send({ type: 'DIALOG_MESSAGE', clientData: 'stalled', serverData: { receiver: uid(1), messageId: 's1' } });
        const delivery = await sender.nextOfType('DELIVERY_MESSAGE', DELIVERY_TIMEOUT_MS + 2000);
        expect(delivery).toMatchObject({ status: 'ERROR', serverData: { messageId: 's1' } });
        expect(Date.now() - sentAt).toBeGreaterThanOrEqual(DELIVERY_TIMEOUT_MS - 50);
      } finally {
        await proc.kill('SIGCONT');
      }
      // The node wakes up (well within its lease) and drops the request whose deadline passed.
      await receiver.expectSilence(700, (f) => f.type === 'DIALOG_MESSAGE');
      sender.send({ type: 'DIALOG_MESSAGE', clientData: 'again', serverData: { receiver: uid(1), messageId: 's1' } });
      expect(await sender.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 's1' } });
      expect((await receiver.nextOfType('DIALOG_MESSAGE')).clientData).toBe('again');
    });

    it('a node killed with SIGKILL loses its users within PRESENCE_TTL_MS + 2 s: DISCONNECT, userList, login again', async () => {
      const observer = await login(cluster.wsUrl(0), 0);
      const victim = await login(proc.wsUrl, 1);
      const victim2 = await login(proc.wsUrl, 2);
      await received(observer, [isConnect(uid(1)), isConnect(uid(2))]);
      // Its users cannot log in elsewhere while it lives.
      const dup = await attempt(cluster.wsUrl(1), 1);
      expect(dup.auth).toMatchObject({ status: 'ERROR', error: { errorCode: '1' } });

      await proc.kill('SIGKILL');
      const killedAt = Date.now();
      await received(observer, [isDisconnect(uid(1)), isDisconnect(uid(2))], TTL + 2000);
      expect(Date.now() - killedAt).toBeLessThanOrEqual(TTL + 2000);
      expect((await victim.closed).code).toBe(1006);
      await victim2.closed;

      const other = await login(cluster.wsUrl(1), 3);
      expect(userIds(other.frames[0])).toEqual([uid(0), uid(3)].sort());
      await login(cluster.wsUrl(1), 1); // can log in again
      await sleep(300);
      // Exactly one DISCONNECT each, though two nodes sweep.
      const disconnects = observer.all('USER_CONNECTION_MESSAGE').filter((f) => f.serverData.connectionStatus === 'DISCONNECT');
      expect(disconnects.map((f) => f.serverData.userId).sort()).toEqual([uid(1), uid(2)]);
    });
  });

  it('a client refused with 4409 right after its node died logs in when it retries once, PRESENCE_TTL_MS later', async () => {
    const dying = await cluster.addProcessNode();
    const observer = await login(cluster.wsUrl(0), 0);
    const victim = await login(dying.wsUrl, 4);
    await received(observer, [isConnect(uid(4))]);

    await dying.kill('SIGKILL');
    // Its node is dead but its lease still runs: the user cannot be told apart from one still connected.
    const refused = await attempt(cluster.wsUrl(1), 4);
    expect(refused.auth).toMatchObject({ status: 'ERROR', error: { errorCode: '1' } });
    expect((await refused.client.closed).code).toBe(4409);
    const refusedAt = Date.now();
    expect((await victim.closed).code).toBe(1006);

    await sleep(refusedAt + TTL - Date.now());
    const retry = await attempt(cluster.wsUrl(1), 4);
    expect(retry.auth).toMatchObject({ status: 'SUCCESS', serverData: { userId: uid(4) } });
    // The others saw the dead session go, once, before the new one came.
    const presence = () => observer.all('USER_CONNECTION_MESSAGE').filter((f) => f.serverData.userId === uid(4)).map((f) => f.serverData.connectionStatus as string);
    await eventually(() => presence().length === 3, 2000, 'DISCONNECT and CONNECT of the retried user');
    await sleep(300);
    expect(presence()).toEqual(['CONNECT', 'DISCONNECT', 'CONNECT']);
  });

  it('a node cut off from Redis longer than its lease is swept, then re-registers its users by itself', async () => {
    const extra = await cluster.addNode();
    const cut = engineOf(extra);
    const observer = await login(cluster.wsUrl(0), 0);
    const kept = await login(extra.wsUrl, 1);
    const taken = await login(extra.wsUrl, 2);
    await received(observer, [isConnect(uid(1)), isConnect(uid(2))]);

    // A partition of that node alone: both of its Redis connections drop and stay down.
    cut.connection.commands.disconnect();
    cut.connection.subscriber.disconnect();
    const cutAt = Date.now();
    await received(observer, [isDisconnect(uid(1)), isDisconnect(uid(2))], TTL + 2000);
    expect(Date.now() - cutAt).toBeLessThanOrEqual(TTL + 2000);
    // Meanwhile the user of `taken` logs in on another node.
    const newer = await login(cluster.wsUrl(1), 2);

    await Promise.all([cut.connection.commands.connect(), cut.connection.subscriber.connect()]);
    await waitNodeReady(extra, TTL);
    const online = async () => (await engineOf(cluster.nodes[0]).presence.list()).map((p) => p.userId).sort();
    await eventually(async () => (await online()).join() === [uid(0), uid(1), uid(2)].join(), TTL, 'restored');
    await expect(engineOf(cluster.nodes[0]).presence.locate(uid(2))).resolves.toMatchObject({ nodeId: engineOf(cluster.nodes[1]).nodeId });
    // Cross-node traffic to the restored user works again.
    observer.send({ type: 'DIALOG_MESSAGE', clientData: 'welcome back', serverData: { receiver: uid(1), messageId: 'wb' } });
    expect(await observer.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS' });
    expect((await kept.nextOfType('DIALOG_MESSAGE')).clientData).toBe('welcome back');
    expect(newer.closeInfo).toBeUndefined();

    // SessionService handles onSessionsRestored / onSessionLost: the restored user is announced
    // again, and the stale connection of the user who logged in elsewhere is closed, without a DISCONNECT.
    await eventually(() => observer.all('USER_CONNECTION_MESSAGE').filter(isConnect(uid(1))).length === 2, 2000, 're-announced CONNECT');
    expect((await taken.closed).code).toBe(4409);
    await sleep(200);
    expect(observer.all('USER_CONNECTION_MESSAGE').filter(isConnect(uid(2)))).toHaveLength(2); // initial + newer
    expect(observer.all('USER_CONNECTION_MESSAGE').filter(isDisconnect(uid(2)))).toHaveLength(1); // the sweep only
    await extra.close();
  });

  it('Redis down: not ready, connections kept, CHAT local only, cross-node DIALOG ERROR, local DIALOG delivered, logins "3"; back empty: everything restored', async () => {
    const [n0, n1] = [cluster.wsUrl(0), cluster.wsUrl(1)];
    const a = await login(n0, 0);
    const c = await login(n0, 2);
    const b = await login(n1, 1);
    await received(a, [isConnect(uid(1)), isConnect(uid(2))]);
    expect(await httpStatus(`${cluster.httpUrl(0)}/health/ready`)).toBe(200);

    await cluster.redis.stop();
    let restarted = false;
    try {
      for (const node of [0, 1]) {
        await eventually(async () => (await httpStatus(`${cluster.httpUrl(node)}/health/ready`)) === 503, 3000, 'readiness 503');
      }
      expect(await httpStatus(`${cluster.httpUrl(0)}/health/live`)).toBe(200);

      a.send(chat('during outage'));
      await a.next(isChat('during outage'));
      await c.next(isChat('during outage'));
      await b.expectSilence(300, isChat('during outage'));

      a.send({ type: 'DIALOG_MESSAGE', clientData: 'x', serverData: { receiver: uid(1), messageId: 'out-b' } });
      expect(await a.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'ERROR', serverData: { messageId: 'out-b' } });
      a.send({ type: 'DIALOG_MESSAGE', clientData: 'y', serverData: { receiver: uid(2), messageId: 'out-c' } });
      expect(await a.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'out-c' } });
      expect((await c.nextOfType('DIALOG_MESSAGE')).clientData).toBe('y');
      await b.expectSilence(100, (f) => f.type === 'DIALOG_MESSAGE');

      const started = Date.now();
      const refused = await attempt(n0, 3);
      expect(refused.auth).toMatchObject({ status: 'ERROR', error: { errorCode: '3' } });
      expect((await refused.client.closed).code).toBe(1013);
      expect(Date.now() - started).toBeLessThan(3000);

      for (const client of [a, b, c]) expect(client.closeInfo).toBeUndefined();

      await cluster.redis.start(); // empty: no persistence
      restarted = true;
    } finally {
      if (!restarted) await cluster.redis.start();
    }
    const backAt = Date.now();
    for (const node of [0, 1]) {
      await eventually(async () => (await httpStatus(`${cluster.httpUrl(node)}/health/ready`)) === 200, TTL, 'ready again');
    }
    // Live users re-registered by their nodes within PRESENCE_TTL_MS.
    await eventually(async () => (await engineOf(cluster.nodes[0]).presence.list()).length === 3, TTL - (Date.now() - backAt), 're-registered');
    const d = await login(n1, 3);
    expect(userIds(d.frames[0])).toEqual([uid(0), uid(1), uid(2), uid(3)].sort());
    // The single-session rule holds again for a user of the other node.
    expect((await attempt(n1, 0)).auth).toMatchObject({ status: 'ERROR', error: { errorCode: '1' } });

    // Both nodes subscribe again: chat crosses from node 0 to node 1 and back.
    a.send(chat('after outage'));
    for (const client of [a, b, c, d]) await received(client, [isChat('after outage')]);
    b.send(chat('after outage, from node 1'));
    for (const client of [a, b, c, d]) await received(client, [isChat('after outage, from node 1')]);
    a.send({ type: 'DIALOG_MESSAGE', clientData: 'z', serverData: { receiver: uid(1), messageId: 'after-b' } });
    expect(await a.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'after-b' } });
    expect((await b.nextOfType('DIALOG_MESSAGE')).clientData).toBe('z');
  });

  it('a node started before Redis is reachable boots, is not ready, refuses logins with "3", then serves once Redis is up', async () => {
    const redis = await startRedisServer();
    scope.track({ close: () => redis.kill() }, 'server');
    await redis.stop();
    const env = { ...cluster.env, REDIS_URL: redis.url, PUBLIC_URL: '', PRESENCE_TTL_MS: String(TTL) };
    const bootStarted = Date.now();
    const node = await scope.gateway(env);
    expect(Date.now() - bootStarted).toBeLessThan(10_000);
    expect(await httpStatus(`${node.httpUrl}/health/live`)).toBe(200);
    expect(await httpStatus(`${node.httpUrl}/health/ready`)).toBe(503);
    const refused = await attempt(node.wsUrl, 5);
    expect(refused.auth).toMatchObject({ status: 'ERROR', error: { errorCode: '3' } });
    expect((await refused.client.closed).code).toBe(1013);

    await redis.start();
    await waitNodeReady(node, 5000);
    await eventually(async () => (await httpStatus(`${node.httpUrl}/health/ready`)) === 200, 3000, 'ready');
    const second = await scope.gateway(env);
    await waitNodeReady(second);
    const x = await login(node.wsUrl, 5);
    const y = await login(second.wsUrl, 6);
    await x.next(isConnect(uid(6)));
    y.send(chat('late bloomer'));
    await x.next(isChat('late bloomer'));
    await x.close();
    await y.close();
  });
});

/**
 * Issue 13, Redis Sentinel: two gateway nodes (in-process, REDIS_SENTINELS) on a primary, its
 * replica and three sentinels, all real redis-server processes on loopback ports. The primary is
 * SIGKILLed; the sentinels promote the replica (down-after 1 s) and the nodes follow by themselves.
 * Then the failover that loses writes: the replica is starved of the last writes before the
 * primary dies, and the nodes' reconciliation copes with whatever vanished.
 */
import { engineOf, waitNodeReady } from '../../support/cluster';
import { sharedAvatarDir } from '../../support/deployment';
import { makeUser } from '../../support/factories';
import { chat, dialog, isChat, isConnect, isDisconnect } from '../../support/frames';
import type { TestGateway } from '../../support/gateway';
import { httpStatus } from '../../support/http';
import { startRedisSentinel, type RedisSentinelDeployment } from '../../support/redis-sentinel';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import { received, type Frame, type TestClient } from '../../support/ws-client';

jest.setTimeout(90_000);

const TTL = 4000;
const DELIVERY_TIMEOUT_MS = 1000;

const USERS = Array.from({ length: 12 }, (_, i) => makeUser(`sn${i}`));
const token = (i: number) => USERS[i].token;
const uid = (i: number) => USERS[i].profile.userId;
const ids = (...users: number[]) => users.map(uid).sort();

function userIds(auth: Frame): string[] {
  return (auth.serverData.userList as Frame[]).map((u) => u.userId).sort();
}

const ready = (node: TestGateway) => httpStatus(`${node.httpUrl}/health/ready`);

/** The users online according to a node's view of Redis. */
const online = async (node: TestGateway) => (await engineOf(node).presence.list()).map((p) => p.userId).sort();

/** What a dialog pump saw: each dialog it sent, and the DELIVERY status(es) that came back for it. */
interface PumpResult {
  sender: TestClient;
  receiver: TestClient;
  senderId: string;
  /** messageId -> statuses received (exactly one expected), with the time of the first. */
  outcomes: Map<string, { statuses: string[]; at: number }>;
}

/**
 * Sends dialogs from `sender` to `receiver` one after the other (each after the previous one's
 * DELIVERY), until stopped. It reads frames by position, never moving the clients' cursors.
 */
function dialogPump(sender: TestClient, receiver: TestClient, senderId: string, receiverId: string, tag: string) {
  const result: PumpResult = { sender, receiver, senderId, outcomes: new Map() };
  let stopping = false;
  const delivered = (messageId: string) =>
    sender.frames.filter((f) => f.type === 'DELIVERY_MESSAGE' && f.serverData?.messageId === messageId).map((f) => f.status as string);
  const done = (async () => {
    for (let n = 0; !stopping; n++) {
      const messageId = `${tag}-${n}`;
      sender.send(dialog(receiverId, { n, tag }, messageId));
      // A dialog ends within DELIVERY_TIMEOUT_MS plus two bounded Redis calls (2 s each).
      await eventually(() => delivered(messageId).length > 0, DELIVERY_TIMEOUT_MS + 6000, `the DELIVERY of ${messageId}`);
      result.outcomes.set(messageId, { statuses: delivered(messageId), at: Date.now() });
      await sleep(20);
    }
  })();
  return {
    result,
    /** Successes so far whose DELIVERY came after `since`. */
    successesSince: (since: number) => [...result.outcomes.values()].filter((o) => o.at > since && o.statuses[0] === 'SUCCESS').length,
    async stop(): Promise<PumpResult> {
      stopping = true;
      await done;
      await sleep(300); // late duplicates would show up here
      for (const messageId of result.outcomes.keys()) result.outcomes.get(messageId)!.statuses = delivered(messageId);
      return result;
    },
  };
}

/** No SUCCESS for a dialog the receiver did not get, and exactly one DELIVERY per dialog. */
function checkDeliveries({ sender, receiver, senderId, outcomes }: PumpResult): { success: number; error: number } {
  const got = new Set(
    receiver.frames.filter((f) => f.type === 'DIALOG_MESSAGE' && f.serverData?.sender === senderId).map((f) => f.serverData.messageId as string),
  );
  let success = 0;
  let error = 0;
  for (const [messageId, { statuses }] of outcomes) {
    expect({ messageId, statuses }).toEqual({ messageId, statuses: [expect.stringMatching(/^(SUCCESS|ERROR)$/)] });
    if (statuses[0] === 'SUCCESS') {
      success += 1;
      expect({ messageId, receivedByReceiver: got.has(messageId) }).toEqual({ messageId, receivedByReceiver: true });
    } else error += 1;
  }
  expect(sender.closeInfo).toBeUndefined();
  return { success, error };
}

describe('cluster on Redis Sentinel', () => {
  /** The authorization server, for the whole file. */
  const shared = new Scope({ users: USERS });
  /** What each test starts: the Redis processes (as servers: closed after the nodes), the nodes, the clients. */
  const scope = new Scope();
  let authUrl: string;

  beforeAll(async () => {
    authUrl = (await shared.fakeAuthServer()).url;
  });
  afterAll(() => shared.closeAll());
  afterEach(() => scope.closeAll());

  const login = (node: TestGateway, user: number): Promise<TestClient> => scope.login(node.wsUrl, token(user));
  const attempt = (node: TestGateway, user: number) => scope.attempt(node.wsUrl, token(user));

  /**
   * A fresh Sentinel deployment and `count` gateway nodes on it, every one registered; the sentinels
   * call a silent primary down after `downAfterMs`.
   */
  async function sentinelCluster(
    count = 2,
    downAfterMs = 1000,
  ): Promise<{ rs: RedisSentinelDeployment; nodes: TestGateway[]; addNode(): Promise<TestGateway> }> {
    const rs = await startRedisSentinel({ downAfterMs, failoverTimeoutMs: 3000 });
    scope.track({ close: () => rs.close() }, 'server');
    const avatars = sharedAvatarDir();
    scope.track({ close: () => avatars.remove() }, 'server');
    const env: Record<string, string> = {
      AUTH_SERVER_URL: authUrl,
      REDIS_SENTINELS: rs.sentinelsEnv,
      REDIS_SENTINEL_NAME: rs.name,
      PRESENCE_TTL_MS: String(TTL),
      DELIVERY_TIMEOUT_MS: String(DELIVERY_TIMEOUT_MS),
      AVATAR_DIR: avatars.dir,
      LOG_LEVEL: 'info',
    };
    const addNode = async () => {
      const node = await scope.gateway(env);
      await waitNodeReady(node);
      return node;
    };
    const nodes: TestGateway[] = [];
    for (let i = 0; i < count; i++) nodes.push(await addNode());
    return { rs, nodes, addNode };
  }

  /** Logs one user in on each node at once: exactly one SUCCESS, the other "1" (already connected). */
  async function racingLogins(nodes: TestGateway[], user: number): Promise<TestClient> {
    const attempts = await Promise.all(nodes.map((node) => attempt(node, user)));
    const winners = attempts.filter((a) => a.auth.status === 'SUCCESS');
    expect(attempts.map((a) => a.auth.status).sort()).toEqual(['ERROR', 'SUCCESS']);
    expect(attempts.find((a) => a.auth.status === 'ERROR')!.auth).toMatchObject({ error: { errorCode: '1' } });
    return winners[0].client;
  }

  it('SIGKILL of the primary: not ready in the gap; chat, dialogs and presence come back by themselves; never a SUCCESS for an undelivered dialog; one session per user after', async () => {
    const { rs, nodes } = await sentinelCluster();
    const [n0, n1] = nodes;
    const a = await login(n0, 0);
    const b = await login(n1, 1);
    const c = await login(n0, 2);
    await received(a, [isConnect(uid(1)), isConnect(uid(2))]);
    await received(b, [isConnect(uid(2))]);
    for (const node of nodes) expect(await ready(node)).toBe(200);

    const ab = dialogPump(a, b, uid(0), uid(1), 'ab');
    const ba = dialogPump(b, a, uid(1), uid(0), 'ba');
    await eventually(() => ab.successesSince(0) >= 3 && ba.successesSince(0) >= 3, 5000, 'dialogs before the failover');

    const old = await rs.primary();
    const killedAt = Date.now();
    await old.signal('SIGKILL');
    for (const node of nodes) await eventually(async () => (await ready(node)) === 503, 3000, `node ${node.port} not ready in the gap`);
    const notReadyAt = Date.now() - killedAt;
    const promoted = await rs.waitForFailover(old);
    const failoverMs = Date.now() - killedAt;
    expect(promoted).toBe(rs.other(old));

    // Recovery, by itself, within PRESENCE_TTL_MS of the promotion.
    for (const node of nodes) await eventually(async () => (await ready(node)) === 200, TTL, `node ${node.port} ready again`);
    const readyMs = Date.now() - killedAt;
    for (const node of nodes) await eventually(async () => (await online(node)).join() === ids(0, 1, 2).join(), TTL, 'every live user online again');
    const recoveredMs = Date.now() - killedAt;
    expect(recoveredMs).toBeLessThanOrEqual(failoverMs + TTL);
    for (const client of [a, b, c]) expect(client.closeInfo).toBeUndefined();

    // Cross-node chat, both ways.
    a.send(chat('after failover from n0'));
    b.send(chat('after failover from n1'));
    for (const client of [a, b, c]) await received(client, [isChat('after failover from n0'), isChat('after failover from n1')]);
    // Presence: a new user on n1 sees everyone, and everyone sees it.
    const d = await login(n1, 3);
    const dAuth = d.frames[0];
    expect(userIds(dAuth)).toEqual(ids(0, 1, 2, 3));
    for (const client of [a, b, c]) await received(client, isConnect(uid(3)));
    // Dialogs flow again across nodes, both ways.
    const since = Date.now();
    await eventually(() => ab.successesSince(since) >= 3 && ba.successesSince(since) >= 3, 5000, 'dialogs after the failover');
    const [abResult, baResult] = await Promise.all([ab.stop(), ba.stop()]);
    const counts = { ab: checkDeliveries(abResult), ba: checkDeliveries(baResult) };

    // Nobody was announced gone: the leases outlived the failover or were renewed before any sweep.
    for (const client of [a, b, c]) expect(client.all('USER_CONNECTION_MESSAGE').filter(isDisconnect())).toEqual([]);
    // One session per user: racing logins of a new user, and a duplicate of a live one.
    await racingLogins(nodes, 4);
    expect((await attempt(n0, 1)).auth).toMatchObject({ status: 'ERROR', error: { errorCode: '1' } });

    // The old primary comes back as a replica of the new one: no node goes back to it.
    await old.start({ replicaOf: promoted });
    await rs.waitReplicated(promoted, old);
    a.send(dialog(uid(1), 'after the old primary came back', 'late-1'));
    await received(a, (f) => f.type === 'DELIVERY_MESSAGE' && f.serverData?.messageId === 'late-1' && f.status === 'SUCCESS');
    await received(b, (f) => f.type === 'DIALOG_MESSAGE' && f.serverData?.messageId === 'late-1');
    expect(String(await old.command('CLIENT', 'LIST'))).not.toMatch(/name=gw-/);
    expect(String(await promoted.command('CLIENT', 'LIST'))).toMatch(/name=gw-/);

    // Observed figures, for the report.
    process.stdout.write(
      `sentinel failover: not ready after ${notReadyAt} ms, promoted after ${failoverMs} ms, nodes ready after ${readyMs} ms, presence whole after ${recoveredMs} ms; ` +
        `dialogs a->b ${counts.ab.success} SUCCESS / ${counts.ab.error} ERROR, b->a ${counts.ba.success} / ${counts.ba.error}\n`,
    );
  });

  it('until a replica is promoted, the rules for an unreachable Redis hold: not ready, connections kept, chat local, cross-node dialogs ERROR, local dialogs delivered, logins "3"; then it heals', async () => {
    // The sentinels would take a minute to call the dead primary down: the gap lasts as long as the
    // checks need, whatever the machine's load. Then they are told 1 s, and fail over.
    const { rs, nodes } = await sentinelCluster(2, 60_000);
    const [n0, n1] = nodes;
    const a = await login(n0, 0);
    const b = await login(n1, 1);
    const c = await login(n0, 2);
    await received(a, [isConnect(uid(1)), isConnect(uid(2))]);
    await received(b, [isConnect(uid(2))]);
    const deliveryOf = (messageId: string) => (f: Frame) => f.type === 'DELIVERY_MESSAGE' && f.serverData?.messageId === messageId;

    const old = await rs.primary();
    await old.signal('SIGKILL');
    for (const node of nodes) await eventually(async () => (await ready(node)) === 503, 3000, `node ${node.port} not ready in the gap`);

    a.send(chat('in the gap'));
    await received(a, isChat('in the gap'));
    await received(c, isChat('in the gap'));
    await b.expectSilence(300, isChat('in the gap'));

    a.send(dialog(uid(1), 'to the other node', 'gap-b'));
    expect(await a.next(deliveryOf('gap-b'), DELIVERY_TIMEOUT_MS + 4000)).toMatchObject({ status: 'ERROR' });
    a.send(dialog(uid(2), 'to this node', 'gap-c'));
    expect(await a.next(deliveryOf('gap-c'), DELIVERY_TIMEOUT_MS + 4000)).toMatchObject({ status: 'SUCCESS' });
    expect((await c.nextOfType('DIALOG_MESSAGE')).serverData.messageId).toBe('gap-c');

    const refused = await attempt(n1, 3);
    expect(refused.auth).toMatchObject({ status: 'ERROR', error: { errorCode: '3' } });
    expect((await refused.client.closed).code).toBe(1013);
    for (const client of [a, b, c]) expect(client.closeInfo).toBeUndefined();
    // All of that happened in the gap: the sentinels still name the dead primary.
    expect(await rs.primary()).toBe(old);

    for (const sentinel of rs.sentinels) await sentinel.command('SENTINEL', 'SET', rs.name, 'down-after-milliseconds', '1000');
    await rs.waitForFailover(old);
    for (const node of nodes) await eventually(async () => (await ready(node)) === 200, TTL + 2000, `node ${node.port} ready again`);
    for (const node of nodes) await eventually(async () => (await online(node)).join() === ids(0, 1, 2).join(), TTL, 'every live user online again');
    b.send(chat('after the promotion'));
    for (const client of [a, b, c]) await received(client, isChat('after the promotion'));
    const d = await login(n1, 3);
    expect(userIds(d.frames[0])).toEqual(ids(0, 1, 2, 3));
    a.send(dialog(uid(1), 'to the other node again', 'healed-b'));
    expect(await a.next(deliveryOf('healed-b'))).toMatchObject({ status: 'SUCCESS' });
    // The dialog that got ERROR in the gap never reached its receiver.
    expect(b.all('DIALOG_MESSAGE').map((f) => f.serverData.messageId)).toEqual(['healed-b']);
  });

  it('a failover that lost writes (the replica missed them): sessions restored, a lost logout removed, a lost node registration made again, nobody stuck', async () => {
    const { rs, nodes, addNode } = await sentinelCluster();
    const [n0, n1] = nodes;
    const a = await login(n0, 0);
    const b = await login(n1, 1);
    const leaving = await login(n1, 4);
    await received(a, [isConnect(uid(1)), isConnect(uid(4))]);
    const primary = await rs.primary();
    const replica = rs.other(primary);
    await rs.waitReplicated(primary, replica);

    // From here the primary alone gets the writes: two logins, a logout, a whole new node and its user.
    await rs.starveReplica(primary, replica);
    let n2: TestGateway;
    let e: TestClient;
    let c: TestClient;
    let d: TestClient;
    try {
      c = await login(n0, 2);
      d = await login(n1, 3);
      await leaving.close();
      await received(a, isDisconnect(uid(4)));
      n2 = await addNode();
      e = await login(n2, 5);
      await received(a, [isConnect(uid(2)), isConnect(uid(3)), isConnect(uid(5))]);
      await primary.signal('SIGKILL');
    } finally {
      await replica.signal('SIGCONT');
    }
    const promoted = await rs.waitForFailover(primary);
    expect(promoted).toBe(replica);
    const all = [n0, n1, n2];

    // Every node ready again, and Redis holds exactly the live sessions: the lost logins are back,
    // the logout whose release was lost is gone, the node whose lease was lost is registered.
    for (const node of all) await eventually(async () => (await ready(node)) === 200, TTL + 2000, `node ${node.port} ready again`);
    for (const node of all) await eventually(async () => (await online(node)).join() === ids(0, 1, 2, 3, 5).join(), TTL, 'the live sessions, and only them');
    const keys = engineOf(n2).connection.keys;
    expect(await promoted.command('EXISTS', keys.lease(engineOf(n2).nodeId))).toBe(1);
    expect(await promoted.command('SISMEMBER', keys.nodes, engineOf(n2).nodeId)).toBe(1);
    for (const client of [a, b, c, d, e]) expect(client.closeInfo).toBeUndefined();
    // The writes were lost indeed: each node had to write its sessions back (n1 also removed the stale one).
    const reconciled = all.flatMap((node) => node.logs).filter((line) => line.includes('reconciled:')).map((line) => JSON.parse(line).msg as string);
    expect(reconciled).toEqual(expect.arrayContaining([expect.stringMatching(/^reconciled: 1 stale removed, 1 restored/)]));
    expect(reconciled.filter((msg) => /^reconciled: 0 stale removed, 1 restored/.test(msg)).length).toBeGreaterThanOrEqual(2);

    // Nobody is stuck: the user whose logout was lost logs in again; the restored ones are still one session each.
    const back = await login(n0, 4);
    await received(e, isConnect(uid(4)));
    for (const [node, user] of [[n1, 2], [n0, 3], [n0, 5], [n2, 1]] as const) {
      expect((await attempt(node, user)).auth).toMatchObject({ status: 'ERROR', error: { errorCode: '1' } });
    }
    await racingLogins([n1, n2], 6);

    // Cross-node traffic to and from the node whose registration was lost.
    a.send(dialog(uid(5), 'to the re-registered node', 'rr-1'));
    await received(a, (f) => f.type === 'DELIVERY_MESSAGE' && f.serverData?.messageId === 'rr-1' && f.status === 'SUCCESS');
    await received(e, (f) => f.type === 'DIALOG_MESSAGE' && f.serverData?.messageId === 'rr-1');
    e.send(chat('from n2 after the lossy failover'));
    for (const client of [a, b, c, d, back]) await received(client, isChat('from n2 after the lossy failover'));
    // What the lossy failover did to presence, as the others saw it: the user that left is gone,
    // the others never went (at most a repeated DISCONNECT of the one that left).
    const presenceOf = (client: TestClient, user: number) =>
      client.all('USER_CONNECTION_MESSAGE').filter((f) => f.serverData.userId === uid(user)).map((f) => f.serverData.connectionStatus as string);
    for (const user of [1, 2, 3, 5]) expect(presenceOf(a, user)).not.toContain('DISCONNECT');
    expect(presenceOf(a, 4).slice(-1)).toEqual(['CONNECT']);
  });
});


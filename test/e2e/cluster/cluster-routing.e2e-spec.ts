/**
 * Issue 3, the rules that only a cluster can break: two gateway nodes on one real redis-server
 * behave as one node (CHAT, DIALOG/DELIVERY, dedup, presence, single session, avatars).
 */
import sharp from 'sharp';
import { engineOf, startClusterDeployment, type ClusterDeployment } from '../../support/cluster';
import { makeUser } from '../../support/factories';
import { chat, isConnect, isDisconnect, isType } from '../../support/frames';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import type { Frame, TestClient } from '../../support/ws-client';

jest.setTimeout(60_000);

const USERS = Array.from({ length: 40 }, (_, i) => makeUser(`u${i}`));
const token = (i: number) => USERS[i].token;
const uid = (i: number) => USERS[i].profile.userId;

describe('cluster: two nodes on one Redis behave as one node', () => {
  /** The cluster and its authorization server, for the whole file. */
  const shared = new Scope({ users: USERS });
  /** What each test starts. */
  const scope = new Scope();
  let cluster: ClusterDeployment;

  beforeAll(async () => {
    const auth = await shared.fakeAuthServer();
    cluster = shared.track(await startClusterDeployment({ AUTH_SERVER_URL: auth.url }), 'app');
  });
  afterAll(() => shared.closeAll());
  afterEach(async () => {
    await scope.closeAll();
    // Every session released before the next test (the closes above reach Redis asynchronously).
    await eventually(async () => (await onlineIds()).length === 0, 5000, 'everyone offline');
  });

  const login = (node: number, user: number): Promise<TestClient> => scope.login(cluster.wsUrl(node), token(user));

  /** The online list as a fresh login on node 0 would see it (read straight from the registry). */
  async function onlineIds(): Promise<string[]> {
    return (await engineOf(cluster.nodes[0]).presence.list()).map((p) => p.userId).sort();
  }

  it('CHAT reaches every client on every node exactly once', async () => {
    const a = await login(0, 0);
    const b = await login(1, 1);
    const c = await login(0, 2);
    const d = await login(1, 3);
    await sleep(100); // presence broadcasts settle
    a.send(chat('from node 0'));
    d.send(chat('from node 1'));
    for (const client of [a, b, c, d]) {
      await eventually(() => client.all('CHAT_MESSAGE').length >= 2, 4000, 'two chats');
    }
    await sleep(300);
    for (const client of [a, b, c, d]) {
      const chats = client.all('CHAT_MESSAGE').map((f) => f.serverData);
      expect(chats).toHaveLength(2);
      expect(chats.find((m) => m.message === 'from node 0')).toMatchObject({ sender: uid(0), sendTime: expect.stringMatching(/^\d+$/) });
      expect(chats.find((m) => m.message === 'from node 1')).toMatchObject({ sender: uid(3) });
    }
  });

  it('routes DIALOG to the receiver’s node and reports the real DELIVERY; ERROR for an offline user', async () => {
    const a = await login(0, 0);
    const b = await login(1, 1);
    a.send({ type: 'DIALOG_MESSAGE', clientData: { secret: 'x', n: [1, 2] }, serverData: { receiver: uid(1), messageId: 'hello-1' } });
    const got = await b.nextOfType('DIALOG_MESSAGE');
    expect(got.clientData).toEqual({ secret: 'x', n: [1, 2] });
    expect(got.serverData).toMatchObject({ messageId: 'hello-1', sender: uid(0) });
    expect(await a.nextOfType('DELIVERY_MESSAGE')).toEqual({ type: 'DELIVERY_MESSAGE', status: 'SUCCESS', serverData: { messageId: 'hello-1' } });

    // Server-assigned id, the other way round.
    b.send({ type: 'DIALOG_MESSAGE', clientData: 'hi', serverData: { receiver: uid(0) } });
    const back = await a.nextOfType('DIALOG_MESSAGE');
    const delivery = await b.nextOfType('DELIVERY_MESSAGE');
    expect(delivery).toMatchObject({ status: 'SUCCESS', serverData: { messageId: back.serverData.messageId } });

    a.send({ type: 'DIALOG_MESSAGE', clientData: 'nobody', serverData: { receiver: uid(9), messageId: 'off-1' } });
    expect(await a.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'ERROR', serverData: { messageId: 'off-1' } });

    // A receiver who just left the other node.
    await b.close();
    await a.next(isDisconnect(uid(1)));
    a.send({ type: 'DIALOG_MESSAGE', clientData: 'late', serverData: { receiver: uid(1), messageId: 'left-1' } });
    expect(await a.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'ERROR', serverData: { messageId: 'left-1' } });
  });

  it('keeps the order of one sender’s dialogs (and their DELIVERYs) to a receiver on another node', async () => {
    const a = await login(0, 0);
    const b = await login(1, 1);
    const count = 60;
    for (let i = 0; i < count; i++) {
      // With and without a client messageId: both kinds keep one order.
      const serverData = i % 2 === 0 ? { receiver: uid(1), messageId: `ord-${i}` } : { receiver: uid(1) };
      a.send({ type: 'DIALOG_MESSAGE', clientData: { i }, serverData });
    }
    const received: number[] = [];
    for (let i = 0; i < count; i++) received.push((await b.nextOfType('DIALOG_MESSAGE')).clientData.i);
    expect(received).toEqual(Array.from({ length: count }, (_, i) => i));
    const deliveries: Frame[] = [];
    for (let i = 0; i < count; i++) deliveries.push(await a.nextOfType('DELIVERY_MESSAGE'));
    expect(deliveries.every((d) => d.status === 'SUCCESS')).toBe(true);
    const ids = b.all('DIALOG_MESSAGE').map((f) => f.serverData.messageId);
    expect(deliveries.map((d) => d.serverData.messageId)).toEqual(ids);
  });

  it('dedups a retry from the sender reconnected on the other node', async () => {
    const a = await login(0, 0);
    const b = await login(1, 1);
    a.send({ type: 'DIALOG_MESSAGE', clientData: 'once', serverData: { receiver: uid(1), messageId: 'dup-1' } });
    await b.nextOfType('DIALOG_MESSAGE');
    expect(await a.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS' });
    await a.close();
    await b.next(isDisconnect(uid(0)));

    const a2 = await login(1, 0); // same sender, now on node 1
    a2.send({ type: 'DIALOG_MESSAGE', clientData: 'once', serverData: { receiver: uid(1), messageId: 'dup-1' } });
    expect(await a2.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'dup-1' } });
    // Back on node 0 as well.
    await a2.close();
    await b.next(isDisconnect(uid(0)));
    const a3 = await login(0, 0);
    a3.send({ type: 'DIALOG_MESSAGE', clientData: 'once', serverData: { receiver: uid(1), messageId: 'dup-1' } });
    expect(await a3.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS' });
    await b.expectSilence(300, isType('DIALOG_MESSAGE'));
    expect(b.all('DIALOG_MESSAGE')).toHaveLength(1);

    // A different receiver does not make it a new message: the key is (sender, messageId).
    const c = await login(0, 2);
    a3.send({ type: 'DIALOG_MESSAGE', clientData: 'once', serverData: { receiver: uid(2), messageId: 'dup-1' } });
    expect(await a3.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS' });
    await c.expectSilence(200, isType('DIALOG_MESSAGE'));
  });

  it('presence is global: userList of all nodes, CONNECT and DISCONNECT across nodes', async () => {
    const a = await login(0, 0);
    const b = await login(1, 1);
    const connect = await a.next(isConnect(uid(1)));
    expect(connect.serverData).toEqual({ connectionStatus: 'CONNECT', ...USERS[1].profile });

    const c = await scope.connect(cluster.wsUrl(1), { token: token(2) });
    const auth = await c.nextOfType('AUTH_MESSAGE');
    expect(auth.status).toBe('SUCCESS');
    expect(auth.serverData.userId).toBe(uid(2));
    const list = [...auth.serverData.userList].sort((x: Frame, y: Frame) => x.userId.localeCompare(y.userId));
    expect(list).toEqual([USERS[0].profile, USERS[1].profile, USERS[2].profile]);
    await a.next(isConnect(uid(2)));
    await b.next(isConnect(uid(2)));

    await b.close();
    expect((await a.next(isDisconnect(uid(1)))).serverData).toEqual({ connectionStatus: 'DISCONNECT', userId: uid(1) });
    await c.next(isDisconnect(uid(1)));
    const d = await login(0, 3);
    const dList = (await d.frames.find((f) => f.type === 'AUTH_MESSAGE'))!.serverData.userList.map((u: Frame) => u.userId).sort();
    expect(dList).toEqual([uid(0), uid(2), uid(3)]);
    // Nobody got a presence message about themselves.
    for (const [client, i] of [[a, 0], [c, 2], [d, 3]] as const) {
      expect(client.all('USER_CONNECTION_MESSAGE').some((f) => f.serverData.userId === uid(i))).toBe(false);
    }
  });

  it('racing logins of one user on two nodes give exactly one SUCCESS (x30)', async () => {
    const observer = await login(0, 39);
    for (let round = 0; round < 30; round++) {
      const user = round % 10;
      const attempts = await Promise.all(
        [0, 1].map((node) => scope.connect(cluster.wsUrl(node), { token: token(user) })),
      );
      const answers = await Promise.all(attempts.map((c) => c.nextOfType('AUTH_MESSAGE')));
      const winners = answers.filter((f) => f.status === 'SUCCESS');
      expect(winners).toHaveLength(1);
      const loserIndex = answers.findIndex((f) => f.status !== 'SUCCESS');
      expect(answers[loserIndex]).toMatchObject({ status: 'ERROR', error: { errorCode: '1' } });
      expect((await attempts[loserIndex].closed).code).toBe(4409);
      const winner = attempts[1 - loserIndex];
      await observer.next(isConnect(uid(user)));
      await winner.close();
      await observer.next(isDisconnect(uid(user)));
    }
    // One CONNECT and one DISCONNECT per round, no more.
    await sleep(200);
    expect(observer.all('USER_CONNECTION_MESSAGE')).toHaveLength(60);
  });

  it('an avatar saved on node 0 is in node 1’s userList and served by node 1', async () => {
    const a = await login(0, 5);
    const b = await login(1, 6);
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
    a.send({ type: 'SAVE_AVATAR', serverData: { imageBase64: png.toString('base64') } });
    const saved = await a.nextOfType('SAVE_AVATAR', 10_000);
    expect(saved.status).toBe('SUCCESS');
    const url: string = saved.serverData.avatar;
    expect(url.startsWith(`${cluster.env.PUBLIC_URL}/avatars/`)).toBe(true);
    expect(await b.next((f) => f.type === 'USER_UPDATE_MESSAGE')).toEqual({ type: 'USER_UPDATE_MESSAGE', serverData: { userId: uid(5), avatar: url } });

    const c = await login(1, 7);
    const list: Frame[] = c.frames.find((f) => f.type === 'AUTH_MESSAGE')!.serverData.userList;
    expect(list.find((u) => u.userId === uid(5))?.avatar).toBe(url);

    // Served by node 1 (same path, node 1's address).
    const path = new URL(url).pathname;
    const res = await fetch(`${cluster.httpUrl(1)}${path}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^image\//);
    expect(Buffer.from(await res.arrayBuffer()).length).toBeGreaterThan(0);

    // It stays the user's avatar when the user logs in again on the other node.
    await a.close();
    await c.next(isDisconnect(uid(5)));
    await login(1, 5);
    const connect = await c.next(isConnect(uid(5)));
    expect(connect.serverData.avatar).toBe(url);
  });
});

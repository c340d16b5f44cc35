/**
 * docs/protocol.md "Server API": every call, with real HTTP calls to the API's own listener, on one
 * in-memory node and across two nodes on a real redis-server (the API of node 0 acting on users
 * connected to node 1): chat, dialog (outcome, clientData byte-exact, dedup across API calls and
 * with the WebSocket), users, a user, disconnect (4403 within 1 s, DISCONNECT seen by the others),
 * profile (USER_UPDATE_MESSAGE to everyone else).
 */
import { loadUsers } from '../../../src/demo-users/users';
import { ENGINES, type Deployment } from '../../support/deployment';
import { dialog, isChat, isConnect, isDisconnect, isType } from '../../support/frames';
import type { TestGateway } from '../../support/gateway';
import { closedWithin, received } from '../../support/ws-client';
import { apiCall, apiScope, ID, T } from './api-harness';

jest.setTimeout(20_000);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
const QUIET_MS = 300;
const isDialog = isType('DIALOG_MESSAGE');
const isUserUpdate = isType('USER_UPDATE_MESSAGE');

function profileOf(userId: string) {
  const user = loadUsers().find((u) => u.profile.userId === userId);
  if (!user) throw new Error(`no demo user ${userId}`);
  return { ...user.profile };
}

describe.each(ENGINES)('Server API (%s engine)', (engine) => {
  const scope = apiScope({ CHAT_MAX_LENGTH: '20', DIALOG_MAX_BYTES: '128' });
  afterEach(() => scope.closeAll());

  /** Node i of the deployment (every i is the one node of a memory deployment). */
  const node = (dep: Deployment, i: number): TestGateway => dep.nodes[i % dep.nodes.length];

  describe('GET /api/v1/users and /api/v1/users/{userId}', () => {
    it('lists everyone online on every node, from any node; a user online is found from any node, one offline is 404', async () => {
      const dep = await scope.deployment(engine);
      await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
      for (const i of [0, 1]) {
        const all = await apiCall(node(dep, i), 'GET', '/api/v1/users');
        expect(all.status).toBe(200);
        expect(all.json.count).toBe(3);
        expect([...all.json.users].sort((a, b) => a.userId.localeCompare(b.userId))).toEqual([profileOf(ID.alice), profileOf(ID.bob), profileOf(ID.carol)]);

        const bob = await apiCall(node(dep, i), 'GET', `/api/v1/users/${ID.bob}`);
        expect(bob.status).toBe(200);
        expect(bob.json).toEqual(profileOf(ID.bob));

        const dave = await apiCall(node(dep, i), 'GET', `/api/v1/users/${ID.dave}`);
        expect(dave.status).toBe(404);
        expect(dave.json).toEqual({ error: 'user not online' });
      }
    });

    it('an empty deployment: count 0', async () => {
      const dep = await scope.deployment(engine);
      expect((await apiCall(node(dep, 0), 'GET', '/api/v1/users')).json).toEqual({ count: 0, users: [] });
    });
  });

  describe('POST /api/v1/chat', () => {
    it('202 with the sendTime; everyone online on every node gets the CHAT_MESSAGE from the sender, who need not be online', async () => {
      const dep = await scope.deployment(engine);
      const clients = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
      const before = Date.now();
      const reply = await apiCall(node(dep, 1), 'POST', '/api/v1/chat', { body: { sender: 'moderator-bot', message: 'hello all' } });
      expect(reply.status).toBe(202);
      expect(reply.json).toEqual({ sendTime: expect.stringMatching(/^[1-9][0-9]*$/) });
      expect(Number(reply.json.sendTime)).toBeGreaterThanOrEqual(before - 5);
      for (const c of clients) {
        expect(await c.next(isChat('hello all'))).toEqual({
          type: 'CHAT_MESSAGE',
          serverData: { message: 'hello all', sender: 'moderator-bot', sendTime: reply.json.sendTime },
        });
      }
    });

    it("from an online user's id: that user's own connection gets it too", async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      expect((await apiCall(node(dep, 1), 'POST', '/api/v1/chat', { body: { sender: ID.alice, message: 'as alice' } })).status).toBe(202);
      for (const c of [alice, bob]) expect((await c.next(isChat('as alice'))).serverData.sender).toBe(ID.alice);
    });

    it('longer than CHAT_MAX_LENGTH code points: 400 naming message, nothing sent', async () => {
      const dep = await scope.deployment(engine);
      const [alice] = await scope.loginAll(dep, [T.alice]);
      const reply = await apiCall(node(dep, 0), 'POST', '/api/v1/chat', { body: { sender: ID.bob, message: '🙂'.repeat(21) } });
      expect(reply.status).toBe(400);
      expect(reply.json).toEqual({ error: expect.stringContaining('20'), fields: ['message'] });
      // 20 astral code points are 40 UTF-16 units, and allowed.
      expect((await apiCall(node(dep, 0), 'POST', '/api/v1/chat', { body: { sender: ID.bob, message: '🙂'.repeat(20) } })).status).toBe(202);
      expect((await alice.next(isType('CHAT_MESSAGE'))).serverData.message).toBe('🙂'.repeat(20));
      await alice.expectSilence(QUIET_MS, isType('CHAT_MESSAGE'));
    });
  });

  describe('POST /api/v1/dialog', () => {
    it('to a user on the other node: 200 SUCCESS once written; the receiver gets the DIALOG_MESSAGE from the sender with a UUID', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const reply = await apiCall(node(dep, 0), 'POST', '/api/v1/dialog', { body: { sender: 'shop', receiver: ID.bob, clientData: { order: 7 } } });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ status: 'SUCCESS', messageId: expect.stringMatching(UUID) });
      expect(await bob.next(isDialog)).toEqual({
        type: 'DIALOG_MESSAGE',
        clientData: { order: 7 },
        serverData: { messageId: reply.json.messageId, sender: 'shop', sendTime: expect.stringMatching(/^[1-9][0-9]*$/) },
      });
      await alice.expectSilence(QUIET_MS, isDialog);
    });

    it('clientData is forwarded as written: numbers beyond a double, escapes and null arrive byte-exact (whitespace between tokens removed)', async () => {
      const dep = await scope.deployment(engine);
      const [, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const clientData = '{"big": 12345678901234567890123, "huge":1e400, "tiny": 1.000000000000000000001, "s":"\\u00e9\\"", "n": null}';
      const raw = `{"sender":"shop","receiver":"${ID.bob}","clientData": ${clientData} }`;
      const reply = await apiCall(node(dep, 1), 'POST', '/api/v1/dialog', { raw });
      expect(reply.json).toEqual({ status: 'SUCCESS', messageId: expect.stringMatching(UUID) });
      await bob.next(isDialog);
      const frame = bob.rawFrames.find((f) => f.includes('DIALOG_MESSAGE'))!;
      expect(frame).toContain('"clientData":{"big":12345678901234567890123,"huge":1e400,"tiny":1.000000000000000000001,"s":"\\u00e9\\"","n":null}');
      // null itself is a clientData.
      expect((await apiCall(node(dep, 1), 'POST', '/api/v1/dialog', { body: { sender: 'shop', receiver: ID.bob, clientData: null } })).json.status).toBe('SUCCESS');
      expect((await bob.next(isDialog)).clientData).toBeNull();
    });

    it('to a user who is not online: 200 ERROR', async () => {
      const dep = await scope.deployment(engine);
      await scope.loginAll(dep, [T.alice]);
      const reply = await apiCall(node(dep, 1), 'POST', '/api/v1/dialog', { body: { sender: ID.alice, receiver: ID.dave, clientData: 'x', messageId: 'm-err-1' } });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ status: 'ERROR', messageId: 'm-err-1' });
    });

    it('a repeat after an ERROR is a new attempt: the same (sender, messageId) is delivered once the receiver is online', async () => {
      const dep = await scope.deployment(engine);
      const [alice] = await scope.loginAll(dep, [T.alice]);
      const body = { sender: 'shop', receiver: ID.bob, clientData: { try: 1 }, messageId: 'retry-after-error-1' };
      expect((await apiCall(node(dep, 0), 'POST', '/api/v1/dialog', { body })).json).toEqual({ status: 'ERROR', messageId: 'retry-after-error-1' });
      const bob = await scope.login(dep.wsUrl(1), T.bob);
      await alice.next(isConnect(ID.bob));
      const retry = await apiCall(node(dep, 1), 'POST', '/api/v1/dialog', { body: { ...body, clientData: { try: 2 } } });
      expect(retry.json).toEqual({ status: 'SUCCESS', messageId: 'retry-after-error-1' });
      expect(await bob.next(isDialog)).toMatchObject({ clientData: { try: 2 }, serverData: { messageId: 'retry-after-error-1', sender: 'shop' } });
      // Delivered now: a further repeat is the dedup's, not delivered again.
      expect((await apiCall(node(dep, 0), 'POST', '/api/v1/dialog', { body })).json).toEqual({ status: 'SUCCESS', messageId: 'retry-after-error-1' });
      await bob.expectSilence(QUIET_MS, isDialog);
    });

    it('clientData larger than DIALOG_MAX_BYTES: 400 naming clientData, nothing delivered', async () => {
      const dep = await scope.deployment(engine);
      const [, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const reply = await apiCall(node(dep, 0), 'POST', '/api/v1/dialog', { body: { sender: 'shop', receiver: ID.bob, clientData: 'x'.repeat(140) } });
      expect(reply.status).toBe(400);
      expect(reply.json).toEqual({ error: expect.stringContaining('128'), fields: ['clientData'] });
      await bob.expectSilence(QUIET_MS, isDialog);
    });

    it('dedup by (sender, messageId) across API calls, sequential and concurrent, and with the WebSocket DIALOG_MESSAGE', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const body = { sender: 'shop', receiver: ID.bob, clientData: { n: 1 }, messageId: 'order-1-shipped' };
      const first = await apiCall(node(dep, 0), 'POST', '/api/v1/dialog', { body });
      const again = await apiCall(node(dep, 1), 'POST', '/api/v1/dialog', { body });
      expect([first.json, again.json]).toEqual([
        { status: 'SUCCESS', messageId: 'order-1-shipped' },
        { status: 'SUCCESS', messageId: 'order-1-shipped' },
      ]);
      // Concurrent repeats of a new id: one delivery, every answer SUCCESS.
      const racing = { ...body, messageId: 'order-2-shipped' };
      const answers = await Promise.all([0, 1, 0, 1].map((i) => apiCall(node(dep, i), 'POST', '/api/v1/dialog', { body: racing })));
      expect(answers.map((a) => a.json)).toEqual(Array(4).fill({ status: 'SUCCESS', messageId: 'order-2-shipped' }));
      // The same sender and id as a client's DIALOG_MESSAGE: the API call is the repeat.
      alice.send(dialog(ID.bob, { from: 'ws' }, 'shared-id-1'));
      expect((await alice.nextOfType('DELIVERY_MESSAGE')).status).toBe('SUCCESS');
      const repeat = await apiCall(node(dep, 1), 'POST', '/api/v1/dialog', { body: { sender: ID.alice, receiver: ID.bob, clientData: { from: 'api' }, messageId: 'shared-id-1' } });
      expect(repeat.json).toEqual({ status: 'SUCCESS', messageId: 'shared-id-1' });
      // A different sender with the same id is another message.
      expect((await apiCall(node(dep, 0), 'POST', '/api/v1/dialog', { body: { ...body, sender: 'other-shop' } })).json.status).toBe('SUCCESS');

      await bob.expectSilence(QUIET_MS, isDialog);
      expect(bob.all('DIALOG_MESSAGE').map((f) => [f.serverData.sender, f.serverData.messageId, f.clientData])).toEqual([
        ['shop', 'order-1-shipped', { n: 1 }],
        ['shop', 'order-2-shipped', { n: 1 }],
        [ID.alice, 'shared-id-1', { from: 'ws' }],
        ['other-shop', 'order-1-shipped', { n: 1 }],
      ]);
    });
  });

  describe('POST /api/v1/users/{userId}/disconnect', () => {
    it("closes the user's connection on the other node with 4403 within 1 s; the others see its DISCONNECT; a second call says false", async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
      // bob is on node 1; the call goes to node 0.
      const closed = closedWithin(bob, 1000);
      const reply = await apiCall(node(dep, 0), 'POST', `/api/v1/users/${ID.bob}/disconnect`, { body: { reason: 'banned for spam' } });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ disconnected: true });
      expect(await closed).toEqual({ code: 4403, reason: 'banned for spam' });
      for (const c of [alice, carol]) await c.next(isDisconnect(ID.bob));
      expect((await apiCall(node(dep, 1), 'GET', `/api/v1/users/${ID.bob}`)).status).toBe(404);
      const again = await apiCall(node(dep, 0), 'POST', `/api/v1/users/${ID.bob}/disconnect`, { body: {} });
      expect(again.json).toEqual({ disconnected: false });
      await Promise.all([alice, carol].map((c) => c.expectSilence(QUIET_MS, isDisconnect(ID.bob))));
      expect(alice.all().filter(isDisconnect(ID.bob))).toHaveLength(1);
    });

    it('without a body: the default reason; on the same node as the call', async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob] = await scope.loginAll(dep, [T.alice, T.bob]);
      const closed = closedWithin(alice, 1000);
      const reply = await apiCall(node(dep, 0), 'POST', `/api/v1/users/${ID.alice}/disconnect`);
      expect(reply.json).toEqual({ disconnected: true });
      expect(await closed).toEqual({ code: 4403, reason: "disconnected by the application's backend" });
      await bob.next(isDisconnect(ID.alice));
    });

    it('a user who is not online: false; a reason over 123 bytes: 400 naming reason', async () => {
      const dep = await scope.deployment(engine);
      const [alice] = await scope.loginAll(dep, [T.alice]);
      expect((await apiCall(node(dep, 1), 'POST', `/api/v1/users/${ID.dave}/disconnect`, { body: { reason: 'x' } })).json).toEqual({ disconnected: false });
      const long = await apiCall(node(dep, 1), 'POST', `/api/v1/users/${ID.alice}/disconnect`, { body: { reason: 'é'.repeat(62) } });
      expect(long.status).toBe(400);
      expect(long.json).toEqual({ error: expect.stringContaining('123'), fields: ['reason'] });
      expect(alice.closeInfo).toBeUndefined();
    });
  });

  describe('PATCH /api/v1/users/{userId}/profile', () => {
    it("changes the profile on the user's node: 200 the new profile, everyone else gets USER_UPDATE_MESSAGE with the changed fields", async () => {
      const dep = await scope.deployment(engine);
      const [alice, bob, carol] = await scope.loginAll(dep, [T.alice, T.bob, T.carol]);
      const reply = await apiCall(node(dep, 0), 'PATCH', `/api/v1/users/${ID.bob}/profile`, { body: { nickname: 'bobby', status: 'on holiday' } });
      expect(reply.status).toBe(200);
      const changed = { ...profileOf(ID.bob), nickname: 'bobby', status: 'on holiday' };
      expect(reply.json).toEqual(changed);
      for (const c of [alice, carol]) {
        expect(await c.next(isUserUpdate)).toEqual({ type: 'USER_UPDATE_MESSAGE', serverData: { userId: ID.bob, nickname: 'bobby', status: 'on holiday' } });
      }
      await bob.expectSilence(QUIET_MS, isUserUpdate);
      for (const i of [0, 1]) expect((await apiCall(node(dep, i), 'GET', `/api/v1/users/${ID.bob}`)).json).toEqual(changed);
      // Every field it may change, on the node of the call.
      const all = { nickname: 'Alice B.', language: 'de', status: '', avatar: 'https://cdn.example/alice.png' };
      expect((await apiCall(node(dep, 0), 'PATCH', `/api/v1/users/${ID.alice}/profile`, { body: all })).json).toEqual({ ...profileOf(ID.alice), ...all });
      await received(bob, (f) => isUserUpdate(f) && f.serverData.userId === ID.alice);
    });

    it('a user who is not online: 404; no field, null or an undeclared field: 400 naming them', async () => {
      const dep = await scope.deployment(engine);
      const [alice] = await scope.loginAll(dep, [T.alice]);
      const offline = await apiCall(node(dep, 1), 'PATCH', `/api/v1/users/${ID.dave}/profile`, { body: { nickname: 'd' } });
      expect(offline.status).toBe(404);
      expect(offline.json).toEqual({ error: 'user not online' });
      const none = await apiCall(node(dep, 1), 'PATCH', `/api/v1/users/${ID.alice}/profile`, { body: {} });
      expect(none.status).toBe(400);
      expect(none.json.fields).toEqual(['nickname', 'language', 'status', 'avatar']);
      const bad = await apiCall(node(dep, 1), 'PATCH', `/api/v1/users/${ID.alice}/profile`, { body: { nickname: null, userId: '9', lastOnline: 'now' } });
      expect(bad.status).toBe(400);
      expect([...bad.json.fields].sort()).toEqual(['lastOnline', 'nickname', 'userId']);
      await alice.expectSilence(QUIET_MS, isUserUpdate);
      expect((await apiCall(node(dep, 0), 'GET', `/api/v1/users/${ID.alice}`)).json).toEqual(profileOf(ID.alice));
    });
  });
});

/**
 * docs/protocol.md "Events": one NATS message per fact, once per deployment, published by the node
 * where it happened, on `<prefix>.<kind>`, as plain JSON: the fact's fields plus `id`, `time` and
 * `node`. Run on both engines: one in-memory node, and two nodes on Redis with the users spread
 * over them (a chat is broadcast to both nodes, a dialog crosses them: still one event each).
 * A real nats-server with JetStream (test/support/nats-server.ts) on a free port.
 */
import sharp from 'sharp';
import { CLUSTER_BUS, type ClusterBus } from '../../../src/engine/engine.ports';
import { ENGINES, type Deployment } from '../../support/deployment';
import { makeUser } from '../../support/factories';
import { CLUSTER_PRESENCE_TTL_MS, type ClusterDeployment } from '../../support/cluster';
import { chat, isChat, isConnect, isDisconnect, isType } from '../../support/frames';
import { EventSink } from '../../support/nats-events';
import { startNatsServer, type NatsServer } from '../../support/nats-server';
import { metricValue, scrape } from '../../support/metrics';
import { Scope } from '../../support/scope';
import { sleep } from '../../support/time';
import { closedWithin } from '../../support/ws-client';
import { apiCall, KEY } from '../api/api-harness';

jest.setTimeout(30_000);

const erin = makeUser('ev-erin');
const finn = makeUser('ev-finn');
const USERS = [erin, finn];
const ID = { erin: erin.profile.userId, finn: finn.profile.userId };

/** How long the tests wait to be confident that no second copy of an event comes. */
const QUIET_MS = 400;

const nodeIdOf = (dep: Deployment, i: number): string => dep.nodes[i % dep.nodes.length].app.get<symbol, ClusterBus>(CLUSTER_BUS, { strict: false }).nodeId;

let nats: NatsServer;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(() => nats?.remove());

describe.each(ENGINES)('events on NATS (%s)', (engine) => {
  const scope = new Scope({ ownAuthServer: true, users: USERS });
  afterEach(() => scope.closeAll());

  let seq = 0;
  /** A subject prefix of the test's own, and a sink on it. */
  async function start(env: Record<string, string> = {}): Promise<{ dep: Deployment; sink: EventSink; prefix: string }> {
    const prefix = `t${engine}${++seq}.events`;
    const sink = scope.track(await EventSink.subscribe(nats.url, prefix));
    const dep = await scope.deployment(engine, { EVENTS_NATS_URL: nats.url, EVENTS_SUBJECT_PREFIX: prefix, ...env });
    return { dep, sink, prefix };
  }

  it('publishes each fact exactly once, from the node where it happened, with its fields, id, time and node', async () => {
    const { dep, sink, prefix } = await start();
    const started = Date.now();
    const [e, f] = await scope.loginAll(dep, [erin.token, finn.token]);
    const nodeOf = { erin: nodeIdOf(dep, 0), finn: nodeIdOf(dep, 1) };
    if (engine === 'redis') expect(nodeOf.erin).not.toBe(nodeOf.finn);

    // connect, once per login
    await sink.waitFor((ev) => ev.kind === 'connect' && ev.body.userId === ID.finn);
    // chat: broadcast to both nodes, one event
    e.send(chat('hello events'));
    await f.next(isChat('hello events'));
    // dialog SUCCESS across nodes: clientData as written (a number beyond a double, an escape)
    const clientData = '{"n":1e400,"s":"\\u0041\\"","deep":[{"x":null},true]}';
    e.send(`{"type":"DIALOG_MESSAGE","clientData":${clientData},"serverData":{"receiver":"${ID.finn}","messageId":"ev-ok"}}`);
    expect(await e.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'ev-ok' } });
    // A retry of a delivered dialog is answered from the dedup memory: no second delivery, no second fact.
    e.send(`{"type":"DIALOG_MESSAGE","clientData":${clientData},"serverData":{"receiver":"${ID.finn}","messageId":"ev-ok"}}`);
    expect(await e.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'SUCCESS', serverData: { messageId: 'ev-ok' } });
    // dialog ERROR: nobody of that id is online
    e.send({ type: 'DIALOG_MESSAGE', clientData: { m: 'later' }, serverData: { receiver: 'nobody-online', messageId: 'ev-err' } });
    expect(await e.nextOfType('DELIVERY_MESSAGE')).toMatchObject({ status: 'ERROR', serverData: { messageId: 'ev-err' } });
    // profile, through SAVE_AVATAR on finn's node
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer();
    f.send({ type: 'SAVE_AVATAR', serverData: { imageBase64: png.toString('base64') } });
    const saved = await f.nextOfType('SAVE_AVATAR');
    expect(saved.status).toBe('SUCCESS');
    // disconnect with the close code
    f.socket.close(4321, 'bye');
    await f.closed;

    await sink.waitFor((ev) => ev.kind === 'disconnect', 5000, 'the disconnect event');
    await sleep(QUIET_MS);
    const byKind = (kind: string) => sink.ofKind(kind);
    expect(sink.events.map((ev) => ev.kind).sort()).toEqual(['chat', 'connect', 'connect', 'dialog', 'dialog', 'disconnect', 'profile']);
    for (const ev of sink.events) expect(ev.subject).toBe(`${prefix}.${ev.kind}`);

    const envelope = (node: string) => ({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), time: expect.stringMatching(/^\d+$/), node });
    expect(byKind('connect').map((ev) => ev.body).sort((a, b) => (a.userId as string).localeCompare(b.userId as string))).toEqual(
      [
        { ...envelope(nodeOf.erin), userId: ID.erin },
        { ...envelope(nodeOf.finn), userId: ID.finn },
      ].sort((a, b) => a.userId.localeCompare(b.userId)),
    );
    const [chatEvent] = byKind('chat');
    expect(chatEvent.body).toEqual({ ...envelope(nodeOf.erin), message: 'hello events', sender: ID.erin, sendTime: expect.stringMatching(/^\d+$/) });
    const chatFrame = f.frames.find(isChat('hello events'))!;
    expect(chatEvent.body.sendTime).toBe(chatFrame.serverData.sendTime);

    const ok = byKind('dialog').find((ev) => ev.body.messageId === 'ev-ok')!;
    expect(ok.body).toEqual({
      ...envelope(nodeOf.erin),
      messageId: 'ev-ok',
      sender: ID.erin,
      receiver: ID.finn,
      clientData: { n: Infinity, s: 'A"', deep: [{ x: null }, true] },
      sendTime: expect.stringMatching(/^\d+$/),
      status: 'SUCCESS',
    });
    // Embedded as forwarded, byte for byte: what the receiver got is what the event carries.
    expect(ok.text).toContain(`"clientData":${clientData},`);
    const forwarded = f.rawFrames.find((raw) => raw.includes('"ev-ok"'))!;
    expect(forwarded).toContain(`"clientData":${clientData}`);
    const failed = byKind('dialog').find((ev) => ev.body.messageId === 'ev-err')!;
    expect(failed.body).toEqual({
      ...envelope(nodeOf.erin),
      messageId: 'ev-err',
      sender: ID.erin,
      receiver: 'nobody-online',
      clientData: { m: 'later' },
      sendTime: expect.stringMatching(/^\d+$/),
      status: 'ERROR',
    });

    expect(byKind('profile')[0].body).toEqual({ ...envelope(nodeOf.finn), userId: ID.finn, avatar: saved.serverData.avatar });
    expect(byKind('disconnect')[0].body).toEqual({ ...envelope(nodeOf.finn), userId: ID.finn, code: 4321 });

    // Unique ids; times are the node's clock when the fact was reported.
    expect(new Set(sink.events.map((ev) => ev.body.id)).size).toBe(sink.events.length);
    for (const ev of sink.events) {
      expect(Number(ev.body.time)).toBeGreaterThanOrEqual(started - 1000);
      expect(Number(ev.body.time)).toBeLessThanOrEqual(Date.now());
    }

    // Every event was counted, by kind, on the node that published it.
    const published = await Promise.all(dep.nodes.map(async (node) => (await scrape(node)).samples));
    const total = (kind: string) => published.reduce((sum, samples) => sum + metricValue(samples, 'gateway_events_published_total', { kind }), 0);
    expect({ chat: total('chat'), dialog: total('dialog'), connect: total('connect'), disconnect: total('disconnect'), profile: total('profile') }).toEqual({
      chat: 1,
      dialog: 2,
      connect: 2,
      disconnect: 1,
      profile: 1,
    });
    expect(published.reduce((sum, samples) => sum + metricValue(samples, 'gateway_events_dropped_total'), 0)).toBe(0);
  });

  it('facts the backend causes through the Server API: a chat, a profile change and a kick, each once, the last two from the user\'s node (disconnect with its 4403)', async () => {
    const { dep, sink } = await start({ API_KEYS: KEY });
    const [e, f] = await scope.loginAll(dep, [erin.token, finn.token]);
    const node = (i: number) => dep.nodes[i % dep.nodes.length];
    const nodeOf = { erin: nodeIdOf(dep, 0), finn: nodeIdOf(dep, 1) };
    await sink.waitFor((ev) => ev.kind === 'connect' && ev.body.userId === ID.finn);

    // Each call goes to the node the user concerned is not on (on Redis).
    const posted = await apiCall(node(1), 'POST', '/api/v1/chat', { body: { sender: 'backend-bot', message: 'from the backend' } });
    expect(posted.status).toBe(202);
    await e.next(isChat('from the backend'));
    const patched = await apiCall(node(0), 'PATCH', `/api/v1/users/${ID.finn}/profile`, { body: { nickname: 'finn-renamed', status: 'away' } });
    expect(patched.status).toBe(200);
    await e.next(isType('USER_UPDATE_MESSAGE'));
    const kicked = await apiCall(node(0), 'POST', `/api/v1/users/${ID.finn}/disconnect`, { body: { reason: 'bye' } });
    expect(kicked.json).toEqual({ disconnected: true });
    expect((await closedWithin(f, 3000)).code).toBe(4403);

    await sink.waitFor((ev) => ev.kind === 'disconnect', 5000, 'the disconnect event');
    await sleep(QUIET_MS);
    expect(sink.events.map((ev) => ev.kind).sort()).toEqual(['chat', 'connect', 'connect', 'disconnect', 'profile']);
    const envelope = (nodeId: string) => ({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), time: expect.stringMatching(/^\d+$/), node: nodeId });
    // The chat happened where it was posted; the profile change and the kick on the user's node.
    expect(sink.ofKind('chat')[0].body).toEqual({ ...envelope(nodeIdOf(dep, 1)), message: 'from the backend', sender: 'backend-bot', sendTime: posted.json.sendTime });
    expect(sink.ofKind('profile')[0].body).toEqual({ ...envelope(nodeOf.finn), userId: ID.finn, nickname: 'finn-renamed', status: 'away' });
    expect(sink.ofKind('disconnect')[0].body).toEqual({ ...envelope(nodeOf.finn), userId: ID.finn, code: 4403 });
  });

  it('never puts a token in an event, nor in a log line', async () => {
    const { dep, sink } = await start();
    const [e, f] = await scope.loginAll(dep, [erin.token, finn.token]);
    e.send(chat(`my token is not ${'x'}`));
    await f.next(isChat());
    e.send({ type: 'DIALOG_MESSAGE', clientData: { hi: 1 }, serverData: { receiver: ID.finn } });
    await e.nextOfType('DELIVERY_MESSAGE');
    await f.close();
    await sink.waitFor((ev) => ev.kind === 'disconnect');
    await sleep(QUIET_MS);
    expect(sink.events.length).toBeGreaterThanOrEqual(5);
    for (const ev of sink.events) {
      for (const user of USERS) expect(ev.text).not.toContain(user.token);
      expect(Object.keys(ev.body)).not.toContain('token');
      expect(Object.keys(ev.body)).not.toContain('authToken');
    }
    const lines = dep.logs().filter((line) => line.includes('events'));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of dep.logs()) for (const user of USERS) expect(line).not.toContain(user.token);
  });

  if (engine === 'redis') {
    it('reports the users of a node that died (SIGKILL) once, from the node whose sweep removed them, code 1006', async () => {
      const { dep, sink, prefix } = await start();
      const victimNode = await (dep as ClusterDeployment).addProcessNode({ EVENTS_NATS_URL: nats.url, EVENTS_SUBJECT_PREFIX: prefix });
      const observer = await scope.login(dep.wsUrl(0), erin.token);
      await scope.login(victimNode.wsUrl, finn.token);
      await observer.next(isConnect(ID.finn));
      // Its connect event came from the process node itself.
      const connect = await sink.waitFor((ev) => ev.kind === 'connect' && ev.body.userId === ID.finn);
      expect(dep.nodes.map((_, i) => nodeIdOf(dep, i))).not.toContain(connect.body.node);

      await victimNode.kill('SIGKILL');
      await observer.next(isDisconnect(ID.finn), CLUSTER_PRESENCE_TTL_MS + 3000);
      await sink.waitFor((ev) => ev.kind === 'disconnect' && ev.body.userId === ID.finn);
      await sleep(QUIET_MS);
      const disconnects = sink.ofKind('disconnect');
      expect(disconnects).toHaveLength(1);
      expect(disconnects[0].body).toMatchObject({ userId: ID.finn, code: 1006 });
      expect(dep.nodes.map((_, i) => nodeIdOf(dep, i))).toContain(disconnects[0].body.node);
    });
  }

  it('publishes nothing and changes nothing with EVENTS_NATS_URL unset', async () => {
    const sink = scope.track(await EventSink.subscribe(nats.url, 'mpgp.events'));
    const dep = await scope.deployment(engine);
    const [e, f] = await scope.loginAll(dep, [erin.token, finn.token]);
    e.send(chat('no events'));
    await f.next(isChat('no events'));
    await sleep(QUIET_MS);
    expect(sink.events).toEqual([]);
    expect((await scrape(dep.nodes[0])).text).not.toMatch(/^gateway_events_published_total\{/m);
  });
});


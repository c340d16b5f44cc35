/**
 * Observability of a real listening app: /health/live and /health/ready, Prometheus /metrics
 * (names, types, values moving with traffic, no user id, nickname or token anywhere) and the
 * production log format (JSON lines with time, level, msg; connId on connection lines; never a
 * token or message content).
 */
import { makeUsers } from '../../support/factories';
import { authWith, chat, isDisconnect } from '../../support/frames';
import type { TestGateway } from '../../support/gateway';
import { httpGet } from '../../support/http';
import { jsonLines } from '../../support/logs';
import { metricValue, type Sample, scrape } from '../../support/metrics';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import { closedWithin, received } from '../../support/ws-client';

const scope = new Scope();
afterEach(() => scope.closeAll());

describe('health', () => {
  it('/health/live and /health/ready answer 200 while serving', async () => {
    const gw = await scope.gateway();
    const live = await httpGet(`${gw.httpUrl}/health/live`);
    expect(live.status).toBe(200);
    expect(JSON.parse(live.body)).toMatchObject({ status: 'ok' });
    const ready = await httpGet(`${gw.httpUrl}/health/ready`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'ok' });
    // And the node really serves.
    await scope.login(gw.wsUrl, 'alice-token');
  });
});

describe('metrics', () => {
  const users = makeUsers('mx1', 'mx2', 'mx3', 'mx4');
  const [ua, ub, uc, ud] = users;
  const INVALID_TOKEN = 'tok-invalid-mx-Qp3Rt8';
  const SECRET_CHAT = 'chat-content-mx-Vb6Nn1';
  const SECRET_DIALOG = 'dialog-content-mx-Lk2Hh5';

  const METRIC_TYPES: Record<string, string> = {
    gateway_connections: 'gauge',
    gateway_messages_received_total: 'counter',
    gateway_messages_sent_total: 'counter',
    gateway_auth_checks_total: 'counter',
    gateway_auth_check_duration_seconds: 'histogram',
    gateway_dialog_deliveries_total: 'counter',
    gateway_dialog_delivery_duration_seconds: 'histogram',
    gateway_disconnects_total: 'counter',
    gateway_frames_dropped_before_auth_total: 'counter',
    gateway_rate_limited_frames_total: 'counter',
    gateway_slow_consumer_drops_total: 'counter',
  };

  async function start(): Promise<{ gw: TestGateway; auth: { requests: number } }> {
    const auth = await scope.authServer(users);
    // Bursts of 20 pass; the flooding user below gets a few refusals without being closed.
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '20' });
    return { gw, auth };
  }

  it('serves Prometheus text with the gateway metrics and default process metrics', async () => {
    const { gw } = await start();
    const { text, contentType } = await scrape(gw);
    expect(contentType).toMatch(/^text\/plain/);
    for (const [name, type] of Object.entries(METRIC_TYPES)) {
      expect(text).toContain(`# TYPE ${name} ${type}`);
    }
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('moves with traffic, and no user id, nickname, token or content appears anywhere in it', async () => {
    const { gw, auth } = await start();
    const before = (await scrape(gw)).samples;
    const delta = (after: Sample[], name: string, labels: Record<string, string> = {}) =>
      metricValue(after, name, labels) - metricValue(before, name, labels);

    const a = await scope.login(gw.wsUrl, ua.token);
    const b = await scope.login(gw.wsUrl, ub.token);
    const d = await scope.login(gw.wsUrl, ud.token);
    const checksAfterLogin = auth.requests;
    expect(checksAfterLogin).toBe(3);

    // An invalid token.
    const { client: rejected } = await scope.attempt(gw.wsUrl, INVALID_TOKEN);
    expect((await closedWithin(rejected, 3000)).code).toBe(4401);

    // Frames before auth are dropped: an anonymous connection sends 3 junk frames.
    const anon = await scope.connect(gw.wsUrl);
    anon.send(chat(SECRET_CHAT));
    anon.send('junk');
    anon.send({ type: 'DIALOG_MESSAGE' });

    // Authenticated traffic: 2 CHATs, a DIALOG delivered, one to nobody, an unknown type, a bad frame.
    a.send(chat(SECRET_CHAT));
    a.send(chat(SECRET_CHAT + '2'));
    a.send({ type: 'DIALOG_MESSAGE', clientData: { text: SECRET_DIALOG }, serverData: { receiver: ub.profile.userId } });
    a.send({ type: 'DIALOG_MESSAGE', clientData: { text: SECRET_DIALOG }, serverData: { receiver: 'uid-nobody-mx' } });
    a.send({ type: 'NO_SUCH_TYPE_mx' });
    a.send({ type: 'CHAT_MESSAGE', serverData: {} });
    await eventually(() => a.all('DELIVERY_MESSAGE').length === 2, 3000, '2 deliveries');
    expect(a.all('DELIVERY_MESSAGE').map((f) => f.status).sort()).toEqual(['ERROR', 'SUCCESS']);
    await received(b, (f) => f.type === 'DIALOG_MESSAGE');
    await received(a, (f) => f.type === 'ERROR_MESSAGE' && f.requestType === 'CHAT_MESSAGE');
    await received(a, (f) => f.type === 'ERROR_MESSAGE' && f.requestType === 'NO_SUCH_TYPE_mx');

    // d floods: 25 frames, 20 pass, 5 are refused.
    for (let i = 0; i < 25; i++) d.send({ type: 'NO_SUCH_TYPE_mx' });
    await eventually(() => d.frames.filter((f) => f.error?.errorCode === 'RATE_LIMITED').length === 5, 3000, '5 refusals');

    // c logs in (cached? no: first time) and a leaves normally.
    const c = await scope.login(gw.wsUrl, uc.token);
    await a.close();
    await b.next(isDisconnect(ua.profile.userId));
    // Log in again with a's token: answered from the cache.
    await scope.login(gw.wsUrl, ua.token);
    await c.next((f) => f.type === 'USER_CONNECTION_MESSAGE' && f.serverData.connectionStatus === 'CONNECT' && f.serverData.userId === ua.profile.userId);

    await eventually(async () => {
      const s = (await scrape(gw)).samples;
      return delta(s, 'gateway_frames_dropped_before_auth_total') >= 3;
    }, 3000, 'dropped-before-auth count');
    const { text, samples: after } = await scrape(gw);

    expect(metricValue(after, 'gateway_connections', { state: 'authenticated' })).toBe(4); // a (again), b, c, d
    expect(metricValue(after, 'gateway_connections', { state: 'open' })).toBe(5); // + the anonymous one

    expect(delta(after, 'gateway_messages_received_total', { type: 'CHAT_MESSAGE' })).toBe(3);
    expect(delta(after, 'gateway_messages_received_total', { type: 'DIALOG_MESSAGE' })).toBe(2);
    expect(delta(after, 'gateway_messages_received_total', { type: 'other' })).toBe(21);
    // Each accepted CHAT went to a, b and d.
    expect(delta(after, 'gateway_messages_sent_total', { type: 'CHAT_MESSAGE' })).toBe(6);
    expect(delta(after, 'gateway_messages_sent_total', { type: 'DIALOG_MESSAGE' })).toBe(1);
    expect(delta(after, 'gateway_messages_sent_total', { type: 'DELIVERY_MESSAGE' })).toBe(2);
    expect(delta(after, 'gateway_messages_sent_total', { type: 'AUTH_MESSAGE' })).toBe(6);
    expect(delta(after, 'gateway_messages_sent_total', { type: 'ERROR_MESSAGE' })).toBeGreaterThanOrEqual(27);

    expect(delta(after, 'gateway_auth_checks_total', { result: 'valid' })).toBe(4);
    expect(delta(after, 'gateway_auth_checks_total', { result: 'invalid' })).toBe(1);
    expect(delta(after, 'gateway_auth_checks_total', { result: 'cached' })).toBe(1);
    expect(delta(after, 'gateway_auth_check_duration_seconds_count')).toBe(5);
    expect(delta(after, 'gateway_auth_check_duration_seconds_bucket', { le: '+Inf' })).toBe(5);
    expect(auth.requests).toBe(5);

    expect(delta(after, 'gateway_dialog_deliveries_total', { status: 'SUCCESS' })).toBe(1);
    expect(delta(after, 'gateway_dialog_deliveries_total', { status: 'ERROR' })).toBe(1);
    expect(delta(after, 'gateway_dialog_delivery_duration_seconds_count')).toBe(2);

    expect(delta(after, 'gateway_disconnects_total', { code: '4401' })).toBe(1);
    expect(delta(after, 'gateway_disconnects_total', { code: '1000' })).toBe(1);
    expect(delta(after, 'gateway_frames_dropped_before_auth_total')).toBe(3);
    expect(delta(after, 'gateway_rate_limited_frames_total')).toBe(5);
    expect(delta(after, 'gateway_slow_consumer_drops_total')).toBe(0);

    // Labels are bounded enums: never a user id, nickname, token or content.
    for (const u of users) {
      for (const secret of [u.token, u.profile.userId, u.profile.nickname]) expect(text).not.toContain(secret);
    }
    for (const secret of [INVALID_TOKEN, SECRET_CHAT, SECRET_DIALOG, 'NO_SUCH_TYPE_mx', 'uid-nobody-mx']) expect(text).not.toContain(secret);
    const labelKeys = new Set(after.flatMap((s) => (s.name.startsWith('gateway_') ? Object.keys(s.labels) : [])));
    for (const key of labelKeys) expect(['type', 'state', 'result', 'status', 'code', 'operation', 'le']).toContain(key);
    await anon.close();
  });

  it('counts a connection closed for an over-size frame under code 1009', async () => {
    const gw = await scope.gateway({ MAX_FRAME_BYTES: '2048' });
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const before = (await scrape(gw)).samples;
    alice.send('x'.repeat(4096));
    expect((await closedWithin(alice, 3000)).code).toBe(1009);
    await sleep(100);
    const after = (await scrape(gw)).samples;
    expect(metricValue(after, 'gateway_disconnects_total', { code: '1009' }) - metricValue(before, 'gateway_disconnects_total', { code: '1009' })).toBe(1);
  });
});

describe('logs (NODE_ENV=production)', () => {
  const users = makeUsers('lg1', 'lg2', 'lg3', 'lg4', 'lg5');
  const [ua, ub, uc, ud, ue] = users;
  const INVALID_TOKEN = 'tok-invalid-lg-Yu7Ee3';
  const FRAME_TOKEN_INVALID = 'tok-frame-invalid-lg-Jh5Gg2';
  const SECRETS = ['chat-content-lg-Mm4Zz8', 'dialog-content-lg-Cc9Xx1', 'junk-content-lg-Pp0Oo6', 'avatar-content-lg'];

  /** Context and message of the lines that are about one connection (and so must carry its connId). */
  const CONNECTION_LINE = /^(authenticated|authentication refused|authentication failed|closed|flooding|slow consumer|heartbeat missed|leave failed|handler failed|dialog delivery failed|avatar could not be stored|socket error|connection setup failed)/;

  async function produceTraffic(): Promise<{ gw: TestGateway; lines: Record<string, unknown>[] }> {
    const auth = await scope.authServer(users);
    const gw = await scope.gateway({
      NODE_ENV: 'production',
      LOG_LEVEL: 'debug',
      AUTH_SERVER_URL: auth.url,
      ALLOW_QUERY_TOKEN: 'true',
      AUTH_DEADLINE_MS: '300',
      RATE_LIMIT_PER_SEC: '1',
      RATE_LIMIT_BURST: '5',
      HEARTBEAT_INTERVAL_MS: '200',
    });
    // Tokens by header, subprotocol, query and AUTH_MESSAGE frame; an invalid one by each way too.
    const a = await scope.login(gw.wsUrl, ua.token);
    const b = await scope.login(gw.wsUrl, '', { token: undefined, protocols: ['mpgp.v1', `authToken.${Buffer.from(ub.token).toString('base64url')}`] });
    const c = await scope.login(gw.wsUrl, '', { token: undefined, query: `?authToken=${encodeURIComponent(uc.token)}` });
    const d = await scope.connect(gw.wsUrl);
    d.send(authWith(ud.token));
    expect((await d.nextOfType('AUTH_MESSAGE')).status).toBe('SUCCESS');
    const bad1 = await scope.connect(gw.wsUrl, { token: INVALID_TOKEN });
    const bad2 = await scope.connect(gw.wsUrl, { query: `?authToken=${INVALID_TOKEN}q` });
    const bad3 = await scope.connect(gw.wsUrl);
    bad3.send(authWith(FRAME_TOKEN_INVALID));
    for (const bad of [bad1, bad2, bad3]) expect((await closedWithin(bad, 3000)).code).toBe(4401);
    // An auth deadline.
    const late = await scope.connect(gw.wsUrl);
    late.send(SECRETS[2]);

    // Content: a chat, a dialog, junk, a bad avatar, invalid frames.
    a.send(chat(SECRETS[0]));
    a.send({ type: 'DIALOG_MESSAGE', clientData: { text: SECRETS[1] }, serverData: { receiver: ub.profile.userId } });
    a.send(SECRETS[2]);
    a.send({ type: 'SAVE_AVATAR', serverData: { imageBase64: Buffer.from(SECRETS[3]).toString('base64') } });
    await received(a, (f) => f.type === 'DELIVERY_MESSAGE');
    await received(a, (f) => f.type === 'SAVE_AVATAR');
    expect((await closedWithin(late, 3000)).code).toBe(4408);
    // A flooding connection (4429) and a normal close.
    for (let i = 0; i < 15; i++) c.send(chat(SECRETS[0]));
    expect((await closedWithin(c, 3000)).code).toBe(4429);
    await d.close();
    // A peer that stops answering pings (heartbeat drop).
    const mute = await scope.connect(gw.wsUrl, { token: ue.token });
    // (what `new WebSocket(url, { autoPong: false })` sets)
    (mute.socket as unknown as { _autoPong: boolean })._autoPong = false;
    await received(b, isDisconnect(ue.profile.userId), 3000, 'the mute peer dropped');
    await sleep(100);
    return { gw, lines: jsonLines(gw.logs) };
  }

  it('writes JSON lines with time, level and msg; connection lines carry connId; no token or content ever', async () => {
    const { gw, lines } = await produceTraffic();
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      expect(typeof line.time).toBe('string');
      expect(Number.isNaN(Date.parse(line.time as string))).toBe(false);
      expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(line.level);
      expect(typeof line.msg).toBe('string');
    }
    const connectionLines = lines.filter((l) => CONNECTION_LINE.test(String(l.msg)) && !String(l.msg).startsWith('socket error'));
    // The lifecycle is logged: logins, refusals (invalid token, deadline), flooding, closes.
    for (const what of [/^authenticated$/, /^authentication refused/, /^flooding/, /^closed$/, /^heartbeat missed/]) {
      expect(connectionLines.some((l) => what.test(String(l.msg)))).toBe(true);
    }
    for (const line of connectionLines) {
      expect({ msg: line.msg, connId: typeof line.connId }).toEqual({ msg: line.msg, connId: 'string' });
    }
    // connIds tell connections apart.
    expect(new Set(connectionLines.map((l) => l.connId)).size).toBeGreaterThanOrEqual(8);

    const all = gw.logs.join('\n');
    for (const u of users) expect(all).not.toContain(u.token);
    expect(all).not.toContain(encodeURIComponent(users[2].token));
    expect(all).not.toContain(Buffer.from(ub.token).toString('base64url'));
    for (const secret of [INVALID_TOKEN, FRAME_TOKEN_INVALID, ...SECRETS, Buffer.from(SECRETS[3]).toString('base64')]) {
      expect(all).not.toContain(secret);
    }
  });

  it('a ws socket error (over-size frame) is logged with the connId of its connection', async () => {
    const gw = await scope.gateway({ NODE_ENV: 'production', LOG_LEVEL: 'debug', AUTH_SERVER_URL: (await scope.authServer(users)).url, MAX_FRAME_BYTES: '2048' });
    const a = await scope.login(gw.wsUrl, ua.token);
    a.send('x'.repeat(4096));
    expect((await closedWithin(a, 3000)).code).toBe(1009);
    await sleep(100);
    const lines = jsonLines(gw.logs);
    const errors = lines.filter((l) => String(l.msg).startsWith('socket error'));
    expect(errors.length).toBeGreaterThan(0);
    for (const line of errors) expect(typeof line.connId).toBe('string');
  });
});

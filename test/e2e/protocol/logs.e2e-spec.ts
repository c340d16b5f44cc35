/**
 * docs/protocol.md: "A token is never written to a log, a metric label, an error message or a close
 * reason", and "Logs: with NODE_ENV=production, every line is one JSON object with at least time,
 * level and msg; a connection id on every line about a connection".
 *
 * A session uses every way of sending a token (header, subprotocol, query with and without
 * ALLOW_QUERY_TOKEN, AUTH_MESSAGE frame), valid and invalid tokens, and every authorization-server
 * fault, with distinctive secret tokens; then no secret may appear in any log line, frame or close
 * reason.
 */
import { randomBytes } from 'node:crypto';
import { ENGINES, type Deployment } from '../../support/deployment';
import { makeUser } from '../../support/factories';
import type { FakeAuthMode } from '../../support/fake-auth-server';
import { authWith, chat } from '../../support/frames';
import { jsonLines, logLines } from '../../support/logs';
import { sleep } from '../../support/time';
import { TestClient, tokenSubprotocol } from '../../support/ws-client';
import { authFailure, protocolScope, SHORT_AUTH_TIMEOUT } from './harness';

jest.setTimeout(30_000);

const run = randomBytes(6).toString('hex');
const secret = (name: string) => `S3CRET-${name}-${run}`;

const SECRET_USERS = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8', 'u9', 'u10', 'u11', 'u12', 'u13', 'u14', 'u15'].map((name, i) =>
  makeUser(name, { token: secret(name), userId: String(100 + i), nickname: name }),
);

/** Every form in which a secret could leak. */
function forms(token: string): string[] {
  return [token, Buffer.from(token).toString('base64url'), Buffer.from(token).toString('base64'), encodeURIComponent(token), `S3CRET-`].filter(
    (f, i, all) => all.indexOf(f) === i,
  );
}

describe.each(ENGINES)('no token in logs, frames or close reasons (%s engine)', (engine) => {
  const scope = protocolScope();
  afterEach(() => scope.closeAll());
  // nestjs-pino's logger and Nest's static Logger are process-wide: with several apps alive at
  // once, a line of any of them may land in the log array (and at the LOG_LEVEL) of the newest one
  // (see test/support/gateway.ts). The checks below read the union of all the test's deployments,
  // and the last deployment started logs at trace.
  const clients: TestClient[] = [];
  const deployments: Deployment[] = [];

  async function track(client: Promise<TestClient>): Promise<TestClient> {
    const c = await client;
    clients.push(c);
    return c;
  }

  it('after a session with every token source, invalid tokens and auth-server faults', async () => {
    const auth = await scope.authServer(SECRET_USERS);
    const withQuery = await scope.deployment(engine, { AUTH_SERVER_URL: auth.url, ALLOW_QUERY_TOKEN: 'true', LOG_LEVEL: 'trace' });
    const withoutQuery = await scope.deployment(engine, { AUTH_SERVER_URL: auth.url, LOG_LEVEL: 'trace' });
    deployments.push(withQuery, withoutQuery);
    const url = (i: number) => withQuery.wsUrl(i);

    // Successful logins through each source.
    const header = await track(scope.connect(url(0), { token: secret('u1') }));
    const protocol = await track(scope.connect(url(1), { protocols: ['mpgp.v1', tokenSubprotocol(secret('u2'))] }));
    const query = await track(scope.connect(url(2), { query: `?authToken=${encodeURIComponent(secret('u3'))}&x=1` }));
    const frame = await track(scope.connect(url(3)));
    frame.send(authWith(secret('u4')));
    for (const c of [header, protocol, query, frame]) expect((await c.nextOfType('AUTH_MESSAGE')).status).toBe('SUCCESS');
    // After auth: frames that carry a token string get answers that must not quote it.
    header.send(authWith(secret('u1')));
    header.send(`not json ${secret('u1')}`);
    header.send({ type: 'CHAT_MESSAGE', serverData: { message: 1, authToken: secret('u1') } });
    header.send({ type: 'DIALOG_MESSAGE', clientData: 1, serverData: { receiver: '101', messageId: `${secret('u1')}!` } });
    for (let i = 0; i < 4; i++) await header.nextOfType('ERROR_MESSAGE');

    // Refused: duplicates through each source, unknown tokens through each source, malformed entries.
    const refused: TestClient[] = [];
    refused.push(await track(scope.connect(url(4), { token: secret('u1') })));
    refused.push(await track(scope.connect(url(5), { protocols: ['mpgp.v1', tokenSubprotocol(secret('u1'))] })));
    refused.push(await track(scope.connect(url(6), { query: `?authToken=${secret('u1')}` })));
    refused.push(await track(scope.connect(url(7), { token: secret('unknown-header') })));
    refused.push(await track(scope.connect(url(8), { protocols: ['mpgp.v1', tokenSubprotocol(secret('unknown-protocol'))] })));
    refused.push(await track(scope.connect(url(9), { protocols: ['mpgp.v1', `authToken.${secret('malformed')}*`] })));
    refused.push(await track(scope.connect(url(10), { query: `?authToken=${secret('unknown-query')}` })));
    const badFrame = await track(scope.connect(url(11)));
    badFrame.send(`garbage before the token ${secret('garbage-frame')}`);
    badFrame.send(chat(secret('chat-before-auth')));
    badFrame.send(authWith(secret('unknown-frame')));
    refused.push(badFrame);
    const numericFrame = await track(scope.connect(url(12)));
    numericFrame.send({ type: 'AUTH_MESSAGE', authToken: secret('misplaced-frame'), serverData: { token: secret('misplaced-frame') } });
    refused.push(numericFrame);
    // The query is ignored without ALLOW_QUERY_TOKEN, but never logged either.
    const ignoredQuery = await track(scope.connect(withoutQuery.wsUrl(0), { query: `?authToken=${secret('ignored-query')}` }));
    refused.push(ignoredQuery);
    for (const c of refused) await authFailure(c);

    // Authorization-server faults, each with its own secret.
    const fake = await scope.fakeAuthServer({ users: SECRET_USERS });
    const faulty = await scope.deployment(engine, { ...SHORT_AUTH_TIMEOUT, AUTH_SERVER_URL: fake.url, LOG_LEVEL: 'trace', AUTH_BREAKER_THRESHOLD: '3', AUTH_BREAKER_COOLDOWN_MS: '100' });
    deployments.push(faulty);
    const modes: FakeAuthMode[] = ['down', 'hang', 'status500', 'status302', 'status418', 'garbage', 'success-without-userid', 'error-status', 'status401', 'status404'];
    for (const [i, mode] of modes.entries()) {
      await fake.setMode(mode);
      const c = await track(scope.connect(faulty.wsUrl(i), { token: secret(`fault-${mode}`) }));
      await authFailure(c);
      await sleep(120); // let the breaker's cooldown pass: each fault reaches the server
    }
    await fake.setMode('slow', { delayMs: 50 });
    const slow = await track(scope.connect(faulty.wsUrl(0), { token: secret('u5') }));
    await slow.nextOfType('AUTH_MESSAGE'); // SUCCESS, or "3" on a machine too busy to answer in 300 ms
    await fake.setMode('normal');
    await sleep(120); // past a breaker cooldown, should the slow one have failed
    const viaFake = await track(scope.connect(faulty.wsUrl(1), { protocols: ['mpgp.v1', tokenSubprotocol(secret('u6'))] }));
    await viaFake.nextOfType('AUTH_MESSAGE'); // the breaker's probe: SUCCESS unless the machine is very busy

    for (const c of clients) await c.close();

    // What the gateway wrote and sent.
    const logs = deployments.flatMap((d) => d.logs());
    expect(logs.length).toBeGreaterThan(20);
    // Not vacuous: the refusals and the auth-server faults of every deployment were logged.
    expect(logs.filter((l) => /authentication refused/.test(l)).length).toBeGreaterThanOrEqual(refused.length + modes.length);
    expect(logs.some((l) => /auth server: ECONNREFUSED/.test(l))).toBe(true);
    expect(logs.some((l) => /auth server: HTTP 500/.test(l))).toBe(true);
    const received = clients.flatMap((c) => c.rawFrames);
    const closeReasons = clients.map((c) => c.closeInfo?.reason ?? '');
    const errorMessages = clients.flatMap((c) => c.frames.filter((f) => f.error).map((f) => JSON.stringify(f.error)));
    expect(errorMessages.length).toBeGreaterThan(refused.length);

    const leaks: string[] = [];
    for (const [where, texts] of [
      ['log', logs],
      ['frame', received],
      ['close reason', closeReasons],
      ['error message', errorMessages],
    ] as const) {
      for (const text of texts) {
        for (const form of forms(secret(''))) {
          if (text.includes(form)) leaks.push(`${where}: ${text.slice(0, 300)}`);
        }
      }
    }
    // The secrets all share the run's marker, which is checked in its raw and encoded forms.
    for (const text of [...logs, ...received, ...closeReasons]) {
      if (text.includes(run)) leaks.push(`marker: ${text.slice(0, 300)}`);
    }
    expect(leaks).toEqual([]);
  });

  it('with NODE_ENV=production every line is one JSON object with time, level and msg; connection lines have a connection id', async () => {
    const auth = await scope.authServer(SECRET_USERS);
    const dep = await scope.deployment(engine, { NODE_ENV: 'production', AUTH_SERVER_URL: auth.url, LOG_LEVEL: 'debug' });
    const ok = await scope.connect(dep.wsUrl(0), { token: secret('u7') });
    expect((await ok.nextOfType('AUTH_MESSAGE')).status).toBe('SUCCESS');
    const bad = await scope.connect(dep.wsUrl(1), { token: secret('nobody') });
    await authFailure(bad);
    await ok.close();
    await sleep(100);
    const lines = logLines(dep.logs());
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect(line).not.toContain(run);
    const parsed = jsonLines(lines);
    for (const line of parsed) {
      expect(line).toEqual(expect.objectContaining({ time: expect.anything(), level: expect.any(String), msg: expect.any(String) }));
    }
    const aboutConnections = parsed.filter((l) => /authenticat|closed/.test(String(l.msg)));
    expect(aboutConnections.length).toBeGreaterThanOrEqual(2);
    for (const line of aboutConnections) expect(line).toHaveProperty('connId', expect.any(String));
  });
});

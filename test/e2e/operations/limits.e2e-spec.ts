/**
 * Limits enforced at the edge: MAX_FRAME_BYTES (1009), MAX_CONNECTIONS (HTTP 503 before any
 * CHECK_TOKEN, counting unauthenticated connections) and ALLOWED_ORIGINS (HTTP 403 before any
 * CHECK_TOKEN; no Origin passes).
 */
import WebSocket from 'ws';
import { makeUsers } from '../../support/factories';
import { authWith, chat, isDisconnect } from '../../support/frames';
import { tryUpgrade } from '../../support/http';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import { closedWithin, TestClient } from '../../support/ws-client';

const scope = new Scope();
afterEach(() => scope.closeAll());

/** A CHAT frame of exactly `bytes` bytes of JSON text. */
function chatFrameOfSize(bytes: number): string {
  const empty = JSON.stringify(chat(''));
  const text = JSON.stringify(chat('x'.repeat(bytes - empty.length)));
  expect(Buffer.byteLength(text)).toBe(bytes);
  return text;
}

describe('MAX_FRAME_BYTES', () => {
  it('processes a frame of exactly MAX_FRAME_BYTES and closes with 1009 on one byte more', async () => {
    const gw = await scope.gateway({ MAX_FRAME_BYTES: '4096', CHAT_MAX_LENGTH: '10000' });
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');

    const atLimit = chatFrameOfSize(4096);
    alice.send(atLimit);
    const got = await bob.nextOfType('CHAT_MESSAGE');
    expect(got.serverData.sender).toBe('1');
    expect(got.serverData.message).toBe(JSON.parse(atLimit).serverData.message);

    const under = chatFrameOfSize(4000);
    alice.send(under);
    expect((await bob.nextOfType('CHAT_MESSAGE')).serverData.message).toHaveLength(JSON.parse(under).serverData.message.length);

    alice.send(chatFrameOfSize(4097));
    const closed = await closedWithin(alice, 3000);
    expect(closed.code).toBe(1009);
    // The over-size frame was not processed, and alice's session ended.
    await bob.next(isDisconnect('1'));
    expect(bob.all('CHAT_MESSAGE')).toHaveLength(2);
  });

  it('defaults to a bound far below ws 100 MiB: a 2 MiB frame is refused with 1009', async () => {
    const gw = await scope.gateway();
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    alice.send('x'.repeat(2 * 1024 * 1024));
    expect((await closedWithin(alice, 5000)).code).toBe(1009);
  });
});

describe('MAX_CONNECTIONS', () => {
  const users = makeUsers('mc1', 'mc2', 'mc3', 'mc4');

  it('refuses the 4th upgrade with HTTP 503 and no CHECK_TOKEN when every connection is logged in', async () => {
    const auth = await scope.fakeAuthServer({ users });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, MAX_CONNECTIONS: '3' });
    const logged = [];
    for (let i = 0; i < 3; i++) logged.push(await scope.login(gw.wsUrl, users[i].token));
    expect(auth.requests).toBe(3);

    const refused = await tryUpgrade(gw.wsUrl, { authToken: users[3].token });
    expect(refused.status).toBe(503);
    // Also without a token, and via the TestClient (which surfaces unexpected-response).
    expect((await tryUpgrade(gw.wsUrl)).status).toBe(503);
    await expect(TestClient.connect(gw.wsUrl, { token: users[3].token })).rejects.toThrow(/HTTP 503/);
    await sleep(100);
    expect(auth.requests).toBe(3);

    // A freed slot is usable again.
    await logged[0].close();
    let late: TestClient | undefined;
    await eventually(
      async () => {
        try {
          late = await scope.login(gw.wsUrl, users[3].token);
          return true;
        } catch {
          return false;
        }
      },
      3000,
      'a login on the freed slot',
    );
    expect(late).toBeDefined();
    expect(auth.requests).toBe(4);
  });

  it('counts connections that never authenticate: 3 anonymous sockets fill the node for token-less upgrades', async () => {
    const auth = await scope.fakeAuthServer({ users });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, MAX_CONNECTIONS: '3' });
    for (let i = 0; i < 3; i++) await scope.connect(gw.wsUrl);
    expect((await tryUpgrade(gw.wsUrl)).status).toBe(503);
    await sleep(100);
    expect(auth.requests).toBe(0);
  });

  it('an upgrade that offers a token takes the place of the oldest idle token-less connection', async () => {
    const auth = await scope.fakeAuthServer({ users });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, MAX_CONNECTIONS: '3' });
    const anonymous = [];
    for (let i = 0; i < 3; i++) anonymous.push(await scope.connect(gw.wsUrl));
    await scope.login(gw.wsUrl, users[0].token);
    // The oldest gave way, with the AUTH error of a missed deadline (so it may come back).
    expect((await anonymous[0].nextOfType('AUTH_MESSAGE')).error).toMatchObject({ errorCode: '2' });
    expect((await closedWithin(anonymous[0], 3000)).code).toBe(4408);
    // The others are untouched and can still log in with a frame.
    await anonymous[1].expectSilence(200);
    expect(anonymous[1].closeInfo).toBeUndefined();
    anonymous[1].send(authWith(users[1].token));
    expect((await anonymous[1].nextOfType('AUTH_MESSAGE')).status).toBe('SUCCESS');
    // A connection that sent its token is not idle: with one idle left, one more login gets in, then 503.
    await scope.login(gw.wsUrl, users[2].token);
    expect((await tryUpgrade(gw.wsUrl, { authToken: users[3].token })).status).toBe(503);
  });
});

describe('MAX_CONNECTIONS under concurrent upgrades', () => {
  it('admits exactly MAX_CONNECTIONS of many simultaneous upgrades, the rest get 503', async () => {
    const gw = await scope.gateway({ MAX_CONNECTIONS: '3' });
    const sockets: WebSocket[] = [];
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () => {
        const socket = new WebSocket(gw.wsUrl);
        sockets.push(socket);
        scope.track({ close: () => socket.terminate() });
        socket.on('error', () => undefined);
        return new Promise<number>((resolve) => {
          socket.once('open', () => resolve(101));
          socket.once('unexpected-response', (_req, res) => {
            resolve(res.statusCode ?? 0);
            res.resume();
          });
        });
      }),
    );
    expect(outcomes.filter((s) => s === 101)).toHaveLength(3);
    expect(outcomes.filter((s) => s === 503)).toHaveLength(5);
  });
});

describe('ALLOWED_ORIGINS', () => {
  const users = makeUsers('or1', 'or2', 'or3');

  it('unset (the default): any Origin passes', async () => {
    const gw = await scope.gateway();
    const tokens = ['alice-token', 'bob-token', 'carol-token'];
    const origins = ['https://evil.example', 'http://localhost:1', 'null'];
    for (let i = 0; i < origins.length; i++) {
      expect((await scope.loginWithAuth(gw.wsUrl, tokens[i], { origin: origins[i] })).auth.status).toBe('SUCCESS');
    }
  });

  it('refuses a foreign Origin with HTTP 403 before any CHECK_TOKEN; the allowed ones and no Origin pass', async () => {
    const auth = await scope.fakeAuthServer({ users });
    const gw = await scope.gateway({ AUTH_SERVER_URL: auth.url, ALLOWED_ORIGINS: 'https://good.example, http://also.example:8080' });

    for (const origin of ['https://evil.example', 'https://good.example/', 'http://good.example', 'https://good.example.evil.example', 'http://also.example', 'http://also.example:8081']) {
      const refused = await tryUpgrade(gw.wsUrl, { authToken: users[0].token, Origin: origin });
      expect({ origin, status: refused.status }).toEqual({ origin, status: 403 });
    }
    await sleep(100);
    expect(auth.requests).toBe(0);

    const good = await scope.login(gw.wsUrl, users[0].token, { origin: 'https://good.example' });
    const none = await scope.login(gw.wsUrl, users[1].token);
    // Every entry of the comma-separated list is allowed, the port compared too.
    await scope.login(gw.wsUrl, users[2].token, { origin: 'http://also.example:8080' });
    expect(auth.requests).toBe(3);
    none.send(chat('hi'));
    expect((await good.nextOfType('CHAT_MESSAGE')).serverData.message).toBe('hi');
  });
});

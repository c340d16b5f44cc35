/**
 * Heartbeat: a ping every HEARTBEAT_INTERVAL_MS; a peer that has not answered one ping by the next
 * is dropped without a close frame (1006 at the client) and its DISCONNECT goes out. A peer that
 * answers stays connected indefinitely.
 */
import WebSocket from 'ws';
import { chat, isDisconnect } from '../../support/frames';
import { metricValue, scrape } from '../../support/metrics';
import { Scope } from '../../support/scope';
import { sleep } from '../../support/time';

const INTERVAL = 200;
const scope = new Scope();
afterEach(() => scope.closeAll());

/** A real ws client that never answers pings (ws 8 `autoPong: false`), logged in as alice. */
async function mutePeer(
  url: string,
): Promise<{ socket: WebSocket; closed: Promise<{ code: number; at: number }>; pings: () => number; pingTimes: number[]; openedAt: number }> {
  const socket = new WebSocket(url, { headers: { authToken: 'alice-token' }, autoPong: false });
  scope.track({ close: () => socket.terminate() });
  let pings = 0;
  const pingTimes: number[] = [];
  socket.on('ping', () => {
    pings++;
    pingTimes.push(Date.now());
  });
  socket.on('error', () => undefined);
  const closed = new Promise<{ code: number; at: number }>((resolve) => socket.once('close', (code) => resolve({ code, at: Date.now() })));
  await new Promise<void>((resolve, reject) => {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; status?: string };
      if (frame.type === 'AUTH_MESSAGE') {
        if (frame.status === 'SUCCESS') resolve();
        else reject(new Error(`login failed: ${data.toString()}`));
      }
    });
    socket.once('close', () => reject(new Error('closed before login')));
  });
  return { socket, closed, pings: () => pings, pingTimes, openedAt: Date.now() };
}

describe('heartbeat', () => {
  it('terminates a peer that does not answer pings within ~2 intervals (1006) and broadcasts its DISCONNECT', async () => {
    const gw = await scope.gateway({ HEARTBEAT_INTERVAL_MS: String(INTERVAL) });
    const bob = await scope.login(gw.wsUrl, 'bob-token');
    const mute = await mutePeer(gw.wsUrl);

    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([mute.closed, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), INTERVAL * 6)))]);
    clearTimeout(timer);
    expect(closed).toBeDefined();
    expect(closed!.code).toBe(1006);
    // Dropped at the beat after the unanswered ping: exactly one ping was sent, and the drop came
    // at most 2 intervals (+ scheduling slack on a loaded machine) after login.
    expect(mute.pings()).toBe(1);
    expect(closed!.at - mute.openedAt).toBeLessThanOrEqual(INTERVAL * 3 + 200);

    const disconnect = await bob.next(isDisconnect('1'), INTERVAL * 5);
    expect(disconnect.serverData).toEqual({ connectionStatus: 'DISCONNECT', userId: '1' });
    // The user can log in again at once; the drop is counted under 1006.
    await scope.login(gw.wsUrl, 'alice-token');
    expect(metricValue((await scrape(gw)).samples, 'gateway_disconnects_total', { code: '1006' })).toBe(1);
  });

  it('gives a peer until the next ping to answer: a mute peer is dropped one interval after its ping, not sooner', async () => {
    const LONG = 1000;
    const gw = await scope.gateway({ HEARTBEAT_INTERVAL_MS: String(LONG) });
    const bob = await scope.login(gw.wsUrl, 'bob-token');
    const mute = await mutePeer(gw.wsUrl);
    const closed = await mute.closed;
    expect(closed.code).toBe(1006);
    expect(mute.pingTimes).toHaveLength(1);
    // Dropped at the next beat, HEARTBEAT_INTERVAL_MS after the ping (less what a busy event loop
    // may have delayed the reading of the ping by), and not much later.
    expect(closed.at - mute.pingTimes[0]).toBeGreaterThanOrEqual(LONG - 400);
    expect(closed.at - mute.pingTimes[0]).toBeLessThanOrEqual(LONG * 2 + 1000);
    await bob.next(isDisconnect('1'), LONG * 3);
  });

  it('keeps a peer that answers pings connected over many intervals, and it can still chat', async () => {
    const gw = await scope.gateway({ HEARTBEAT_INTERVAL_MS: String(INTERVAL) });
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');
    let pings = 0;
    const from = Date.now();
    alice.socket.on('ping', () => pings++);
    await sleep(INTERVAL * 8);
    const elapsed = Date.now() - from;
    expect(alice.closeInfo).toBeUndefined();
    expect(bob.closeInfo).toBeUndefined();
    expect(pings).toBeGreaterThanOrEqual(4);
    // One ping per HEARTBEAT_INTERVAL_MS, not more often (a late timer only means fewer pings; one
    // more for a ping sent before the listener was attached).
    expect(pings).toBeLessThanOrEqual(Math.floor(elapsed / INTERVAL) + 2);
    expect(bob.all('USER_CONNECTION_MESSAGE').filter(isDisconnect('1'))).toHaveLength(0);
    alice.send(chat('still here'));
    expect((await bob.nextOfType('CHAT_MESSAGE')).serverData).toMatchObject({ message: 'still here', sender: '1' });
  });
});

/**
 * Slow consumer: a client that stops reading while others broadcast is dropped once the bytes
 * queued for it in the gateway exceed SEND_BUFFER_MAX_BYTES (4413 best effort, DISCONNECT at
 * once); a fast client in the same chat keeps receiving every message, in order.
 */
import type { Socket } from 'node:net';
import { chat, isDisconnect } from '../../support/frames';
import { jsonLines } from '../../support/logs';
import { metricValue, scrape } from '../../support/metrics';
import { Scope } from '../../support/scope';
import { eventually } from '../../support/time';
import { closedWithin } from '../../support/ws-client';

const scope = new Scope();
afterEach(() => scope.closeAll());

const MESSAGE_CHARS = 60_000;
const BATCH = 10;
/** Far more than the loopback socket buffers can absorb (a few MiB), so the gateway's own queue must grow. */
const MAX_MESSAGES = 600;

describe('slow consumer', () => {
  it('drops a client that stops reading, broadcasts its DISCONNECT promptly, and a fast client gets everything in order', async () => {
    const gw = await scope.gateway({
      SEND_BUFFER_MAX_BYTES: '65536',
      CHAT_MAX_LENGTH: String(MESSAGE_CHARS + 100),
      RATE_LIMIT_PER_SEC: '100000',
      RATE_LIMIT_BURST: '100000',
    });
    const sender = await scope.login(gw.wsUrl, 'alice-token');
    const fast = await scope.login(gw.wsUrl, 'bob-token');
    const slow = await scope.login(gw.wsUrl, 'carol-token');
    await fast.next((f) => f.type === 'USER_CONNECTION_MESSAGE' && f.serverData.userId === '3');

    // carol stops reading: her TCP socket is paused, so the kernel buffers fill, then the gateway's.
    (slow.socket as unknown as { _socket: Socket })._socket.pause();

    // When carol's DISCONNECT reaches bob, to the millisecond: the loop below only looks between
    // batches, which take seconds on a loaded machine.
    let disconnectArrivedAt: number | undefined;
    fast.socket.on('message', (data) => {
      if (disconnectArrivedAt === undefined && isDisconnect('3')(JSON.parse(String(data)))) disconnectArrivedAt = Date.now();
    });

    const padding = 'p'.repeat(MESSAGE_CHARS);
    let sent = 0;
    let disconnectSeenAt: number | undefined;
    while (sent < MAX_MESSAGES && disconnectSeenAt === undefined) {
      for (let i = 0; i < BATCH; i++, sent++) sender.send(chat(`#${sent} ${padding}`));
      // Pace on the sender's own echoes so the test does not outrun the gateway.
      await sender.next((f) => f.type === 'CHAT_MESSAGE' && f.serverData.message.startsWith(`#${sent - 1} `), 10_000);
      if (fast.frames.some(isDisconnect('3'))) disconnectSeenAt = Date.now();
    }
    expect(disconnectSeenAt).toBeDefined();
    const sentBeforeDrop = sent;
    // More traffic after the drop: nothing is queued for carol any more, everyone else still gets it.
    for (let i = 0; i < BATCH; i++, sent++) sender.send(chat(`#${sent} ${padding}`));

    // The gateway logged the drop; bob's DISCONNECT followed it promptly (not after a TCP timeout).
    const dropLine = jsonLines(gw.logs).find((l) => String(l.msg).includes('slow consumer'));
    expect(dropLine).toBeDefined();
    expect(disconnectArrivedAt).toBeDefined();
    expect(disconnectArrivedAt! - Date.parse(String(dropLine!.time))).toBeLessThan(2000);

    // bob (fast) received every message, in order, and carol's DISCONNECT among them.
    for (let i = 0; i < sent; i++) {
      const got = await fast.nextOfType('CHAT_MESSAGE', 10_000);
      expect(got.serverData.message.slice(0, `#${i} `.length)).toBe(`#${i} `);
      expect(got.serverData.message.length).toBe(`#${i} `.length + MESSAGE_CHARS);
    }
    const disconnectIndex = fast.frames.findIndex(isDisconnect('3'));
    const lastChatIndex = fast.frames.map((f) => f.type).lastIndexOf('CHAT_MESSAGE');
    expect(disconnectIndex).toBeLessThan(lastChatIndex);
    expect(fast.closeInfo).toBeUndefined();
    expect(sender.closeInfo).toBeUndefined();

    // The drop is counted; the gateway no longer counts carol among its connections.
    const { samples } = await scrape(gw);
    expect(metricValue(samples, 'gateway_slow_consumer_drops_total')).toBe(1);
    expect(metricValue(samples, 'gateway_connections', { state: 'authenticated' })).toBe(2);
    // carol was dropped well before the whole flood went out: the server did not keep queueing for her.
    expect(sentBeforeDrop).toBeLessThan(MAX_MESSAGES);

    // carol's socket was cut: once she reads again she sees a close (4413 if the close frame made it, else 1006).
    (slow.socket as unknown as { _socket: Socket })._socket.resume();
    const closed = await closedWithin(slow, 5000);
    expect([4413, 1006]).toContain(closed.code);
    // Once its socket is gone the close is counted under the code the gateway used.
    await eventually(async () => metricValue((await scrape(gw)).samples, 'gateway_disconnects_total', { code: '4413' }) === 1, 3000, 'disconnect 4413 counted');
  });
});

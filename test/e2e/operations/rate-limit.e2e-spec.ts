import { chat, isDisconnect } from '../../support/frames';
import { metricValue, scrape } from '../../support/metrics';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import { closedWithin, type Frame, received } from '../../support/ws-client';
/**
 * Rate limit: a token bucket of RATE_LIMIT_BURST tokens refilled at RATE_LIMIT_PER_SEC per
 * authenticated connection. Refused frames are answered RATE_LIMITED and not processed; more than
 * BURST refusals within 10 s: the answers already due are sent, then close 4429. Other users are
 * unaffected.
 */

const ENV = { RATE_LIMIT_PER_SEC: '5', RATE_LIMIT_BURST: '10' };
const scope = new Scope();
afterEach(() => scope.closeAll());

const isRateLimited = (f: Frame) => f.type === 'ERROR_MESSAGE' && f.error?.errorCode === 'RATE_LIMITED';

describe('rate limit', () => {
  it('processes a burst of BURST frames and answers the rest RATE_LIMITED without processing them', async () => {
    const gw = await scope.gateway(ENV);
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');

    for (let i = 0; i < 15; i++) alice.send(chat(`burst ${i}`));
    // Bob gets exactly the first 10, in order.
    for (let i = 0; i < 10; i++) expect((await bob.nextOfType('CHAT_MESSAGE')).serverData.message).toBe(`burst ${i}`);
    for (let i = 0; i < 5; i++) {
      const refused = await alice.next(isRateLimited);
      expect(refused).toMatchObject({ type: 'ERROR_MESSAGE', status: 'ERROR', error: { errorCode: 'RATE_LIMITED' } });
      if ('requestType' in refused) expect(refused.requestType).toBe('CHAT_MESSAGE');
    }
    await sleep(150);
    expect(bob.all('CHAT_MESSAGE')).toHaveLength(10);
    expect(alice.all('CHAT_MESSAGE')).toHaveLength(10);
    expect(alice.frames.filter(isRateLimited)).toHaveLength(5);
    expect(alice.closeInfo).toBeUndefined();
  });

  it('closes with 4429 once more than BURST frames were refused, after sending the RATE_LIMITED answers already due; others are unaffected', async () => {
    const gw = await scope.gateway(ENV);
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');
    const carol = await scope.login(gw.wsUrl, 'carol-token');

    for (let i = 0; i < 15; i++) alice.send(chat(`a${i}`));
    await alice.next(isRateLimited);
    // Keep flooding: the 11th refusal (within 10 s) closes the connection.
    for (let i = 15; i < 40; i++) alice.send(chat(`a${i}`));
    const closed = await closedWithin(alice, 3000);
    expect(closed.code).toBe(4429);

    const refusals = alice.frames.filter(isRateLimited).length;
    const processed = alice.all('CHAT_MESSAGE').length;
    // Exactly BURST + 1 refusals were answered, all before the close frame; at most a couple of
    // frames slipped through on tokens refilled while the test was flooding.
    expect(refusals).toBe(11);
    expect(processed).toBeGreaterThanOrEqual(10);
    expect(processed).toBeLessThanOrEqual(14);
    await bob.next(isDisconnect('1'));
    expect(bob.all('CHAT_MESSAGE')).toHaveLength(processed);
    const { samples } = await scrape(gw);
    expect(metricValue(samples, 'gateway_disconnects_total', { code: '4429' })).toBe(1);
    expect(metricValue(samples, 'gateway_rate_limited_frames_total')).toBe(11);

    // Bob and carol were never limited.
    bob.send(chat('bob is fine'));
    carol.send(chat('carol too'));
    expect((await carol.next((f) => f.type === 'CHAT_MESSAGE' && f.serverData.sender === '2')).serverData.message).toBe('bob is fine');
    expect((await bob.next((f) => f.type === 'CHAT_MESSAGE' && f.serverData.sender === '3')).serverData.message).toBe('carol too');
    expect(bob.frames.filter(isRateLimited)).toHaveLength(0);
    expect(carol.frames.filter(isRateLimited)).toHaveLength(0);
  });

  it('a user flooding at the same time as another does not slow the other down', async () => {
    const gw = await scope.gateway(ENV);
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');
    for (let i = 0; i < 13; i++) {
      alice.send(chat(`flood ${i}`));
      if (i < 10) bob.send(chat(`bob ${i}`));
    }
    for (let i = 0; i < 10; i++) {
      expect((await alice.next((f) => f.type === 'CHAT_MESSAGE' && f.serverData.sender === '2')).serverData.message).toBe(`bob ${i}`);
    }
    expect(bob.frames.filter(isRateLimited)).toHaveLength(0);
    await received(alice, isRateLimited);
  });

  it('counts data frames only: pings from the client spend no tokens', async () => {
    const gw = await scope.gateway(ENV);
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');
    // Three bursts' worth of pings; each answered (pong), so the gateway has read them all.
    let pongs = 0;
    alice.socket.on('pong', () => pongs++);
    for (let i = 0; i < 30; i++) alice.socket.ping();
    await eventually(() => pongs === 30, 3000, '30 pongs');
    // The bucket is still full: a whole burst of data frames passes.
    for (let i = 0; i < 10; i++) alice.send(chat(`after pings ${i}`));
    for (let i = 0; i < 10; i++) expect((await bob.nextOfType('CHAT_MESSAGE')).serverData.message).toBe(`after pings ${i}`);
    await sleep(150);
    expect(alice.frames.filter(isRateLimited)).toEqual([]);
    expect(alice.closeInfo).toBeUndefined();
  });

  it('refills tokens over time at RATE_LIMIT_PER_SEC', async () => {
    const gw = await scope.gateway(ENV);
    const alice = await scope.login(gw.wsUrl, 'alice-token');
    const bob = await scope.login(gw.wsUrl, 'bob-token');

    // Empty the bucket: 12 at once, 10 pass (11 if a token was refilled meanwhile), the rest are refused.
    for (let i = 0; i < 12; i++) alice.send(chat(`first ${i}`));
    await eventually(() => alice.all('CHAT_MESSAGE').length + alice.frames.filter(isRateLimited).length === 12, 3000, '12 answers');
    const refusedFirst = alice.frames.filter(isRateLimited).length;
    expect(refusedFirst).toBeGreaterThanOrEqual(1);
    expect(refusedFirst).toBeLessThanOrEqual(2);

    // 1.2 s at 5/s refills 6 tokens: 5 frames in a row pass again.
    await sleep(1200);
    for (let i = 0; i < 5; i++) alice.send(chat(`later ${i}`));
    await eventually(() => bob.all('CHAT_MESSAGE').some((f) => f.serverData.message === 'later 4'), 3000, 'the 5 later messages');
    await sleep(100);
    expect(bob.all('CHAT_MESSAGE').map((f) => f.serverData.message).filter((m: string) => m.startsWith('later'))).toEqual(
      ['later 0', 'later 1', 'later 2', 'later 3', 'later 4'],
    );
    expect(alice.frames.filter(isRateLimited)).toHaveLength(refusedFirst);
    expect(alice.closeInfo).toBeUndefined();
  });
});

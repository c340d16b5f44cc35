/**
 * docs/protocol.md "Events" when NATS is not there: events wait in a buffer of EVENTS_BUFFER_MAX
 * (the oldest dropped beyond it, counted in gateway_events_dropped_total) and are published once
 * NATS is back; clients never wait for NATS, and readiness does not depend on it. With
 * EVENTS_JETSTREAM=true every event is acknowledged by a stream (retried until it is: a missing
 * stream is logged and retried), none lost across a NATS restart, none stored twice (Nats-Msg-Id).
 *
 * One node (the memory engine): the buffer and the retries are per node, whatever the engine.
 * Streams capture core publishes too, so what reached NATS is read from a stream the test creates,
 * whenever the test's own subscriber reconnected.
 */
import { freePort } from '../../support/free-port';
import { chat, isChat } from '../../support/frames';
import { httpStatus } from '../../support/http';
import { metricValue, scrape } from '../../support/metrics';
import { createStream, readStream, streamCount, type ReceivedEvent } from '../../support/nats-events';
import { startNatsServer, type NatsServer } from '../../support/nats-server';
import { Scope } from '../../support/scope';
import { eventually, sleep } from '../../support/time';
import type { TestGateway } from '../../support/gateway';
import type { TestClient } from '../../support/ws-client';

jest.setTimeout(60_000);

const T = { alice: 'alice-token', bob: 'bob-token' };

const scope = new Scope();
let nats: NatsServer;
beforeEach(async () => {
  nats = scope.track(await startNatsServer(), 'server');
});
afterEach(() => scope.closeAll());

let seq = 0;
function names(): { prefix: string; stream: string } {
  seq += 1;
  return { prefix: `outage${seq}.events`, stream: `OUTAGE${seq}` };
}

const chats = (events: ReceivedEvent[]): string[] => events.filter((e) => e.kind === 'chat').map((e) => e.body.message as string);
const logged = (gw: TestGateway, text: string) => () => gw.logs.some((line) => line.includes(text));

async function metric(gw: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue((await scrape(gw)).samples, name, labels);
}

/** Sends chats and waits for each one's echo: the gateway has reported every fact when it returns. */
async function chatAll(client: TestClient, messages: string[]): Promise<void> {
  for (const message of messages) {
    client.send(chat(message));
    await client.next(isChat(message));
  }
}

describe('events while NATS is unreachable', () => {
  it('buffers them and publishes them when NATS is back; readiness stays 200; past EVENTS_BUFFER_MAX the oldest are dropped and counted', async () => {
    const { prefix, stream } = names();
    await createStream(nats.url, stream, [`${prefix}.>`]);
    const gw = await scope.gateway({ EVENTS_NATS_URL: nats.url, EVENTS_SUBJECT_PREFIX: prefix, EVENTS_BUFFER_MAX: '5' });
    const [alice, bob] = [await scope.login(gw.wsUrl, T.alice), await scope.login(gw.wsUrl, T.bob)];
    await eventually(async () => (await streamCount(nats.url, stream)) === 2, 4000, 'the two connect events');

    await nats.stop();
    await eventually(logged(gw, 'NATS disconnected'), 4000, 'the gateway to see NATS gone');
    expect(await httpStatus(`${gw.httpUrl}/health/ready`)).toBe(200);
    expect(await httpStatus(`${gw.httpUrl}/health/live`)).toBe(200);

    // Clients are served as usual while their facts wait; 8 facts for a buffer of 5.
    const sent = Array.from({ length: 8 }, (_, i) => `while down ${i}`);
    const t0 = performance.now();
    await chatAll(alice, sent);
    expect(performance.now() - t0).toBeLessThan(2000);
    await bob.next(isChat(sent[7]));
    expect(await metric(gw, 'gateway_events_dropped_total')).toBe(3);
    expect(await metric(gw, 'gateway_events_published_total', { kind: 'chat' })).toBe(0);
    expect(await httpStatus(`${gw.httpUrl}/health/ready`)).toBe(200);

    await nats.start();
    await eventually(async () => (await streamCount(nats.url, stream)) === 7, 8000, 'the buffered events after NATS came back');
    const stored = await readStream(nats.url, stream);
    // The oldest three gave way; the newest five came, in order.
    expect(chats(stored)).toEqual(sent.slice(3));
    expect(await metric(gw, 'gateway_events_published_total', { kind: 'chat' })).toBe(5);
    expect(await metric(gw, 'gateway_events_dropped_total')).toBe(3);

    // And it goes on as before.
    await chatAll(alice, ['after']);
    await eventually(async () => (await streamCount(nats.url, stream)) === 8, 4000, 'an event after the outage');
  });

  it('starts without NATS (ready, serving), and publishes what happened meanwhile once NATS starts', async () => {
    const { prefix, stream } = names();
    await createStream(nats.url, stream, [`${prefix}.>`]);
    await nats.stop();
    const gw = await scope.gateway({ EVENTS_NATS_URL: nats.url, EVENTS_SUBJECT_PREFIX: prefix });
    expect(await httpStatus(`${gw.httpUrl}/health/ready`)).toBe(200);
    const alice = await scope.login(gw.wsUrl, T.alice);
    await chatAll(alice, ['before nats']);
    await eventually(logged(gw, 'NATS unreachable'), 4000, 'the unreachable warning');
    expect(gw.logs.filter((line) => line.includes('NATS unreachable')).length).toBe(1);

    await nats.start();
    await eventually(async () => (await streamCount(nats.url, stream).catch(() => 0)) === 2, 8000, 'connect and chat');
    expect((await readStream(nats.url, stream)).map((e) => e.kind)).toEqual(['connect', 'chat']);
  });

  it('EVENTS_NATS_URL is a comma-separated list: with one of the servers down, events reach NATS through another, whichever its place', async () => {
    const dead = `nats://127.0.0.1:${await freePort()}`;
    for (const servers of [`${dead}, ${nats.url}`, `${nats.url} ,${dead}`]) {
      const { prefix, stream } = names();
      await createStream(nats.url, stream, [`${prefix}.>`]);
      const gw = await scope.gateway({ EVENTS_NATS_URL: servers, EVENTS_SUBJECT_PREFIX: prefix });
      const alice = await scope.login(gw.wsUrl, T.alice);
      await chatAll(alice, [`through ${servers}`]);
      await eventually(async () => (await streamCount(nats.url, stream)) === 2, 8000, `connect and chat through ${servers}`);
      expect(chats(await readStream(nats.url, stream))).toEqual([`through ${servers}`]);
      await scope.stop(gw);
    }
  });

  it('shuts down within its bound with NATS unreachable, counting what it could not publish', async () => {
    const { prefix } = names();
    await nats.stop();
    const gw = await scope.gateway({ EVENTS_NATS_URL: nats.url, EVENTS_SUBJECT_PREFIX: prefix });
    const alice = await scope.login(gw.wsUrl, T.alice);
    await chatAll(alice, ['lost at shutdown']);
    const t0 = Date.now();
    await scope.stop(gw);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(gw.logs.some((line) => line.includes('not published at shutdown'))).toBe(true);
  });

  it('publishes at shutdown what was reported just before it', async () => {
    const { prefix, stream } = names();
    await createStream(nats.url, stream, [`${prefix}.>`]);
    const gw = await scope.gateway({ EVENTS_NATS_URL: nats.url, EVENTS_SUBJECT_PREFIX: prefix });
    const alice = await scope.login(gw.wsUrl, T.alice);
    const sent = Array.from({ length: 20 }, (_, i) => `last words ${i}`);
    for (const message of sent) alice.send(chat(message));
    await alice.next(isChat(sent[19]));
    await scope.stop(gw);
    await eventually(async () => chats(await readStream(nats.url, stream)).length === 20, 4000, 'the last chats');
    expect(chats(await readStream(nats.url, stream))).toEqual(sent);
  });
});

describe('EVENTS_JETSTREAM=true: at least once', () => {
  it('logs a missing stream as an error and retries until a stream acknowledges; Nats-Msg-Id is the event id', async () => {
    const { prefix, stream } = names();
    const gw = await scope.gateway({ EVENTS_NATS_URL: nats.url, EVENTS_SUBJECT_PREFIX: prefix, EVENTS_JETSTREAM: 'true' });
    const alice = await scope.login(gw.wsUrl, T.alice);
    await chatAll(alice, ['no stream yet']);
    await eventually(logged(gw, 'no JetStream stream captures'), 6000, 'the missing-stream error');
    const errorLine = JSON.parse(gw.logs.find((line) => line.includes('no JetStream stream captures'))!) as { level: string };
    expect(errorLine.level).toBe('error');
    expect(await metric(gw, 'gateway_events_published_total')).toBe(0);

    await createStream(nats.url, stream, [`${prefix}.>`]);
    await eventually(async () => (await metric(gw, 'gateway_events_published_total')) === 2, 6000, 'both events acknowledged');
    const stored = await readStream(nats.url, stream);
    expect(stored.map((e) => e.kind).sort()).toEqual(['chat', 'connect']);
    for (const e of stored) expect(e.msgId).toBe(e.body.id);
    expect(await metric(gw, 'gateway_events_dropped_total')).toBe(0);
  });

  it('loses none across a NATS restart (SIGKILL), stores each once, counts each acknowledged one once', async () => {
    const { prefix, stream } = names();
    await createStream(nats.url, stream, [`${prefix}.>`]);
    const gw = await scope.gateway({ EVENTS_NATS_URL: nats.url, EVENTS_SUBJECT_PREFIX: prefix, EVENTS_JETSTREAM: 'true' });
    const alice = await scope.login(gw.wsUrl, T.alice);
    await eventually(async () => (await metric(gw, 'gateway_events_published_total')) === 1, 4000, 'the connect event');

    // A steady flow of facts; NATS is killed and restarted in the middle of it.
    const sent = Array.from({ length: 90 }, (_, i) => `flow ${i}`);
    const flow = (async () => {
      for (const message of sent) {
        alice.send(chat(message));
        await alice.next(isChat(message));
        await sleep(15);
      }
    })();
    await sleep(400);
    await nats.kill();
    await sleep(500);
    await nats.start();
    await flow;
    expect(logged(gw, 'NATS disconnected')()).toBe(true);

    await eventually(async () => (await metric(gw, 'gateway_events_published_total', { kind: 'chat' })) === sent.length, 15_000, 'every chat acknowledged');
    const stored = await readStream(nats.url, stream);
    expect(chats(stored).sort()).toEqual([...sent].sort());
    expect(new Set(stored.map((e) => e.body.id)).size).toBe(stored.length);
    for (const e of stored) expect(e.msgId).toBe(e.body.id);
    expect(await metric(gw, 'gateway_events_dropped_total')).toBe(0);
    // Consumers may see an event twice in principle (at least once), never a different event under one id.
    await sleep(300);
    expect(await metric(gw, 'gateway_events_published_total', { kind: 'chat' })).toBe(sent.length);
  });
});

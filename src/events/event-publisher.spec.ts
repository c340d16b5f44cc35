import { Logger } from '@nestjs/common';
import type { ClusterBus } from '../engine/engine.ports';
import { ActivityFeed, type Activity } from '../messaging/activity';
import { MetricsService } from '../observability/metrics.service';
import { Status } from '../protocol/protocol';
import { strictMock } from '../../test/support/strict-mock';
import { deferred, eventually, flushPromises, sleep, type Deferred } from '../../test/support/time';
import type { EventLink } from './event-link';
import { ACK_WINDOW, EventPublisher, RETRY_MS } from './event-publisher';
import type { EventsOptions } from './events.options';

/** A broker the test drives: up or down, publishes recorded, acknowledgements settled by hand. */
class FakeLink implements EventLink {
  up = false;
  published: { subject: string; data: string }[] = [];
  acks: { subject: string; data: string; msgId: string; ack: Deferred<void> }[] = [];
  failPublish = false;
  readonly flush = jest.fn(async (_timeoutMs: number) => undefined);
  readonly close = jest.fn(async (_timeoutMs: number) => undefined);
  private onUp: () => void = () => undefined;

  start(onUp: () => void): void {
    this.onUp = onUp;
  }

  setUp(up: boolean): void {
    this.up = up;
    if (up) this.onUp();
  }

  publish(subject: string, data: string): void {
    if (this.failPublish) throw new Error('NATS not connected');
    this.published.push({ subject, data });
  }

  publishAcked(subject: string, data: string, msgId: string): Promise<void> {
    const ack = deferred<void>();
    this.acks.push({ subject, data, msgId, ack });
    return ack.promise;
  }
}

const chatFact = (message: string): Activity => ({ kind: 'chat', message, sender: 'u1', sendTime: '1700000000000' });
const dialogFact: Activity = { kind: 'dialog', messageId: 'm1', sender: 'u1', receiver: 'u2', clientDataJson: '{"a":1e400}', sendTime: '1', status: Status.SUCCESS };

function setup(options: Partial<EventsOptions> = {}) {
  const feed = new ActivityFeed();
  const link = new FakeLink();
  const metrics = new MetricsService();
  const bus = strictMock<ClusterBus>({ nodeId: 'node-a' }, 'bus');
  // flushIntervalMs 0: a flush on the next turn, which flushPromises() waits for (batching has a test of its own).
  const publisher = new EventPublisher(feed, bus, { natsUrls: ['nats://x:4222'], subjectPrefix: 'mpgp.events', jetStream: false, bufferMax: 100, flushIntervalMs: 0, ...options }, link, metrics);
  publisher.onModuleInit();
  const counted = async (name: string, labels: Record<string, string> = {}) => {
    const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    return (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((s, v) => s + v.value, 0);
  };
  return { feed, link, metrics, publisher, counted };
}

const messages = (link: FakeLink) => link.published.map((p) => (JSON.parse(p.data) as { message: string }).message);

describe('EventPublisher', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));

  it('listens to the feed from module init on', () => {
    const { feed } = setup();
    expect(feed.active).toBe(true);
  });

  it('only buffers a fact on report: publishing happens on a later turn', () => {
    const { feed, link } = setup({ bufferMax: 1_000_000 });
    link.setUp(true);
    for (let i = 0; i < 20_000; i++) feed.report(dialogFact);
    // The reporter (the hot path) never waits for the broker; the cost per report is measured by the bench's events scenario.
    expect(link.published).toHaveLength(0);
  });

  it('publishes the facts of FLUSH_INTERVAL_MS in one batch, not one by one', async () => {
    // 1 s: long enough that a loaded CI machine cannot reach the flush before the 'not yet' check.
    const { feed, link } = setup({ flushIntervalMs: 1000 });
    link.setUp(true);
    await flushPromises();
    feed.report(chatFact('a'));
    await flushPromises();
    feed.report(chatFact('b'));
    await flushPromises();
    expect(link.published).toHaveLength(0);
    await eventually(() => link.published.length > 0, 3000, 'the timed flush');
    expect(messages(link)).toEqual(['a', 'b']);
  });

  it('publishes each fact once, in order, on <prefix>.<kind>, and counts it by kind', async () => {
    const { feed, link, counted } = setup();
    link.setUp(true);
    feed.report(chatFact('a'));
    feed.report(dialogFact);
    feed.report({ kind: 'connect', userId: 'u2' });
    await flushPromises();
    expect(link.published.map((p) => p.subject)).toEqual(['mpgp.events.chat', 'mpgp.events.dialog', 'mpgp.events.connect']);
    const dialog = link.published[1].data;
    expect(dialog).toContain('"clientData":{"a":1e400}');
    expect(JSON.parse(link.published[2].data)).toEqual({ id: expect.any(String), time: expect.stringMatching(/^\d+$/), node: 'node-a', userId: 'u2' });
    expect(await counted('gateway_events_published_total', { kind: 'chat' })).toBe(1);
    expect(await counted('gateway_events_published_total', { kind: 'dialog' })).toBe(1);
    expect(await counted('gateway_events_dropped_total')).toBe(0);
  });

  it('keeps facts while NATS is down, the newest EVENTS_BUFFER_MAX of them, counting the oldest it drops', async () => {
    const { feed, link, counted, publisher } = setup({ bufferMax: 3 });
    for (const m of ['1', '2', '3', '4', '5']) feed.report(chatFact(m));
    await flushPromises();
    expect(link.published).toEqual([]);
    expect(publisher.backlog).toBe(3);
    expect(await counted('gateway_events_dropped_total')).toBe(2);
    link.setUp(true);
    await flushPromises();
    expect(messages(link)).toEqual(['3', '4', '5']);
    expect(publisher.backlog).toBe(0);
  });

  it('puts a fact back when the connection went away between two publishes', async () => {
    const { feed, link } = setup();
    link.setUp(true);
    link.failPublish = true;
    feed.report(chatFact('kept'));
    await flushPromises();
    expect(link.published).toEqual([]);
    link.failPublish = false;
    link.setUp(true);
    await flushPromises();
    expect(messages(link)).toEqual(['kept']);
  });

  it('drains a long backlog over several turns, not in one', async () => {
    const { feed, link } = setup({ bufferMax: 5000 });
    for (let i = 0; i < 2500; i++) feed.report(chatFact(String(i)));
    link.setUp(true);
    await flushPromises();
    expect(link.published.length).toBeLessThan(2500);
    await flushPromises();
    await flushPromises();
    expect(link.published).toHaveLength(2500);
  });

  describe('with JetStream', () => {
    it('counts a fact once its publish is acknowledged, with the event id as msgId', async () => {
      const { feed, link, counted } = setup({ jetStream: true });
      link.setUp(true);
      feed.report(chatFact('acked'));
      await flushPromises();
      expect(link.acks).toHaveLength(1);
      const [{ data, msgId, ack }] = link.acks;
      expect(msgId).toBe((JSON.parse(data) as { id: string }).id);
      expect(await counted('gateway_events_published_total', { kind: 'chat' })).toBe(0);
      ack.resolve();
      await flushPromises();
      expect(await counted('gateway_events_published_total', { kind: 'chat' })).toBe(1);
    });

    it('retries what was not acknowledged, after a pause, in order, with the same id and text', async () => {
      const { feed, link, counted, publisher } = setup({ jetStream: true });
      link.setUp(true);
      for (const m of ['a', 'b', 'c']) feed.report(chatFact(m));
      await flushPromises();
      const first = link.acks.splice(0);
      expect(first).toHaveLength(3);
      first[2].ack.reject(new Error('timeout'));
      first[0].ack.reject(Object.assign(new Error('no responders'), { code: '503' }));
      first[1].ack.resolve();
      await flushPromises();
      expect(link.acks).toHaveLength(0);
      expect(publisher.backlog).toBe(2);
      await sleep(RETRY_MS + 100);
      expect(link.acks.map((a) => a.msgId)).toEqual([first[0].msgId, first[2].msgId]);
      expect(link.acks.map((a) => a.data)).toEqual([first[0].data, first[2].data]);
      for (const a of link.acks) a.ack.resolve();
      await flushPromises();
      expect(await counted('gateway_events_published_total', { kind: 'chat' })).toBe(3);
      expect(publisher.backlog).toBe(0);
    });

    it(`keeps at most ${ACK_WINDOW} publishes awaiting their acknowledgement`, async () => {
      const { feed, link, publisher } = setup({ jetStream: true, bufferMax: 1000 });
      link.setUp(true);
      for (let i = 0; i < ACK_WINDOW + 10; i++) feed.report(chatFact(String(i)));
      await flushPromises();
      expect(link.acks).toHaveLength(ACK_WINDOW);
      expect(publisher.backlog).toBe(ACK_WINDOW + 10);
      link.acks[0].ack.resolve();
      await flushPromises();
      await flushPromises();
      expect(link.acks).toHaveLength(ACK_WINDOW + 1);
    });
  });

  describe('at shutdown', () => {
    it('core: publishes the backlog, waits for NATS to have it, closes; listens no more', async () => {
      const { feed, link, publisher } = setup();
      link.setUp(true);
      feed.report(chatFact('x'));
      feed.report(chatFact('y'));
      await publisher.onApplicationShutdown();
      expect(messages(link)).toEqual(['x', 'y']);
      expect(link.flush).toHaveBeenCalled();
      expect(link.close).toHaveBeenCalled();
      expect(feed.active).toBe(false);
    });

    it('JetStream: waits for the acknowledgements within its bound', async () => {
      const { feed, link, publisher, counted } = setup({ jetStream: true });
      link.setUp(true);
      feed.report(chatFact('x'));
      const done = publisher.onApplicationShutdown();
      await flushPromises();
      expect(link.acks).toHaveLength(1);
      link.acks[0].ack.resolve();
      await done;
      expect(await counted('gateway_events_published_total', { kind: 'chat' })).toBe(1);
      expect(await counted('gateway_events_dropped_total')).toBe(0);
      expect(link.close).toHaveBeenCalled();
    });

    it('with NATS down: does not wait, counts what is left as dropped', async () => {
      const { feed, link, publisher, counted } = setup();
      feed.report(chatFact('x'));
      const t0 = Date.now();
      await publisher.onApplicationShutdown();
      expect(Date.now() - t0).toBeLessThan(100);
      expect(link.flush).not.toHaveBeenCalled();
      expect(await counted('gateway_events_dropped_total')).toBe(1);
      expect(link.close).toHaveBeenCalled();
    });
  });
});

/**
 * Events on NATS from the tests' side (docs/protocol.md, "Events"): a subscriber that records every
 * event it receives and lets a test wait for some, a JetStream stream made by the test, and the
 * events that stream holds. The NATS server is test/support/nats-server.ts.
 *
 *   const sink = scope.track(await EventSink.subscribe(nats.url));
 *   await sink.waitFor((e) => e.kind === 'chat' && e.body.message === 'hi');
 *   await createStream(nats.url, 'EVENTS', ['mpgp.events.>']);
 *   const stored = await readStream(nats.url, 'EVENTS');
 */
import { connect, StorageType, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import { eventually } from './time';

export const DEFAULT_PREFIX = 'mpgp.events';

/** One event as received. */
export interface ReceivedEvent {
  subject: string;
  /** The last subject token: chat, dialog, connect, disconnect, profile. */
  kind: string;
  /** The payload as published (UTF-8 text). */
  text: string;
  /** The payload parsed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: Record<string, any>;
  /** The JetStream `Nats-Msg-Id` header, when there is one. */
  msgId?: string;
}

function toEvent(subject: string, data: Uint8Array, headers: MsgHdrs | undefined): ReceivedEvent {
  const text = Buffer.from(data).toString('utf8');
  return { subject, kind: subject.slice(subject.lastIndexOf('.') + 1), text, body: JSON.parse(text) as ReceivedEvent['body'], msgId: headers?.get('Nats-Msg-Id') || undefined };
}

/** A core NATS subscriber on `<prefix>.>` that records every event; it reconnects by itself. */
export class EventSink {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly sub: Subscription,
    /** Every event received, in arrival order. */
    readonly events: ReceivedEvent[],
  ) {}

  static async subscribe(url: string, prefix = DEFAULT_PREFIX): Promise<EventSink> {
    const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const events: ReceivedEvent[] = [];
    const sub = nc.subscribe(`${prefix}.>`, {
      callback: (err, msg) => {
        if (!err) events.push(toEvent(msg.subject, msg.data, msg.headers));
      },
    });
    const sink = new EventSink(nc, sub, events);
    await nc.flush();
    return sink;
  }

  /** The events received of this kind. */
  ofKind(kind: string): ReceivedEvent[] {
    return this.events.filter((e) => e.kind === kind);
  }

  /** Waits until an event matching `predicate` has arrived, and returns the first one. */
  async waitFor(predicate: (e: ReceivedEvent) => boolean, timeoutMs = 4000, what = 'an event'): Promise<ReceivedEvent> {
    await eventually(() => this.events.some(predicate), timeoutMs, what);
    return this.events.find(predicate)!;
  }

  async close(): Promise<void> {
    this.sub.unsubscribe();
    await this.nc.close();
  }
}

/** Creates a JetStream stream (file storage: it survives a server restart) capturing `subjects`. */
export async function createStream(url: string, name: string, subjects: string[] = [`${DEFAULT_PREFIX}.>`]): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name, subjects, storage: StorageType.File });
  } finally {
    await nc.close();
  }
}

/** Every event a stream holds, in stream order. */
export async function readStream(url: string, name: string): Promise<ReceivedEvent[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(name);
    const events: ReceivedEvent[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const stored = await jsm.streams.getMessage(name, { seq }).catch(() => undefined);
      if (stored) events.push(toEvent(stored.subject, stored.data, stored.header));
    }
    return events;
  } finally {
    await nc.close();
  }
}

/** How many messages a stream holds. */
export async function streamCount(url: string, name: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    return (await (await nc.jetstreamManager()).streams.info(name)).state.messages;
  } finally {
    await nc.close();
  }
}

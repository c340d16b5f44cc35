import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { CLUSTER_BUS, type ClusterBus } from '../engine/engine.ports';
import { ActivityFeed, type Activity } from '../messaging/activity';
import { MetricsService } from '../observability/metrics.service';
import { EventBuffer } from './event-buffer';
import { encodeEvent } from './event-encoding';
import { EVENT_LINK, type EventLink } from './event-link';
import { EVENTS_OPTIONS, type EventsOptions } from './events.options';

/** An event waiting to be published; encoded once, on its first attempt (its id with it). */
interface Pending {
  readonly activity: Activity;
  /** When it was reported (the event's `time`). */
  readonly time: number;
  /** Reporting order, to put failed JetStream publishes back in order. */
  readonly seq: number;
  id?: string;
  data?: string;
}

/** Core publishes per event-loop turn: a long backlog drains without holding the loop. */
const CORE_BATCH = 1000;
/** JetStream publishes awaiting their acknowledgement at once (on top of EVENTS_BUFFER_MAX). */
export const ACK_WINDOW = 256;
/** Pause after a failed JetStream publish before the next attempt. */
export const RETRY_MS = 1000;
/** At shutdown, how long publishing may go on before the connection is closed. */
export const SHUTDOWN_FLUSH_MS = 2000;
/** At most one "not acknowledged" error per this long (each failure is retried). */
const ERROR_EVERY_MS = 10_000;

/**
 * Publishes every fact of the ActivityFeed on NATS (docs/protocol.md, "Events"): one message per
 * fact, plain JSON, on `<prefix>.<kind>`.
 *
 * Off the frame path: reporting a fact only appends it to a bounded buffer (and arms one flush
 * timer, FLUSH_INTERVAL_MS); ids, encoding and publishing happen in that flush, one batch and so
 * one socket write to NATS for all the facts of those milliseconds. While NATS is
 * unreachable the buffer keeps the newest EVENTS_BUFFER_MAX events, dropping (and counting) the
 * oldest. Core mode publishes at most once; JetStream mode publishes with the event id as
 * `Nats-Msg-Id` and puts back every publish that was not acknowledged, to be retried (at least
 * once). Nothing here can delay a client or fail readiness.
 */
@Injectable()
export class EventPublisher implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Events');
  private readonly buffer: EventBuffer<Pending>;
  private readonly nodeJson: string;
  /** JetStream publishes that failed, to be put back at the front of the buffer in order. */
  private failed: Pending[] = [];
  private inFlight = 0;
  private seq = 0;
  private scheduled = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastError = 0;
  private suppressed = 0;
  private stopping = false;
  private unlisten: (() => void) | undefined;
  private idle: (() => void) | undefined;

  constructor(
    private readonly feed: ActivityFeed,
    @Inject(CLUSTER_BUS) bus: ClusterBus,
    @Inject(EVENTS_OPTIONS) private readonly options: EventsOptions,
    @Inject(EVENT_LINK) private readonly link: EventLink,
    private readonly metrics: MetricsService,
  ) {
    this.buffer = new EventBuffer<Pending>(options.bufferMax);
    this.nodeJson = JSON.stringify(bus.nodeId);
  }

  onModuleInit(): void {
    this.unlisten = this.feed.listen(this.onActivity);
    this.link.start(() => this.schedule(true));
    this.logger.log(
      { subjects: `${this.options.subjectPrefix}.>`, jetStream: this.options.jetStream, bufferMax: this.options.bufferMax },
      `events: publishing facts on NATS (${this.options.jetStream ? 'JetStream, at least once' : 'core NATS, at most once'})`,
    );
  }

  /** Events not yet published: waiting, awaiting an acknowledgement, or to be retried. */
  get backlog(): number {
    return this.buffer.length + this.inFlight + this.failed.length;
  }

  /** The feed's listener: the only work done on the reporter's path. */
  private readonly onActivity = (activity: Activity): void => {
    if (this.buffer.push({ activity, time: Date.now(), seq: this.seq++ }) > 0) this.metrics.eventsDropped.inc();
    if (!this.scheduled) this.schedule();
  };

  /** Arms the next flush: after FLUSH_INTERVAL_MS, or `soon` (the next turn: a backlog to drain). */
  private schedule(soon = false): void {
    if (this.scheduled || !this.link.up) return;
    this.scheduled = true;
    if (soon || this.options.flushIntervalMs === 0) setImmediate(this.flush);
    else this.flushTimer = setTimeout(this.flush, this.options.flushIntervalMs);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.link.up) return;
    if (this.options.jetStream) this.flushAcked();
    else this.flushCore(this.stopping ? Infinity : CORE_BATCH);
  };

  private flushCore(limit: number): void {
    for (let n = 0; n < limit; n++) {
      const event = this.buffer.shift();
      if (!event) return;
      try {
        this.link.publish(this.subject(event), this.encoded(event));
      } catch (err) {
        // Lost the connection meanwhile: it waits for the next one.
        if (this.buffer.unshift(event) > 0) this.metrics.eventsDropped.inc();
        this.reportFailure(err);
        return;
      }
      this.metrics.countEventPublished(event.activity.kind);
    }
    if (this.buffer.length > 0) this.schedule(true);
  }

  private flushAcked(): void {
    // Paused after a failure until the retry timer fires.
    if (this.retryTimer) return;
    if (this.failed.length > 0) {
      // Oldest first at the front: put back the newest failure first.
      this.failed.sort((a, b) => b.seq - a.seq);
      for (const event of this.failed) if (this.buffer.unshift(event) > 0) this.metrics.eventsDropped.inc();
      this.failed = [];
    }
    while (this.inFlight < ACK_WINDOW) {
      const event = this.buffer.shift();
      if (!event) break;
      this.inFlight += 1;
      const data = this.encoded(event);
      this.link.publishAcked(this.subject(event), data, event.id!).then(
        () => {
          this.inFlight -= 1;
          this.metrics.countEventPublished(event.activity.kind);
          if (this.buffer.length > 0 || this.failed.length > 0) this.schedule();
          this.checkIdle();
        },
        (err: unknown) => {
          this.inFlight -= 1;
          this.failed.push(event);
          this.reportFailure(err);
          this.checkIdle();
        },
      );
    }
  }

  /** A failed publish: pause, log (not every time), and try again. */
  private reportFailure(err: unknown): void {
    const pauseMs = this.stopping ? 100 : RETRY_MS;
    if (!this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.schedule(true);
      }, pauseMs);
    }
    const now = Date.now();
    if (now - this.lastError < ERROR_EVERY_MS) {
      this.suppressed += 1;
      return;
    }
    this.lastError = now;
    const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
    const noStream = code === '503' || /no (stream|responders)/i.test(String(err));
    this.logger.error(
      { err: err instanceof Error ? err.message : String(err), code, backlog: this.backlog, failuresNotLogged: this.suppressed },
      noStream
        ? `events: no JetStream stream captures ${this.options.subjectPrefix}.> (create it: see README, "Events"); retrying`
        : 'events: publish not acknowledged; retrying',
    );
    this.suppressed = 0;
  }

  private subject(event: Pending): string {
    return `${this.options.subjectPrefix}.${event.activity.kind}`;
  }

  private encoded(event: Pending): string {
    if (event.data === undefined) {
      event.id = randomUUID();
      event.data = encodeEvent(event.activity, event.id, event.time, this.nodeJson);
    }
    return event.data;
  }

  private checkIdle(): void {
    if (this.idle && this.backlog === 0) this.idle();
  }

  /**
   * Shutdown: publishes what can be published within SHUTDOWN_FLUSH_MS (nothing is waited for when
   * NATS is unreachable), then closes the connection. What is left is counted as dropped.
   */
  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.unlisten?.();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.scheduled = false;
    const deadline = Date.now() + SHUTDOWN_FLUSH_MS;
    if (this.link.up) {
      if (this.options.jetStream) {
        // Retry at once what is waiting for its pause to end.
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        if (this.backlog > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
            this.idle = () => {
              clearTimeout(timer);
              resolve();
            };
            this.flush();
          });
          this.idle = undefined;
        }
      } else {
        this.flushCore(Infinity);
        await this.link.flush(deadline - Date.now()).catch((err: unknown) => this.logger.warn({ err: String(err) }, 'events: NATS did not confirm the last events'));
      }
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const left = this.backlog;
    if (left > 0) {
      this.metrics.eventsDropped.inc(left);
      this.logger.warn({ events: left }, 'events: not published at shutdown (NATS unreachable or too slow)');
    }
    await this.link.close(Math.max(500, deadline - Date.now()));
  }
}

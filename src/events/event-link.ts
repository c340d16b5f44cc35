/**
 * The events module's view of its message broker: what EventPublisher needs from NATS, so that
 * the buffering and retry rules can be tested without one (NatsLink is the real thing).
 */
export interface EventLink {
  /** Connected now: publishing makes sense. */
  readonly up: boolean;
  /**
   * Starts connecting, in the background (the app never waits for the broker), and keeps
   * reconnecting for as long as the link is open. `onUp` runs at each (re)connection.
   */
  start(onUp: () => void): void;
  /** Core publish, at most once: hands the message to the client's outbound buffer. Throws when it cannot. */
  publish(subject: string, data: string): void;
  /** JetStream publish: resolves once the stream acknowledged it (deduplicated by `msgId`), rejects otherwise. */
  publishAcked(subject: string, data: string, msgId: string): Promise<void>;
  /** Resolves once the server has everything published so far (a round trip), or rejects after `timeoutMs`. */
  flush(timeoutMs: number): Promise<void>;
  /** Stops reconnecting and closes, within `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

export const EVENT_LINK = Symbol('EVENT_LINK');

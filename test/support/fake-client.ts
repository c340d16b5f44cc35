import type { IncomingMessage } from 'node:http';
import { ChatClient, type Transport } from '../../src/messaging/chat-client';
import { MessageType, Status, type UserProfile } from '../../src/protocol/protocol';
import { makeProfile } from './factories';
import { strictMock } from './strict-mock';

/** How a FakeTransport answers a `write`. */
export enum WriteOutcome {
  /** Written; the callback runs a microtask later without an error (the socket write completed). */
  WRITTEN = 'WRITTEN',
  /** Written; the callback runs a microtask later with an error (the socket failed under it). */
  FAILED = 'FAILED',
  /** Refused at once: false, nothing written, no callback (closed, or over its send buffer). */
  REFUSED = 'REFUSED',
  /** Written; the callback waits for `completeWrites()`. */
  HELD = 'HELD',
}

/** One frame a FakeTransport was given, and how: `write` (frames, deliveries) or `writeBroadcast`. */
export interface RecordedWrite {
  readonly text: string;
  readonly via: 'write' | 'broadcast';
  /** The bytes handed to writeBroadcast (the same Buffer for every receiver of a broadcast). */
  readonly bytes?: Buffer;
}

/**
 * The gateway's side of a connection (src/gateway/ws-transport.ts), in memory: records every
 * frame written to it, in order, and how; its writes, probes, close and drop behave as the test
 * sets them. Behind a real ChatClient, the specs exercise the client's real state machine
 * (held broadcasts while JOINING, nothing after CLOSING, delivery outcomes).
 */
export class FakeTransport implements Transport {
  isOpen = true;
  /** What the next writes do. */
  writeOutcome = WriteOutcome.WRITTEN;
  readonly writes: RecordedWrite[] = [];
  /** Close frames sent: code and reason. */
  readonly closes: { code: number; reason: string }[] = [];
  /** True once dropped without a close frame. */
  dropped = false;
  /** What probe() answers while open (a live peer by default); the timeouts it was asked with. */
  answersProbe = true;
  readonly probes: number[] = [];
  /** What the gateway side did, in order: 'write', 'broadcast', 'close:<code>:<reason>', 'drop'. */
  readonly calls: string[] = [];
  /** Called with each frame written (write or broadcast), when it is recorded: to log it in a spec's own timeline. */
  onWrite?: (text: string) => void;
  private heldCallbacks: ((err?: Error) => void)[] = [];

  write(text: string, done?: (err?: Error) => void): boolean {
    if (!this.isOpen || this.writeOutcome === WriteOutcome.REFUSED) return false;
    this.writes.push({ text, via: 'write' });
    this.calls.push('write');
    this.onWrite?.(text);
    if (!done) return true;
    switch (this.writeOutcome) {
      case WriteOutcome.WRITTEN:
        void Promise.resolve().then(() => done());
        break;
      case WriteOutcome.FAILED:
        void Promise.resolve().then(() => done(new Error('write failed')));
        break;
      case WriteOutcome.HELD:
        this.heldCallbacks.push(done);
    }
    return true;
  }

  writeBroadcast(text: string, bytes: Buffer): void {
    if (!bytes.equals(Buffer.from(text))) throw new Error('writeBroadcast: bytes are not the UTF-8 encoding of text');
    if (!this.isOpen) return;
    this.writes.push({ text, via: 'broadcast', bytes });
    this.calls.push('broadcast');
    this.onWrite?.(text);
  }

  probe(timeoutMs: number): Promise<boolean> {
    this.probes.push(timeoutMs);
    return Promise.resolve(this.isOpen && this.answersProbe);
  }

  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
    this.calls.push(`close:${code}:${reason}`);
    this.isOpen = false;
  }

  drop(): void {
    this.dropped = true;
    this.calls.push('drop');
    this.isOpen = false;
  }

  /** Runs the callbacks of the HELD writes, in order, with `err` (none: they completed). */
  completeWrites(err?: Error): void {
    const callbacks = this.heldCallbacks;
    this.heldCallbacks = [];
    for (const done of callbacks) done(err);
  }

  /** The frames written, serialized, in order. */
  get written(): string[] {
    return this.writes.map((w) => w.text);
  }

  /** The frames written, parsed. */
  get frames(): unknown[] {
    return this.writes.map((w) => JSON.parse(w.text) as unknown);
  }

  /** Forgets what was written so far. */
  clear(): void {
    this.writes.length = 0;
  }
}

/** A real ChatClient over a FakeTransport. */
export interface FakeConnection {
  readonly client: ChatClient;
  readonly transport: FakeTransport;
}

/** A connection just opened: PRE_AUTH, no user. Its upgrade request is a strict mock (nothing reads it). */
export function openClient(): FakeConnection {
  const transport = new FakeTransport();
  const client = new ChatClient(transport, strictMock<IncomingMessage>({}, 'request'));
  return { client, transport };
}

/** A connection whose token was verified for this user (what AuthGuard leaves): PRE_AUTH, `user` set. */
export function verifiedClient(user: UserProfile | string = 'alice'): FakeConnection {
  const connection = openClient();
  connection.client.authenticate(typeof user === 'string' ? makeProfile(user) : user);
  return connection;
}

/** A logged-in connection (JOINED) as the feature services get it; the AUTH SUCCESS it was sent is not in its record. */
export function joinedClient(user: UserProfile | string = 'alice'): FakeConnection {
  const connection = verifiedClient(user);
  const { client, transport } = connection;
  const profile = client.user!;
  client.beginJoin(profile);
  client.completeJoin(
    JSON.stringify({ type: MessageType.AUTH, status: Status.SUCCESS, serverData: { userId: profile.userId, userList: [profile] } }),
  );
  transport.clear();
  return connection;
}

/** Appends 'send' to `log` whenever the client sends a frame (which it still does): to check the order of sends among other calls. */
export function logSends(client: ChatClient, log: string[]): void {
  const send = client.send.bind(client);
  jest.spyOn(client, 'send').mockImplementation((frame) => {
    log.push('send');
    send(frame);
  });
}

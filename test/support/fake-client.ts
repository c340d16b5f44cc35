import type { Session } from '../../src/engine/engine.ports';
import type { JoiningClient, SendResult } from '../../src/messaging/client';
import type { UserProfile } from '../../src/protocol/protocol';
import { UnstubbedCallError } from './strict-mock';

export function testProfile(userId: string, extra: Partial<UserProfile> = {}): UserProfile {
  return {
    userId,
    nickname: `nick-${userId}`,
    avatar: `http://auth.example/${userId}.png`,
    language: 'en',
    status: 'hello',
    lastOnline: '1700000000000',
    registerDate: '1600000000000',
    ...extra,
  };
}

/**
 * A client for the feature services' unit tests: records every frame sent to it (serialized, as
 * it would go on the wire) and, for the presence service, the join steps in `events`.
 * `sendConfirmed` is not for feature services (the connection registry uses it): it throws.
 */
export class FakeClient implements JoiningClient {
  readonly sent: string[] = [];
  readonly events: string[] = [];
  profile: UserProfile;
  joined = false;
  isOpen = true;
  session?: Session;

  constructor(
    public userId = 'alice',
    readonly id = `conn-${userId}`,
  ) {
    this.profile = testProfile(userId);
  }

  send(frame: object | string): void {
    this.sent.push(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  sendEncoded(text: string, bytes: Buffer): void {
    if (!bytes.equals(Buffer.from(text))) throw new Error('sendEncoded: bytes are not the UTF-8 encoding of text');
    this.sent.push(text);
  }

  /** Close codes this client was closed with. */
  readonly closes: number[] = [];

  close(code: number, _reason: string): void {
    this.closes.push(code);
    this.isOpen = false;
  }

  sendConfirmed(_frame: string, _done: (result: SendResult) => void): void {
    throw new UnstubbedCallError('client', 'sendConfirmed');
  }

  /** What probe() answers (a live peer by default); the timeouts it was asked with. */
  answersProbe = true;
  readonly probes: number[] = [];

  probe(timeoutMs: number): Promise<boolean> {
    this.probes.push(timeoutMs);
    return Promise.resolve(this.isOpen && this.answersProbe);
  }

  /** True once dropped. */
  dropped = false;

  drop(): void {
    this.dropped = true;
    this.isOpen = false;
  }

  /** The frames sent, parsed. */
  get frames(): unknown[] {
    return this.sent.map((s) => JSON.parse(s) as unknown);
  }

  replaceProfile(profile: UserProfile): void {
    this.profile = profile;
  }

  beginJoin(profile: UserProfile): void {
    this.events.push('beginJoin');
    this.userId = profile.userId;
    this.profile = profile;
  }

  completeJoin(authSuccessFrame: string): void {
    this.events.push('completeJoin');
    this.joined = true;
    this.sent.push(authSuccessFrame);
  }

  abortJoin(): void {
    this.events.push('abortJoin');
  }
}

const realSetImmediate = setImmediate;

/** Lets every pending promise callback run (works under jest fake timers too). */
export function flushPromises(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

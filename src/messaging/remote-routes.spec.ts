import { performance } from 'node:perf_hooks';
import { Logger } from '@nestjs/common';
import { makeProfile } from '../../test/support/factories';
import { strictMock } from '../../test/support/strict-mock';
import { deferred, flushPromises, type Deferred } from '../../test/support/time';
import { RemoteOutcome, type ClusterBus, type DeliveryRequest, type PresenceRegistry, type Session } from '../engine/engine.ports';
import { Status, type DeliveryStatus } from '../protocol/protocol';
import { RemoteRoutes } from './remote-routes';

const THIS_NODE = 'node-a';
const session = (userId: string, nodeId: string): Session => ({ userId, nodeId, connId: `c-${userId}`, profile: makeProfile(userId) });

/** One bus.deliver call, answered when the test says. */
interface Sent {
  node: string;
  request: DeliveryRequest;
  timeoutMs: number;
  answer: Deferred<RemoteOutcome>;
}

describe('RemoteRoutes', () => {
  let sent: Sent[];
  let reads: { userId: string; answer: Deferred<Session | undefined> }[];
  let outcomes: Map<string, DeliveryStatus[]>;
  let now: number;
  let routes: RemoteRoutes;

  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => jest.restoreAllMocks());

  function build(remoteRoutesMax = 100): RemoteRoutes {
    const bus = strictMock<ClusterBus>(
      {
        nodeId: THIS_NODE,
        deliver: (node, request, timeoutMs) => {
          const answer = deferred<RemoteOutcome>();
          sent.push({ node, request, timeoutMs, answer });
          return answer.promise;
        },
      },
      'bus',
    );
    const presence = strictMock<PresenceRegistry>(
      {
        locate: (userId) => {
          const answer = deferred<Session | undefined>();
          reads.push({ userId, answer });
          return answer.promise;
        },
      },
      'presence',
    );
    return new RemoteRoutes(bus, presence, { remoteRoutesMax });
  }

  beforeEach(() => {
    sent = [];
    reads = [];
    outcomes = new Map();
    now = 1000;
    jest.spyOn(performance, 'now').mockImplementation(() => now);
    routes = build();
  });

  /** Hands in a dialog frame `frame` to `userId`; its outcomes are recorded under the frame. */
  function deliver(userId: string, frame: string, timeoutMs = 5000, to: RemoteRoutes = routes): void {
    outcomes.set(frame, []);
    to.deliver(userId, frame, timeoutMs, (status) => outcomes.get(frame)!.push(status));
  }

  const framesSentTo = (node: string) => sent.filter((s) => s.node === node).map((s) => s.request.frame);

  /** A first dialog to `userId` finds them on `node` and is delivered: the route is remembered. */
  async function routeKnown(userId: string, node: string, frame: string): Promise<void> {
    deliver(userId, frame);
    await answerRead(reads.length - 1, session(userId, node));
    await answerSent(sent.length - 1, RemoteOutcome.DELIVERED);
  }

  async function answerRead(index: number, value: Session | undefined | Error): Promise<void> {
    if (value instanceof Error) reads[index].answer.reject(value);
    else reads[index].answer.resolve(value);
    await flushPromises();
  }

  async function answerSent(index: number, outcome: RemoteOutcome): Promise<void> {
    sent[index].answer.resolve(outcome);
    await flushPromises();
  }

  it('reads the registry once, then sends to the remembered node: one PUBLISH per later dialog', async () => {
    deliver('bob', 'm1');
    expect(reads.map((r) => r.userId)).toEqual(['bob']);
    expect(sent).toEqual([]);
    await answerRead(0, session('bob', 'node-b'));
    expect(sent.map((s) => [s.node, s.request])).toEqual([['node-b', { userId: 'bob', frame: 'm1' }]]);
    await answerSent(0, RemoteOutcome.DELIVERED);
    deliver('bob', 'm2');
    expect(reads).toHaveLength(1);
    expect(framesSentTo('node-b')).toEqual(['m1', 'm2']);
    await answerSent(1, RemoteOutcome.DELIVERED);
    expect(outcomes).toEqual(new Map([['m1', [Status.SUCCESS]], ['m2', [Status.SUCCESS]]]));
  });

  it('dialogs handed in during the read wait for it and leave in their order', async () => {
    deliver('bob', 'm1');
    deliver('bob', 'm2');
    deliver('bob', 'm3');
    expect(reads).toHaveLength(1);
    await answerRead(0, session('bob', 'node-b'));
    expect(framesSentTo('node-b')).toEqual(['m1', 'm2', 'm3']);
  });

  it.each<[string, Session | undefined | Error]>([
    ['the user is offline', undefined],
    ['the user has only a session of this node (leaving it)', session('bob', THIS_NODE)],
    ['the registry cannot be read', new Error('redis down')],
  ])('ERROR, once, without a PUBLISH, when %s; the next dialog reads again', async (_case, found) => {
    deliver('bob', 'm1');
    await answerRead(0, found);
    expect(sent).toEqual([]);
    expect(outcomes).toEqual(new Map([['m1', [Status.ERROR]]]));
    expect(routes.size).toBe(0); // nothing kept for a user found nowhere
    deliver('bob', 'm2');
    expect(reads).toHaveLength(2);
  });

  it('a dialog handed in during a read that finds nobody gets a read of its own (the user may have come online since)', async () => {
    deliver('bob', 'm1');
    deliver('bob', 'm2');
    await answerRead(0, undefined);
    expect(outcomes).toEqual(new Map([['m1', [Status.ERROR]], ['m2', []]]));
    expect(reads).toHaveLength(2);
    deliver('bob', 'm3'); // shares the second read
    await answerRead(1, session('bob', 'node-b'));
    expect(reads).toHaveLength(2);
    expect(framesSentTo('node-b')).toEqual(['m2', 'm3']);
  });

  it.each([RemoteOutcome.REFUSED, RemoteOutcome.UNREACHABLE])(
    'a stale route (%s): the registry is read again and the dialog goes to the user\'s new node, once',
    async (refusal) => {
      await routeKnown('bob', 'node-b', 'm1');
      // Bob moved to node-c; node-b says so.
      deliver('bob', 'm2');
      await answerSent(1, refusal);
      expect(reads).toHaveLength(2);
      expect(outcomes.get('m2')).toEqual([]);
      await answerRead(1, session('bob', 'node-c'));
      expect(framesSentTo('node-c')).toEqual(['m2']);
      await answerSent(2, RemoteOutcome.DELIVERED);
      expect(outcomes.get('m2')).toEqual([Status.SUCCESS]);
      // The new route is remembered.
      deliver('bob', 'm3');
      expect(framesSentTo('node-c')).toEqual(['m2', 'm3']);
      expect(reads).toHaveLength(2);
    },
  );

  it('is sent at most twice: a second refusal is ERROR', async () => {
    deliver('bob', 'm1');
    await answerRead(0, session('bob', 'node-b'));
    await answerSent(0, RemoteOutcome.REFUSED);
    await answerRead(1, session('bob', 'node-c'));
    await answerSent(1, RemoteOutcome.REFUSED);
    expect(sent).toHaveLength(2);
    expect(reads).toHaveLength(2);
    expect(outcomes.get('m1')).toEqual([Status.ERROR]);
  });

  it('ERROR without sending again when the registry still names the node that refused', async () => {
    deliver('bob', 'm1');
    await answerRead(0, session('bob', 'node-b'));
    await answerSent(0, RemoteOutcome.UNREACHABLE); // node-b died; its sessions are not swept yet
    await answerRead(1, session('bob', 'node-b'));
    expect(sent).toHaveLength(1);
    expect(outcomes.get('m1')).toEqual([Status.ERROR]);
  });

  it('no answer: ERROR, never sent again (it may have been delivered); the next dialog reads the registry', async () => {
    deliver('bob', 'm1');
    await answerRead(0, session('bob', 'node-b'));
    await answerSent(0, RemoteOutcome.UNANSWERED);
    expect(outcomes.get('m1')).toEqual([Status.ERROR]);
    expect(reads).toHaveLength(1);
    deliver('bob', 'm2');
    expect(reads).toHaveLength(2);
    await answerRead(1, session('bob', 'node-b'));
    expect(framesSentTo('node-b')).toEqual(['m1', 'm2']);
  });

  it('keeps the order across a stale route: the refused ones go again first, in order, then those that waited', async () => {
    await routeKnown('bob', 'node-b', 'm0');
    for (const frame of ['m1', 'm2', 'm3']) deliver('bob', frame);
    expect(framesSentTo('node-b')).toEqual(['m0', 'm1', 'm2', 'm3']);
    await answerSent(1, RemoteOutcome.REFUSED);
    deliver('bob', 'm4'); // after the first refusal: waits
    await answerSent(2, RemoteOutcome.REFUSED);
    expect(reads).toHaveLength(1); // m3 is still in flight on the old route
    deliver('bob', 'm5');
    await answerSent(3, RemoteOutcome.REFUSED);
    expect(reads).toHaveLength(2);
    await answerRead(1, session('bob', 'node-c'));
    expect(framesSentTo('node-c')).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    for (let i = 4; i < sent.length; i++) await answerSent(i, RemoteOutcome.DELIVERED);
    expect([...outcomes.values()]).toEqual(Array.from({ length: 6 }, () => [Status.SUCCESS]));
  });

  it('a node that does not answer is not waited for: the next dialog reads the registry at once; what was in flight there is answered, never sent again', async () => {
    deliver('bob', 'm1');
    await answerRead(0, session('bob', 'node-b'));
    deliver('bob', 'm2');
    deliver('bob', 'm3');
    await answerSent(0, RemoteOutcome.UNANSWERED); // node-b stalled; m2 and m3 are still in flight there
    deliver('bob', 'm4');
    expect(reads).toHaveLength(2);
    await answerRead(1, session('bob', 'node-c')); // bob reconnected to node-c
    expect(framesSentTo('node-c')).toEqual(['m4']);
    await answerSent(3, RemoteOutcome.DELIVERED);
    // node-b wakes up: m2 had been delivered there (to bob's old connection), m3 is refused and,
    // sent again now, would overtake m4: ERROR.
    await answerSent(1, RemoteOutcome.DELIVERED);
    await answerSent(2, RemoteOutcome.REFUSED);
    expect(sent).toHaveLength(4);
    expect(outcomes).toEqual(
      new Map([
        ['m1', [Status.ERROR]],
        ['m2', [Status.SUCCESS]],
        ['m3', [Status.ERROR]],
        ['m4', [Status.SUCCESS]],
      ]),
    );
    // The new route is remembered, and the lane was not disturbed by the old answers.
    deliver('bob', 'm5');
    expect(framesSentTo('node-c')).toEqual(['m4', 'm5']);
    expect(reads).toHaveLength(2);
  });

  it('refused dialogs collected before a node stops answering are sent again with the read that follows', async () => {
    await routeKnown('bob', 'node-b', 'm0');
    deliver('bob', 'm1');
    deliver('bob', 'm2');
    await answerSent(1, RemoteOutcome.REFUSED); // waits for m2
    expect(reads).toHaveLength(1);
    await answerSent(2, RemoteOutcome.UNANSWERED);
    expect(reads).toHaveLength(2);
    await answerRead(1, session('bob', 'node-c'));
    expect(framesSentTo('node-c')).toEqual(['m1']);
    expect(outcomes.get('m2')).toEqual([Status.ERROR]);
  });

  it('a dialog sent again gets what is left of its DELIVERY_TIMEOUT_MS; none left is ERROR, not sent', async () => {
    deliver('bob', 'm1', 5000);
    deliver('bob', 'm2', 5000);
    expect(reads).toHaveLength(1);
    now += 1000;
    await answerRead(0, session('bob', 'node-b'));
    expect(sent.map((s) => s.timeoutMs)).toEqual([4000, 4000]);
    now += 1500;
    await answerSent(0, RemoteOutcome.REFUSED);
    now += 3000; // m2's answer comes late: m1 has 0 ms left at the second read
    await answerSent(1, RemoteOutcome.REFUSED);
    await answerRead(1, session('bob', 'node-c'));
    expect(sent).toHaveLength(2);
    expect(outcomes).toEqual(new Map([['m1', [Status.ERROR]], ['m2', [Status.ERROR]]]));
  });

  it('users are routed independently', async () => {
    deliver('bob', 'b1');
    deliver('carol', 'c1');
    expect(reads.map((r) => r.userId)).toEqual(['bob', 'carol']);
    await answerRead(1, session('carol', 'node-c'));
    expect(framesSentTo('node-c')).toEqual(['c1']); // not held up by bob's read
    await answerRead(0, session('bob', 'node-b'));
    expect(framesSentTo('node-b')).toEqual(['b1']);
  });

  describe('REMOTE_ROUTES_MAX', () => {
    it('remembers at most that many idle routes, dropping the oldest idle one', async () => {
      routes = build(2);
      for (const user of ['u1', 'u2', 'u3']) await routeKnown(user, 'node-b', `${user}-1`);
      expect(routes.size).toBe(2);
      deliver('u3', 'u3-2');
      deliver('u2', 'u2-2');
      expect(reads).toHaveLength(3); // both still remembered
      deliver('u1', 'u1-2');
      expect(reads).toHaveLength(4); // the oldest was dropped
    });

    it('never drops a route with dialogs in progress', async () => {
      routes = build(1);
      deliver('u1', 'u1-1');
      await answerRead(0, session('u1', 'node-b'));
      deliver('u2', 'u2-1'); // u1's dialog is still in flight
      await answerRead(1, session('u2', 'node-c'));
      expect(routes.size).toBe(2);
      await answerSent(0, RemoteOutcome.DELIVERED);
      await answerSent(1, RemoteOutcome.DELIVERED);
      expect(routes.size).toBe(1);
      expect(outcomes).toEqual(new Map([['u1-1', [Status.SUCCESS]], ['u2-1', [Status.SUCCESS]]]));
    });

    it('0 remembers none: every dialog reads the registry once its predecessors are answered', async () => {
      routes = build(0);
      await routeKnown('bob', 'node-b', 'm1');
      expect(routes.size).toBe(0);
      deliver('bob', 'm2');
      expect(reads).toHaveLength(2);
    });
  });
});

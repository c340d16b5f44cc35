import { useRedisEngine } from '../../../test/support/redis-engine';
import { eventually, sleep } from '../../../test/support/time';
import { Status, type DeliveryStatus } from '../../protocol/protocol';
import { CommandOutcome, ProbeOutcome, RemoteOutcome, type BroadcastEvent, type DeliveryRequest, type NodeCommand } from '../engine.ports';
import { RedisClusterBus } from './redis-cluster-bus';

describe('RedisClusterBus (real redis-server)', () => {
  const buses: RedisClusterBus[] = [];
  const env = useRedisEngine({
    beforeClose: () => {
      for (const bus of buses.splice(0)) bus.close();
    },
  });

  async function bus(): Promise<RedisClusterBus> {
    const connection = env.pool.create();
    const b = new RedisClusterBus(connection);
    buses.push(b);
    connection.start();
    await eventually(() => connection.connected, 5000, 'connected');
    return b;
  }

  function recordBroadcasts(b: RedisClusterBus): BroadcastEvent[] {
    const got: BroadcastEvent[] = [];
    b.onBroadcast((e) => got.push(e));
    return got;
  }

  it('broadcasts reach every other node once, with the excepted user, not the sender', async () => {
    const [a, b, c] = [await bus(), await bus(), await bus()];
    const [ga, gb, gc] = [recordBroadcasts(a), recordBroadcasts(b), recordBroadcasts(c)];
    const frame = JSON.stringify({ type: 'CHAT_MESSAGE', serverData: { message: 'multi\nline "quoted" ✓' } });
    a.publish({ frame, exceptUserId: 'u\n1' });
    a.publish({ frame: 'second' });
    await eventually(() => gb.length === 2 && gc.length === 2, 2000, 'broadcasts');
    await sleep(50);
    expect(ga).toEqual([]);
    for (const got of [gb, gc]) {
      expect(got).toEqual([
        { frame, exceptUserId: 'u\n1' },
        { frame: 'second', exceptUserId: undefined },
      ]);
    }
  });

  it('delivers to the receiving node and reports its outcome: DELIVERED, or REFUSED', async () => {
    const [a, b] = [await bus(), await bus()];
    const seen: DeliveryRequest[] = [];
    b.onDeliver(async (request) => {
      seen.push(request);
      return request.userId === 'here' ? Status.SUCCESS : Status.ERROR;
    });
    await expect(a.deliver(b.nodeId, { userId: 'here', frame: '{"x":1}' }, 2000)).resolves.toBe(RemoteOutcome.DELIVERED);
    await expect(a.deliver(b.nodeId, { userId: 'gone', frame: '{"x":2}' }, 2000)).resolves.toBe(RemoteOutcome.REFUSED);
    expect(seen).toEqual([
      { userId: 'here', frame: '{"x":1}' },
      { userId: 'gone', frame: '{"x":2}' },
    ]);
    expect(a.pendingDeliveries).toBe(0);
  });

  describe('node commands (a duplicate login\'s probe, the Server API\'s kick and profile change)', () => {
    it('carries a command to the node and reports its answer', async () => {
      const [a, b] = [await bus(), await bus()];
      const seen: NodeCommand[] = [];
      b.onCommand(async (command) => {
        seen.push(command);
        if (command.kind === 'probe') return command.connId === 'live' ? ProbeOutcome.ALIVE : ProbeOutcome.GONE;
        return CommandOutcome.DONE;
      });
      await expect(a.command(b.nodeId, { kind: 'probe', userId: 'u\n1', connId: 'live', timeoutMs: 300 }, 0)).resolves.toBe(ProbeOutcome.ALIVE);
      await expect(a.command(b.nodeId, { kind: 'probe', userId: 'u2', connId: 'dead', timeoutMs: 300 }, 0)).resolves.toBe(ProbeOutcome.GONE);
      await expect(a.command(b.nodeId, { kind: 'kick', userId: 'u3', reason: 'banned "x"' }, 1000)).resolves.toBe(CommandOutcome.DONE);
      await expect(a.command(b.nodeId, { kind: 'profile', userId: 'u4', patch: { nickname: 'ñ' } }, 1000)).resolves.toBe(CommandOutcome.DONE);
      expect(seen).toEqual([
        { kind: 'probe', userId: 'u\n1', connId: 'live', timeoutMs: 300 },
        { kind: 'probe', userId: 'u2', connId: 'dead', timeoutMs: 300 },
        { kind: 'kick', userId: 'u3', reason: 'banned "x"' },
        { kind: 'profile', userId: 'u4', patch: { nickname: 'ñ' } },
      ]);
      expect(a.pendingDeliveries).toBe(0);
    });

    it('waits for a probe as long as the probe itself takes on that node', async () => {
      const [a, b] = [await bus(), await bus()];
      b.onCommand(() => new Promise((resolve) => setTimeout(() => resolve(ProbeOutcome.GONE), 400)));
      await expect(a.command(b.nodeId, { kind: 'probe', userId: 'u', connId: 'c', timeoutMs: 400 }, 0)).resolves.toBe(ProbeOutcome.GONE);
    });

    it('does not carry out a command that arrives after its deadline (a stalled node): no late kick', async () => {
      const [a, b] = [await bus(), await bus()];
      const seen: NodeCommand[] = [];
      b.onCommand(async (command) => {
        seen.push(command);
        return CommandOutcome.DONE;
      });
      const outcome = a.command(b.nodeId, { kind: 'kick', userId: 'u', reason: 'late' }, 30);
      const until = Date.now() + 100;
      while (Date.now() < until) {
        // busy: nothing else runs, as in a stopped node
      }
      await expect(outcome).resolves.toBeUndefined();
      await sleep(100);
      expect(seen).toEqual([]);
      // In time, it is.
      await expect(a.command(b.nodeId, { kind: 'kick', userId: 'u', reason: 'on time' }, 1000)).resolves.toBe(CommandOutcome.DONE);
      expect(seen).toEqual([{ kind: 'kick', userId: 'u', reason: 'on time' }]);
    });

    it('carries out a command from an older node whose header has no deadline', async () => {
      const b = await bus();
      const seen: NodeCommand[] = [];
      b.onCommand(async (command) => {
        seen.push(command);
        return CommandOutcome.DONE;
      });
      const old = env.pool.create();
      old.start();
      await eventually(() => old.connected, 5000, 'connected');
      await old.commands.publish(old.keys.nodeChannel(b.nodeId), `${JSON.stringify(['C', 'old-node', 'r1'])}\n${JSON.stringify({ kind: 'kick', userId: 'u', reason: '' })}`);
      await eventually(() => seen.length === 1, 2000, 'the command carried out');
    });

    it('resolves undefined (nothing known) when nobody listens for the node, or its handler fails', async () => {
      const [a, b] = [await bus(), await bus()];
      const started = Date.now();
      await expect(a.command('no-such-node', { kind: 'kick', userId: 'u', reason: '' }, 5000)).resolves.toBeUndefined();
      expect(Date.now() - started).toBeLessThan(1000);
      b.onCommand(() => Promise.reject(new Error('boom')));
      await expect(a.command(b.nodeId, { kind: 'kick', userId: 'u', reason: '' }, 300)).resolves.toBeUndefined();
    });
  });

  it('a handler that throws or rejects is a refusal (ERROR on the wire)', async () => {
    const [a, b] = [await bus(), await bus()];
    b.onDeliver(() => {
      throw new Error('boom');
    });
    await expect(a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 2000)).resolves.toBe(RemoteOutcome.REFUSED);
    b.onDeliver(() => Promise.reject(new Error('boom')));
    await expect(a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 2000)).resolves.toBe(RemoteOutcome.REFUSED);
  });

  it('answers UNREACHABLE at once for a node nobody listens for (not delivered)', async () => {
    const a = await bus();
    const started = Date.now();
    await expect(a.deliver('no-such-node', { userId: 'u', frame: 'f' }, 5000)).resolves.toBe(RemoteOutcome.UNREACHABLE);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('answers UNANSWERED when the node does not answer in time, and ignores its late answer', async () => {
    const [a, b] = [await bus(), await bus()];
    let finish!: (s: DeliveryStatus) => void;
    b.onDeliver(() => new Promise<DeliveryStatus>((resolve) => (finish = resolve)));
    const started = Date.now();
    await expect(a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 300)).resolves.toBe(RemoteOutcome.UNANSWERED);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    finish(Status.SUCCESS);
    await sleep(100);
    expect(a.pendingDeliveries).toBe(0);
  });

  it('does not deliver a request that arrives after its deadline', async () => {
    const [a, b] = [await bus(), await bus()];
    let calls = 0;
    b.onDeliver(async () => {
      calls += 1;
      return Status.SUCCESS;
    });
    // The request is written at once; then this process (both nodes) stalls past its deadline,
    // as a stopped node would: when b reads the request, it is too late.
    const outcome = a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 30);
    const until = Date.now() + 100;
    while (Date.now() < until) {
      // busy: nothing else runs
    }
    // b refuses it as too late, or a's own timer fires first: either way, not delivered.
    expect([RemoteOutcome.REFUSED, RemoteOutcome.UNANSWERED]).toContain(await outcome);
    await sleep(100);
    expect(calls).toBe(0);
  });

  it('keeps the order of one sender’s deliveries to one node', async () => {
    const [a, b] = [await bus(), await bus()];
    const order: string[] = [];
    b.onDeliver(async (r) => {
      order.push(r.frame);
      await sleep(Math.random() * 5); // answers complete out of order
      return Status.SUCCESS;
    });
    const frames = Array.from({ length: 300 }, (_, i) => `m${i}`);
    const results = await Promise.all(frames.map((frame) => a.deliver(b.nodeId, { userId: 'u', frame }, 5000)));
    expect(results.every((r) => r === RemoteOutcome.DELIVERED)).toBe(true);
    expect(order).toEqual(frames);
  });

  it('fails fast while Redis is down and carries traffic again once it is back', async () => {
    const [a, b] = [await bus(), await bus()];
    const gb = recordBroadcasts(b);
    b.onDeliver(async () => Status.SUCCESS);
    await expect(a.isHealthy()).resolves.toBe(true);
    await env.redis.stop();
    try {
      await eventually(async () => !(await a.isHealthy()), 2000, 'unhealthy');
      const started = Date.now();
      a.publish({ frame: 'lost' }); // never throws
      await expect(a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 5000)).resolves.toBe(RemoteOutcome.UNANSWERED);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      await env.redis.start();
    }
    await eventually(() => a.isHealthy(), 5000, 'healthy again');
    await eventually(() => b.isHealthy(), 5000, 'healthy again');
    a.publish({ frame: 'after' });
    await eventually(() => gb.length > 0, 2000, 'broadcast after recovery');
    expect(gb.map((e) => e.frame)).toEqual(['after']);
    await expect(a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 2000)).resolves.toBe(RemoteOutcome.DELIVERED);
  });

  it('a hung Redis (SIGSTOP): unhealthy within the ping timeout, deliveries UNANSWERED within their timeout', async () => {
    const [a, b] = [await bus(), await bus()];
    b.onDeliver(async () => Status.SUCCESS);
    process.kill(env.redis.pid!, 'SIGSTOP');
    try {
      let started = Date.now();
      await expect(a.isHealthy()).resolves.toBe(false);
      expect(Date.now() - started).toBeLessThan(1500);
      started = Date.now();
      a.publish({ frame: 'lost' });
      await expect(a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 300)).resolves.toBe(RemoteOutcome.UNANSWERED);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      process.kill(env.redis.pid!, 'SIGCONT');
    }
    await eventually(() => a.isHealthy(), 5000, 'healthy again');
  });

  it('close() answers the deliveries in flight UNANSWERED (nobody knows), and every later one', async () => {
    const [a, b] = [await bus(), await bus()];
    b.onDeliver(() => new Promise<DeliveryStatus>(() => undefined));
    const pending = a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 10_000);
    await sleep(50);
    a.close();
    await expect(pending).resolves.toBe(RemoteOutcome.UNANSWERED);
    await expect(a.deliver(b.nodeId, { userId: 'u', frame: 'f' }, 10_000)).resolves.toBe(RemoteOutcome.UNANSWERED);
  });
});

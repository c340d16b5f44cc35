import { randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { raw, useRedisEngine } from '../../../test/support/redis-engine';
import { eventually, sleep } from '../../../test/support/time';
import { Status, type DeliveryStatus } from '../../protocol/protocol';
import { RemoteOutcome, type DeliveryRequest } from '../engine.ports';
import { encodeFrame, FrameDecoder } from './link-frames';
import { NodeLinks, PeerLink, type NodeLinkOptions } from './node-links';
import { RedisClusterBus } from './redis-cluster-bus';
import type { RedisConnection } from './redis-connection';

interface TestNode {
  nodeId: string;
  connection: RedisConnection;
  links: NodeLinks;
  bus: RedisClusterBus;
}

describe('NodeLinks: deliveries on direct links between nodes (real redis-server, real TCP on loopback)', () => {
  const nodes: TestNode[] = [];
  const sockets: net.Socket[] = [];
  const env = useRedisEngine({
    beforeClose: async () => {
      for (const socket of sockets.splice(0)) socket.destroy();
      for (const node of nodes.splice(0)) {
        await node.links.close();
        node.bus.close();
      }
    },
  });

  const OPTIONS: NodeLinkOptions = {
    host: '127.0.0.1',
    port: 0,
    maxFrameBytes: 64 * 1024,
    maxPeers: 8,
    maxBufferedBytes: 1024 * 1024,
    handshakeTimeoutMs: 500,
  };

  async function node(options: Partial<NodeLinkOptions> = {}, withLinks = true): Promise<TestNode> {
    const connection = await env.pool.connect();
    const nodeId = randomUUID();
    const links = new NodeLinks(connection, nodeId, { ...OPTIONS, ...options });
    const bus = new RedisClusterBus(connection, nodeId, withLinks ? links : undefined);
    if (withLinks) await links.start();
    const made = { nodeId, connection, links, bus };
    nodes.push(made);
    return made;
  }

  /** Records what a node is handed, in order, and answers SUCCESS. */
  function receive(n: TestNode, status: DeliveryStatus = Status.SUCCESS): DeliveryRequest[] {
    const seen: DeliveryRequest[] = [];
    n.bus.onDeliver(async (request) => {
      seen.push(request);
      return status;
    });
    return seen;
  }

  async function publishes(): Promise<number> {
    const info = String(await raw(env.redis, 'INFO', 'commandstats'));
    return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
  }

  /** Waits until `from` has an open link to `to` (asking for it opens it). */
  async function linked(from: TestNode, to: TestNode): Promise<PeerLink> {
    let link: PeerLink | undefined;
    await eventually(() => (link = from.links.linkTo(to.nodeId)) !== undefined, 3000, 'link open');
    return link!;
  }

  it('carries deliveries and their answers on the link, with no PUBLISH, once it is open', async () => {
    const [a, b] = [await node(), await node()];
    const seen = receive(b);
    await linked(a, b);
    const before = await publishes();
    for (let i = 0; i < 20; i++) {
      await expect(a.bus.deliver(b.nodeId, { userId: 'bob', frame: `{"n":${i}}` }, 2000)).resolves.toBe(RemoteOutcome.DELIVERED);
    }
    expect(await publishes()).toBe(before);
    expect(seen.map((r) => r.frame)).toEqual(Array.from({ length: 20 }, (_, i) => `{"n":${i}}`));
    expect(seen[0].userId).toBe('bob');
    expect(a.bus.pendingDeliveries).toBe(0);
  });

  it('reports REFUSED from the other end of the link (the user is not there)', async () => {
    const [a, b] = [await node(), await node()];
    receive(b, Status.ERROR);
    await linked(a, b);
    await expect(a.bus.deliver(b.nodeId, { userId: 'gone', frame: '{}' }, 2000)).resolves.toBe(RemoteOutcome.REFUSED);
  });

  it('keeps the order of deliveries sent while the link opens (through Redis first, then on the link)', async () => {
    const [a, b] = [await node(), await node()];
    const seen = receive(b);
    const outcomes: Promise<RemoteOutcome>[] = [];
    for (let i = 0; i < 300; i++) {
      outcomes.push(a.bus.deliver(b.nodeId, { userId: 'bob', frame: String(i) }, 3000));
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await Promise.all(outcomes)).toEqual(outcomes.map(() => RemoteOutcome.DELIVERED));
    expect(seen.map((r) => Number(r.frame))).toEqual(Array.from({ length: 300 }, (_, i) => i));
    // Both ways were taken: the first through Redis, the later ones on the link.
    expect(a.links.linkTo(b.nodeId)).toBeDefined();
  });

  it('answers UNANSWERED for what was in flight when the link drops, then goes through Redis until it is back', async () => {
    const [a, b] = [await node(), await node()];
    let release!: () => void;
    const held = new Promise<DeliveryStatus>((resolve) => (release = () => resolve(Status.SUCCESS)));
    const seen: string[] = [];
    b.bus.onDeliver((request) => {
      seen.push(request.frame);
      return request.frame === 'held' ? held : Promise.resolve(Status.SUCCESS);
    });
    const link = await linked(a, b);
    const inFlight = a.bus.deliver(b.nodeId, { userId: 'bob', frame: 'held' }, 5000);
    await eventually(() => seen.length === 1, 2000, 'held delivery handed over');
    link.close();
    await expect(inFlight).resolves.toBe(RemoteOutcome.UNANSWERED);
    release();
    const before = await publishes();
    await expect(a.bus.deliver(b.nodeId, { userId: 'bob', frame: 'after' }, 2000)).resolves.toBe(RemoteOutcome.DELIVERED);
    expect(await publishes()).toBeGreaterThan(before); // through Redis
    expect(seen).toEqual(['held', 'after']);
    // Back on a link after the retry wait.
    await linked(a, b);
  });

  it('goes through Redis to a node without links, and to one whose address leads nowhere', async () => {
    const [a, plain] = [await node(), await node({}, false)];
    const seen = receive(plain);
    for (let i = 0; i < 3; i++) {
      await expect(a.bus.deliver(plain.nodeId, { userId: 'u', frame: String(i) }, 2000)).resolves.toBe(RemoteOutcome.DELIVERED);
      await sleep(50);
    }
    expect(a.links.linkTo(plain.nodeId)).toBeUndefined();

    const stale = await node();
    const staleSeen = receive(stale);
    // Its address now names a port where nothing listens.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await stale.connection.commands.set(stale.connection.keys.link(stale.nodeId), JSON.stringify({ host: '127.0.0.1', port, token: 'x' }));
    for (let i = 0; i < 3; i++) {
      await expect(a.bus.deliver(stale.nodeId, { userId: 'u', frame: String(i) }, 2000)).resolves.toBe(RemoteOutcome.DELIVERED);
      await sleep(50);
    }
    expect(seen.map((r) => r.frame)).toEqual(['0', '1', '2']);
    expect(staleSeen.map((r) => r.frame)).toEqual(['0', '1', '2']);
  });

  it('takes no link while Redis is not connected: the cluster rules for an unreachable Redis hold', async () => {
    const [a, b] = [await node(), await node()];
    const seen = receive(b);
    await linked(a, b);
    await env.redis.stop();
    try {
      await eventually(() => !a.connection.connected, 3000, 'redis connection down');
      expect(a.links.linkTo(b.nodeId)).toBeDefined(); // the link itself is up
      await expect(a.bus.deliver(b.nodeId, { userId: 'bob', frame: 'x' }, 1000)).resolves.toBe(RemoteOutcome.UNANSWERED);
      expect(seen).toEqual([]);
    } finally {
      await env.redis.start();
    }
  });

  describe('the accepting side trusts only a hello with its token', () => {
    async function rawLink(to: TestNode): Promise<{ socket: net.Socket; frames: string[]; closed: Promise<void> }> {
      const port = to.links.port!;
      const socket = net.connect({ host: '127.0.0.1', port });
      sockets.push(socket);
      const frames: string[] = [];
      const decoder = new FrameDecoder(1 << 20);
      socket.on('data', (chunk: Buffer) => decoder.push(chunk, (m) => frames.push(m)));
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      await new Promise((resolve) => socket.once('connect', resolve));
      return { socket, frames, closed };
    }

    async function tokenOf(n: TestNode): Promise<string> {
      const value = await n.connection.commands.get(n.connection.keys.link(n.nodeId));
      return (JSON.parse(value!) as { token: string }).token;
    }

    const delivery = (requestId: string) => `${JSON.stringify(['D', 'intruder', requestId, 'bob', Date.now() + 5000])}\n{"evil":true}`;

    it.each([
      ['a wrong token', (n: TestNode) => JSON.stringify(['H', 'intruder', n.nodeId, 'guess'])],
      ['another node id', (n: TestNode, token: string) => JSON.stringify(['H', 'intruder', 'someone-else', token])],
      ['not JSON', () => 'hello?'],
      ['a delivery before any hello', () => delivery('1')],
    ])('closes a link that opens with %s, and hands nothing over', async (_, hello) => {
      const b = await node();
      const seen = receive(b);
      const link = await rawLink(b);
      link.socket.write(encodeFrame(hello(b, await tokenOf(b))));
      link.socket.write(encodeFrame(delivery('2')));
      await link.closed;
      expect(link.frames).toEqual([]);
      expect(seen).toEqual([]);
    });

    it('closes a link that says nothing within the handshake time', async () => {
      const b = await node({ handshakeTimeoutMs: 200 });
      const link = await rawLink(b);
      const started = Date.now();
      await link.closed;
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    });

    it('closes a link whose hello is longer than 1 KiB, from its length alone', async () => {
      const b = await node();
      const link = await rawLink(b);
      const header = Buffer.alloc(4);
      header.writeUInt32BE(10 * 1024 * 1024);
      link.socket.write(header);
      await link.closed;
    });

    it('accepts the right hello, then closes the link on a frame over maxFrameBytes', async () => {
      const b = await node({ maxFrameBytes: 1000 });
      const seen = receive(b);
      const link = await rawLink(b);
      link.socket.write(encodeFrame(JSON.stringify(['H', 'peer', b.nodeId, await tokenOf(b)])));
      link.socket.write(encodeFrame(delivery('1')));
      await eventually(() => link.frames.length === 2, 2000, 'accepted and answered');
      expect(link.frames[0]).toBe('["OK"]');
      expect(JSON.parse(link.frames[1].split('\n')[0])).toEqual(['R', '1', 'SUCCESS']);
      link.socket.write(encodeFrame(`${JSON.stringify(['D', 'peer', '2', 'bob', Date.now() + 5000])}\n${'x'.repeat(2000)}`));
      await link.closed;
      expect(seen.map((r) => r.frame)).toEqual(['{"evil":true}']);
    });

    it('accepts at most maxPeers links at once', async () => {
      const b = await node({ maxPeers: 2 });
      const first = await rawLink(b);
      const second = await rawLink(b);
      const third = await rawLink(b);
      await third.closed;
      for (const link of [first, second]) expect(link.socket.destroyed).toBe(false);
    });

    it('ignores a malformed request on an accepted link, and answers the next', async () => {
      const b = await node();
      receive(b);
      const link = await rawLink(b);
      link.socket.write(encodeFrame(JSON.stringify(['H', 'peer', b.nodeId, await tokenOf(b)])));
      link.socket.write(encodeFrame('["C","peer","1",0]\n{"kind":"kick"}')); // commands never come on links
      link.socket.write(encodeFrame('not a message'));
      link.socket.write(encodeFrame(delivery('3')));
      await eventually(() => link.frames.length === 2, 2000, 'the delivery answered');
      expect(JSON.parse(link.frames[1].split('\n')[0])).toEqual(['R', '3', 'SUCCESS']);
    });
  });

  it('takes only answers to its own requests from a link it opened: the peer cannot push deliveries or commands on it', async () => {
    const a = await node();
    const handed = receive(a);
    const commands: unknown[] = [];
    a.bus.onCommand(async (command) => {
      commands.push(command);
      return 'DONE';
    });
    const accepted: net.Socket[] = [];
    const impostor = net.createServer((socket) => {
      accepted.push(socket);
      const decoder = new FrameDecoder(1 << 20);
      socket.on('data', (chunk: Buffer) =>
        decoder.push(chunk, (message) => {
          if (message.startsWith('["H"')) {
            socket.write(encodeFrame('["OK"]'));
            socket.write(encodeFrame(`${JSON.stringify(['D', 'x', '9', 'bob', Date.now() + 5000])}\n{"pushed":true}`));
            socket.write(encodeFrame(`${JSON.stringify(['C', 'x', '8', Date.now() + 5000])}\n{"kind":"kick","userId":"bob","reason":"x"}`));
            return;
          }
          const requestId = (JSON.parse(message.split('\n')[0]) as string[])[2];
          socket.write(encodeFrame(`${JSON.stringify(['R', requestId, 'SUCCESS'])}\n`));
        }),
      );
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const peerId = randomUUID();
      const port = (impostor.address() as net.AddressInfo).port;
      await a.connection.commands.set(a.connection.keys.link(peerId), JSON.stringify({ host: '127.0.0.1', port, token: 't' }));
      await eventually(() => a.links.linkTo(peerId) !== undefined, 3000, 'link open');
      await expect(a.bus.deliver(peerId, { userId: 'bob', frame: '{}' }, 2000)).resolves.toBe(RemoteOutcome.DELIVERED);
      await sleep(100);
      expect(handed).toEqual([]);
      expect(commands).toEqual([]);
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise<void>((resolve) => impostor.close(() => resolve()));
    }
  });

  it('refuses (does not send) a delivery while the link holds more than maxBufferedBytes unsent', async () => {
    const held: net.Socket[] = [];
    const sink = net.createServer((socket) => {
      socket.pause();
      held.push(socket);
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    try {
      const socket = net.connect({ host: '127.0.0.1', port: (sink.address() as net.AddressInfo).port });
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      const link = new PeerLink('peer', socket, 64 * 1024);
      link.ready = true;
      const chunk = 'y'.repeat(16 * 1024);
      let sent = 0;
      while (link.send(chunk) && sent < 100_000) sent++;
      expect(socket.writableLength).toBeGreaterThan(64 * 1024);
      expect(link.send('one more')).toBe(false);
    } finally {
      for (const socket of [...sockets.splice(0), ...held]) socket.destroy();
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    }
  });

  it('keeps every link it is opening past maxPeers, so that close() closes them all', async () => {
    const a = await node({ maxPeers: 1 });
    const [b, c] = [await node(), await node()];
    // Both asked for at once: the second goes past maxPeers while the first is being opened.
    a.links.linkTo(b.nodeId);
    a.links.linkTo(c.nodeId);
    await eventually(() => a.links.openLinks.out === 2 && b.links.openLinks.in === 1 && c.links.openLinks.in === 1, 3000, 'both links open');
    await a.links.close();
    await eventually(() => b.links.openLinks.in === 0 && c.links.openLinks.in === 0, 3000, 'both links closed');
  });

  it('removes its address from Redis when it closes', async () => {
    const b = await node();
    const key = b.connection.keys.link(b.nodeId);
    expect(await b.connection.commands.exists(key)).toBe(1);
    await b.links.close();
    expect(await b.connection.commands.exists(key)).toBe(0);
  });
});

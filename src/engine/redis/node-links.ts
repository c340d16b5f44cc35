import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import { Logger } from '@nestjs/common';
import { encodeFrame, FrameDecoder } from './link-frames';
import type { RedisConnection } from './redis-connection';

export interface NodeLinkOptions {
  /** NODE_LINK_HOST: the address this node listens on and its peers connect to. */
  host: string;
  /** NODE_LINK_PORT: 0 takes a free port (the one bound is what peers are told). */
  port: number;
  /** Longest frame on a link (a delivery's frame plus its header). */
  maxFrameBytes: number;
  /** NODE_LINK_MAX_PEERS: links accepted from other nodes at once (one per peer node). */
  maxPeers: number;
  /** NODE_LINK_MAX_BUFFERED_BYTES: bytes queued on one link before deliveries to it are refused. */
  maxBufferedBytes: number;
  /** Time for a link to connect and be accepted, and for an accepted socket to say hello. */
  handshakeTimeoutMs: number;
  /** How long this node's address stays in Redis without being refreshed. */
  addressTtlMs?: number;
}

/** What a node publishes in Redis (`<prefix>link:<nodeId>`) for its peers; the token is its per-boot secret. */
interface LinkAddress {
  host: string;
  port: number;
  token: string;
}

/** Hello of a link: ["H", fromNodeId, toNodeId, token]; the accepting node answers ["OK"]. */
type Hello = ['H', string, string, string];
const ACCEPTED = '["OK"]';
/** A hello is small: the bound before a peer has proven it knows the token. */
const HELLO_MAX_BYTES = 1024;
/** First wait after a failed link, doubled up to the maximum. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/** A link this node opened to a peer; it carries this node's requests and that peer's answers. */
export class PeerLink {
  /** Requests sent on this link and not answered yet: they get no answer if the link drops. */
  readonly inFlight = new Set<string>();
  ready = false;

  constructor(
    readonly nodeId: string,
    private readonly socket: net.Socket,
    private readonly maxBufferedBytes: number,
  ) {}

  /** Queues a message; false (nothing sent) when the link is down or its queue is over the bound. */
  send(message: string): boolean {
    if (!this.ready || this.socket.writableLength > this.maxBufferedBytes) return false;
    this.socket.write(encodeFrame(message));
    return true;
  }

  close(): void {
    this.socket.destroy();
  }
}

interface PeerState {
  link?: PeerLink;
  /** No new attempt before this time (after a failure, or when the peer has no address). */
  retryAt: number;
  retryDelayMs: number;
}

export interface NodeLinkHandlers {
  /** A message from a peer on its link (a request); `reply` answers on the same link. */
  onRequest(message: string, reply: (message: string) => void): void;
  /** A message from a peer on a link this node opened (an answer to one of its requests on that link). */
  onAnswer(message: string, link: PeerLink): void;
  /** A link this node opened is gone: its requests in flight will not be answered. */
  onLinkDown(link: PeerLink): void;
}

/**
 * Direct TCP links between the nodes of a cluster, for deliveries (DIALOG hand-overs) and their
 * answers: a cross-node dialog then wakes the two nodes only, instead of Redis twice as well.
 *
 * - Discovery and trust come from Redis: each node listens on NODE_LINK_HOST:NODE_LINK_PORT and
 *   keeps `{host, port, token}` under `<prefix>link:<nodeId>` (refreshed, with a TTL). A peer
 *   reads it, connects, and says hello with the token; anything else is closed. Whoever can read
 *   that key can already publish on every node's channel, so links trust no one Redis does not.
 * - A link is opened on first use, in the background (until then, and whenever it is down,
 *   deliveries go through Redis); a failed attempt waits 0.5 s, doubling to 30 s.
 * - Bounds: a hello of 1 KiB within `handshakeTimeoutMs`, frames of `maxFrameBytes`, at most
 *   `maxPeers` accepted links, `maxBufferedBytes` queued per link.
 * - The token is never logged.
 */
export class NodeLinks {
  private readonly logger = new Logger('NodeLinks');
  private readonly token = randomBytes(24).toString('base64url');
  private readonly server: net.Server;
  private readonly accepted = new Set<net.Socket>();
  /** Accepted links that said a right hello and are still open. */
  private trusted = 0;
  private readonly peers = new Map<string, PeerState>();
  private handlers?: NodeLinkHandlers;
  private address?: LinkAddress;
  private refreshTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly connection: RedisConnection,
    private readonly nodeId: string,
    private readonly options: NodeLinkOptions,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => this.logger.error(`node link server: ${err.message}`));
  }

  /** Open links: those this node opened ('out') and those accepted after a right hello ('in'). */
  get openLinks(): { out: number; in: number } {
    let out = 0;
    for (const peer of this.peers.values()) if (peer.link?.ready) out++;
    return { out, in: this.trusted };
  }

  get listening(): boolean {
    return this.address !== undefined;
  }

  /** The port peers are told (after start). */
  get port(): number | undefined {
    return this.address?.port;
  }

  setHandlers(handlers: NodeLinkHandlers): void {
    this.handlers = handlers;
  }

  /** Listens, then publishes this node's address in Redis (again on every reconnection and every third of its TTL). */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const bound = this.server.address() as net.AddressInfo;
    this.address = { host: this.options.host, port: bound.port, token: this.token };
    this.logger.log(`node links on ${this.options.host}:${bound.port}`);
    const ttl = this.addressTtlMs;
    this.connection.onReady(() => this.publishAddress());
    this.refreshTimer = setInterval(() => this.publishAddress(), Math.max(100, Math.floor(ttl / 3)));
    this.refreshTimer.unref();
    this.publishAddress();
  }

  /**
   * The ready link to `nodeId`, or undefined; when there is none, one is opened in the background
   * (unless an attempt failed lately), for the deliveries after this one.
   */
  linkTo(nodeId: string): PeerLink | undefined {
    if (this.closed || !this.address) return undefined;
    let peer = this.peers.get(nodeId);
    if (peer?.link?.ready) return peer.link;
    if (!peer) {
      peer = { retryAt: 0, retryDelayMs: RETRY_MIN_MS };
      this.peers.set(nodeId, peer);
      this.boundPeers(nodeId);
    }
    if (!peer.link && Date.now() >= peer.retryAt) void this.open(nodeId, peer);
    return undefined;
  }

  /** Stops accepting and closes every link; removes this node's address from Redis if it answers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const peer of this.peers.values()) peer.link?.close();
    for (const socket of this.accepted) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.address && this.connection.connected) {
      await this.connection.commands.del(this.connection.keys.link(this.nodeId)).catch(() => undefined);
    }
  }

  private get addressTtlMs(): number {
    return this.options.addressTtlMs ?? 60_000;
  }

  private publishAddress(): void {
    // Called on every (re)connection of the command connection: while Redis is down, SET fails at once.
    if (this.closed || !this.address) return;
    this.connection.commands
      .set(this.connection.keys.link(this.nodeId), JSON.stringify(this.address), 'PX', this.addressTtlMs)
      .catch((err: unknown) => this.logger.debug(`link address not published: ${String(err)}`));
  }

  private async open(nodeId: string, peer: PeerState): Promise<void> {
    peer.retryAt = Number.POSITIVE_INFINITY; // one attempt at a time
    let address: LinkAddress | undefined;
    try {
      address = parseAddress(await this.connection.commands.get(this.connection.keys.link(nodeId)));
    } catch {
      address = undefined;
    }
    if (this.closed) return;
    if (!address) {
      this.failed(peer); // no links there (not configured, or the node is gone): Redis only, asked again later
      return;
    }
    const socket = net.connect({ host: address.host, port: address.port });
    socket.setNoDelay(true);
    const link = new PeerLink(nodeId, socket, this.options.maxBufferedBytes);
    peer.link = link;
    const decoder = new FrameDecoder(HELLO_MAX_BYTES);
    let lastError = 'closed by the other end';
    const timer = setTimeout(() => {
      lastError = `not accepted within ${this.options.handshakeTimeoutMs} ms`;
      socket.destroy();
    }, this.options.handshakeTimeoutMs);
    timer.unref();
    socket.once('connect', () => {
      const hello: Hello = ['H', this.nodeId, nodeId, address.token];
      socket.write(encodeFrame(JSON.stringify(hello)));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (message) => {
          if (link.ready) {
            this.handlers?.onAnswer(message, link);
            return;
          }
          if (message !== ACCEPTED) throw new Error('unexpected answer to hello');
          clearTimeout(timer);
          link.ready = true;
          decoder.maxBytes = this.options.maxFrameBytes;
          peer.retryDelayMs = RETRY_MIN_MS;
          this.logger.log(`node link to ${nodeId.slice(0, 8)} open`);
        });
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        if (link.ready) this.logger.warn(`node link to ${nodeId.slice(0, 8)}: ${lastError}`);
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      lastError = err.message;
      this.logger.debug(`node link to ${nodeId.slice(0, 8)}: ${err.message}`);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const wasReady = link.ready;
      link.ready = false;
      if (peer.link === link) peer.link = undefined;
      this.failed(peer);
      if (wasReady) this.logger.log(`node link to ${nodeId.slice(0, 8)} closed`);
      else if (!this.closed) {
        // Never opened: a wrong NODE_LINK_HOST, a firewall, a peer that refused the hello.
        this.logger.warn(
          `node link to ${nodeId.slice(0, 8)} at ${address.host}:${address.port} could not be opened (${lastError}); its dialogs go through Redis, next attempt in ${Math.round((peer.retryAt - Date.now()) / 1000)} s`,
        );
      }
      this.handlers?.onLinkDown(link);
    });
  }

  private failed(peer: PeerState): void {
    peer.retryAt = Date.now() + peer.retryDelayMs;
    peer.retryDelayMs = Math.min(RETRY_MAX_MS, peer.retryDelayMs * 2);
  }

  /**
   * Forgets peers without a link or an attempt in progress (ids of gone nodes), oldest first, past
   * maxPeers; never `added`, the one asked for now.
   */
  private boundPeers(added: string): void {
    for (const [nodeId, peer] of this.peers) {
      if (this.peers.size <= this.options.maxPeers) return;
      if (nodeId !== added && !peer.link && peer.retryAt !== Number.POSITIVE_INFINITY) this.peers.delete(nodeId);
    }
  }

  private accept(socket: net.Socket): void {
    if (this.closed || this.accepted.size >= this.options.maxPeers) {
      this.logger.warn(`node link refused: ${this.closed ? 'closing' : `${this.options.maxPeers} links already (NODE_LINK_MAX_PEERS)`}`);
      socket.destroy();
      return;
    }
    this.accepted.add(socket);
    socket.setNoDelay(true);
    const decoder = new FrameDecoder(HELLO_MAX_BYTES);
    let peer: string | undefined;
    const timer = setTimeout(() => {
      this.logger.warn('node link refused: no hello in time');
      socket.destroy();
    }, this.options.handshakeTimeoutMs);
    timer.unref();
    const reply = (message: string) => {
      if (socket.destroyed) return;
      // A peer that sends requests and does not read their answers is cut off, not buffered for.
      if (socket.writableLength > this.options.maxBufferedBytes) {
        this.logger.warn(`node link from ${peer?.slice(0, 8)}: over ${this.options.maxBufferedBytes} answer bytes unread, closed`);
        socket.destroy();
        return;
      }
      socket.write(encodeFrame(message));
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (message) => {
          if (peer !== undefined) {
            this.handlers?.onRequest(message, reply);
            return;
          }
          peer = this.checkHello(message);
          this.trusted++;
          clearTimeout(timer);
          decoder.maxBytes = this.options.maxFrameBytes;
          socket.write(encodeFrame(ACCEPTED));
        });
      } catch (err) {
        this.logger.warn(`node link from ${peer ? peer.slice(0, 8) : socket.remoteAddress}: refused: ${err instanceof Error ? err.message : String(err)}`);
        socket.destroy();
      }
    });
    socket.on('error', (err) => this.logger.debug(`node link from ${peer?.slice(0, 8) ?? socket.remoteAddress}: ${err.message}`));
    socket.on('close', () => {
      clearTimeout(timer);
      this.accepted.delete(socket);
      if (peer !== undefined) this.trusted--;
    });
  }

  /** The peer's node id when the hello is addressed to this node with its token; throws otherwise. */
  private checkHello(message: string): string {
    let hello: unknown;
    try {
      hello = JSON.parse(message);
    } catch {
      throw new Error('malformed hello');
    }
    if (!Array.isArray(hello) || hello.length !== 4 || hello[0] !== 'H' || !hello.every((part) => typeof part === 'string')) {
      throw new Error('malformed hello');
    }
    const [, from, to, token] = hello as Hello;
    if (to !== this.nodeId) throw new Error('hello addressed to another node');
    if (!sameSecret(token, this.token)) throw new Error('wrong link token');
    return from;
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseAddress(raw: string | null): LinkAddress | undefined {
  if (!raw) return undefined;
  try {
    const value = JSON.parse(raw) as Partial<LinkAddress>;
    if (typeof value.host === 'string' && Number.isInteger(value.port) && typeof value.token === 'string') {
      return { host: value.host, port: value.port!, token: value.token };
    }
  } catch {
    // a malformed entry: no link
  }
  return undefined;
}

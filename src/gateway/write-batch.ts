/** The part of a net.Socket the batch uses. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Sockets uncorked per event-loop turn. A fan-out to every connection of a full node (19,000
 * sockets: ~150 ms of writev) is spread over turns of a few hundred sockets, so the event loop
 * keeps turning under it: Node (libuv 1.46) accepts at most one new connection per turn, so one
 * long turn per fan-out would let a node take logins only one at a time during a login storm.
 */
export const FLUSH_CHUNK = 256;

/**
 * Coalesces the broadcast frames one socket gets into one write system call: the first batched
 * write to a socket corks it and queues it, and a `setImmediate` uncorks the queue (after the I/O
 * callbacks of the turn), in corking order, at most `chunk` sockets per turn: what is left waits
 * for the next turn's `setImmediate`, while the frames of later broadcasts join the sockets still
 * corked. A socket is corked at most once at a time: `cork` hands out a ticket, and a socket is
 * corked as long as its ticket is held (`holds`).
 *
 * Only fan-out frames (CHAT, CONNECT, DISCONNECT) go through the batch: while a burst of
 * broadcasts is being handled, a receiver's frames leave together instead of one writev per
 * frame. Frames whose latency is the point (DIALOG, DELIVERY, answers) are written at once; when
 * their socket is corked by a broadcast they join that batch, which leaves when the flush reaches
 * it (within the turn for up to `chunk` corked sockets).
 */
export class WriteBatch {
  /** Corked sockets, oldest first, from `head` on (the slots before it were uncorked). */
  private queue: (Corkable | undefined)[] = [];
  private head = 0;
  /** Tickets handed out, and sockets uncorked: the socket of ticket t is corked while t > released. */
  private issued = 0;
  private released = 0;
  private scheduled = false;

  constructor(
    private readonly schedule: (fn: () => void) => void = setImmediate,
    private readonly chunk = FLUSH_CHUNK,
  ) {}

  /** True while the socket that got `ticket` at its last cork is still corked (0: never corked). */
  holds(ticket: number): boolean {
    return ticket > this.released;
  }

  /**
   * Corks `socket` until the flush reaches it, unless `ticket` (what the caller remembered when it
   * last corked this socket) says it still is corked. Returns the ticket to remember.
   */
  cork(socket: Corkable, ticket: number): number {
    if (ticket > this.released) return ticket;
    socket.cork();
    this.queue.push(socket);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this.flush);
    }
    return ++this.issued;
  }

  /** Number of sockets corked now (for tests). */
  get size(): number {
    return this.queue.length - this.head;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    // The sockets corked before this flush, at most `chunk` of them: those corked again by a write
    // callback during an uncork go to the end of the queue.
    const end = Math.min(this.queue.length, this.head + this.chunk);
    while (this.head < end) {
      const socket = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      // Released before uncork: a write made from inside it corks the socket again (a new ticket).
      this.released++;
      socket.uncork();
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      if (this.head >= this.chunk * 4 && this.head * 2 >= this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (!this.scheduled) {
        this.scheduled = true;
        this.schedule(this.flush);
      }
    }
  };
}

/** The one batch of this process (all connections share the event loop). */
export const writeBatch = new WriteBatch();

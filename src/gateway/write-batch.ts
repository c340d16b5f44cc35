/** The part of a net.Socket the batch uses. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Coalesces the broadcast frames one socket gets within an event-loop turn into one write
 * system call: the first batched write to a socket in a turn corks it, and one `setImmediate`
 * per turn uncorks every socket corked in that turn (after all the I/O callbacks of the turn).
 *
 * Only fan-out frames (CHAT, CONNECT, DISCONNECT) go through the batch: while a burst of
 * broadcasts is being handled, a receiver's frames leave together instead of one writev per
 * frame. Frames whose latency is the point (DIALOG, DELIVERY, answers) are written at once; when
 * their socket is corked by a broadcast of the same turn they join that batch, which leaves at
 * the end of the turn.
 */
export class WriteBatch {
  private corked: Corkable[] = [];
  private scheduled = false;
  /** Changes at every flush: a socket corked in an earlier turn has been uncorked since. */
  private currentTurn = 1;

  constructor(private readonly schedule: (fn: () => void) => void = setImmediate) {}

  /** The turn number to remember with a socket corked now. */
  get turn(): number {
    return this.currentTurn;
  }

  /**
   * Corks `socket` until the end of this turn, unless `corkedTurn` (what the caller remembered
   * when it last corked this socket) says it already is. Returns the turn to remember.
   */
  cork(socket: Corkable, corkedTurn: number): number {
    if (corkedTurn === this.currentTurn) return corkedTurn;
    socket.cork();
    this.corked.push(socket);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(this.flush);
    }
    return this.currentTurn;
  }

  /** Number of sockets corked now (for tests). */
  get size(): number {
    return this.corked.length;
  }

  private readonly flush = (): void => {
    const corked = this.corked;
    this.corked = [];
    this.scheduled = false;
    this.currentTurn++;
    // uncork may run write callbacks that batch again: they belong to the next turn.
    for (let i = 0; i < corked.length; i++) corked[i].uncork();
  };
}

/** The one batch of this process (all connections share the event loop). */
export const writeBatch = new WriteBatch();

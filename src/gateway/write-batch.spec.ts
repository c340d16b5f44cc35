import { WriteBatch, type Corkable } from './write-batch';

/** A socket that records cork depth and what left it, as net.Socket does. */
class FakeSocket implements Corkable {
  depth = 0;
  readonly flushed: string[][] = [];
  private pending: string[] = [];

  cork(): void {
    this.depth++;
  }

  uncork(): void {
    if (this.depth > 0) this.depth--;
    if (this.depth === 0 && this.pending.length > 0) {
      this.flushed.push(this.pending);
      this.pending = [];
    }
  }

  write(frame: string): void {
    this.pending.push(frame);
    if (this.depth === 0) this.uncork();
  }
}

describe('WriteBatch', () => {
  let scheduled: (() => void)[];
  let batch: WriteBatch;
  const endOfTurn = () => scheduled.splice(0).forEach((fn) => fn());

  beforeEach(() => {
    scheduled = [];
    batch = new WriteBatch((fn) => scheduled.push(fn));
  });

  it('holds the frames of a socket until the end of the turn, then writes them together', () => {
    const socket = new FakeSocket();
    let turn = 0;
    for (const frame of ['a', 'b', 'c']) {
      turn = batch.cork(socket, turn);
      socket.write(frame);
    }
    expect(socket.flushed).toEqual([]);
    expect(socket.depth).toBe(1); // corked once, not once per frame
    expect(scheduled).toHaveLength(1); // one flush per turn, not per socket or frame
    endOfTurn();
    expect(socket.flushed).toEqual([['a', 'b', 'c']]);
    expect(socket.depth).toBe(0);
  });

  it('uncorks every socket of the turn with one scheduled flush', () => {
    const sockets = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
    for (const socket of sockets) {
      batch.cork(socket, 0);
      socket.write('x');
    }
    expect(batch.size).toBe(3);
    expect(scheduled).toHaveLength(1);
    endOfTurn();
    expect(sockets.map((s) => s.flushed)).toEqual([[['x']], [['x']], [['x']]]);
    expect(batch.size).toBe(0);
  });

  it('corks again once uncorked: a remembered ticket is no longer held after the flush reached it', () => {
    const socket = new FakeSocket();
    let ticket = batch.cork(socket, 0);
    expect(batch.holds(ticket)).toBe(true);
    expect(batch.holds(0)).toBe(false); // never corked
    socket.write('a');
    endOfTurn();
    expect(batch.holds(ticket)).toBe(false);
    const next = batch.cork(socket, ticket);
    expect(next).not.toBe(ticket);
    ticket = next;
    socket.write('b');
    expect(socket.flushed).toEqual([['a']]);
    expect(scheduled).toHaveLength(1);
    endOfTurn();
    expect(socket.flushed).toEqual([['a'], ['b']]);
  });

  it('leaves corks for the next turn when a write callback batches during the flush', () => {
    const first = new FakeSocket();
    const second = new FakeSocket();
    batch.cork(first, 0);
    first.write('a');
    const uncork = first.uncork.bind(first);
    first.uncork = () => {
      uncork();
      batch.cork(second, 0); // e.g. a broadcast started from a write callback
      second.write('b');
    };
    endOfTurn();
    expect(first.flushed).toEqual([['a']]);
    expect(second.flushed).toEqual([]);
    expect(scheduled).toHaveLength(1);
    endOfTurn();
    expect(second.flushed).toEqual([['b']]);
  });

  describe('more corked sockets than one turn uncorks', () => {
    let sockets: FakeSocket[];
    let tickets: number[];

    beforeEach(() => {
      batch = new WriteBatch((fn) => scheduled.push(fn), 2);
      sockets = Array.from({ length: 5 }, () => new FakeSocket());
      tickets = sockets.map((socket) => {
        const ticket = batch.cork(socket, 0);
        socket.write('a');
        return ticket;
      });
    });

    it('uncorks them in corking order, `chunk` per turn, one scheduled flush at a time', () => {
      endOfTurn();
      expect(sockets.map((s) => s.flushed.length)).toEqual([1, 1, 0, 0, 0]);
      expect(tickets.map((t) => batch.holds(t))).toEqual([false, false, true, true, true]);
      expect(scheduled).toHaveLength(1); // the rest waits for the next turn
      endOfTurn();
      expect(sockets.map((s) => s.flushed.length)).toEqual([1, 1, 1, 1, 0]);
      endOfTurn();
      expect(sockets.map((s) => s.flushed)).toEqual(sockets.map(() => [['a']]));
      expect(batch.size).toBe(0);
      expect(scheduled).toHaveLength(0);
    });

    it('lets the frames of later turns join a socket still corked, and corks again at the end of the queue one already uncorked', () => {
      endOfTurn(); // sockets 0 and 1 uncorked
      for (let i = 0; i < sockets.length; i++) {
        tickets[i] = batch.cork(sockets[i], tickets[i]);
        sockets[i].write('b');
      }
      expect(sockets.map((s) => s.depth)).toEqual([1, 1, 1, 1, 1]); // never corked twice
      expect(batch.size).toBe(5); // 2, 3, 4, then 0 and 1 again
      endOfTurn();
      expect(sockets.map((s) => s.flushed)).toEqual([[['a']], [['a']], [['a', 'b']], [['a', 'b']], []]);
      endOfTurn();
      endOfTurn();
      expect(sockets.map((s) => s.flushed)).toEqual([[['a'], ['b']], [['a'], ['b']], [['a', 'b']], [['a', 'b']], [['a', 'b']]]);
      expect(batch.size).toBe(0);
    });

    it('keeps the order and the tickets right over many turns (the queue is compacted as it goes)', () => {
      endOfTurn();
      endOfTurn();
      endOfTurn();
      const many = Array.from({ length: 50 }, () => new FakeSocket());
      const manyTickets = many.map((socket) => batch.cork(socket, 0));
      const order: number[] = [];
      many.forEach((socket, i) => {
        socket.uncork = () => {
          order.push(i);
          FakeSocket.prototype.uncork.call(socket);
        };
      });
      for (let turn = 0; turn < 10; turn++) {
        endOfTurn();
        // A socket uncorked in this turn corks again at the end of the queue.
        const i = order[order.length - 1];
        if (turn < 3) manyTickets[i] = batch.cork(many[i], manyTickets[i]);
      }
      expect(order.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      while (scheduled.length > 0) endOfTurn();
      expect(order).toHaveLength(53);
      expect(many.every((s) => s.depth === 0)).toBe(true);
      expect(manyTickets.every((t) => !batch.holds(t))).toBe(true);
    });
  });
});

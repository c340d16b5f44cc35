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

  it('corks again in the next turn: a remembered turn number goes stale at every flush', () => {
    const socket = new FakeSocket();
    let turn = batch.cork(socket, 0);
    socket.write('a');
    endOfTurn();
    expect(batch.cork(socket, turn)).not.toBe(turn);
    turn = batch.turn;
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
});

import { EventBuffer } from './event-buffer';

const drain = <T>(b: EventBuffer<T>): T[] => {
  const out: T[] = [];
  for (let x = b.shift(); x !== undefined; x = b.shift()) out.push(x);
  return out;
};

describe('EventBuffer', () => {
  it('is a FIFO', () => {
    const b = new EventBuffer<number>(100);
    for (let i = 0; i < 40; i++) expect(b.push(i)).toBe(0);
    expect(b.length).toBe(40);
    expect(drain(b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(b.shift()).toBeUndefined();
  });

  it('keeps the newest `max`: each push beyond drops the oldest and says so', () => {
    const b = new EventBuffer<number>(3);
    expect([1, 2, 3, 4, 5].map((i) => b.push(i))).toEqual([0, 0, 0, 1, 1]);
    expect(drain(b)).toEqual([3, 4, 5]);
  });

  it('puts an entry back at the front; when full, that entry (the oldest) is the one dropped', () => {
    const b = new EventBuffer<number>(3);
    b.push(2);
    b.push(3);
    expect(b.unshift(1)).toBe(0);
    expect(b.unshift(0)).toBe(1);
    expect(drain(b)).toEqual([1, 2, 3]);
  });

  it('stays in order across wrap-around and growth', () => {
    const b = new EventBuffer<number>(1000);
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 30; i++) b.push(next++);
      for (let i = 0; i < 20; i++) expect(b.shift()).toBe(expected++);
    }
    expect(drain(b)).toEqual(Array.from({ length: next - expected }, (_, i) => expected + i));
  });

  it('allocates for what it holds, not for its bound', () => {
    const b = new EventBuffer<number>(10_000_000);
    b.push(1);
    expect(b.length).toBe(1);
    expect(b.clear()).toBe(1);
    expect(b.length).toBe(0);
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new EventBuffer(0)).toThrow(RangeError);
  });
});

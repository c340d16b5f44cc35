import { deferred, flushPromises } from '../../test/support/time';
import { Semaphore } from './semaphore';

describe('Semaphore', () => {
  it('refuses a limit that is not a positive integer', () => {
    for (const limit of [0, -1, 1.5, NaN]) expect(() => new Semaphore(limit)).toThrow(RangeError);
  });

  it('runs at most `limit` tasks at once; the others start in FIFO order as slots free up', async () => {
    const sem = new Semaphore(2);
    const started: number[] = [];
    const gates = Array.from({ length: 5 }, () => deferred());
    const runs = gates.map((gate, i) =>
      sem.run(async () => {
        started.push(i);
        await gate.promise;
        return i * 10;
      }),
    );
    await flushPromises();
    expect(started).toEqual([0, 1]);
    expect([sem.running, sem.waiting]).toEqual([2, 3]);

    gates[1].resolve();
    await flushPromises();
    expect(started).toEqual([0, 1, 2]);
    expect([sem.running, sem.waiting]).toEqual([2, 2]);

    gates[0].resolve();
    await flushPromises();
    expect(started).toEqual([0, 1, 2, 3]);

    gates[3].resolve();
    gates[2].resolve();
    await flushPromises();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    gates[4].resolve();
    await expect(Promise.all(runs)).resolves.toEqual([0, 10, 20, 30, 40]);
    expect([sem.running, sem.waiting]).toEqual([0, 0]);
  });

  it('a newcomer does not overtake the queue when a slot frees up', async () => {
    const sem = new Semaphore(1);
    const order: string[] = [];
    const release = await sem.acquire();
    const queued = sem.acquire().then((r) => {
      order.push('queued');
      r();
    });
    release();
    // Asked after the release, before the queued waiter got to run.
    const late = sem.acquire().then((r) => {
      order.push('late');
      r();
    });
    await Promise.all([queued, late]);
    expect(order).toEqual(['queued', 'late']);
    expect(sem.running).toBe(0);
  });

  it('frees the slot when a task throws, and passes the error on', async () => {
    const sem = new Semaphore(1);
    await expect(sem.run(async () => Promise.reject(new Error('decode failed')))).rejects.toThrow('decode failed');
    expect(sem.running).toBe(0);
    await expect(sem.run(async () => 'next')).resolves.toBe('next');
  });

  it('a release function given back twice frees only one slot', async () => {
    const sem = new Semaphore(1);
    const release = await sem.acquire();
    const second = sem.acquire();
    const third = sem.acquire();
    release();
    release(); // must not let the third in beside the second
    await flushPromises();
    expect([sem.running, sem.waiting]).toEqual([1, 1]);
    (await second)();
    (await third)();
    expect([sem.running, sem.waiting]).toEqual([0, 0]);
  });

  it('keeps FIFO order over thousands of waiters (queue compaction)', async () => {
    const sem = new Semaphore(3);
    const order: number[] = [];
    const n = 5000;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        sem.run(async () => {
          order.push(i);
          await Promise.resolve();
        }),
      ),
    );
    expect(order).toEqual(Array.from({ length: n }, (_, i) => i));
    expect([sem.running, sem.waiting]).toEqual([0, 0]);
  });
});

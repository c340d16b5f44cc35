import { OnlineList, type ListEntry } from './online-list';

interface Item extends ListEntry {
  id: number;
  name: string;
}

const item = (id: number, name = `n${id}`): Item => ({ id, name });
const json = (i: Item) => JSON.stringify({ id: i.id, name: i.name });

describe('OnlineList', () => {
  let list: OnlineList<Item>;
  let calls: number;

  /** The list's parts joined and parsed as the JSON array an AUTH SUCCESS carries. */
  const parsed = () => {
    const text = Buffer.concat(list.parts()).toString();
    if (text !== '') expect(text[0]).toBe(',');
    return JSON.parse(`[${text.slice(1)}]`) as { id: number; name: string }[];
  };
  const ids = () => parsed().map((x) => x.id);

  beforeEach(() => {
    calls = 0;
    list = new OnlineList<Item>((i) => {
      calls++;
      return json(i);
    }, 4);
  });

  it('is empty, then lists entries in the order they were added, in blocks of at most blockEntries', () => {
    expect(list.parts()).toEqual([]);
    const items = Array.from({ length: 10 }, (_, i) => item(i));
    for (const i of items) list.add(i);
    expect(list.size).toBe(10);
    expect(ids()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(list.parts()).toHaveLength(3); // 4 + 4 + 2
    expect(new Set(items.map((i) => i.listBlock)).size).toBe(3);
  });

  it('serializes each entry once while entries are only added (appended in place)', () => {
    for (let i = 0; i < 10; i++) {
      list.add(item(i));
      list.parts();
    }
    expect(calls).toBe(10);
  });

  it('hands out the same buffer for a block that did not change', () => {
    for (let i = 0; i < 6; i++) list.add(item(i));
    const [first, second] = list.parts();
    list.add(item(6));
    const again = list.parts();
    expect(again[0]).toBe(first);
    expect(again[1]).not.toBe(second); // the last block grew
  });

  it('never changes bytes it handed out', () => {
    const items = Array.from({ length: 9 }, (_, i) => item(i));
    for (const i of items) list.add(i);
    const parts = list.parts();
    const copies = parts.map((p) => Buffer.from(p));
    list.add(item(9));
    list.add(item(10));
    list.remove(items[1]);
    items[5].name = 'renamed';
    list.changed(items[5]);
    list.parts();
    expect(parts).toEqual(copies);
  });

  it('after a removal or a change, makes the JSON of that block only', () => {
    const items = Array.from({ length: 12 }, (_, i) => item(i));
    for (const i of items) list.add(i);
    list.parts();
    calls = 0;
    list.remove(items[5]);
    expect(ids()).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]);
    expect(calls).toBe(3); // the other three entries of its block
    calls = 0;
    items[9].name = 'renamed';
    list.changed(items[9]);
    expect(parsed()[8]).toEqual({ id: 9, name: 'renamed' });
    expect(calls).toBe(4);
    expect(list.size).toBe(11);
  });

  it('appends after a removal in the last block', () => {
    const items = Array.from({ length: 3 }, (_, i) => item(i));
    for (const i of items) list.add(i);
    list.parts();
    list.remove(items[2]);
    list.add(item(3));
    list.add(item(4));
    expect(ids()).toEqual([0, 1, 3, 4]);
  });

  it('drops a block emptied by removals, keeping the order of the rest', () => {
    const items = Array.from({ length: 12 }, (_, i) => item(i));
    for (const i of items) list.add(i);
    for (const i of [4, 5, 6, 7]) list.remove(items[i]);
    expect(list.parts()).toHaveLength(2);
    expect(ids()).toEqual([0, 1, 2, 3, 8, 9, 10, 11]);
    list.add(item(12));
    expect(ids()).toEqual([0, 1, 2, 3, 8, 9, 10, 11, 12]);
  });

  it('merges small blocks so that churn does not leave the list in tiny blocks', () => {
    const big = new OnlineList<Item>(json, 16);
    const items = Array.from({ length: 64 }, (_, i) => item(i));
    for (const i of items) big.add(i);
    // Keep one entry in four of every block: each block falls under a quarter and merges.
    for (const i of items) if (i.id % 16 >= 3) big.remove(i);
    const left = items.filter((i) => i.id % 16 < 3).map((i) => i.id);
    const text = Buffer.concat(big.parts()).toString();
    expect((JSON.parse(`[${text.slice(1)}]`) as { id: number }[]).map((x) => x.id)).toEqual(left);
    expect(big.parts()).toHaveLength(1); // 4 blocks of 3 merged into one of 12
    expect(new Set(items.filter((i) => i.listBlock).map((i) => i.listBlock)).size).toBe(1);
    expect(big.size).toBe(left.length);
    // The merged block is the last one: it takes appends again.
    big.add(item(100));
    expect(Buffer.concat(big.parts()).toString().endsWith(',{"id":100,"name":"n100"}')).toBe(true);
  });

  it('ignores the removal of an entry it does not hold, and a change of one', () => {
    list.add(item(1));
    const stranger = item(2);
    list.remove(stranger);
    list.changed(stranger);
    expect(ids()).toEqual([1]);
    expect(list.size).toBe(1);
  });

  it('writes multi-byte characters as UTF-8', () => {
    list.add(item(1, 'Ёжик 🦔'));
    list.add(item(2, 'ü'));
    expect(parsed()).toEqual([
      { id: 1, name: 'Ёжик 🦔' },
      { id: 2, name: 'ü' },
    ]);
  });
});

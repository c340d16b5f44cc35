/** What the list keeps of each of its entries: the block it is in (set by the list). */
export interface ListEntry {
  listBlock?: OnlineListBlock;
}

/** Users per block: a change rewrites its block only (about 45 KB of JSON with typical profiles). */
export const BLOCK_ENTRIES = 256;

/** A run of consecutive entries and their JSON. */
export interface OnlineListBlock {
  readonly entries: ListEntry[];
  /** The JSON of the entries, each preceded by a comma, in bytes[0, used); undefined when it must be made again. */
  bytes?: Buffer;
  used: number;
  /** bytes[0, used) as handed out, until the next change. */
  view?: Buffer;
}

/**
 * The online list as UTF-8 JSON, kept up to date one entry at a time, for the AUTH SUCCESS of
 * every login (an O(N) frame) to cost no serialization of the list: entries are kept in blocks
 * of up to BLOCK_ENTRIES, in the order they were added; a new entry's JSON is appended to the
 * last block in place, and a removal or a change makes its block's JSON again (the next time the
 * list is read, from the entries: nothing is stored per entry but its block). `parts()` hands out
 * the blocks' bytes, which are never changed afterwards: bytes once handed out may be written to
 * sockets as they are (an append writes beyond them, anything else makes a new buffer).
 */
export class OnlineList<T extends ListEntry> {
  private readonly blocks: OnlineListBlock[] = [];
  private count = 0;

  constructor(
    /** An entry's JSON. */
    private readonly json: (entry: T) => string,
    private readonly blockEntries = BLOCK_ENTRIES,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Adds an entry at the end of the list. */
  add(entry: T): void {
    this.count++;
    let block = this.blocks[this.blocks.length - 1];
    if (!block || block.entries.length >= this.blockEntries) {
      block = { entries: [], used: 0 };
      this.blocks.push(block);
    }
    block.entries.push(entry);
    entry.listBlock = block;
    if (block.bytes !== undefined || block.entries.length === 1) this.append(block, `,${this.json(entry)}`, true);
  }

  /** Removes an entry (of this list). */
  remove(entry: T): void {
    const block = entry.listBlock;
    if (!block) return;
    const i = block.entries.indexOf(entry);
    if (i < 0) return;
    block.entries.splice(i, 1);
    entry.listBlock = undefined;
    this.count--;
    this.dirty(block);
    if (block.entries.length === 0) this.drop(block);
    else if (block.entries.length < this.blockEntries / 4) this.merge(block);
  }

  /** The entry's JSON changed. */
  changed(entry: T): void {
    if (entry.listBlock) this.dirty(entry.listBlock);
  }

  /**
   * The list's JSON: its entries, each preceded by a comma, in the returned buffers in order
   * (empty: nobody). Never changed afterwards.
   */
  parts(): Buffer[] {
    const out: Buffer[] = [];
    for (const block of this.blocks) {
      if (block.bytes === undefined) this.rebuild(block);
      block.view ??= block.bytes!.subarray(0, block.used);
      out.push(block.view);
    }
    return out;
  }

  private dirty(block: OnlineListBlock): void {
    block.bytes = undefined;
    block.used = 0;
    block.view = undefined;
  }

  /**
   * Appends text to a block's bytes, in the room after what was handed out; when there is none, in
   * a new buffer, with `room` for more appends (the last block) or without.
   */
  private append(block: OnlineListBlock, text: string, room: boolean): void {
    const length = Buffer.byteLength(text);
    let bytes = block.bytes;
    if (!bytes || block.used + length > bytes.length) {
      const needed = block.used + length;
      // With room: twice what it holds, at least a few dozen entries like this one (appends then write in place).
      const grown = Buffer.allocUnsafe(room ? Math.max(2 * needed, Math.min(this.blockEntries, 32) * length) : needed);
      if (bytes) bytes.copy(grown, 0, 0, block.used);
      bytes = grown;
      block.bytes = grown;
    }
    bytes.write(text, block.used);
    block.used += length;
    block.view = undefined;
  }

  private rebuild(block: OnlineListBlock): void {
    let text = '';
    for (const entry of block.entries) text += `,${this.json(entry as T)}`;
    block.bytes = undefined;
    block.used = 0;
    // Only the last block, not full yet, takes appends.
    this.append(block, text, block === this.blocks[this.blocks.length - 1] && block.entries.length < this.blockEntries);
  }

  private drop(block: OnlineListBlock): void {
    const i = this.blocks.indexOf(block);
    if (i >= 0) this.blocks.splice(i, 1);
  }

  /** A block that shrank to a quarter joins a neighbour it fits in, so that churn cannot leave the list in thousands of tiny blocks. */
  private merge(block: OnlineListBlock): void {
    const i = this.blocks.indexOf(block);
    const next = this.blocks[i + 1];
    const prev = this.blocks[i - 1];
    let into: OnlineListBlock | undefined;
    if (next && next.entries.length + block.entries.length <= this.blockEntries) {
      into = next;
      next.entries.unshift(...block.entries);
    } else if (prev && prev.entries.length + block.entries.length <= this.blockEntries) {
      into = prev;
      prev.entries.push(...block.entries);
    }
    if (!into) return;
    for (const entry of block.entries) entry.listBlock = into;
    this.dirty(into);
    this.blocks.splice(i, 1);
  }
}

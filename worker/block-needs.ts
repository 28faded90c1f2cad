// Which content blocks of a .dpt file a set of rows lies in (features and labels), collected
// without duplicates: what a worker reading a remote file must have before it reads those rows.

import { BLOCK_BYTES, type DptLayout } from '../shared/binary-dataset.js';

export class BlockNeeds {
  private readonly layout: DptLayout;
  /** Bytes of one row's features: 4·D. */
  private readonly rowBytes: number;
  /** The collection each block was last added in; a block is new to this one when it differs. */
  private readonly seen: Uint32Array;
  private generation = 0;
  private readonly list: number[] = [];

  constructor(layout: DptLayout) {
    this.layout = layout;
    this.rowBytes = 4 * layout.features;
    this.seen = new Uint32Array(layout.blocks);
  }

  /** Starts a new collection (the previous list is emptied). */
  begin(): void {
    this.generation++;
    if (this.generation === 0xffff_ffff) {
      this.seen.fill(0);
      this.generation = 1;
    }
    this.list.length = 0;
  }

  /** Adds the blocks of rows order[from..to) (rows from..to when order is null). */
  addRows(order: Uint32Array | null, from: number, to: number): void {
    if (from >= to) return;
    if (order === null) {
      this.addBytes(from * this.rowBytes, to * this.rowBytes);
      const labels = this.layout.labelsOffset - this.layout.dataOffset;
      this.addBytes(labels + from, labels + to);
      return;
    }
    // Row by row: a shuffled order touches blocks in any order; consecutive rows mostly share one.
    const labels = this.layout.labelsOffset - this.layout.dataOffset;
    for (let i = from; i < to; i++) {
      const row = order[i]!;
      this.addBytes(row * this.rowBytes, (row + 1) * this.rowBytes);
      this.add(Math.floor((labels + row) / BLOCK_BYTES));
    }
  }

  /** The blocks added since begin(), in the order first added (valid until the next begin()). */
  get blocks(): readonly number[] {
    return this.list;
  }

  /** Content bytes [start, end), counted from the data offset. */
  private addBytes(start: number, end: number): void {
    const last = Math.floor((end - 1) / BLOCK_BYTES);
    for (let block = Math.floor(start / BLOCK_BYTES); block <= last; block++) this.add(block);
  }

  private add(block: number): void {
    if (this.seen[block] === this.generation) return;
    this.seen[block] = this.generation;
    this.list.push(block);
  }
}

// Which load units (runs of unitRows rows, worker/row-store.ts) a set of rows falls in, collected
// without duplicates, and which content blocks of a .dpt file a unit lies in (its features and its
// labels): what a worker reading a remote file must fetch before it reads those rows.

import { BLOCK_BYTES, type DptLayout } from '../shared/binary-dataset.js';

export class UnitNeeds {
  private readonly unitRows: number;
  /** The collection each unit was last added in; a unit is new to this one when it differs. */
  private readonly seen: Uint32Array;
  private generation = 0;
  private readonly list: number[] = [];

  constructor(rows: number, unitRows: number) {
    this.unitRows = unitRows;
    this.seen = new Uint32Array(Math.ceil(rows / unitRows));
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

  /** Adds the units of rows order[from..to) (rows from..to when order is null). */
  addRows(order: Uint32Array | null, from: number, to: number): void {
    if (from >= to) return;
    const R = this.unitRows;
    if (order === null) {
      for (let unit = Math.floor(from / R); unit <= Math.floor((to - 1) / R); unit++) this.add(unit);
      return;
    }
    for (let i = from; i < to; i++) this.add(Math.floor(order[i]! / R));
  }

  /** The units added since begin(), in the order first added (valid until the next begin()). */
  get units(): readonly number[] {
    return this.list;
  }

  private add(unit: number): void {
    if (this.seen[unit] === this.generation) return;
    this.seen[unit] = this.generation;
    this.list.push(unit);
  }
}

/** Calls `visit` for each content block that rows [unit·unitRows, (unit + 1)·unitRows) lie in (features, then labels; a block may repeat). */
export function forEachBlockOfUnit(layout: DptLayout, unitRows: number, unit: number, visit: (block: number) => void): void {
  const from = unit * unitRows;
  const to = Math.min(layout.rows, from + unitRows);
  if (from >= to) return;
  const rowBytes = 4 * layout.features;
  const labels = layout.labelsOffset - layout.dataOffset;
  const labelBytes = layout.labelBytes; // 1 (0/1) or 2 (uint16 class indices, version 2)
  for (let block = Math.floor((from * rowBytes) / BLOCK_BYTES); block <= Math.floor((to * rowBytes - 1) / BLOCK_BYTES); block++) visit(block);
  for (let block = Math.floor((labels + from * labelBytes) / BLOCK_BYTES); block <= Math.floor((labels + to * labelBytes - 1) / BLOCK_BYTES); block++)
    visit(block);
}

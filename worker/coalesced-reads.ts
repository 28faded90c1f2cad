// Reads a chunk's rows from a .dpt file in file order, in few reads: the chunk's row ids are
// sorted, rows whose byte ranges lie within GAP_BYTES of each other are merged into one run, each
// run is one read into a span buffer, and its rows are copied into the chunk's buffer at their
// places in the chunk's order. The chunk buffer then holds exactly what reading row by row would
// put there (the same float32 values, the same labels, the same order): only the reads change.
// Under row shuffle a chunk of B/C rows drawn from the whole file otherwise costs two reads a row
// (features and labels), ~200,000 system calls a second (issue #15 item 3).
// Every buffer is allocated once, at construction: no allocation per chunk or per row.

import type { LabelArray } from '../shared/model-kernel.js';

/** What the reader needs of a .dpt file (shared/binary-dataset.ts BinaryDataset; a test can count its calls). */
export interface RowSource {
  readonly rows: number;
  readonly features: number;
  readRows(from: number, to: number, into: Float32Array, intoRow?: number): void;
  readLabels(from: number, to: number, into: Uint8Array | Uint16Array, intoRow?: number): void;
}

/**
 * Rows whose byte ranges are at most this far apart share one read: reading a few KB more from
 * the page cache costs less than a system call, and on a cold disk the pages come in anyway.
 */
export const GAP_BYTES = 8 * 1024;
/** The largest single read (bytes): a run is cut there, so the span buffer stays small. */
export const SPAN_BYTES = 1 << 20;

export class CoalescedReader {
  private readonly source: RowSource;
  private readonly features: number;
  /** Rows a gather may ask for at most (the chunk buffer's rows). */
  readonly capacity: number;
  /** Sort keys, row · capacity + place (exact in a float64 while rows · capacity < 2^53). */
  private readonly keys: Float64Array;
  private readonly spanX: Float32Array;
  private readonly spanY: Uint8Array | Uint16Array;
  /** Rows a run of features / labels may span. */
  private readonly spanRowsX: number;
  private readonly spanRowsY: number;
  /** Rows between two rows of one run at most (the gap in rows, per section). */
  private readonly gapRowsX: number;
  private readonly gapRowsY: number;
  /** Reads issued (features and labels), for tests and statistics. */
  reads = 0;

  /** `capacity`: the most rows one gather fills; `labels`: the chunk buffer's label array (its type is the span's). */
  constructor(source: RowSource, capacity: number, labels: LabelArray, gapBytes = GAP_BYTES, spanBytes = SPAN_BYTES) {
    this.source = source;
    this.features = source.features;
    this.capacity = Math.max(1, capacity);
    if (source.rows * this.capacity >= 2 ** 53) throw new RangeError(`${source.rows} rows × ${this.capacity} staging rows do not fit sort keys`);
    this.keys = new Float64Array(this.capacity);
    const rowBytes = 4 * this.features;
    this.spanRowsX = Math.max(1, Math.floor(spanBytes / rowBytes));
    this.gapRowsX = Math.floor(gapBytes / rowBytes);
    const labelBytes = labels.BYTES_PER_ELEMENT;
    this.spanRowsY = Math.max(1, Math.floor(spanBytes / labelBytes));
    this.gapRowsY = Math.floor(gapBytes / labelBytes);
    this.spanX = new Float32Array(Math.min(this.spanRowsX, source.rows) * this.features);
    const spanY = Math.min(this.spanRowsY, source.rows);
    this.spanY = labels instanceof Uint8Array ? new Uint8Array(spanY) : new Uint16Array(spanY);
  }

  /**
   * Fills rows [0, to − from) of x and y with rows order[from..to), in that order. Throws what the
   * source throws (a DataBlockError for a block failing its checks, a DatasetError for a short file).
   */
  gather(order: Uint32Array, from: number, to: number, x: Float32Array, y: LabelArray): void {
    const count = to - from;
    if (count > this.capacity) throw new RangeError(`a chunk of ${count} rows exceeds the staging buffer of ${this.capacity} rows`);
    const capacity = this.capacity;
    const keys = this.keys;
    for (let i = 0; i < count; i++) keys[i] = order[from + i]! * capacity + i;
    const sorted = keys.subarray(0, count);
    sorted.sort();
    this.readSection(true, sorted, x, y);
    this.readSection(false, sorted, x, y);
  }

  /** Reads the features (isFeatures) or the labels of the sorted rows in runs and places each row. */
  private readSection(isFeatures: boolean, sorted: Float64Array, x: Float32Array, y: LabelArray): void {
    const capacity = this.capacity;
    const D = this.features;
    const count = sorted.length;
    const gapRows = isFeatures ? this.gapRowsX : this.gapRowsY;
    const spanRows = isFeatures ? this.spanRowsX : this.spanRowsY;
    let k = 0;
    while (k < count) {
      const first = Math.floor(sorted[k]! / capacity);
      let end = first + 1;
      // Extend the run while the next row is within the gap and the run fits the span.
      let j = k + 1;
      let isInPlace = true; // rows first..end land at consecutive places: read straight into the chunk buffer
      while (j < count) {
        const row = Math.floor(sorted[j]! / capacity);
        if (row >= end) {
          if (row - end > gapRows || row + 1 - first > spanRows) break;
          if (row !== end) isInPlace = false;
          end = row + 1;
        } else isInPlace = false; // the same row twice
        j++;
      }
      const place = sorted[k]! - first * capacity;
      if (isInPlace) {
        for (let i = k + 1; i < j && isInPlace; i++) if (sorted[i]! - Math.floor(sorted[i]! / capacity) * capacity !== place + (i - k)) isInPlace = false;
      }
      this.reads++;
      if (isInPlace) {
        if (isFeatures) this.source.readRows(first, end, x, place);
        else this.source.readLabels(first, end, y, place);
      } else if (isFeatures) {
        const span = this.spanX;
        this.source.readRows(first, end, span, 0);
        for (let i = k; i < j; i++) {
          const row = Math.floor(sorted[i]! / capacity);
          const at = (sorted[i]! - row * capacity) * D;
          const from = (row - first) * D;
          for (let d = 0; d < D; d++) x[at + d] = span[from + d]!;
        }
      } else {
        const span = this.spanY;
        this.source.readLabels(first, end, span, 0);
        for (let i = k; i < j; i++) {
          const row = Math.floor(sorted[i]! / capacity);
          y[sorted[i]! - row * capacity] = span[row - first]!;
        }
      }
      k = j;
    }
  }
}

// Reads the rows a paged worker will likely need in its next step while it waits for that step
// (issue #15 item 3): the schedule is a pure function and assignments are sticky, so step t + 1
// usually needs order[from..to) for the range step t's table gives this worker. The rows are read
// with asynchronous positioned reads (libuv's thread pool), in file order, merged into runs as
// worker/coalesced-reads.ts does, into buffers of their own. A chunk is served from them only if
// the reads have all finished, every block they touch has passed its checks, and the chunk's row
// ids are exactly the ones read; anything else (a guess that was wrong, a read still under way, a
// failed or short read) is dropped and the chunk is read synchronously, which reports any error.
// Rows scattered over the file (more than MAX_ASYNC_READS runs) are not read ahead at all.
// So a prefetch changes when bytes are read, never which rows a kernel sees.
// Every buffer is allocated once; a new prefetch starts only when the previous reads are done.

import { closeSync, openSync, read } from 'node:fs';
import { type BinaryDataset, BLOCK_BYTES } from '../shared/binary-dataset.js';
import type { LabelArray } from '../shared/model-kernel.js';
import { GAP_BYTES } from './coalesced-reads.js';

/**
 * A prefetch needing more reads than this (rows scattered over the file, as under a row shuffle
 * of a file much larger than a step) is not started: per-row asynchronous reads cost more in the
 * thread pool than they save, and reading them synchronously ahead did not help either (measured
 * on 2 CPUs: row-shuffle paged rows/s 1.3–2× lower with either than without a prefetch).
 */
export const MAX_ASYNC_READS = 64;

/** The most bytes of rows one prefetch holds: a larger step is prefetched in part. */
export const PREFETCH_BYTES = 8 * 1024 * 1024;

export class RowPrefetch {
  private readonly file: BinaryDataset;
  private readonly features: number;
  /** Positions (rows of a step) one prefetch covers at most. */
  private readonly capacity: number;
  private fd: number | null = null;
  /** Row ids of positions [start, start + count) of the order, as read. */
  private readonly ids: Uint32Array;
  /** Per position (in order), its row in rawX and in rawY. */
  private readonly atX: Uint32Array;
  private readonly atY: Uint32Array;
  private readonly keys: Float64Array;
  /** Runs read back to back, gaps included: at most 2 × capacity rows each. */
  private readonly rawX: Float32Array;
  private readonly rawY: Uint8Array | Uint16Array;
  /** Byte views of rawX and rawY, the targets of the reads. */
  private readonly bytesX: Uint8Array;
  private readonly bytesY: Uint8Array;
  private start = 0;
  private count = 0;
  private pending = 0;
  private isReady = false;
  private hasFailed = false;
  private isClosed = false;
  /** Blocks the reads touched (checked once they are done). */
  private readonly blocks = new Set<number>();
  /** Prefetches started, and chunks served from one, for tests and statistics. */
  started = 0;
  served = 0;
  /** Called once no read is under way (see settled()). */
  private waiters: Array<() => void> = [];

  /** `capacity`: the most rows a step gives this worker; `labels`: the type of the chunk buffer's labels. */
  constructor(file: BinaryDataset, capacity: number, labels: LabelArray) {
    this.file = file;
    this.features = file.features;
    this.capacity = Math.max(1, Math.min(capacity, Math.floor(PREFETCH_BYTES / (4 * file.features)), file.rows));
    this.ids = new Uint32Array(this.capacity);
    this.atX = new Uint32Array(this.capacity);
    this.atY = new Uint32Array(this.capacity);
    this.keys = new Float64Array(this.capacity);
    const raw = Math.min(2 * this.capacity, file.rows);
    this.rawX = new Float32Array(raw * this.features);
    this.rawY = labels instanceof Uint8Array ? new Uint8Array(raw) : new Uint16Array(raw);
    this.bytesX = new Uint8Array(this.rawX.buffer);
    this.bytesY = new Uint8Array(this.rawY.buffer);
  }

  /**
   * Starts reading rows order[from..to) (rows from..to when order is null; at most capacity of
   * them), dropping what an earlier prefetch read. Does nothing while earlier reads are under way.
   */
  begin(order: Uint32Array | null, from: number, to: number): void {
    if (this.isClosed || this.pending > 0) return;
    this.isReady = false;
    this.hasFailed = false;
    this.blocks.clear();
    const count = Math.min(to - from, this.capacity);
    const { dataOffset, labelsOffset, labelBytes } = this.file.sections;
    // Version-1 labels widened to uint16 (a softmax kernel on a 0/1 file): left to the synchronous reads.
    if (count <= 0 || this.rawY.BYTES_PER_ELEMENT !== labelBytes) return;
    try {
      this.fd ??= openSync(this.file.path, 'r');
    } catch {
      return; // the file is gone or unreadable: the synchronous reads report it
    }
    this.start = from;
    this.count = count;
    const capacity = this.capacity;
    for (let i = 0; i < count; i++) {
      this.ids[i] = order === null ? from + i : order[from + i]!;
      this.keys[i] = this.ids[i]! * capacity + i;
    }
    const sorted = this.keys.subarray(0, count);
    sorted.sort();
    const rowBytes = 4 * this.features;
    let runs = 0;
    this.readRuns(sorted, this.atX, this.rawX.length / this.features, Math.floor(GAP_BYTES / rowBytes), () => runs++);
    if (runs > MAX_ASYNC_READS) return; // scattered rows: the step reads them itself
    this.started++;
    this.pending = 1; // held until every read is issued, so a read finishing early cannot complete the prefetch
    this.readRuns(sorted, this.atX, this.rawX.length / this.features, Math.floor(GAP_BYTES / rowBytes), (first, end, rawRow) =>
      this.readBytes(this.bytesX, rawRow * rowBytes, (end - first) * rowBytes, dataOffset + first * rowBytes),
    );
    this.readRuns(sorted, this.atY, this.rawY.length, Math.floor(GAP_BYTES / labelBytes), (first, end, rawRow) =>
      this.readBytes(this.bytesY, rawRow * labelBytes, (end - first) * labelBytes, labelsOffset + first * labelBytes),
    );
    this.settle();
  }

  /**
   * Fills rows [0, to − from) of x and y with rows order[from..to) from the prefetched buffers and
   * returns true, if they hold exactly those rows, read and checked; else false (read them yourself).
   */
  take(order: Uint32Array | null, from: number, to: number, x: Float32Array, y: LabelArray): boolean {
    if (!this.isReady || from < this.start || to > this.start + this.count) return false;
    const offset = from - this.start;
    for (let i = from; i < to; i++) if ((order === null ? i : order[i]!) !== this.ids[i - this.start]) return false;
    const D = this.features;
    const rawX = this.rawX;
    const rawY = this.rawY;
    for (let i = 0; i < to - from; i++) {
      const source = this.atX[offset + i]! * D;
      const target = i * D;
      for (let d = 0; d < D; d++) x[target + d] = rawX[source + d]!;
      y[i] = rawY[this.atY[offset + i]!]!;
    }
    this.served++;
    return true;
  }

  /** Resolves once no read of a prefetch is under way (at once if none is). */
  settled(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.isClosed = true;
    this.isReady = false;
    if (this.pending === 0 && this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }

  /**
   * Plans runs over the sorted keys (rows within `gapRows` merged while the raw buffer of `rawRows`
   * rows can still hold every row after), records each position's raw row in `at`, and calls
   * `issue(first, end, rawRow)` for each run.
   */
  private readRuns(sorted: Float64Array, at: Uint32Array, rawRows: number, gapRows: number, issue: (first: number, end: number, rawRow: number) => void): void {
    const capacity = this.capacity;
    const count = sorted.length;
    let rawUsed = 0;
    let k = 0;
    while (k < count) {
      const first = Math.floor(sorted[k]! / capacity);
      let end = first + 1;
      let j = k + 1;
      while (j < count) {
        const row = Math.floor(sorted[j]! / capacity);
        if (row >= end) {
          // A gap is read only while every row still to come keeps a raw slot.
          if (row - end > gapRows || rawUsed + (row + 1 - first) + (count - j - 1) > rawRows) break;
          end = row + 1;
        }
        j++;
      }
      for (let i = k; i < j; i++) {
        const row = Math.floor(sorted[i]! / capacity);
        at[sorted[i]! - row * capacity] = rawUsed + row - first;
      }
      issue(first, end, rawUsed);
      rawUsed += end - first;
      k = j;
    }
  }

  /** Reads `length` bytes at file `position` into target[at..] asynchronously (short reads continued); remembers the blocks touched. */
  private readBytes(target: Uint8Array, at: number, length: number, position: number): void {
    const { dataOffset } = this.file.sections;
    const last = Math.floor((position + length - 1 - dataOffset) / BLOCK_BYTES);
    for (let block = Math.floor((position - dataOffset) / BLOCK_BYTES); block <= last; block++) this.blocks.add(block);
    this.pending++;
    const fd = this.fd!; // opened in begin()
    const step = (done: number): void => {
      if (done === length || this.isClosed || this.hasFailed) {
        this.settle();
        return;
      }
      read(fd, target, at + done, length - done, position + done, (error, bytesRead) => {
        if (error !== null || bytesRead === 0) {
          this.hasFailed = true; // the synchronous read of the same rows reports what is wrong
          this.settle();
        } else step(done + bytesRead);
      });
    };
    step(0);
  }

  /** One read (or the issuing) finished: once none is left, check the blocks and mark the rows ready. */
  private settle(): void {
    this.pending--;
    if (this.pending > 0) return;
    if (this.isClosed) this.close();
    else if (!this.hasFailed) {
      try {
        for (const block of this.blocks) this.file.checkBlock(block);
        this.isReady = true;
      } catch {
        // a bad block: the synchronous read of these rows reports it
      }
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

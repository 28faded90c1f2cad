// The batch schedule as pure functions of (rows, seed, epoch, batch size, shuffle mode), never
// of the cluster (DESIGN.md invariant 1). Coordinator and workers both derive it, so a step
// message only names (step, chunk ids) and each side knows which rows those are.

import { shuffleSeeded } from './rng.js';

/** Everything the schedule depends on. Frozen in the run's config; sent to every worker. */
export interface ScheduleSpec {
  /** Rows in the data file. */
  readonly rows: number;
  /** Fraction of rows held out for validation, in [0, 1). */
  readonly valFraction: number;
  readonly seed: number;
  /** false: every epoch takes the training rows in file order. */
  readonly shuffle: boolean;
  /**
   * 0: shuffle single rows. R > 0: shuffle blocks of R consecutive training rows and keep each
   * block in file order, so reads from a file stay sequential (a block shuffle).
   */
  readonly shuffleBlockRows: number;
  /** Global mini-batch size B, in rows. */
  readonly batchSize: number;
  /** Each batch is cut into this many chunks (fewer if it has fewer rows): the unit of work and the reduction tree's leaves. */
  readonly chunksPerBatch: number;
}

/**
 * Rows a default chunk holds at least: below ~32 rows a chunk's kernel call is dominated by its
 * fixed cost (the call, the part's D + 2 values), so cutting finer buys no parallelism.
 */
export const MIN_DEFAULT_CHUNK_ROWS = 32;
/**
 * Chunks a batch is cut into at most by default: enough for 64 workers to share every step
 * (issue #11). A worker sends O(1) subtree parts whatever the count, so more chunks cost the
 * coordinator only O(chunks · D) additions per step, not traffic.
 */
export const MAX_DEFAULT_CHUNKS = 64;

/**
 * The default chunk count of a batch of B rows: min(64, max(1, floor(B / 32))). A function of B
 * only, never of the cluster, so the reduction tree (shared/reduce.ts) and the bits are too.
 */
export function defaultChunksPerBatch(batchSize: number): number {
  return Math.min(MAX_DEFAULT_CHUNKS, Math.max(1, Math.floor(batchSize / MIN_DEFAULT_CHUNK_ROWS)));
}

export interface RowSplit {
  /** Training rows, ascending (file order). */
  readonly train: Uint32Array;
  /** Held-out rows, ascending. */
  readonly validation: Uint32Array;
}

const SPLIT_STREAM = 0x5eed;

/** Sizes of the split: round(rows × valFraction) rows held out, the rest for training. */
export function splitSizes(rows: number, valFraction: number): { train: number; validation: number } {
  const validation = Math.round(rows * valFraction);
  return { train: rows - validation, validation };
}

/** Holds out round(rows × valFraction) rows chosen by a seeded shuffle; both parts keep file order. */
export function splitRows(rows: number, valFraction: number, seed: number): RowSplit {
  const all = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) all[i] = i;
  const held = splitSizes(rows, valFraction).validation;
  if (held === 0) return { train: all, validation: new Uint32Array(0) };
  shuffleSeeded(all, seed, SPLIT_STREAM);
  const validation = all.slice(0, held).sort();
  const train = all.slice(held).sort();
  return { train, validation };
}

/**
 * The order in which epoch `epoch` visits the training rows: file order, a seeded permutation
 * of the rows, or (blockRows > 0) a seeded permutation of blocks of blockRows consecutive rows.
 */
export function epochOrder(train: Uint32Array, seed: number, epoch: number, shuffle: boolean, blockRows = 0): Uint32Array {
  if (!shuffle) return train;
  return epochOrderInto(train, seed, epoch, blockRows, new Uint32Array(train.length));
}

/**
 * epochOrder of a shuffled run written into `out` (train.length values): a worker's order buffer
 * in its kernel's memory, filled in place each epoch rather than through a fresh array and a copy
 * (at millions of rows each fresh array is thousands of page faults). Returns `out`.
 */
export function epochOrderInto(train: Uint32Array, seed: number, epoch: number, blockRows: number, out: Uint32Array): Uint32Array {
  if (out.length !== train.length) throw new Error(`invariant broken: an order of ${out.length} for ${train.length} rows`);
  if (blockRows === 0) {
    out.set(train);
    shuffleSeeded(out, seed, epoch);
    return out;
  }
  const blocks = Math.ceil(train.length / blockRows);
  const blockOrder = new Uint32Array(blocks);
  for (let k = 0; k < blocks; k++) blockOrder[k] = k;
  shuffleSeeded(blockOrder, seed, epoch);
  let at = 0;
  for (const k of blockOrder) {
    const block = train.subarray(k * blockRows, Math.min(train.length, (k + 1) * blockRows));
    out.set(block, at);
    at += block.length;
  }
  return out;
}

export function batchesPerEpoch(trainRows: number, batchSize: number): number {
  return Math.ceil(trainRows / batchSize);
}

/** Where global step `step` falls: its epoch, batch index in the epoch, and its rows in the epoch order. */
export interface StepLocation {
  readonly epoch: number;
  readonly batch: number;
  /** First position of the batch in the epoch order. */
  readonly start: number;
  /** Rows in the batch: B, or fewer for the last batch of an epoch (used as it is). */
  readonly size: number;
  readonly chunks: number;
}

export function locateStep(step: number, trainRows: number, batchSize: number, chunksPerBatch: number): StepLocation {
  const perEpoch = batchesPerEpoch(trainRows, batchSize);
  const epoch = Math.floor(step / perEpoch);
  const batch = step - epoch * perEpoch;
  const start = batch * batchSize;
  const size = Math.min(batchSize, trainRows - start);
  return { epoch, batch, start, size, chunks: Math.min(chunksPerBatch, size) };
}

/** Start (inclusive) of chunk `chunk` of a batch of `size` rows cut into `chunks`, relative to the batch. */
export function chunkStart(size: number, chunks: number, chunk: number): number {
  return Math.floor((chunk * size) / chunks);
}

/** Whether an evaluation pass follows epoch `epoch` (0-based) of `epochs`: every `evalEvery` epochs, and after the last; never when evalEvery is 0. */
export function evaluatesAfterEpoch(epoch: number, epochs: number, evalEvery: number): boolean {
  if (evalEvery === 0) return false;
  return (epoch + 1) % evalEvery === 0 || epoch + 1 === epochs;
}

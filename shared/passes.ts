// Passes over the data that are not training steps: feature statistics of the raw training
// rows (for standardization and the divergence bound) and loss/accuracy with a model (epoch
// evaluation). Workers compute them per fixed block of rows; the coordinator merges the blocks
// in block order, so the result is the same whatever the cluster (DESIGN.md invariant 6) and the
// coordinator never reads the data file itself.

import { linearScore, logLoss, predictClass } from './model.js';
import { nativePasses } from './passes-native.js';

/** Blocks per pass (fewer when the set has fewer rows): the unit of work and recomputation. */
export const PASS_BLOCKS = 256;
export const MAX_PASS_BLOCKS = 65_536;
/**
 * Rows a worker is handed at once in a pass (at least one block): passes go out pull-based in
 * slices of this size, the next slice when the worker answers (issue #10 item 13), so a worker
 * that joins or rejoins mid-pass is never handed a large data set's whole pass, while a small
 * data set still goes out in one message per worker.
 */
export const PASS_ROWS_PER_SLICE = 65_536;

export type PassKind = 'stats' | 'eval';

/** Values per block: stats [mean_1..D, M2_1..D, min_1..D, max_1..D]; eval [loss sum, correct]. */
export function passWidth(purpose: PassKind, D: number): number {
  return purpose === 'stats' ? 4 * D : 2;
}

export function passBlocks(setRows: number): number {
  return Math.min(PASS_BLOCKS, setRows);
}

/** Blocks per slice of a pass over `setRows` rows: as many as PASS_ROWS_PER_SLICE rows hold, at least one. */
export function passSliceBlocks(setRows: number): number {
  const rowsPerBlock = Math.ceil(setRows / Math.max(1, passBlocks(setRows)));
  return Math.max(1, Math.floor(PASS_ROWS_PER_SLICE / Math.max(1, rowsPerBlock)));
}

/** Start (inclusive) of block `block` of a set of `setRows` positions cut into `blocks`. */
export function blockStart(setRows: number, blocks: number, block: number): number {
  return Math.floor((block * setRows) / blocks);
}

/** Empty statistics in out[offset..offset+4D), ready for accumulateStats. */
export function initStats(D: number, out: Float64Array, offset: number): void {
  out.fill(0, offset, offset + 2 * D);
  out.fill(Number.POSITIVE_INFINITY, offset + 2 * D, offset + 3 * D);
  out.fill(Number.NEGATIVE_INFINITY, offset + 3 * D, offset + 4 * D);
}

/**
 * Adds rows order[from..to) (or from..to when order is null) to the statistics in
 * out[offset..offset+4D), which already cover `count` rows: the mean and the sum of squared
 * deviations (Welford's update, row by row, stable for large offsets), the minimum and maximum.
 * Returns the new count. Row by row, so any split into calls gives the same bits; natively where
 * native/passes.c is built (the same operations in the same order: the same bits).
 */
export function accumulateStats(
  x: Float32Array,
  D: number,
  order: Uint32Array | null,
  from: number,
  to: number,
  out: Float64Array,
  offset: number,
  count: number,
): number {
  const addon = nativePasses();
  return addon === undefined
    ? accumulateStatsScript(x, D, order, from, to, out, offset, count)
    : addon.accumulateStats(x, D, order, from, to, out, offset, count);
}

/** accumulateStats in JavaScript: the definition native/passes.c follows (test/unit/passes-native.test.ts compares them). */
export function accumulateStatsScript(...[x, D, order, from, to, out, offset, count]: Parameters<typeof accumulateStats>): number {
  const mean = offset;
  const m2 = offset + D;
  const min = offset + 2 * D;
  const max = offset + 3 * D;
  let n = count;
  for (let i = from; i < to; i++) {
    const base = (order === null ? i : order[i]!) * D;
    n++;
    for (let j = 0; j < D; j++) {
      const v = x[base + j]!;
      const delta = v - out[mean + j]!;
      out[mean + j]! += delta / n;
      out[m2 + j]! += delta * (v - out[mean + j]!);
      if (v < out[min + j]!) out[min + j] = v;
      if (v > out[max + j]!) out[max + j] = v;
    }
  }
  return n;
}

/**
 * Adds the loss and the correct predictions of rows order[from..to) (or from..to) to out[offset],
 * out[offset+1], row by row; natively where native/passes.c is built (the same operations in the
 * same order, and its fdlibm exp and log1p are V8's Math.exp and Math.log1p: the same bits).
 */
export function accumulateEval(
  x: Float32Array,
  y: Uint8Array,
  D: number,
  order: Uint32Array | null,
  from: number,
  to: number,
  w: Float64Array,
  b: number,
  out: Float64Array,
  offset: number,
): void {
  const addon = nativePasses();
  if (addon === undefined) accumulateEvalScript(x, y, D, order, from, to, w, b, out, offset);
  else addon.accumulateEval(x, y, D, order, from, to, w, b, out, offset);
}

/** accumulateEval in JavaScript: the definition native/passes.c follows (test/unit/passes-native.test.ts compares them). */
export function accumulateEvalScript(...[x, y, D, order, from, to, w, b, out, offset]: Parameters<typeof accumulateEval>): void {
  for (let i = from; i < to; i++) {
    const row = order === null ? i : order[i]!;
    const z = linearScore(x, D, row, w, b);
    out[offset]! += logLoss(z, y[row]!);
    if (predictClass(z) === y[row]) out[offset + 1]! += 1;
  }
}

export interface MergedStats {
  readonly rows: number;
  readonly mean: Float64Array;
  /** Population standard deviation; 1 for a constant column. */
  readonly std: Float64Array;
  readonly min: Float64Array;
  readonly max: Float64Array;
}

/**
 * Merges per-block statistics in block order (Chan, Golub and LeVeque's pairwise update):
 * n = nA + nB, δ = meanB − meanA, mean = meanA + δ·nB/n, M2 = M2A + M2B + δ²·nA·nB/n.
 */
export function mergeStats(sums: Float64Array, rows: Uint32Array, blocks: number, D: number): MergedStats {
  const mean = new Float64Array(D);
  const m2 = new Float64Array(D);
  const min = new Float64Array(D).fill(Number.POSITIVE_INFINITY);
  const max = new Float64Array(D).fill(Number.NEGATIVE_INFINITY);
  let n = 0;
  const width = 4 * D;
  for (let block = 0; block < blocks; block++) {
    const nB = rows[block]!;
    if (nB === 0) continue;
    const base = block * width;
    const total = n + nB;
    for (let j = 0; j < D; j++) {
      const delta = sums[base + j]! - mean[j]!;
      mean[j]! += (delta * nB) / total;
      m2[j]! += sums[base + D + j]! + (delta * delta * n * nB) / total;
      min[j] = Math.min(min[j]!, sums[base + 2 * D + j]!);
      max[j] = Math.max(max[j]!, sums[base + 3 * D + j]!);
    }
    n = total;
  }
  const std = new Float64Array(D);
  for (let j = 0; j < D; j++) {
    const s = Math.sqrt(m2[j]! / n);
    std[j] = s > 0 && Number.isFinite(s) ? s : 1;
  }
  return { rows: n, mean, std, min, max };
}

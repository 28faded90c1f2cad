// The weights of a model trained on sparse inputs (issue #13), as a model file stores them and as
// predict looks them up. D may be 2^30 hashed buckets, so the file holds either the dense form
// (logistic: D numbers; softmax: K rows of D, as dense model files do) or the sparse form
//   {"dims": D, "indices": [j, …], "values": [w_j0 … w_j(O−1), …]}
// with the indices strictly increasing, O values per index (index-major, as a SparsePart holds
// them; O = 1 for logistic, K for softmax) and every index whose O weights are all zero left out.
// Exports: encodeSparseWeights, checkSparseWeights, weightTable, lookUpWeights.

import type { ModelShape } from './model-shape.js';
import type { SparseParams } from './sparse-rows.js';

export interface SparseWeightsRecord {
  /** D: weights per output. */
  readonly dims: number;
  /** Strictly increasing, each in [0, D). */
  readonly indices: number[];
  /** O numbers per index: values[k·O + o] = w_o,indices[k]. */
  readonly values: number[];
}

/** The weights as a model file holds them: logistic dense, softmax dense (row k = class k), or sparse. */
export type StoredWeights = number[] | number[][] | SparseWeightsRecord;

/** The largest D a model file accepts (hash bits ≤ 30). */
export const MAX_SPARSE_DIMS = 2 ** 30;

/**
 * The stored weights of w = scale·v (O×D row-major, shared/sparse-rows.ts), each product in
 * float64 as replicas form it. The sparse form is chosen when it holds fewer numbers:
 * nz·(1 + O) < O·D, nz the indices with a non-zero weight in some output. O(O·D) time, once per
 * model file written.
 */
export function encodeSparseWeights(params: SparseParams, shape: ModelShape): StoredWeights {
  const O = shape.outputs;
  const D = shape.features;
  const { v, scale } = params;
  if (v.length !== O * D) throw new RangeError(`v holds ${v.length} numbers, a ${O}×${D} shape needs ${O * D}`);
  let nz = 0;
  for (let j = 0; j < D; j++) {
    for (let o = 0; o < O; o++) {
      if (scale * v[o * D + j]! !== 0) {
        nz++;
        break;
      }
    }
  }
  if (nz * (1 + O) >= O * D) {
    const row = (o: number): number[] => Array.from(v.subarray(o * D, (o + 1) * D), (value) => scale * value);
    return shape.kind === 'logistic' ? row(0) : Array.from({ length: O }, (_, o) => row(o));
  }
  const indices: number[] = [];
  const values: number[] = [];
  for (let j = 0; j < D; j++) {
    let isTouched = false;
    for (let o = 0; o < O; o++) if (scale * v[o * D + j]! !== 0) isTouched = true;
    if (!isTouched) continue;
    indices.push(j);
    for (let o = 0; o < O; o++) values.push(scale * v[o * D + j]!);
  }
  return { dims: D, indices, values };
}

type Fail = (field: string, expected: string) => never;

/**
 * Checks stored weights for O outputs (1: logistic, K: softmax) and returns D. Fails naming the
 * field: `weights.indices[3]`, `weights[1]` and so on.
 */
export function checkSparseWeights(value: unknown, O: number, fail: Fail): number {
  if (Array.isArray(value)) {
    if (O === 1) {
      if (value.length === 0 || value.length > MAX_SPARSE_DIMS || !value.every(isFiniteNumber))
        return fail('weights', `must be an array of 1 to ${MAX_SPARSE_DIMS} finite numbers, or {dims, indices, values}`);
      return value.length;
    }
    if (value.length !== O) return fail('weights', `must be an array of ${O} rows (one per class), or {dims, indices, values}`);
    const D = Array.isArray(value[0]) ? value[0].length : 0;
    value.forEach((row: unknown, k) => {
      if (!Array.isArray(row) || row.length !== D || D === 0 || D > MAX_SPARSE_DIMS || !row.every(isFiniteNumber))
        fail(`weights[${k}]`, `must be an array of ${D === 0 ? 'at least 1' : D} finite numbers`);
    });
    return D;
  }
  if (typeof value !== 'object' || value === null) return fail('weights', 'must be an array or an object {dims, indices, values}');
  const record = value as Record<string, unknown>;
  for (const field of Object.keys(record)) {
    if (field !== 'dims' && field !== 'indices' && field !== 'values') fail(`weights.${field}`, 'is not a field of sparse weights');
  }
  const D = record.dims;
  if (!(Number.isSafeInteger(D) && (D as number) >= 1 && (D as number) <= MAX_SPARSE_DIMS))
    return fail('weights.dims', `must be an integer from 1 to ${MAX_SPARSE_DIMS}`);
  const { indices, values } = record;
  if (!Array.isArray(indices)) return fail('weights.indices', 'must be an array');
  let previous = -1;
  indices.forEach((j: unknown, k) => {
    if (!(Number.isSafeInteger(j) && (j as number) > previous && (j as number) < (D as number)))
      fail(`weights.indices[${k}]`, `must be an integer above the previous index and below dims (${D as number})`);
    previous = j as number;
  });
  if (!Array.isArray(values) || values.length !== O * indices.length)
    return fail('weights.values', `must be an array of ${O * indices.length} numbers (${O} per index)`);
  values.forEach((w: unknown, k) => {
    if (!isFiniteNumber(w)) fail(`weights.values[${k}]`, 'must be a finite number');
  });
  return D as number;
}

/**
 * Weights laid out for lookup by feature index: O·D float64 index-major (w[j·O + o]) when that
 * is at most DENSE_TABLE_MAX values (128 MB), else the sorted stored indices searched by
 * bisection (D = 2^30 would need 8 GB dense). Either way a row costs O(nnz·O) (·log nz).
 */
export interface WeightTable {
  readonly outputs: number;
  readonly dims: number;
  /** O·D values, w[j·O + o], or null when the table is sparse. */
  readonly dense: Float64Array | null;
  /** The stored indices (sparse table), ascending. */
  readonly indices: Uint32Array;
  /** O values per stored index (sparse table). */
  readonly values: Float64Array;
}

const DENSE_TABLE_MAX = 2 ** 24;

/** The lookup table of stored weights with O outputs over D features (checked by checkSparseWeights). */
export function weightTable(weights: StoredWeights, O: number, D: number): WeightTable {
  if (!Array.isArray(weights)) {
    const indices = Uint32Array.from(weights.indices);
    const values = Float64Array.from(weights.values);
    if (O * D > DENSE_TABLE_MAX) return { outputs: O, dims: D, dense: null, indices, values };
    const dense = new Float64Array(O * D);
    for (let k = 0; k < indices.length; k++) dense.set(values.subarray(k * O, (k + 1) * O), indices[k]! * O);
    return { outputs: O, dims: D, dense, indices: new Uint32Array(0), values: new Float64Array(0) };
  }
  // A dense form holds at most MAX_SPARSE_DIMS·O numbers, all parsed already: transpose to index-major.
  const dense = new Float64Array(O * D);
  const rows = (O === 1 ? [weights] : weights) as number[][];
  rows.forEach((row, o) => {
    for (let j = 0; j < D; j++) dense[j * O + o] = row[j]!;
  });
  return { outputs: O, dims: D, dense, indices: new Uint32Array(0), values: new Float64Array(0) };
}

/**
 * The offset of feature j's O weights in `table.dense` or `table.values`, or −1 when j holds no
 * stored weight (all zero). j < D.
 */
export function lookUpWeights(table: WeightTable, j: number): number {
  if (table.dense !== null) return j * table.outputs;
  const { indices } = table;
  let low = 0;
  let high = indices.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const at = indices[middle]!;
    if (at === j) return middle * table.outputs;
    if (at < j) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

// Sparse rows (issue #13): the shapes that the sparse data files, the sparse kernels, the sparse
// reduction and the replicated parameters share. Types only: each concern has its own file
// (sparse-dataset.ts reads and writes them, sparse-kernel.ts computes over them,
// sparse-reduce.ts adds parts along the reduction tree).

import type { LabelArray } from './model-kernel.js';

/**
 * Rows in CSR form, as a worker holds them. Row i's entries are [rowStart[i], rowStart[i + 1]):
 * 0-based feature indices, strictly increasing within a row, each with a non-zero value (a
 * stored entry is never 0: conversions drop zeros, so "touched" depends on the data alone).
 */
export interface SparseRows {
  readonly rows: number;
  /** D: features (the largest LIBSVM index, or 2^B hash buckets). */
  readonly dims: number;
  /** rows + 1 offsets into indices/values; rowStart[0] = 0. */
  readonly rowStart: Uint32Array;
  readonly indices: Uint32Array;
  readonly values: Float32Array;
  /** 0/1 bytes (logistic) or uint16 class indices (softmax), as a dense .dpt stores them. */
  readonly labels: LabelArray;
}

/**
 * A gradient part over sparse rows: only the coordinates some row of the part touched.
 * indices are sorted ascending and distinct; values holds O numbers per index (coordinate
 * indices[k], output o at k·O + o; O = 1 for logistic, K for softmax), in float64.
 */
export interface SparsePart {
  readonly indices: Uint32Array;
  readonly values: Float64Array;
  /** O bias gradient sums. */
  readonly bias: Float64Array;
  /** The part's loss sum. */
  readonly loss: number;
}

/**
 * The parameters as replicas hold them: w = scale · v (O×D, row-major as in model-shape.ts), so
 * an L2 decay of every weight is one multiplication of `scale` (O(1) per step), and a step
 * changes only the touched coordinates of v. bias is O numbers, never scaled.
 */
export interface SparseParams {
  readonly v: Float64Array;
  scale: number;
  readonly bias: Float64Array;
}

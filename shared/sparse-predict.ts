// Prediction over sparse rows (issue #13): the scores of a model over sparse inputs for one row
// given as (index, value) entries, in O(nnz·O) per row, never a dense D-vector per row.
// Exports: SparseScorer, sparseScorer, scoreSparseRow, softmaxProbabilities.
//
// z_o = b_o + Σ_k w_o,j_k · x_k, the entries k in the row's order (ascending index), in float64:
// on the same row this is the same sum, in the same order, as the dense linearScore over a
// vector holding those entries (the skipped zeros add nothing), so both give the same bits.
// An entry whose index is D or more (a LIBSVM feature the training file never had) adds nothing:
// its weight is 0, as liblinear-predict treats such features.

import { exp as fdlibmExp } from './fdlibm.js';
import { isSparseModel, type ModelFile, modelDims, type SparseModelFile } from './model-file.js';
import { lookUpWeights, type WeightTable, weightTable } from './sparse-weights.js';

export interface SparseScorer {
  /** O: 1 (logistic) or K (softmax). */
  readonly outputs: number;
  /** D: entries with an index ≥ D are ignored. */
  readonly dims: number;
  readonly table: WeightTable;
  /** O biases. */
  readonly bias: Float64Array;
}

/** The scorer of a model over sparse inputs (or of a dense-input model, its features taken as indices 0…D−1). */
export function sparseScorer(model: SparseModelFile | ModelFile): SparseScorer {
  const O = model.kind === 'logistic-regression' ? 1 : model.classes.length;
  const D = modelDims(model);
  const bias = model.kind === 'logistic-regression' ? Float64Array.of(model.bias) : Float64Array.from(model.bias);
  if (!isSparseModel(model) && model.standardization !== null) throw new Error('invariant broken: a standardized model scored over sparse rows');
  return { outputs: O, dims: D, table: weightTable(model.weights, O, D), bias };
}

/**
 * Writes row's O scores to z[0..O): entries indices[from..to) / values[from..to) (ascending
 * indices, as LIBSVM lines and hashed rows are). Allocates nothing.
 */
export function scoreSparseRow(scorer: SparseScorer, indices: ArrayLike<number>, values: ArrayLike<number>, from: number, to: number, z: Float64Array): void {
  const { outputs: O, dims: D, table, bias } = scorer;
  const w = table.dense ?? table.values;
  z.set(bias);
  for (let k = from; k < to; k++) {
    const j = indices[k]!;
    if (j >= D) continue;
    const at = lookUpWeights(table, j);
    if (at < 0) continue; // no stored weight: all O are 0
    const x = values[k]!;
    for (let o = 0; o < O; o++) z[o]! += w[at + o]! * x;
  }
}

/**
 * softmax(z) into p (K values) as predictSoftmax computes it (p_k = e^(z_k − m) / Σ e^(z_j − m),
 * fdlibm's exp), and the class argmax z, the lowest index among ties.
 */
export function softmaxProbabilities(z: Float64Array, K: number, p: Float64Array): number {
  let m = 0;
  let a = 0;
  for (let k = 0; k < K; k++) {
    if (k === 0 || z[k]! > m) {
      m = z[k]!;
      a = k;
    }
  }
  let S = 0;
  for (let k = 0; k < K; k++) {
    const e = fdlibmExp(z[k]! - m);
    p[k] = e;
    S += e;
  }
  for (let k = 0; k < K; k++) p[k] = p[k]! / S;
  return a;
}

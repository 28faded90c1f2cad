// The library's model use (issue #14 item 8): load a model file and predict rows held in memory,
// logistic or softmax, with the same arithmetic as `dpt predict` (features rounded to float32 and
// standardized in float32 as in training), so both give the same probabilities, bit for bit.
// Models over sparse inputs (issue #13): a hashed model takes records keyed by column name (cells
// as strings or numbers, hashed by the model's record), a LIBSVM model takes {indices, values}
// rows (0-based feature indices, increasing); each row costs O(nnz).

import { ConfigError } from '../shared/errors.js';
import { createRowHasher } from '../shared/feature-hashing.js';
import { linearScore, predictClass, sigmoid } from '../shared/model.js';
import { isSparseModel, type ModelFile, type ModelHashing, readModelFile, type SparseModelFile, softmaxTheta } from '../shared/model-file.js';
import { predictSoftmax } from '../shared/softmax.js';
import { scoreSparseRow, softmaxProbabilities, sparseScorer } from '../shared/sparse-predict.js';
import { applyStandardization } from '../shared/standardize.js';

/**
 * Reads and checks a model file written by train (outPath) or `dpt train --out`. Throws
 * ModelFileError (DPT_MODEL_FILE) naming the path and the first bad field.
 */
export function loadModel(path: string): ModelFile | SparseModelFile {
  return readModelFile(path);
}

/** The class labels of a model, in the order of Prediction.probabilities: [0, 1] for a logistic model. */
export function modelLabels(model: ModelFile | SparseModelFile): readonly (number | string)[] {
  return model.kind === 'logistic-regression' ? [0, 1] : model.classes;
}

/** One row's prediction. */
export interface Prediction {
  /** The predicted class: 1 iff w·x + b > 0 (logistic), else the class of the largest score (softmax; the first among ties). */
  readonly label: number | string;
  /** The probability of each class of modelLabels(model), in that order; they sum to 1 (within rounding). */
  readonly probabilities: readonly number[];
}

/** A row: the raw feature values in the order of model.features, or an object keyed by feature name. */
export type FeatureRow = ArrayLike<number> | Readonly<Record<string, number>>;

/** A row of a hashed model: the cells of the model's hashed columns by name (a label cell is not needed). */
export type HashedRow = Readonly<Record<string, string | number>>;

/** A row of a LIBSVM model: its non-zero features, 0-based indices (LIBSVM index j is j − 1), increasing. */
export interface SparseRow {
  readonly indices: ArrayLike<number>;
  readonly values: ArrayLike<number>;
}

/**
 * Predicts each row with `model` (raw features: the model's standardization is applied here).
 * Throws ConfigError naming the row (0-based) and the feature when a row has the wrong length,
 * lacks a feature or holds a value that is not a finite number. Rows of a sparse-input model:
 * HashedRow (hashed model) or SparseRow (LIBSVM model); an index ≥ D adds nothing.
 */
export function predict(model: ModelFile | SparseModelFile, rows: readonly (FeatureRow | HashedRow | SparseRow)[]): Prediction[] {
  if (isSparseModel(model)) return predictSparse(model, rows);
  return predictDense(model, rows as readonly FeatureRow[]); // a dense model's rows are FeatureRows (checked row by row)
}

function predictDense(model: ModelFile, rows: readonly FeatureRow[]): Prediction[] {
  const D = model.features.length;
  const x = new Float32Array(rows.length * D);
  rows.forEach((row, i) => {
    fillRow(model, row, i, x, i * D);
  });
  if (model.standardization !== null) {
    applyStandardization(x, D, { mean: Float64Array.from(model.standardization.mean), std: Float64Array.from(model.standardization.std) });
  }
  if (model.kind === 'logistic-regression') {
    const w = Float64Array.from(model.weights);
    return rows.map((_, i) => {
      const z = linearScore(x, D, i, w, model.bias);
      // σ(−z) for class 0, not 1 − σ(z): no cancellation when σ(z) is close to 1.
      return { label: predictClass(z), probabilities: [sigmoid(-z), sigmoid(z)] };
    });
  }
  const K = model.classes.length;
  const theta = softmaxTheta(model);
  const p = new Float64Array(K);
  return rows.map((_, i) => {
    const k = predictSoftmax(theta, K, D, x, i * D, p);
    return { label: model.classes[k]!, probabilities: Array.from(p) }; // k < K
  });
}

/** Writes row `index`'s D features, in the model's order, to x[base ..]. */
function fillRow(model: ModelFile, row: FeatureRow, index: number, x: Float32Array, base: number): void {
  const D = model.features.length;
  const isArray = Array.isArray(row) || ArrayBuffer.isView(row);
  if (isArray && (row as ArrayLike<number>).length !== D) {
    throw new ConfigError(`predict: row ${index} has ${(row as ArrayLike<number>).length} values; the model has ${D} features (${model.features.join(', ')})`);
  }
  for (let j = 0; j < D; j++) {
    const name = model.features[j]!; // j < D
    const value: unknown = isArray ? (row as ArrayLike<number>)[j] : (row as Readonly<Record<string, number>>)[name];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      const what = value === undefined ? 'is missing' : `is ${String(value)}, not a finite number`;
      throw new ConfigError(`predict: row ${index}, feature '${name}' ${what}`);
    }
    x[base + j] = value;
  }
}

function predictSparse(model: SparseModelFile, rows: readonly unknown[]): Prediction[] {
  const scorer = sparseScorer(model);
  const z = new Float64Array(scorer.outputs);
  const rowOf = model.input === 'hashed-csv' ? hashedRows(model.hashing!) : libsvmRows();
  return rows.map((row, i) => {
    const { indices, values, count } = rowOf(row, i);
    scoreSparseRow(scorer, indices, values, 0, count, z);
    if (model.kind === 'logistic-regression') return { label: predictClass(z[0]!), probabilities: [sigmoid(-z[0]!), sigmoid(z[0]!)] };
    const p = new Float64Array(scorer.outputs);
    const k = softmaxProbabilities(z, scorer.outputs, p);
    return { label: model.classes[k]!, probabilities: Array.from(p) }; // k < K
  });
}

type RowEntries = (row: unknown, index: number) => { indices: ArrayLike<number>; values: ArrayLike<number>; count: number };

/** Hashes records keyed by column name with the model's hashing (the cells in `columns` order, as a CSV header would give them). */
function hashedRows(hashing: ModelHashing): RowEntries {
  const hasher = createRowHasher(hashing, hashing.columns, 'predict', 0);
  const fields: string[] = new Array(hashing.columns.length);
  return (row, index) => {
    if (typeof row !== 'object' || row === null || Array.isArray(row))
      throw new ConfigError(`predict: row ${index} must be an object of the columns ${hashing.columns.join(', ')}`);
    hashing.columns.forEach((name, c) => {
      const cell: unknown = (row as Record<string, unknown>)[name];
      if (typeof cell === 'number' ? !Number.isFinite(cell) : typeof cell !== 'string')
        throw new ConfigError(`predict: row ${index}, column '${name}' ${cell === undefined ? 'is missing' : 'must be a string or a finite number'}`);
      fields[c] = String(cell);
    });
    try {
      return { indices: hasher.indices, values: hasher.values, count: hasher.hashRow(fields, index + 1) };
    } catch (error) {
      throw new ConfigError(`predict: row ${index}: ${(error as Error).message}`, { cause: error });
    }
  };
}

/** Checks {indices, values} rows: as many values as indices, indices increasing non-negative integers, values finite. */
function libsvmRows(): RowEntries {
  return (row, index) => {
    const { indices, values } = (row ?? {}) as Partial<SparseRow>;
    if (indices === undefined || values === undefined || typeof indices.length !== 'number' || indices.length !== values.length)
      throw new ConfigError(`predict: row ${index} must be {indices, values} of equal length (a LIBSVM model's row)`);
    let previous = -1;
    for (let k = 0; k < indices.length; k++) {
      const j = indices[k];
      if (!(Number.isSafeInteger(j) && j! > previous))
        throw new ConfigError(`predict: row ${index}, indices[${k}] must be an integer above the previous index (and ≥ 0)`);
      if (!Number.isFinite(values[k])) throw new ConfigError(`predict: row ${index}, values[${k}] must be a finite number`);
      previous = j!;
    }
    return { indices, values, count: indices.length };
  };
}

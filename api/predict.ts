// The library's model use (issue #14 item 8): load a model file and predict rows held in memory,
// logistic or softmax, with the same arithmetic as `dpt predict` (features rounded to float32 and
// standardized in float32 as in training), so both give the same probabilities, bit for bit.

import { ConfigError } from '../shared/errors.js';
import { linearScore, predictClass, sigmoid } from '../shared/model.js';
import { isSparseModel, type ModelFile, readModelFile, softmaxTheta } from '../shared/model-file.js';
import { predictSoftmax } from '../shared/softmax.js';
import { applyStandardization } from '../shared/standardize.js';

/**
 * Reads and checks a model file written by train (outPath) or `dpt train --out`. Throws
 * ModelFileError (DPT_MODEL_FILE) naming the path and the first bad field.
 */
export function loadModel(path: string): ModelFile {
  const model = readModelFile(path);
  if (isSparseModel(model)) throw new ConfigError(`${path}: predict over sparse inputs is not implemented yet`);
  return model;
}

/** The class labels of a model, in the order of Prediction.probabilities: [0, 1] for a logistic model. */
export function modelLabels(model: ModelFile): readonly (number | string)[] {
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

/**
 * Predicts each row with `model` (raw features: the model's standardization is applied here).
 * Throws ConfigError naming the row (0-based) and the feature when a row has the wrong length,
 * lacks a feature or holds a value that is not a finite number.
 */
export function predict(model: ModelFile, rows: readonly FeatureRow[]): Prediction[] {
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

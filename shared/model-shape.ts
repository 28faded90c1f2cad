// The model's shape (DESIGN.md, "The model is a shape"): its parameters as one flat Float64Array
// with a layout, the decay mask the optimizers read, and the width of a gradient part derived
// from it. Not the math (model.ts, softmax.ts) nor the optimizer.
//
// A linear model with O outputs over D features (binary logistic regression: O = 1; softmax
// regression over K classes: O = K):
//   parameters  [W_00 … W_0(D−1), …, W_(O−1)(D−1), b_0 … b_(O−1)]   O·D + O values: W row-major (row o = output o), then b
//   decay mask  [1 … 1, 0 … 0]                                       L2 / weight decay on the weights, never the biases
//   part        [Σ∂L/∂θ_0 … Σ∂L/∂θ_(O·D+O−1), ΣL]                   O·D + O + 1 values: a gradient sum per parameter, then the loss sum
// For O = 1 this is [w_0 … w_{D−1}, b] and a part of D + 2 values, exactly the binary layout
// every earlier version used (its kernel, part and model file are unchanged).

export type ModelKind = 'logistic' | 'softmax';

export interface ModelShape {
  readonly kind: ModelKind;
  /** D, features per row. */
  readonly features: number;
  /** Classes the model tells apart: 2 for logistic, K for softmax. */
  readonly classes: number;
  /** Rows of W (and entries of b): 1 for logistic, K for softmax. */
  readonly outputs: number;
  /** Values in the flat parameter vector (O·D + O). */
  readonly parameterCount: number;
  /** Index of the first bias in the parameter vector (O·D): the weights are [0, O·D). */
  readonly biasIndex: number;
  /** 1 where weight decay applies (weights), 0 where it never does (the biases); do not write. */
  readonly isDecayed: Uint8Array;
  /** Values of a gradient part: the gradient sums (parameterCount) then the loss sum. */
  readonly partWidth: number;
  /** Index of the loss sum in a part (parameterCount). */
  readonly lossIndex: number;
}

function linearShape(kind: ModelKind, D: number, classes: number, outputs: number): ModelShape {
  if (!Number.isSafeInteger(D) || D < 1) throw new Error(`invariant broken: ${D} features`);
  const parameterCount = outputs * D + outputs;
  if (!Number.isSafeInteger(parameterCount) || parameterCount > 2 ** 31) throw new Error(`invariant broken: ${outputs}×${D} parameters`);
  const biasIndex = outputs * D;
  const isDecayed = new Uint8Array(parameterCount);
  isDecayed.fill(1, 0, biasIndex);
  return Object.freeze({ kind, features: D, classes, outputs, parameterCount, biasIndex, isDecayed, partWidth: parameterCount + 1, lossIndex: parameterCount });
}

/** The shape of binary logistic regression over D features. */
export function logisticShape(D: number): ModelShape {
  return linearShape('logistic', D, 2, 1);
}

/** The shape of softmax regression over K ≥ 2 classes and D features. */
export function softmaxShape(K: number, D: number): ModelShape {
  if (!Number.isSafeInteger(K) || K < 2) throw new Error(`invariant broken: softmax over ${K} classes`);
  return linearShape('softmax', D, K, K);
}

/** The shape of a model kind over `classes` classes and D features. */
export function shapeOf(kind: ModelKind, classes: number, D: number): ModelShape {
  return kind === 'logistic' ? logisticShape(D) : softmaxShape(classes, D);
}

/** A zero parameter vector of the shape (the model every run starts from). */
export function zeroParameters(shape: ModelShape): Float64Array {
  return new Float64Array(shape.parameterCount);
}

/** The weights W (row-major) as a view into params (no copy: writes to params show through). */
export function weightsView(shape: ModelShape, params: Float64Array): Float64Array {
  return params.subarray(0, shape.biasIndex);
}

/** The parameter vector of a binary model given as w (D values) and b. */
export function packParameters(shape: ModelShape, w: ArrayLike<number>, b: number): Float64Array {
  if (shape.outputs !== 1 || w.length !== shape.features)
    throw new Error(`invariant broken: ${w.length} weights and one bias for a ${shape.outputs}×${shape.features} shape`);
  const params = zeroParameters(shape);
  params.set(w, 0);
  params[shape.biasIndex] = b;
  return params;
}

/**
 * The largest |z_o| the parameters can give on rows whose |x_j| ≤ maxAbs[j]: max over outputs of
 * |b_o| + Σ_j |W_oj|·maxAbs[j] (NaN when a parameter is NaN). The trainer's divergence bound.
 */
export function scoreBound(shape: ModelShape, params: Float64Array, maxAbs: Float64Array): number {
  const D = shape.features;
  let bound = 0;
  for (let o = 0; o < shape.outputs; o++) {
    let sum = Math.abs(params[shape.biasIndex + o]!);
    const row = o * D;
    for (let j = 0; j < D; j++) sum += Math.abs(params[row + j]!) * maxAbs[j]!;
    if (Number.isNaN(sum)) return sum;
    if (sum > bound) bound = sum;
  }
  return bound;
}

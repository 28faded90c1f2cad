// The model's shape (DESIGN.md, "The model is a shape"): its parameters as one flat Float64Array
// with a layout, the decay mask the optimizers read, and the width of a gradient part derived
// from it. Only binary logistic regression today; not the math (model.ts) nor the optimizer.
//
// Binary logistic regression over D features:
//   parameters  [w_0 … w_{D−1}, b]                     D + 1 values
//   decay mask  [1 … 1, 0]                             L2 / weight decay on the weights, never the bias
//   part        [Σ∂L/∂w_0 … Σ∂L/∂w_{D−1}, Σ∂L/∂b, ΣL]  D + 2 values: a gradient sum per parameter, then the loss sum

export interface ModelShape {
  readonly kind: 'logistic';
  /** D, features per row. */
  readonly features: number;
  /** Values in the flat parameter vector (D + 1). */
  readonly parameterCount: number;
  /** Index of the bias in the parameter vector (D): the weights are [0, D). */
  readonly biasIndex: number;
  /** 1 where weight decay applies (weights), 0 where it never does (the bias); do not write. */
  readonly isDecayed: Uint8Array;
  /** Values of a gradient part: the gradient sums (parameterCount) then the loss sum. */
  readonly partWidth: number;
  /** Index of the loss sum in a part (parameterCount). */
  readonly lossIndex: number;
}

/** The shape of binary logistic regression over D features. */
export function logisticShape(D: number): ModelShape {
  if (!Number.isSafeInteger(D) || D < 1) throw new Error(`invariant broken: ${D} features`);
  const isDecayed = new Uint8Array(D + 1).fill(1);
  isDecayed[D] = 0;
  return Object.freeze({ kind: 'logistic', features: D, parameterCount: D + 1, biasIndex: D, isDecayed, partWidth: D + 2, lossIndex: D + 1 });
}

/** A zero parameter vector of the shape (the model every run starts from). */
export function zeroParameters(shape: ModelShape): Float64Array {
  return new Float64Array(shape.parameterCount);
}

/** The weights w as a view into params (no copy: writes to params show through). */
export function weightsView(shape: ModelShape, params: Float64Array): Float64Array {
  return params.subarray(0, shape.biasIndex);
}

/** The parameter vector of a model given as w (D values) and b. */
export function packParameters(shape: ModelShape, w: ArrayLike<number>, b: number): Float64Array {
  if (w.length !== shape.features) throw new Error(`invariant broken: ${w.length} weights for ${shape.features} features`);
  const params = zeroParameters(shape);
  params.set(w, 0);
  params[shape.biasIndex] = b;
  return params;
}

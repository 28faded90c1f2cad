// The model math of logistic regression, as pure functions on typed arrays (DESIGN.md, "The
// learning rule"). Nothing here allocates per row; callers own every buffer passed in.

/** a = σ(z) = 1 / (1 + e^(−z)), evaluated so that e^(·) never overflows: exp of −|z| only. */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/**
 * Per-row negative log-likelihood from z, in softplus form so that no log(0) can occur:
 * L = log(1 + e^(−|z|)) + max(z, 0) − y·z.
 */
export function logLoss(z: number, y: number): number {
  return Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - y * z;
}

/** z = w·x + b for row `row` of the row-major matrix x (rows × D). */
export function linearScore(x: Float32Array, D: number, row: number, w: Float64Array, b: number): number {
  const base = row * D;
  let z = b;
  for (let j = 0; j < D; j++) z += w[j]! * x[base + j]!;
  return z;
}

/** Class 1 iff z > 0 (the same as σ(z) > 0.5). */
export function predictClass(z: number): 0 | 1 {
  return z > 0 ? 1 : 0;
}

/**
 * The gradient kernel: adds the sums over rows of ∂L/∂w_j = (a − y)·x_j and ∂L/∂b = a − y to
 * `out[offset .. offset+D]` (weights) and `out[offset+D]` (bias), and returns the sum of L.
 * The rows are `order[from..to)` when `order` is given, else the contiguous rows `from..to)`;
 * each row's D features are contiguous in x (row-major, float32), accumulation is float64 in
 * row order, so the same rows always give the same bits.
 * With `classWeights` (c_0, c_1: --class-weight, issue #12) a row's residual and loss are each
 * multiplied by c_y once formed: r = (a − y)·c_y, L·c_y. Without, c_y = 1, and x·1 = x exactly
 * in IEEE 754: the bits of the unweighted kernel.
 */
export function accumulateGradient(
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
  classWeights: Float64Array | null = null,
): number {
  let lossSum = 0;
  let biasSum = 0;
  for (let i = from; i < to; i++) {
    const row = order === null ? i : order[i]!;
    const base = row * D;
    let z = b;
    for (let j = 0; j < D; j++) z += w[j]! * x[base + j]!;
    const label = y[row]!;
    const c = classWeights === null ? 1 : classWeights[label]!;
    const residual = (sigmoid(z) - label) * c; // (a − y)·c_y
    for (let j = 0; j < D; j++) out[offset + j]! += residual * x[base + j]!;
    biasSum += residual;
    lossSum += logLoss(z, label) * c;
  }
  out[offset + D]! += biasSum;
  return lossSum;
}

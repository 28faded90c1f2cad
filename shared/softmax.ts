// The model math of softmax regression over K classes (issue #12), as pure functions on typed
// arrays: the parameter layout, the gradient kernel in its fixed operation order (the TypeScript
// twin of shared/softmax-kernel-wasm.ts), the evaluation pass, and prediction.
//
// Parameters θ: one flat float64 vector, W (K×D, row k = class k, row-major) then b (K):
//   θ[k·D + j] = W_kj, θ[K·D + k] = b_k.
// A part (the partial sums a worker reports for its rows): the gradient sums in θ's layout, then
// the loss sum: width K·D + K + 1 (the softmax analogue of the binary part's D + 2).
//
// Per row, with x the row (float32, widened exactly), y its class, in exactly this order:
//   1. z_k = b_k + (s0 + s1) + Σ_{D4 ≤ j < D} W_kj·x_j   for k = 0..K−1, where D4 = D − D mod 4,
//      s0 = Σ W_kj·x_j over even j < D4 and s1 over odd j < D4, each summed from 0 in increasing
//      j, and the tail added to z_k one j at a time in increasing j.
//   2. m = max z, a = its lowest index: m = z_0, then z_k > m replaces it, k = 1..K−1.
//   3. e_k = exp(z_k − m) (≤ 1, never overflows; e_a = 1); T = Σ_{k ≠ a} e_k, from 0, k ascending.
//   4. S = 1 + T; p_k = e_k / S.
//   5. L = log1p(T) + (m − z_y)   (= log Σ e^(z_k) − z_y = −log p_y, never a log of a rounded p;
//      T rather than S keeps the loss exact when p_y ≈ 1: the binary kernel's log1p(e^(−|z|))).
//   6. g_k = p_k − 1 if k = y, else p_k.
//   With class weights (--class-weight, issue #12), g_k·c_y and L·c_y, each one multiply after the
//   unweighted value is formed; without, c_y = 1, and x·1 = x exactly: the unweighted bits.
//   7. out[k·D + j] += g_k·x_j (k ascending, j ascending), then out[K·D + k] += g_k; so each part
//      entry receives one addition per row, rows in order.
// Over a range: Λ = Σ L from 0 in row order, then out[K·D + K] += Λ (and Λ is returned).
// Every operation is one IEEE-754 float64 operation (no FMA), and exp and log1p are the fdlibm
// ports of shared/fdlibm.ts by default, the wasm kernels' own functions: so this function gives
// the bits of the wasm kernel (shared/softmax-kernel-wasm.ts) on every Node.js version (tested).
// With JS_MATH (Math.exp, Math.log1p) the bits may differ between Node.js versions.

import { exp as fdlibmExp, log1p as fdlibmLog1p } from './fdlibm.js';

/** The two transcendental functions of the kernel. */
export interface SoftmaxMath {
  readonly exp: (x: number) => number;
  readonly log1p: (x: number) => number;
}

/** The wasm kernels' exp and log1p, ported: the same bits everywhere (the default). */
export const FDLIBM_MATH: SoftmaxMath = { exp: fdlibmExp, log1p: fdlibmLog1p };

/** JavaScript's own exp and log1p: exact to < 1 ulp, but not the same bits on every Node.js version. */
export const JS_MATH: SoftmaxMath = { exp: Math.exp, log1p: Math.log1p };

/** The length of θ: K·D weights, then K biases. */
export function softmaxParameterCount(K: number, D: number): number {
  return K * D + K;
}

/** The width of a softmax part: the gradient sums in θ's layout, then the loss sum. */
export function softmaxPartWidth(K: number, D: number): number {
  return K * D + K + 1;
}

/**
 * Steps 1 and 2 for the row at x[base .. base + D): z_k into scratch[k] (b_k + (s0 + s1), then the
 * tail j ≥ D − D mod 4 in increasing j), and the lowest index of the largest z, which it returns.
 */
function scoresInto(theta: Float64Array, x: Float32Array, base: number, D: number, K: number, scratch: Float64Array): number {
  const D4 = D - (D % 4);
  const biasAt = K * D;
  let m = 0;
  let a = 0;
  for (let k = 0; k < K; k++) {
    const wk = k * D;
    let s0 = 0;
    let s1 = 0;
    for (let j = 0; j < D4; j += 2) {
      s0 += theta[wk + j]! * x[base + j]!;
      s1 += theta[wk + j + 1]! * x[base + j + 1]!;
    }
    let z = theta[biasAt + k]! + (s0 + s1);
    for (let j = D4; j < D; j++) z += theta[wk + j]! * x[base + j]!;
    scratch[k] = z;
    if (k === 0 || z > m) {
      m = z;
      a = k;
    }
  }
  return a;
}

/**
 * The gradient kernel in the order above: adds the gradient sums over rows [from, to) (or rows
 * order[from..to)) to out[offset .. offset + K·D + K) and their loss sum to out[offset + K·D + K];
 * returns the loss sum. y holds class indices < K (not checked here: checked when the rows are
 * read); `scratch` holds at least K float64 (caller-owned, so no row allocates). `classWeights`
 * (K values c_k, or null for none) weighs each row's gradient and loss by c_y.
 */
export function accumulateSoftmax(
  x: Float32Array,
  y: Uint16Array,
  D: number,
  K: number,
  order: Uint32Array | null,
  from: number,
  to: number,
  theta: Float64Array,
  out: Float64Array,
  offset: number,
  scratch: Float64Array,
  math: SoftmaxMath = FDLIBM_MATH,
  classWeights: Float64Array | null = null,
): number {
  const { exp, log1p } = math;
  const biasAt = K * D;
  let lossSum = 0;
  for (let i = from; i < to; i++) {
    const row = order === null ? i : order[i]!;
    const base = row * D;
    const label = y[row]!;
    const c = classWeights === null ? 1 : classWeights[label]!;
    // 1. z_k, kept in scratch[k]; 2. m and its lowest index a.
    const a = scoresInto(theta, x, base, D, K, scratch);
    const m = scratch[a]!;
    const zy = scratch[label]!;
    // 3. e_k over z_k, and T without the max's own e_a = 1.
    let T = 0;
    for (let k = 0; k < K; k++) {
      const e = exp(scratch[k]! - m);
      scratch[k] = e;
      if (k !== a) T += e;
    }
    const S = 1 + T;
    lossSum += (log1p(T) + (m - zy)) * c; // 5., weighted by c_y
    // 6, 7. g_k = p_k − [k = y] into W's row k and b_k.
    for (let k = 0; k < K; k++) {
      const p = scratch[k]! / S;
      const g = (k === label ? p - 1 : p) * c;
      const at = offset + k * D;
      for (let j = 0; j < D; j++) out[at + j]! += g * x[base + j]!;
      out[offset + biasAt + k]! += g;
    }
  }
  out[offset + biasAt + K]! += lossSum;
  return lossSum;
}

/**
 * Prediction for one row x[base .. base + D): fills probabilities[0..K) with softmax(z), computed
 * stably (p_k = e^(z_k − m) / Σ e^(z_j − m), m = max z, z summed in j order), and returns the class argmax z, the
 * lowest index among ties (so the class never depends on rounding in the probabilities).
 */
export function predictSoftmax(theta: Float64Array, K: number, D: number, x: Float32Array, base: number, probabilities: Float64Array): number {
  let m = 0;
  let a = 0;
  for (let k = 0; k < K; k++) {
    let z = theta[K * D + k]!;
    for (let j = 0; j < D; j++) z += theta[k * D + j]! * x[base + j]!;
    probabilities[k] = z;
    if (k === 0 || z > m) {
      m = z;
      a = k;
    }
  }
  let S = 0;
  for (let k = 0; k < K; k++) {
    const e = fdlibmExp(probabilities[k]! - m); // not Math.exp: the same probabilities on every Node.js version
    probabilities[k] = e;
    S += e;
  }
  for (let k = 0; k < K; k++) probabilities[k] = probabilities[k]! / S;
  return a;
}

/**
 * The evaluation pass of softmax regression: adds each row's loss −log p_y (as step 5 of the
 * kernel: log1p(T) + (m − z_y), with z in the kernel's order) to out[offset] and 1 to
 * out[offset + 1] when the predicted class (argmax z, lowest index among ties) is y, row by row
 * in order, like the binary accumulateEval (shared/passes.ts). `scratch` holds at least K float64.
 */
export function accumulateSoftmaxEval(
  x: Float32Array,
  y: Uint16Array,
  D: number,
  K: number,
  order: Uint32Array | null,
  from: number,
  to: number,
  theta: Float64Array,
  out: Float64Array,
  offset: number,
  scratch: Float64Array,
): void {
  for (let i = from; i < to; i++) {
    const row = order === null ? i : order[i]!;
    const base = row * D;
    const label = y[row]!;
    const a = scoresInto(theta, x, base, D, K, scratch);
    const m = scratch[a]!;
    let T = 0;
    for (let k = 0; k < K; k++) if (k !== a) T += fdlibmExp(scratch[k]! - m);
    out[offset]! += fdlibmLog1p(T) + (m - scratch[label]!);
    if (a === label) out[offset + 1]! += 1;
  }
}

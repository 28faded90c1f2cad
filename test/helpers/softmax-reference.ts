// A plain-loop float64 reference for softmax regression, written from the formulas of issue #12
// and independently of shared/softmax.ts (other summation order, Math.exp and Math.log, log-sum-exp
// over all classes): the oracle the kernels are compared with, within a tolerance.
//   z = W x + b;  lse = m + log Σ_k e^(z_k − m), m = max z;  p_k = e^(z_k − m) / Σ_j e^(z_j − m)
//   L = lse − z_y;  G += (p − onehot(y)) xᵀ;  g_b += p − onehot(y)

export interface SoftmaxReference {
  /** Gradient sums in θ's layout (K·D weights, K biases), then the loss sum: K·D + K + 1. */
  readonly part: Float64Array;
  /** Σ over rows of |each term| of each entry: the size that rounding errors are relative to. */
  readonly scale: Float64Array;
}

export function softmaxReference(x: Float32Array, y: Uint16Array, D: number, K: number, rows: readonly number[], theta: Float64Array): SoftmaxReference {
  const part = new Float64Array(K * D + K + 1);
  const scale = new Float64Array(K * D + K + 1);
  for (const row of rows) {
    const xs = Array.from({ length: D }, (_, j) => x[row * D + j] as number);
    const z = Array.from({ length: K }, (_, k) => {
      let sum = theta[K * D + k] as number;
      for (let j = 0; j < D; j++) sum += (theta[k * D + j] as number) * (xs[j] as number);
      return sum;
    });
    const m = Math.max(...z);
    const exps = z.map((zk) => Math.exp(zk - m));
    const total = exps.reduce((sum, e) => sum + e, 0);
    const lse = m + Math.log(total);
    const label = y[row] as number;
    for (let k = 0; k < K; k++) {
      const g = (exps[k] as number) / total - (k === label ? 1 : 0);
      for (let j = 0; j < D; j++) {
        part[k * D + j] = (part[k * D + j] as number) + g * (xs[j] as number);
        scale[k * D + j] = (scale[k * D + j] as number) + Math.abs(g * (xs[j] as number));
      }
      part[K * D + k] = (part[K * D + k] as number) + g;
      scale[K * D + k] = (scale[K * D + k] as number) + Math.abs(g);
    }
    part[K * D + K] = (part[K * D + K] as number) + (lse - (z[label] as number));
    // lse − z_y cancels: its error is relative to |lse| + |z_y|, not to the (small) loss.
    scale[K * D + K] = (scale[K * D + K] as number) + Math.abs(lse) + Math.abs(z[label] as number);
  }
  return { part, scale };
}

// An independent plain-loop float64 trainer of binary logistic regression with sklearn's
// "balanced" class weights (issue #12), written from the formulas and sharing no code with dpt:
//   c_k = n / (K·n_k) over the training rows (K = 2; a class without rows weighs 0);
//   per batch of n rows: g_w = (1/n) Σ c_y (σ(z) − y) x, g_b = (1/n) Σ c_y (σ(z) − y),
//   loss = (1/n) Σ c_y · −[y log σ(z) + (1 − y) log(1 − σ(z))];
//   w ← w − η (g_w + λ w), b ← b − η g_b (plain SGD, L2 never on the bias), rows in file order.

export interface WeightedReference {
  readonly w: number[];
  readonly b: number;
  /** c_0, c_1. */
  readonly classWeights: number[];
  /** The weighted mean loss of each step's batch, before its update. */
  readonly losses: number[];
}

/** sklearn's balanced weights of labels Y over K classes: n / (K·n_k). */
export function referenceBalancedWeights(Y: readonly number[], K: number): number[] {
  const counts = new Array<number>(K).fill(0);
  for (const y of Y) counts[y] = (counts[y] as number) + 1;
  return counts.map((count) => (count === 0 ? 0 : Y.length / (K * count)));
}

export function referenceTrainBalanced(X: number[][], Y: number[], options: { epochs: number; batchSize: number; lr: number; l2: number }): WeightedReference {
  const D = X[0]?.length ?? 0;
  const c = referenceBalancedWeights(Y, 2);
  const w = new Array<number>(D).fill(0);
  let b = 0;
  const losses: number[] = [];
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    for (let start = 0; start < X.length; start += options.batchSize) {
      const end = Math.min(start + options.batchSize, X.length);
      const gw = new Array<number>(D).fill(0);
      let gb = 0;
      let loss = 0;
      for (let i = start; i < end; i++) {
        const x = X[i] as number[];
        const y = Y[i] as number;
        const weight = c[y] as number;
        let z = b;
        for (let j = 0; j < D; j++) z += (w[j] as number) * (x[j] as number);
        const a = 1 / (1 + Math.exp(-z));
        loss += weight * -(y * Math.log(a) + (1 - y) * Math.log(1 - a));
        for (let j = 0; j < D; j++) gw[j] = (gw[j] as number) + weight * (a - y) * (x[j] as number);
        gb += weight * (a - y);
      }
      const n = end - start; // the batch's rows, not the sum of their weights
      for (let j = 0; j < D; j++) w[j] = (w[j] as number) - options.lr * ((gw[j] as number) / n + options.l2 * (w[j] as number));
      b -= options.lr * (gb / n);
      losses.push(loss / n);
    }
  }
  return { w, b, classWeights: c, losses };
}

/**
 * Softmax regression over K classes with balanced weights, plain SGD, in the same plain-loop style:
 * per row G += c_y (p − onehot(y)) xᵀ, g_b += c_y (p − onehot(y)) (p by log-sum-exp with Math.exp);
 * W ← W − η(G/n + λW), b ← b − η g_b/n, n the batch's rows. Returns W (K rows of D) and b (K).
 */
export function referenceTrainBalancedSoftmax(
  X: number[][],
  Y: number[],
  K: number,
  options: { epochs: number; batchSize: number; lr: number; l2: number },
): { W: number[][]; b: number[]; classWeights: number[] } {
  const D = X[0]?.length ?? 0;
  const c = referenceBalancedWeights(Y, K);
  const W = Array.from({ length: K }, () => new Array<number>(D).fill(0));
  const b = new Array<number>(K).fill(0);
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    for (let start = 0; start < X.length; start += options.batchSize) {
      const end = Math.min(start + options.batchSize, X.length);
      const gW = Array.from({ length: K }, () => new Array<number>(D).fill(0));
      const gb = new Array<number>(K).fill(0);
      for (let r = start; r < end; r++) {
        const x = X[r] as number[];
        const y = Y[r] as number;
        const z = b.map((bk, k) => (W[k] as number[]).reduce((sum, wkj, j) => sum + wkj * (x[j] as number), bk));
        const m = Math.max(...z);
        const total = z.reduce((sum, zk) => sum + Math.exp(zk - m), 0);
        for (let k = 0; k < K; k++) {
          const g = (c[y] as number) * (Math.exp((z[k] as number) - m) / total - (k === y ? 1 : 0));
          for (let j = 0; j < D; j++) (gW[k] as number[])[j] = ((gW[k] as number[])[j] as number) + g * (x[j] as number);
          gb[k] = (gb[k] as number) + g;
        }
      }
      const n = end - start;
      for (let k = 0; k < K; k++) {
        const row = W[k] as number[];
        for (let j = 0; j < D; j++) row[j] = (row[j] as number) - options.lr * (((gW[k] as number[])[j] as number) / n + options.l2 * (row[j] as number));
        b[k] = (b[k] as number) - options.lr * ((gb[k] as number) / n);
      }
    }
  }
  return { W, b, classWeights: c };
}

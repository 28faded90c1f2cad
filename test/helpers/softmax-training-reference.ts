// An independent plain-loop float64 trainer for softmax regression (issue #12), written from the
// issue's formulas and torch.optim's documented SGD and Adam, sharing no code with the project:
// z = W x + b, p = softmax(z) via log-sum-exp with Math.exp/Math.log, per row G += (p − onehot(y)) xᵀ,
// g_b += p − onehot(y); the batch mean over n rows; SGD: W ← W − η(Ḡ + λW), b ← b − η ḡ_b; Adam with
// λW added to the weights' gradient (torch's weight_decay, never on the biases). Rows in file order,
// B per batch, a smaller last batch, zero start.

export interface SoftmaxReferenceOptions {
  readonly optimizer: 'sgd' | 'adam';
  readonly lr: number;
  readonly l2: number;
  readonly epochs: number;
  readonly batchSize: number;
}

/** W (K rows of D) and b (K) after training on rows X with class indices Y. */
export function referenceTrainSoftmax(
  X: readonly (readonly number[])[],
  Y: readonly number[],
  K: number,
  options: SoftmaxReferenceOptions,
): { W: number[][]; b: number[] } {
  const D = X[0]?.length ?? 0;
  const W = Array.from({ length: K }, () => new Array<number>(D).fill(0));
  const b = new Array<number>(K).fill(0);
  const mW = Array.from({ length: K }, () => new Array<number>(D).fill(0));
  const vW = Array.from({ length: K }, () => new Array<number>(D).fill(0));
  const mb = new Array<number>(K).fill(0);
  const vb = new Array<number>(K).fill(0);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  let t = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    for (let start = 0; start < X.length; start += options.batchSize) {
      const end = Math.min(start + options.batchSize, X.length);
      const n = end - start;
      const gW = Array.from({ length: K }, () => new Array<number>(D).fill(0));
      const gb = new Array<number>(K).fill(0);
      for (let r = start; r < end; r++) {
        const x = X[r] as readonly number[];
        const z = b.map((bk, k) => (W[k] as number[]).reduce((sum, wkj, j) => sum + wkj * (x[j] as number), bk));
        const m = Math.max(...z);
        const total = z.reduce((sum, zk) => sum + Math.exp(zk - m), 0);
        for (let k = 0; k < K; k++) {
          const g = Math.exp((z[k] as number) - m) / total - (k === Y[r] ? 1 : 0);
          for (let j = 0; j < D; j++) (gW[k] as number[])[j] = ((gW[k] as number[])[j] as number) + g * (x[j] as number);
          gb[k] = (gb[k] as number) + g;
        }
      }
      t++;
      const update = (value: number, gradient: number, decays: boolean, m: number[], v: number[], at: number): number => {
        const g = gradient / n + (decays ? options.l2 * value : 0);
        if (options.optimizer === 'sgd') return value - options.lr * g;
        m[at] = beta1 * (m[at] as number) + (1 - beta1) * g;
        v[at] = beta2 * (v[at] as number) + (1 - beta2) * g * g;
        const mHat = (m[at] as number) / (1 - beta1 ** t);
        const vHat = (v[at] as number) / (1 - beta2 ** t);
        return value - (options.lr * mHat) / (Math.sqrt(vHat) + eps);
      };
      for (let k = 0; k < K; k++) {
        for (let j = 0; j < D; j++) {
          const row = W[k] as number[];
          row[j] = update(row[j] as number, (gW[k] as number[])[j] as number, true, mW[k] as number[], vW[k] as number[], j);
        }
        b[k] = update(b[k] as number, gb[k] as number, false, mb, vb, k);
      }
    }
  }
  return { W, b };
}

/** Mean −log p_y of rows X under (W, b), by log-sum-exp. */
export function referenceSoftmaxLoss(X: readonly (readonly number[])[], Y: readonly number[], W: readonly (readonly number[])[], b: readonly number[]): number {
  let total = 0;
  X.forEach((x, r) => {
    const z = b.map((bk, k) => (W[k] as readonly number[]).reduce((sum, wkj, j) => sum + wkj * (x[j] as number), bk));
    const m = Math.max(...z);
    total += m + Math.log(z.reduce((sum, zk) => sum + Math.exp(zk - m), 0)) - (z[Y[r] as number] as number);
  });
  return total / X.length;
}

// An independent plain-loop float64 logistic-regression trainer and data generator for tests.
// Written from the lecture's formulas, sharing no code with the project.

/** Mini-batch SGD over rows in file order: w ← w − η((1/n)Σ(σ(z)−y)x + λw), b ← b − η(1/n)Σ(σ(z)−y); at most maxSteps batches. */
export function referenceTrain(
  X: number[][],
  Y: number[],
  options: { epochs: number; batchSize: number; lr: number; l2: number; maxSteps?: number },
): { w: number[]; b: number; losses: number[] } {
  const D = X[0]?.length ?? 0;
  const w = new Array<number>(D).fill(0);
  let b = 0;
  const losses: number[] = [];
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    for (let start = 0; start < X.length; start += options.batchSize) {
      if (losses.length === (options.maxSteps ?? Number.POSITIVE_INFINITY)) return { w, b, losses };
      const end = Math.min(start + options.batchSize, X.length);
      const gw = new Array<number>(D).fill(0);
      let gb = 0;
      let loss = 0;
      for (let i = start; i < end; i++) {
        const x = X[i] as number[];
        const y = Y[i] as number;
        let z = b;
        for (let j = 0; j < D; j++) z += (w[j] as number) * (x[j] as number);
        const a = 1 / (1 + Math.exp(-z));
        loss += -(y * Math.log(a) + (1 - y) * Math.log(1 - a));
        for (let j = 0; j < D; j++) gw[j] = (gw[j] as number) + (a - y) * (x[j] as number);
        gb += a - y;
      }
      const n = end - start;
      for (let j = 0; j < D; j++) w[j] = (w[j] as number) - options.lr * ((gw[j] as number) / n + options.l2 * (w[j] as number));
      b -= options.lr * (gb / n);
      losses.push(loss / n);
    }
  }
  return { w, b, losses };
}

/** A seeded data set whose features are multiples of 1/8 in [−4, 4] (exact in float32). */
export function generateData(rows: number, D: number, seed: number): { X: number[][]; Y: number[]; csv: string } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
  const trueW = Array.from({ length: D }, () => next() * 2 - 1);
  const X: number[][] = [];
  const Y: number[] = [];
  for (let i = 0; i < rows; i++) {
    const x = Array.from({ length: D }, () => Math.round((next() * 8 - 4) * 8) / 8);
    const z = x.reduce((sum, v, j) => sum + v * (trueW[j] as number), 0.3);
    X.push(x);
    Y.push(next() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
  }
  const header = [...Array.from({ length: D }, (_, j) => `f${j}`), 'label'].join(',');
  const csv = `${header}\n${X.map((x, i) => [...x, Y[i]].join(',')).join('\n')}\n`;
  return { X, Y, csv };
}

export function maxAbsDifference(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  return a.reduce((max, v, i) => Math.max(max, Math.abs(v - (b[i] as number))), 0);
}

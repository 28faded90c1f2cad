// An independent plain-loop float64 trainer for the optimizers and rate schedules of issue #12,
// written from torch.optim's documented algorithms (the pseudo-code boxes of SGD, Adagrad, Adam,
// AdamW) and the README's schedule formulas; it shares no code with the project (nor with
// test/helpers/reference.ts beyond the same batch order: rows in file order, B per batch, a smaller
// last batch). Where torch's code and its docs round differently (m̂/(√v̂ + ε) against
// m·(−η/c1)/(√v/√c2 + ε)) this follows the docs: the two agree to ~1e-16, far within 1e-9.

export interface ReferenceOptimizer {
  readonly name: 'sgd' | 'momentum' | 'nesterov' | 'adagrad' | 'adam' | 'adamw';
  readonly lr: number;
  /** λ, torch's weight_decay: on the weights only. */
  readonly l2: number;
  readonly momentum?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  readonly schedule?: 'constant' | 'cosine';
  readonly warmupSteps?: number;
  readonly decayEpochs?: number;
  readonly gamma?: number;
}

/** The rate of step t (0-based) of T, S steps per epoch: lr · c(t) · u(t) · d(t). */
export function referenceRate(options: ReferenceOptimizer, t: number, T: number, S: number): number {
  let rate = options.lr;
  if (options.schedule === 'cosine') rate = rate * (0.5 * (1 + Math.cos((Math.PI * t) / T)));
  const N = options.warmupSteps ?? 0;
  if (t < N) rate = rate * ((t + 1) / N);
  const E = options.decayEpochs ?? 0;
  if (E > 0) rate = rate * (options.gamma ?? 0.1) ** Math.floor(Math.floor(t / S) / E);
  return rate;
}

/** Trains logistic regression (zero start) with the given optimizer; returns w and b. */
export function referenceTrainWithOptimizer(
  X: readonly (readonly number[])[],
  Y: readonly number[],
  epochs: number,
  batchSize: number,
  options: ReferenceOptimizer,
): { w: number[]; b: number } {
  const D = X[0]?.length ?? 0;
  const P = D + 1; // θ = [w, b]
  const theta = new Array<number>(P).fill(0);
  const isWeight = (i: number): boolean => i < D;
  const mu = options.momentum ?? 0.9;
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? (options.name === 'adagrad' ? 1e-10 : 1e-8);
  const lambda = options.l2;
  // State: momentum buffer / adagrad sum / adam first moment; adam second moment.
  const buffer = new Array<number>(P).fill(0);
  const second = new Array<number>(P).fill(0);
  const perEpoch = Math.ceil(X.length / batchSize);
  const T = epochs * perEpoch;
  let t = 0; // steps taken (0-based index of the current step)
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let start = 0; start < X.length; start += batchSize) {
      const end = Math.min(start + batchSize, X.length);
      const n = end - start;
      const grad = new Array<number>(P).fill(0);
      for (let r = start; r < end; r++) {
        const x = X[r] as readonly number[];
        let z = theta[D] as number;
        for (let j = 0; j < D; j++) z += (theta[j] as number) * (x[j] as number);
        const error = 1 / (1 + Math.exp(-z)) - (Y[r] as number);
        for (let j = 0; j < D; j++) grad[j] = (grad[j] as number) + error * (x[j] as number);
        grad[D] = (grad[D] as number) + error;
      }
      for (let i = 0; i < P; i++) grad[i] = (grad[i] as number) / n;
      const gamma = referenceRate(options, t, T, perEpoch);
      const step = t + 1; // torch's t, from 1
      for (let i = 0; i < P; i++) {
        let g = grad[i] as number;
        let p = theta[i] as number;
        const decays = isWeight(i) && lambda !== 0;
        if (options.name === 'adamw') {
          if (decays) p = p - gamma * lambda * p;
        } else if (decays) {
          g = g + lambda * p;
        }
        switch (options.name) {
          case 'sgd':
            p = p - gamma * g;
            break;
          case 'momentum':
          case 'nesterov': {
            const b = step === 1 ? g : mu * (buffer[i] as number) + g;
            buffer[i] = b;
            p = p - gamma * (options.name === 'nesterov' ? g + mu * b : b);
            break;
          }
          case 'adagrad': {
            const sum = (buffer[i] as number) + g * g;
            buffer[i] = sum;
            p = p - (gamma * g) / (Math.sqrt(sum) + eps);
            break;
          }
          case 'adam':
          case 'adamw': {
            const m = beta1 * (buffer[i] as number) + (1 - beta1) * g;
            const v = beta2 * (second[i] as number) + (1 - beta2) * g * g;
            buffer[i] = m;
            second[i] = v;
            const mHat = m / (1 - beta1 ** step);
            const vHat = v / (1 - beta2 ** step);
            p = p - (gamma * mHat) / (Math.sqrt(vHat) + eps);
            break;
          }
        }
        theta[i] = p;
      }
      t++;
    }
  }
  return { w: theta.slice(0, D), b: theta[D] as number };
}

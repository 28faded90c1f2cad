import { describe, expect, it } from 'vitest';
import { type ScaleCheck, scaleWarning, stableStepLimit, startCurvature } from '../../coordinator/scale-warning.js';

/** Statistics as the statistics pass reports them (population std; std 1 for a constant column), computed here from rows. */
function statsOf(rows: readonly (readonly number[])[]): ScaleCheck['stats'] {
  const D = rows[0]!.length;
  const mean = new Float64Array(D);
  const std = new Float64Array(D);
  const min = new Float64Array(D).fill(Number.POSITIVE_INFINITY);
  const max = new Float64Array(D).fill(Number.NEGATIVE_INFINITY);
  for (let j = 0; j < D; j++) {
    for (const row of rows) {
      mean[j]! += row[j]! / rows.length;
      min[j] = Math.min(min[j]!, row[j]!);
      max[j] = Math.max(max[j]!, row[j]!);
    }
    let m2 = 0;
    for (const row of rows) m2 += (row[j]! - mean[j]!) ** 2;
    std[j] = min[j] === max[j] ? 1 : Math.sqrt(m2 / rows.length);
  }
  return { mean, std, min, max };
}

/** λ_max of c·E[x̃x̃ᵀ], x̃ = (x, 1), by power iteration: the curvature of the loss at θ = 0, computed independently of the rule's bound. */
function curvatureAtStart(rows: readonly (readonly number[])[], c: number): number {
  const n = rows[0]!.length + 1;
  const A = Array.from({ length: n }, () => new Float64Array(n));
  for (const row of rows) {
    const x = [...row, 1];
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i]![j]! += (c * x[i]! * x[j]!) / rows.length;
  }
  let v = new Float64Array(n).fill(1);
  let lambda = 0;
  for (let iteration = 0; iteration < 2000; iteration++) {
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) next[i]! += A[i]![j]! * v[j]!;
    lambda = Math.hypot(...next);
    v = next.map((value) => value / lambda);
  }
  return lambda;
}

/** Mean logistic loss after each of `steps` full-batch gradient-descent steps from θ = 0, in float64 (softplus form). */
function gradientDescentLosses(rows: readonly (readonly number[])[], y: readonly number[], lr: number, steps: number): number[] {
  const D = rows[0]!.length;
  const w = new Float64Array(D);
  let b = 0;
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const gw = new Float64Array(D);
    let gb = 0;
    rows.forEach((x, i) => {
      const z = x.reduce((sum, value, j) => sum + value * w[j]!, b);
      const a = 1 / (1 + Math.exp(-z));
      for (let j = 0; j < D; j++) gw[j]! += ((a - y[i]!) * x[j]!) / rows.length;
      gb += (a - y[i]!) / rows.length;
    });
    for (let j = 0; j < D; j++) w[j]! -= lr * gw[j]!;
    b -= lr * gb;
    let loss = 0;
    rows.forEach((x, i) => {
      const z = x.reduce((sum, value, j) => sum + value * w[j]!, b);
      loss += (Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - y[i]! * z) / rows.length;
    });
    losses.push(loss);
  }
  return losses;
}

// Two features of very different scales (hundreds and hundredths), labels from both: a fixed pattern.
const ROWS = Array.from({ length: 40 }, (_, i) => [200 + 37 * ((i * 7) % 11), 0.01 * ((i * 5) % 13)]);
const LABELS = ROWS.map(([big, small]) => (big! / 400 + small! * 10 > 1.4 ? 1 : 0));
const check = (overrides: Partial<ScaleCheck>): ScaleCheck => ({
  standardize: false,
  lr: 0.1,
  optimizer: { name: 'sgd', momentum: 0.9 },
  model: 'logistic',
  classes: 2,
  featureNames: ['big', 'small'],
  stats: statsOf(ROWS),
  ...overrides,
});
/** The largest rate the rule accepts for `overrides` (sgd on ROWS by default): the step limit over the curvature bound. */
const stableLr = (overrides: Partial<ScaleCheck> = {}): number => stableStepLimit(check(overrides).optimizer)! / startCurvature(check(overrides)).h;

describe('scaleWarning', () => {
  it('warns once, naming the flag, the stable rate and what to do, for raw features at the default rate', () => {
    const line = scaleWarning(check({}))!;
    expect(line).toMatch(/^dpt: warning: --no-standardize: .*--optimizer sgd stable only below --lr \S+ .*not at 0\.1: .*drop --no-standardize or lower --lr$/);
    expect(line).not.toMatch(/\n/);
  });

  it('stays silent with standardization, with an adaptive optimizer, and below the stable rate', () => {
    expect(scaleWarning(check({ standardize: true }))).toBeNull();
    for (const name of ['adagrad', 'adam', 'adamw'] as const) expect(scaleWarning(check({ optimizer: { name, momentum: 0.9 } }))).toBeNull();
    expect(scaleWarning(check({ lr: stableLr() * 0.9 }))).toBeNull();
    expect(scaleWarning(check({ lr: stableLr() * 1.1 }))).not.toBeNull();
  });

  it('never claims more curvature than there is: its stable rate is at least 2 / λ_max, computed by power iteration', () => {
    const lambda = curvatureAtStart(ROWS, 0.25);
    expect(stableLr()).toBeGreaterThanOrEqual(2 / lambda);
    // And it is tight here (one direction dominates): within a factor 2.
    expect(stableLr()).toBeLessThan((2 / lambda) * 2);
    // Softmax at θ = 0: curvature c = 1/K, so K = 10 allows a rate 10/4 times larger.
    expect(stableLr({ model: 'softmax', classes: 10 }) / stableLr()).toBeCloseTo(2.5, 12);
  });

  it('predicts what gradient descent does: below the rate the loss falls from ln 2, past it the loss jumps above ln 2', () => {
    const below = gradientDescentLosses(ROWS, LABELS, stableLr() * 0.5, 20);
    expect(below[0]!).toBeLessThan(Math.LN2);
    expect(below.every((loss, step) => step === 0 || loss <= below[step - 1]! + 1e-12)).toBe(true);
    const past = gradientDescentLosses(ROWS, LABELS, stableLr() * 10, 20);
    expect(Math.max(...past)).toBeGreaterThan(5 * Math.LN2);
  });

  it('allows momentum 2(1 + μ) and Nesterov 2(1 + μ)/(1 + 2μ) on the same curvature', () => {
    expect(stableStepLimit({ name: 'sgd', momentum: 0.9 })).toBe(2);
    expect(stableStepLimit({ name: 'momentum', momentum: 0.9 })).toBeCloseTo(3.8, 12);
    expect(stableStepLimit({ name: 'nesterov', momentum: 0.9 })).toBeCloseTo(3.8 / 2.8, 12);
    expect(stableLr({ optimizer: { name: 'momentum', momentum: 0.9 } }) / stableLr()).toBeCloseTo(1.9, 12);
    // torch.optim's updates on f(w) = w²/2 (curvature 1) at lr = a: bounded just below the limit, growing just past it.
    const finalW = (name: 'sgd' | 'momentum' | 'nesterov', a: number): number => {
      const mu = 0.9;
      let w = 1;
      let v = 0;
      for (let step = 0; step < 2000; step++) {
        const g = w;
        if (name === 'sgd') w -= a * g;
        else {
          v = mu * v + g;
          w -= a * (name === 'nesterov' ? g + mu * v : v);
        }
      }
      return Math.abs(w);
    };
    for (const name of ['sgd', 'momentum', 'nesterov'] as const) {
      const limit = stableStepLimit({ name, momentum: 0.9 })!;
      expect(finalW(name, limit * 0.99), name).toBeLessThan(1e-3);
      expect(finalW(name, limit * 1.01), name).toBeGreaterThan(1e3);
    }
  });

  it('stays below the true curvature with a constant column (whose std the statistics pass reports as 1)', () => {
    const constant = ROWS.map(([, small]) => [small!, 3]);
    const { h, source } = startCurvature({ ...check({}), featureNames: ['small', 'three'], stats: statsOf(constant) });
    expect(h).toBeLessThanOrEqual(curvatureAtStart(constant, 0.25) * (1 + 1e-12));
    expect(source).toMatch(/Σ mean²/);
  });
});

import { describe, expect, it } from 'vitest';
import { evaluateModel, rocAuc } from '../../shared/evaluation.js';

/** AUC by counting every (positive, negative) pair, ties counting one half. */
function pairwiseAuc(scores: number[], y: number[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((sp, i) => {
    if (y[i] !== 1) return;
    scores.forEach((sn, k) => {
      if (y[k] !== 0) return;
      pairs++;
      wins += sp > sn ? 1 : sp === sn ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

describe('rocAuc', () => {
  it('equals the pairwise count, with ties', () => {
    let state = 11;
    const next = (): number => {
      state = (state * 48_271) % 2_147_483_647;
      return state / 2_147_483_647;
    };
    const scores = Array.from({ length: 200 }, () => Math.round(next() * 20) / 4);
    const y = scores.map((s) => (next() < 0.3 + s / 10 ? 1 : 0));
    expect(rocAuc(Float64Array.from(scores), Uint8Array.from(y))).toBeCloseTo(pairwiseAuc(scores, y), 12);
  });

  it('is null with a single class', () => {
    expect(rocAuc(Float64Array.from([1, 2]), Uint8Array.from([1, 1]))).toBeNull();
  });
});

describe('evaluateModel', () => {
  it('counts the confusion matrix with class 1 iff z > 0', () => {
    // z = x: predictions 1, 1, 0, 0 (z = 0 predicts 0), labels 1, 0, 1, 0.
    const metrics = evaluateModel(Float32Array.from([2, 1, 0, -1]), Uint8Array.from([1, 0, 1, 0]), 1, Float64Array.from([1]), 0);
    expect(metrics.accuracy).toBe(0.5);
    expect(metrics.precision).toBe(0.5);
    expect(metrics.recall).toBe(0.5);
    expect(metrics.f1).toBe(0.5);
    const expectedLoss = (Math.log1p(Math.exp(-2)) + Math.log1p(Math.exp(1)) + Math.LN2 + Math.log1p(Math.exp(-1))) / 4;
    expect(metrics.logLoss).toBeCloseTo(expectedLoss, 14);
    expect(metrics.rocAuc).toBeCloseTo(0.75, 14);
  });
});

import { describe, expect, it } from 'vitest';
import { evaluateModel, evaluateSoftmax, rocAuc } from '../../shared/evaluation.js';
import { predictSoftmax } from '../../shared/softmax.js';

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

describe('evaluateSoftmax', () => {
  // K = 4 classes, D = 2: z_0 = x_0, z_1 = x_1, z_2 = −x_0 − x_1 − 5, z_3 = −x_0 − x_1 − 9.
  // Class 2 has rows but is never predicted; class 3 neither has rows nor is predicted.
  const theta = Float64Array.from([1, 0, 0, 1, -1, -1, -1, -1, 0, 0, -5, -9]);
  const x = Float32Array.from([2, 0, 0, 3, 1, 2, 3, 1, 0, 1, 1, 1]);
  // Predictions by hand: 0, 1, 1, 0, 1, and 0 for the tie z_0 = z_1 = 1 (the lowest index).
  const y = Uint32Array.from([0, 1, 0, 2, 2, 1]);

  it('matches a hand count: confusion, per-class and macro precision/recall/F1, zero_division = 0', () => {
    const metrics = evaluateSoftmax(x, y, 2, 4, theta);
    expect(metrics.rows).toBe(6);
    expect(metrics.accuracy).toBe(2 / 6);
    expect(metrics.confusion).toEqual([
      [1, 1, 0, 0],
      [1, 1, 0, 0],
      [1, 1, 0, 0],
      [0, 0, 0, 0],
    ]);
    // Classes 0 and 1: tp 1, 3 predicted, 2 rows: P = 1/3, R = 1/2, F1 = 2·(1/3)(1/2)/(1/3 + 1/2) = 0.4.
    for (const k of [0, 1]) {
      const c = metrics.perClass[k]!;
      expect([c.support, c.predicted]).toEqual([2, 3]);
      expect(c.precision).toBeCloseTo(1 / 3, 15);
      expect(c.recall).toBe(0.5);
      expect(c.f1).toBeCloseTo(0.4, 15);
    }
    // Class 2, never predicted: precision 0/0 counts 0, recall 0/2, F1 0.
    expect(metrics.perClass[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 2, predicted: 0 });
    expect(metrics.perClass[3]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0, predicted: 0 });
    // Macro over the 3 classes seen among labels or predictions (sklearn's default label set).
    expect(metrics.macro.classes).toBe(3);
    expect(metrics.macro.precision).toBeCloseTo(2 / 9, 15);
    expect(metrics.macro.recall).toBeCloseTo(1 / 3, 15);
    expect(metrics.macro.f1).toBeCloseTo(0.8 / 3, 15);
  });

  it('computes the mean −log p_y like a plain log-sum-exp', () => {
    let expected = 0;
    for (let row = 0; row < 6; row++) {
      const z = [0, 1, 2, 3].map((k) => theta[8 + k]! + theta[k * 2]! * x[row * 2]! + theta[k * 2 + 1]! * x[row * 2 + 1]!);
      expected += Math.log(z.reduce((sum, zk) => sum + Math.exp(zk), 0)) - z[y[row]!]!;
    }
    expect(evaluateSoftmax(x, y, 2, 4, theta).logLoss).toBeCloseTo(expected / 6, 14);
  });

  it('stays exact for logits far apart, where a log of a rounded p would give 0 or Infinity', () => {
    // z = (1000, 0) per row: −log p_0 = log(1 + e^−1000) ≈ 0, −log p_1 = 1000 + log(1 + e^−1000) = 1000.
    const far = Float64Array.from([1000, 0, 0, 0]); // K = 2, D = 1, x = 1
    const metrics = evaluateSoftmax(Float32Array.from([1, 1]), Uint32Array.from([0, 1]), 1, 2, far);
    expect(metrics.logLoss).toBe(500);
    // And p_y ≈ 1 keeps its tiny loss: z = (40, 0), −log p_0 = log1p(e^−40) = 4.248354255291589e-18.
    const near = evaluateSoftmax(Float32Array.from([1]), Uint32Array.from([0]), 1, 2, Float64Array.from([40, 0, 0, 0]));
    expect(near.logLoss).toBeCloseTo(Math.exp(-40), 30);
    expect(near.logLoss / Math.exp(-40)).toBeCloseTo(1, 12);
  });

  it('predicts the class predictSoftmax returns, on seeded random data', () => {
    let state = 7;
    const next = (): number => {
      state = (state * 48_271) % 2_147_483_647;
      return state / 2_147_483_647 - 0.5;
    };
    const K = 5;
    const D = 7;
    const rows = 300;
    const weights = Float64Array.from({ length: K * D + K }, () => next() * 4);
    const features = Float32Array.from({ length: rows * D }, () => next() * 10);
    const p = new Float64Array(K);
    const predicted = Array.from({ length: rows }, (_, row) => predictSoftmax(weights, K, D, features, row * D, p));
    // Labels = predictions except every third row: accuracy counts exactly the agreeing rows.
    const labels = Uint32Array.from(predicted, (k, row) => (row % 3 === 0 ? (k + 1) % K : k));
    const metrics = evaluateSoftmax(features, labels, D, K, weights);
    expect(metrics.accuracy).toBe(200 / 300);
    const columnSums = Array.from({ length: K }, (_, k) => predicted.filter((c) => c === k).length);
    expect(metrics.perClass.map((c) => c.predicted)).toEqual(columnSums);
  });
});

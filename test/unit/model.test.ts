import { describe, expect, it } from 'vitest';
import { accumulateGradient, linearScore, logLoss, predictClass, sigmoid } from '../../shared/model.js';

/** Mean loss of a batch, straight from the definition L = −[y·log(a) + (1−y)·log(1−a)] in float64. */
function batchLoss(X: number[][], Y: number[], w: number[], b: number): number {
  let sum = 0;
  X.forEach((x, i) => {
    const z = x.reduce((s, v, j) => s + v * (w[j] as number), b);
    const a = 1 / (1 + Math.exp(-z));
    const y = Y[i] as number;
    sum += -(y * Math.log(a) + (1 - y) * Math.log(1 - a));
  });
  return sum;
}

const X = [
  [0.5, -1.25, 2],
  [1.5, 0.25, -0.75],
  [-2, 1, 0.125],
  [0.75, 0.5, 1.5],
];
const Y = [1, 0, 1, 0];
const w = [0.3, -0.2, 0.1];
const b = 0.05;

function kernel(order: Uint32Array | null, from: number, to: number): { out: Float64Array; loss: number } {
  const x = Float32Array.from(X.flat());
  const out = new Float64Array(3 + 1);
  const loss = accumulateGradient(x, Uint8Array.from(Y), 3, order, from, to, Float64Array.from(w), b, out, 0);
  return { out, loss };
}

describe('accumulateGradient', () => {
  it('equals a central finite-difference gradient of the loss', () => {
    const { out, loss } = kernel(null, 0, 4);
    const h = 1e-6;
    for (let j = 0; j < 3; j++) {
      const plus = [...w];
      const minus = [...w];
      plus[j] = (plus[j] as number) + h;
      minus[j] = (minus[j] as number) - h;
      const numeric = (batchLoss(X, Y, plus, b) - batchLoss(X, Y, minus, b)) / (2 * h);
      expect(out[j]).toBeCloseTo(numeric, 7);
    }
    const numericBias = (batchLoss(X, Y, w, b + h) - batchLoss(X, Y, w, b - h)) / (2 * h);
    expect(out[3]).toBeCloseTo(numericBias, 7);
    expect(loss).toBeCloseTo(batchLoss(X, Y, w, b), 12);
  });

  it('adds the sums into the slice it is given and leaves the rest alone', () => {
    const x = Float32Array.from(X.flat());
    const out = new Float64Array(10).fill(7);
    accumulateGradient(x, Uint8Array.from(Y), 3, null, 0, 4, Float64Array.from(w), b, out, 3);
    const { out: fresh } = kernel(null, 0, 4);
    expect(Array.from(out.subarray(0, 3))).toEqual([7, 7, 7]);
    expect(Array.from(out.subarray(7))).toEqual([7, 7, 7]);
    for (let k = 0; k < 4; k++) expect(out[3 + k]).toBeCloseTo(7 + (fresh[k] as number), 12);
  });

  it('visits the rows of an order array exactly as if they were contiguous', () => {
    const indexed = kernel(Uint32Array.from([3, 1, 2, 0]), 1, 3); // rows 1 and 2
    const contiguous = kernel(null, 1, 3);
    expect(Array.from(indexed.out)).toEqual(Array.from(contiguous.out));
    expect(indexed.loss).toBe(contiguous.loss);
  });

  it('stays finite at |z| = 1000', () => {
    for (const z of [1000, -1000]) {
      for (const label of [0, 1]) {
        const x = Float32Array.from([1]);
        const out = new Float64Array(2);
        const loss = accumulateGradient(x, Uint8Array.from([label]), 1, null, 0, 1, Float64Array.from([z]), 0, out, 0);
        expect(Number.isFinite(loss)).toBe(true);
        expect(Number.isNaN(out[0])).toBe(false);
        expect(Number.isNaN(out[1])).toBe(false);
        // Confidently wrong costs |z|; confidently right costs nothing.
        const isWrong = (z > 0 ? 1 : 0) !== label;
        expect(loss).toBeCloseTo(isWrong ? 1000 : 0, 9);
        expect(out[1]).toBeCloseTo(isWrong ? (z > 0 ? 1 : -1) : 0, 12);
      }
    }
  });
});

describe('sigmoid and logLoss', () => {
  it('give the closed forms and never overflow', () => {
    expect(sigmoid(0)).toBe(0.5);
    expect(sigmoid(Math.log(3))).toBeCloseTo(0.75, 15);
    expect(sigmoid(-Math.log(3))).toBeCloseTo(0.25, 15);
    expect(sigmoid(1000)).toBe(1);
    expect(sigmoid(-1000)).toBe(0);
    expect(sigmoid(-800)).toBeGreaterThanOrEqual(0);
    expect(logLoss(0, 1)).toBeCloseTo(Math.LN2, 15);
    expect(logLoss(0, 0)).toBeCloseTo(Math.LN2, 15);
    expect(logLoss(2, 1)).toBeCloseTo(Math.log(1 + Math.exp(-2)), 15);
    expect(logLoss(2, 0)).toBeCloseTo(Math.log(1 + Math.exp(2)), 14);
    expect(logLoss(-1e308, 0)).toBe(0);
    expect(logLoss(1e308, 0)).toBe(1e308);
  });
});

describe('predictClass', () => {
  it('predicts class 1 iff z > 0', () => {
    expect(predictClass(1e-12)).toBe(1);
    expect(predictClass(0)).toBe(0);
    expect(predictClass(-0)).toBe(0);
    expect(predictClass(-3)).toBe(0);
    const x = Float32Array.from([2, -1]);
    expect(linearScore(x, 2, 0, Float64Array.from([0.5, 1]), 0)).toBe(0);
    expect(linearScore(x, 2, 0, Float64Array.from([0.5, 0.5]), 0)).toBe(0.5);
  });
});

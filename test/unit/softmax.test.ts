import { describe, expect, it } from 'vitest';
import { sigmoid } from '../../shared/model.js';
import { accumulateSoftmax, predictSoftmax, softmaxParameterCount, softmaxPartWidth } from '../../shared/softmax.js';
import { softmaxReference } from '../helpers/softmax-reference.js';

/** θ for K classes over D features with W = 0 and b = z: every row scores z. */
function scoring(z: readonly number[], D: number): Float64Array {
  const theta = new Float64Array(z.length * D + z.length);
  theta.set(z, z.length * D);
  return theta;
}

describe('the softmax layout', () => {
  it('holds K·D weights then K biases, and a part adds the loss sum', () => {
    expect(softmaxParameterCount(10, 64)).toBe(650);
    expect(softmaxPartWidth(10, 64)).toBe(651);
    expect(softmaxPartWidth(2, 5)).toBe(13);
  });
});

describe('accumulateSoftmax (the TypeScript fallback, with the fdlibm ports)', () => {
  it('matches the float64 reference within 1e-12 relative, contiguous and indexed', () => {
    const K = 5;
    const D = 9;
    const rows = 17;
    let state = 3;
    const next = (): number => {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
    const x = Float32Array.from({ length: rows * D }, () => next() * 4 - 2);
    const y = Uint16Array.from({ length: rows }, () => Math.floor(next() * K));
    const theta = Float64Array.from({ length: K * D + K }, () => next() - 0.5);
    const order = Uint32Array.from({ length: rows }, (_, i) => (i * 4 + 1) % rows);
    for (const indexed of [false, true]) {
      const out = new Float64Array(softmaxPartWidth(K, D));
      const loss = accumulateSoftmax(x, y, D, K, indexed ? order : null, 0, rows, theta, out, 0, new Float64Array(K));
      const positions = Array.from({ length: rows }, (_, i) => (indexed ? (order[i] as number) : i));
      const expected = softmaxReference(x, y, D, K, positions, theta);
      for (let i = 0; i < out.length; i++) {
        expect(Math.abs((out[i] as number) - (expected.part[i] as number))).toBeLessThanOrEqual(1e-12 * (expected.scale[i] as number));
      }
      expect(loss).toBe(out[K * D + K]);
    }
  });

  it('keeps the loss exact when p_y is within rounding of 1 (log1p of the other classes, not log of a rounded sum)', () => {
    const K = 3;
    const D = 1;
    const x = Float32Array.of(1);
    const y = Uint16Array.of(0);
    const out = new Float64Array(softmaxPartWidth(K, D));
    // z = (0, −40, −40): L = log(1 + 2e^−40) ≈ 2e^−40 = 8.5e−18, which log(S) would round to 0.
    const loss = accumulateSoftmax(x, y, D, K, null, 0, 1, scoring([0, -40, -40], D), out, 0, new Float64Array(K));
    expect(loss).toBeGreaterThan(0);
    expect(Math.abs(loss - 2 * Math.exp(-40)) / (2 * Math.exp(-40))).toBeLessThan(1e-15);
  });
});

describe('predictSoftmax', () => {
  it('returns the argmax class and probabilities that sum to 1', () => {
    const probabilities = new Float64Array(3);
    const D = 2;
    const theta = new Float64Array(3 * D + 3);
    theta.set([1, 0, 0, 1, -1, -1]); // W rows: x0, x1, −x0 − x1
    const x = Float32Array.of(0.5, 2);
    expect(predictSoftmax(theta, 3, D, x, 0, probabilities)).toBe(1);
    const z = [0.5, 2, -2.5];
    const total = z.reduce((sum, zk) => sum + Math.exp(zk), 0);
    z.forEach((zk, k) => {
      expect(probabilities[k]).toBeCloseTo(Math.exp(zk) / total, 15);
    });
    expect(Math.abs(probabilities.reduce((sum, p) => sum + p, 0) - 1)).toBeLessThan(1e-15);
  });

  it('breaks ties by the lowest class index', () => {
    const probabilities = new Float64Array(4);
    const x = Float32Array.of(1);
    expect(predictSoftmax(scoring([1, 3, 3, 2], 1), 4, 1, x, 0, probabilities)).toBe(1);
    expect(predictSoftmax(scoring([7, 7, 7, 7], 1), 4, 1, x, 0, probabilities)).toBe(0);
    expect(Array.from(probabilities)).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('stays finite for logits of ±1e4 (e^z would overflow)', () => {
    const probabilities = new Float64Array(3);
    const x = Float32Array.of(1);
    expect(predictSoftmax(scoring([1e4, 1e4 - 1, -1e4], 1), 3, 1, x, 0, probabilities)).toBe(0);
    expect(probabilities[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 15);
    expect(probabilities[1]).toBeCloseTo(Math.exp(-1) / (1 + Math.exp(-1)), 15);
    expect(probabilities[2]).toBe(0);
  });

  it('reduces to the sigmoid for two classes: p_1 = σ(z_1 − z_0)', () => {
    const probabilities = new Float64Array(2);
    const x = Float32Array.of(1);
    for (const [z0, z1] of [
      [0, 2],
      [-3, 1.5],
      [10, -20],
    ] as const) {
      predictSoftmax(scoring([z0, z1], 1), 2, 1, x, 0, probabilities);
      expect(probabilities[1]).toBeCloseTo(sigmoid(z1 - z0), 15);
    }
  });

  it('reads the row at `base` of a larger matrix', () => {
    const probabilities = new Float64Array(2);
    const theta = Float64Array.of(1, -1, 0, 0); // W = (1; −1): class 0 iff x > 0
    const x = Float32Array.of(5, -5);
    expect(predictSoftmax(theta, 2, 1, x, 0, probabilities)).toBe(0);
    expect(predictSoftmax(theta, 2, 1, x, 1, probabilities)).toBe(1);
  });
});

import { describe, expect, it } from 'vitest';
import { logisticShape, packParameters, scoreBound, softmaxShape, weightsView, zeroParameters } from '../../shared/model-shape.js';

describe('logisticShape', () => {
  it('lays out D weights then the bias, decays the weights only, and derives a part of D + 2', () => {
    const shape = logisticShape(3);
    expect(shape.parameterCount).toBe(4);
    expect(shape.biasIndex).toBe(3);
    expect(Array.from(shape.isDecayed)).toEqual([1, 1, 1, 0]);
    expect(shape.partWidth).toBe(5);
    expect(shape.lossIndex).toBe(4);
    expect(Object.isFrozen(shape)).toBe(true);
  });

  it('refuses a shape without features', () => {
    expect(() => logisticShape(0)).toThrow(/invariant broken/);
    expect(() => logisticShape(1.5)).toThrow(/invariant broken/);
  });
});

describe('the parameter vector', () => {
  it('starts at zero', () => {
    expect(Array.from(zeroParameters(logisticShape(2)))).toEqual([0, 0, 0]);
  });

  it('packs w and b in the layout, and views w without a copy', () => {
    const shape = logisticShape(3);
    const params = packParameters(shape, [1, 2, 3], -4);
    expect(Array.from(params)).toEqual([1, 2, 3, -4]);
    const w = weightsView(shape, params);
    expect(Array.from(w)).toEqual([1, 2, 3]);
    params[1] = 7;
    expect(w[1]).toBe(7); // a view, not a copy
    expect(w.buffer).toBe(params.buffer);
  });

  it('refuses weights of another length', () => {
    expect(() => packParameters(logisticShape(3), [1, 2], 0)).toThrow(/2 weights and one bias for a 1×3 shape/);
  });
});

describe('the softmax shape', () => {
  it('lays out W (K×D, row-major) then K biases, decays only W, and has a part one wider', () => {
    const shape = softmaxShape(3, 4);
    expect(shape).toMatchObject({ kind: 'softmax', classes: 3, outputs: 3, features: 4, parameterCount: 15, biasIndex: 12, partWidth: 16, lossIndex: 15 });
    expect(Array.from(shape.isDecayed)).toEqual([...new Array(12).fill(1), 0, 0, 0]);
    expect(logisticShape(4)).toMatchObject({ classes: 2, outputs: 1, parameterCount: 5, biasIndex: 4, partWidth: 6, lossIndex: 5 });
    expect(() => softmaxShape(1, 4)).toThrow(/softmax over 1 classes/);
  });

  it('bounds |z| by the largest output: max over k of |b_k| + Σ|W_kj|·max|x_j|, NaN when a parameter is NaN', () => {
    const shape = softmaxShape(2, 2);
    const maxAbs = Float64Array.of(2, 3);
    // Output 0: 1 + 0.5·2 + 1·3 = 5; output 1: |−4| + |−1|·2 + 0 = 6.
    expect(scoreBound(shape, Float64Array.of(0.5, 1, -1, 0, 1, -4), maxAbs)).toBe(6);
    expect(scoreBound(shape, Float64Array.of(Number.NaN, 1, -1, 0, 1, -4), maxAbs)).toBeNaN();
    expect(scoreBound(logisticShape(2), Float64Array.of(0.5, -1, 2), maxAbs)).toBe(2 + 1 + 3);
  });
});

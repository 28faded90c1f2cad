import { describe, expect, it } from 'vitest';
import { logisticShape, packParameters, weightsView, zeroParameters } from '../../shared/model-shape.js';

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
    expect(() => packParameters(logisticShape(3), [1, 2], 0)).toThrow(/2 weights for 3 features/);
  });
});

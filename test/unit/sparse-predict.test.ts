// Scoring sparse rows (issue #13): the same bits as the dense score of the same row, whichever
// way the weights are stored (dense form, sparse form in a dense table, sparse form searched by
// bisection), and O(nnz) lookups that skip indices at or beyond D.

import { describe, expect, it } from 'vitest';
import { linearScore } from '../../shared/model.js';
import { logisticShape } from '../../shared/model-shape.js';
import { scoreSparseRow, softmaxProbabilities } from '../../shared/sparse-predict.js';
import { encodeSparseWeights, lookUpWeights, weightTable } from '../../shared/sparse-weights.js';

let state = 77;
function next(): number {
  state = (state * 48_271) % 2_147_483_647;
  return state / 2_147_483_647;
}

describe('scoreSparseRow', () => {
  const D = 64;
  // A third of the weights zero, so the sparse form is chosen and some entries have no stored weight.
  const v = Float64Array.from({ length: D }, () => (next() < 0.7 ? 0 : 2 * next() - 1));
  const scale = 0.75;
  const b = -0.125;
  const w = v.map((value) => scale * value);
  const rows = Array.from({ length: 20 }, () => {
    const indices: number[] = [];
    for (let j = 0; j < D; j++) if (next() < 0.2) indices.push(j);
    return { indices, values: indices.map(() => Math.fround(4 * next() - 2)) };
  });

  it('equals the dense linearScore of the row, bit for bit, in every storage of the weights', () => {
    const stored = encodeSparseWeights({ v, scale, bias: Float64Array.of(b) }, logisticShape(D));
    expect(Array.isArray(stored)).toBe(false);
    const dense = Array.from(w);
    const tables = [weightTable(dense, 1, D), weightTable(stored, 1, D)];
    // The bisection path, as a D above 2^24 would take it.
    const bisected = { ...weightTable(stored, 1, D), dense: null };
    const record = stored as { indices: number[]; values: number[] };
    const searched = { ...bisected, indices: Uint32Array.from(record.indices), values: Float64Array.from(record.values) };
    const z = new Float64Array(1);
    for (const { indices, values } of rows) {
      const x = new Float32Array(D);
      indices.forEach((j, k) => {
        x[j] = values[k]!;
      });
      const expected = linearScore(x, D, 0, w, b);
      for (const table of [...tables, searched]) {
        scoreSparseRow({ outputs: 1, dims: D, table, bias: Float64Array.of(b) }, indices, values, 0, indices.length, z);
        expect(Object.is(z[0], expected)).toBe(true);
      }
    }
  });

  it('skips indices at or beyond D (weight 0) and finds every stored index by bisection', () => {
    const table = weightTable({ dims: 10, indices: [1, 4, 9], values: [2, 3, 5] }, 1, 10);
    const z = new Float64Array(1);
    scoreSparseRow({ outputs: 1, dims: 10, table, bias: Float64Array.of(1) }, [1, 9, 10, 4000], [1, 1, 100, 100], 0, 4, z);
    expect(z[0]).toBe(1 + 2 + 5);
    const searched = { ...table, dense: null, indices: Uint32Array.of(1, 4, 9), values: Float64Array.of(2, 3, 5) };
    expect([0, 1, 2, 4, 8, 9].map((j) => lookUpWeights(searched, j))).toEqual([-1, 0, -1, 1, -1, 2]);
  });
});

describe('softmaxProbabilities', () => {
  it('gives p = softmax(z) summing to 1 and the lowest index among tied maxima', () => {
    const p = new Float64Array(3);
    expect(softmaxProbabilities(Float64Array.of(1, 3, 3), 3, p)).toBe(1);
    const S = Math.exp(-2) + 2;
    expect(p[0]).toBeCloseTo(Math.exp(-2) / S, 15);
    expect(p[1]).toBeCloseTo(1 / S, 15);
    expect(p[0]! + p[1]! + p[2]!).toBeCloseTo(1, 15);
  });
});

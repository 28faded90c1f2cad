import { describe, expect, it } from 'vitest';
import { accumulateEval, accumulateStats, blockStart, initStats, mergeStats, passBlocks } from '../../shared/passes.js';

/** Seeded rows with a large offset (where naive variance formulas lose precision). */
function rows(n: number, D: number): Float32Array {
  let state = 9;
  const x = new Float32Array(n * D);
  for (let i = 0; i < x.length; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    x[i] = 1000 + (state / 2 ** 32) * 10 * ((i % D) + 1);
  }
  return x;
}

describe('the statistics pass', () => {
  const D = 3;
  const n = 1000;
  const x = rows(n, D);
  const order = Uint32Array.from({ length: n }, (_, i) => i);

  function blockSums(blocks: number): { sums: Float64Array; counts: Uint32Array } {
    const sums = new Float64Array(blocks * 4 * D);
    const counts = new Uint32Array(blocks);
    for (let block = 0; block < blocks; block++) {
      const from = blockStart(n, blocks, block);
      const to = blockStart(n, blocks, block + 1);
      initStats(D, sums, block * 4 * D);
      accumulateStats(x, D, order, from, to, sums, block * 4 * D, 0);
      counts[block] = to - from;
    }
    return { sums, counts };
  }

  it('merges blocks into the mean, population std, min and max of a direct two-pass computation', () => {
    const blocks = passBlocks(n);
    const { sums, counts } = blockSums(blocks);
    const merged = mergeStats(sums, counts, blocks, D);
    for (let j = 0; j < D; j++) {
      let mean = 0;
      for (let i = 0; i < n; i++) mean += x[i * D + j] as number;
      mean /= n;
      let m2 = 0;
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < n; i++) {
        const v = x[i * D + j] as number;
        m2 += (v - mean) ** 2;
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(merged.mean[j]).toBeCloseTo(mean, 9);
      expect(merged.std[j]).toBeCloseTo(Math.sqrt(m2 / n), 9);
      expect([merged.min[j], merged.max[j]]).toEqual([min, max]);
    }
    expect(merged.rows).toBe(n);
  });

  it('gives the same bits however a block is split into runs (as a paged worker reads it)', () => {
    const whole = new Float64Array(4 * D);
    initStats(D, whole, 0);
    accumulateStats(x, D, null, 0, 100, whole, 0, 0);
    const split = new Float64Array(4 * D);
    initStats(D, split, 0);
    let count = accumulateStats(x, D, null, 0, 37, split, 0, 0);
    count = accumulateStats(x, D, null, 37, 100, split, 0, count);
    expect(count).toBe(100);
    expect(Array.from(split)).toEqual(Array.from(whole));
    const evalWhole = new Float64Array(2);
    const w = Float64Array.from([0.001, -0.002, 0.0005]);
    accumulateEval(x, new Uint8Array(n).fill(1), D, null, 0, 100, w, 0.1, evalWhole, 0);
    const evalSplit = new Float64Array(2);
    accumulateEval(x, new Uint8Array(n).fill(1), D, null, 0, 50, w, 0.1, evalSplit, 0);
    accumulateEval(x, new Uint8Array(n).fill(1), D, null, 50, 100, w, 0.1, evalSplit, 0);
    expect(Array.from(evalSplit)).toEqual(Array.from(evalWhole));
  });

  it('gives a constant column a standard deviation of 1', () => {
    const constant = new Float32Array(20).fill(5);
    const sums = new Float64Array(4);
    initStats(1, sums, 0);
    accumulateStats(constant, 1, null, 0, 20, sums, 0, 0);
    expect(mergeStats(sums, Uint32Array.from([20]), 1, 1).std[0]).toBe(1);
  });
});

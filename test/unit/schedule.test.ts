import { describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig } from '../../coordinator/config.js';
import {
  batchesPerEpoch,
  chunkStart,
  defaultChunksPerBatch,
  epochOrder,
  epochOrderInto,
  evaluatesAfterEpoch,
  locateStep,
  splitRows,
} from '../../shared/schedule.js';

describe('the batch schedule', () => {
  it('covers every training row exactly once per epoch, last batch smaller and kept', () => {
    const { train } = splitRows(103, 0.2, 9);
    expect(train.length).toBe(82);
    const B = 16;
    const perEpoch = batchesPerEpoch(train.length, B);
    expect(perEpoch).toBe(6);
    for (let epoch = 0; epoch < 3; epoch++) {
      const order = epochOrder(train, 9, epoch, true);
      const seen: number[] = [];
      for (let batch = 0; batch < perEpoch; batch++) {
        const location = locateStep(epoch * perEpoch + batch, train.length, B, 4);
        expect(location.epoch).toBe(epoch);
        expect(location.size).toBe(batch === perEpoch - 1 ? 82 - 5 * 16 : 16);
        seen.push(...order.subarray(location.start, location.start + location.size));
      }
      expect(seen.sort((a, b) => a - b)).toEqual(Array.from(train));
    }
  });

  it('cuts a batch into chunks that partition it, and never more chunks than rows', () => {
    for (const size of [1, 2, 3, 7, 16, 100]) {
      const location = locateStep(0, size, size, 16);
      expect(location.chunks).toBe(Math.min(16, size));
      let covered = 0;
      for (let c = 0; c < location.chunks; c++) {
        const rows = chunkStart(size, location.chunks, c + 1) - chunkStart(size, location.chunks, c);
        expect(rows).toBeGreaterThanOrEqual(1);
        covered += rows;
      }
      expect(covered).toBe(size);
    }
  });

  it('is a pure function of the seed and the epoch', () => {
    const { train } = splitRows(50, 0, 3);
    expect(Array.from(epochOrder(train, 3, 2, true))).toEqual(Array.from(epochOrder(train, 3, 2, true)));
    expect(Array.from(epochOrder(train, 3, 2, true))).not.toEqual(Array.from(epochOrder(train, 3, 1, true)));
    expect(Array.from(epochOrder(train, 4, 2, true))).not.toEqual(Array.from(epochOrder(train, 3, 2, true)));
    expect(Array.from(epochOrder(train, 3, 2, false))).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('holds out a seeded validation set disjoint from the training rows', () => {
    const a = splitRows(1000, 0.25, 7);
    const b = splitRows(1000, 0.25, 7);
    expect(a.validation.length).toBe(250);
    expect(Array.from(a.validation)).toEqual(Array.from(b.validation));
    const all = new Set([...a.train, ...a.validation]);
    expect(all.size).toBe(1000);
    expect(Array.from(splitRows(1000, 0.25, 8).validation)).not.toEqual(Array.from(a.validation));
  });

  it('shuffles to a near-uniform permutation', () => {
    // Position counts of row 0 over many seeds: each of 4 positions about a quarter of the time.
    const counts = [0, 0, 0, 0];
    const rows = Uint32Array.from([0, 1, 2, 3]);
    for (let seed = 0; seed < 4000; seed++) {
      const order = epochOrder(rows, seed, 0, true);
      const position = order.indexOf(0);
      counts[position] = (counts[position] as number) + 1;
    }
    for (const count of counts) expect(Math.abs(count - 1000)).toBeLessThan(150);
  });
});

describe('evaluatesAfterEpoch', () => {
  it('is every k-th epoch and the last one', () => {
    const evaluated = (epochs: number, every: number): number[] =>
      Array.from({ length: epochs }, (_, epoch) => epoch).filter((epoch) => evaluatesAfterEpoch(epoch, epochs, every));
    expect(evaluated(4, 1)).toEqual([0, 1, 2, 3]);
    expect(evaluated(4, 3)).toEqual([2, 3]);
    expect(evaluated(7, 3)).toEqual([2, 5, 6]);
    expect(evaluated(3, 10)).toEqual([2]);
  });
});

describe('the default chunk count', () => {
  it('is min(64, max(1, floor(B / 32))): a function of the batch size alone, overridden by --chunks', () => {
    expect([1, 31, 32, 63, 64, 160, 2047, 2048, 4096, 8192, 1 << 20].map(defaultChunksPerBatch)).toEqual([1, 1, 1, 1, 2, 5, 63, 64, 64, 64, 64]);
    expect(resolveCoordinatorConfig({ dataPath: 'x', batchSize: 4096 }).chunksPerBatch).toBe(64);
    expect(resolveCoordinatorConfig({ dataPath: 'x' }).chunksPerBatch).toBe(2); // B = 64 by default
    expect(resolveCoordinatorConfig({ dataPath: 'x', batchSize: 4096, chunksPerBatch: 8 }).chunksPerBatch).toBe(8);
  });
});

describe('epochOrderInto', () => {
  it('writes into a reused buffer the order epochOrder returns, for row and block shuffles, and refuses a buffer of another length', () => {
    const train = Uint32Array.from({ length: 1_000 }, (_, i) => 3 * i + 1);
    const out = new Uint32Array(train.length);
    for (const blockRows of [0, 7, 64]) {
      for (const epoch of [0, 1, 5]) {
        const expected = epochOrder(train, 9, epoch, true, blockRows);
        expect(epochOrderInto(train, 9, epoch, blockRows, out)).toBe(out);
        expect(Array.from(out)).toEqual(Array.from(expected));
      }
    }
    expect(() => epochOrderInto(train, 9, 0, 0, new Uint32Array(999))).toThrow(/an order of 999 for 1000 rows/);
  });
});

// The reduction tree 'tree2-v1' (shared/reduce.ts) against an independent, recursive float64
// definition of the same tree: any cut of the chunks into ranges, any decomposition into aligned
// subtrees and any arrival order give the root's bits; overlapping subtrees are refused.

import { describe, expect, it } from 'vitest';
import { alignedShares } from '../../coordinator/assignment.js';
import { decomposeRange, reduceSubtreeInPlace, subtreeEnd, subtreeStart, TreeParts, treeLevels } from '../../shared/reduce.js';

const WIDTH = 3;

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32;
  };
}

/** Leaf values with a wide exponent range and near-cancellations, so the order of additions shows in the bits. */
function leaves(chunks: number, seed: number): Float64Array {
  const next = random(seed);
  const values = new Float64Array(chunks * WIDTH);
  for (let i = 0; i < values.length; i++) {
    values[i] = (next() - 0.5) * 10 ** Math.floor(next() * 30 - 15);
    if (i % 5 === 0 && i >= WIDTH) values[i] = -values[i - WIDTH]! * (1 + 1e-13);
  }
  return values;
}

/** The definition, written independently: node (l, i) over C leaves, padded to a power of two. */
function referenceNode(values: Float64Array, chunks: number, level: number, index: number): Float64Array {
  if (level === 0) return values.slice(index * WIDTH, (index + 1) * WIDTH);
  const left = referenceNode(values, chunks, level - 1, 2 * index);
  const rightStart = (2 * index + 1) * 2 ** (level - 1);
  if (rightStart >= chunks) return left;
  const right = referenceNode(values, chunks, level - 1, 2 * index + 1);
  return left.map((v, k) => v + right[k]!);
}

function referenceRoot(values: Float64Array, chunks: number): number[] {
  let levels = 0;
  while (2 ** levels < chunks) levels++;
  return Array.from(referenceNode(values, chunks, levels, 0));
}

/** A subtree's value the way a worker computes it: its leaves copied, reduced in place. */
function workerSubtree(values: Float64Array, chunks: number, level: number, index: number): Float64Array {
  const start = subtreeStart(level, index);
  const end = subtreeEnd(level, index, chunks);
  const copy = values.slice(start * WIDTH, end * WIDTH);
  reduceSubtreeInPlace(copy, WIDTH, start, level, index, chunks);
  return copy.subarray(0, WIDTH);
}

/** Random cut points of [0, chunks) into ranges. */
function randomRanges(chunks: number, next: () => number): [number, number][] {
  const ranges: [number, number][] = [];
  let at = 0;
  while (at < chunks) {
    const end = Math.min(chunks, at + 1 + Math.floor(next() * Math.max(1, chunks / 3)));
    ranges.push([at, end]);
    at = end;
  }
  return ranges;
}

describe('the reduction tree', () => {
  it('gives the reference root for every chunk count, any cut into ranges and any arrival order', () => {
    const parts = new TreeParts(200, WIDTH);
    const out = new Float64Array(WIDTH);
    let linearDiffers = false;
    for (const chunks of [...Array.from({ length: 70 }, (_, i) => i + 1), 100, 127, 128, 129, 200]) {
      const values = leaves(chunks, chunks * 7 + 1);
      const expected = referenceRoot(values, chunks);
      const next = random(chunks);
      for (let trial = 0; trial < 12; trial++) {
        const subtrees: [number, number][] = [];
        for (const [from, to] of randomRanges(chunks, next)) {
          const ids = decomposeRange(from, to, chunks);
          for (let k = 0; k < ids.length; k += 2) subtrees.push([ids[k]!, ids[k + 1]!]);
        }
        // Deliver in a random order.
        for (let i = subtrees.length - 1; i > 0; i--) {
          const j = Math.floor(next() * (i + 1));
          [subtrees[i], subtrees[j]] = [subtrees[j]!, subtrees[i]!];
        }
        parts.reset(chunks);
        for (const [level, index] of subtrees) expect(parts.accept(level, index, workerSubtree(values, chunks, level, index), 0)).toBe(true);
        expect(parts.pending).toBe(0);
        parts.reduce(out);
        expect(Array.from(out)).toEqual(expected);
      }
      const linear = new Float64Array(WIDTH);
      for (let c = 0; c < chunks; c++) for (let k = 0; k < WIDTH; k++) linear[k]! += values[c * WIDTH + k]!;
      if (Array.from(linear).some((v, k) => v !== expected[k])) linearDiffers = true;
    }
    // The data is hard enough that the tree's order shows in the bits (the old left-to-right sum differs).
    expect(linearDiffers).toBe(true);
  });

  it('decomposes a range into maximal aligned subtrees that cover it exactly, few of them', () => {
    for (const chunks of [1, 2, 3, 5, 8, 13, 64, 100]) {
      const levels = treeLevels(chunks);
      for (let from = 0; from < chunks; from++) {
        for (let to = from + 1; to <= chunks; to++) {
          const ids = decomposeRange(from, to, chunks);
          let at = from;
          for (let k = 0; k < ids.length; k += 2) {
            const [level, index] = [ids[k]!, ids[k + 1]!];
            expect(subtreeStart(level, index)).toBe(at);
            at = subtreeEnd(level, index, chunks);
            // Maximal: the parent either starts elsewhere or reaches outside the range.
            if (level < levels && index % 2 === 0) expect(subtreeEnd(level + 1, index / 2, chunks)).toBeGreaterThan(to);
          }
          expect(at).toBe(to);
          expect(ids.length / 2).toBeLessThanOrEqual(2 * Math.max(1, Math.ceil(Math.log2(to - from + 1))));
        }
      }
      expect(decomposeRange(0, chunks, chunks)).toEqual([levels, 0]);
    }
  });

  it('refuses a subtree overlapping chunks already covered, whole, and counts nothing twice', () => {
    const values = leaves(8, 3);
    const parts = new TreeParts(8, WIDTH);
    parts.reset(8);
    expect(parts.accept(1, 1, workerSubtree(values, 8, 1, 1), 0)).toBe(true); // chunks 2, 3
    expect(parts.accept(2, 0, workerSubtree(values, 8, 2, 0), 0)).toBe(false); // 0-3 overlaps
    expect(parts.accept(1, 1, workerSubtree(values, 8, 1, 1), 0)).toBe(false); // a backup's copy
    expect(parts.pending).toBe(6);
    expect(parts.has(0)).toBe(false);
    expect(parts.accept(1, 0, workerSubtree(values, 8, 1, 0), 0)).toBe(true);
    expect(parts.accept(2, 1, workerSubtree(values, 8, 2, 1), 0)).toBe(true);
    expect(parts.pending).toBe(0);
    const out = new Float64Array(WIDTH);
    parts.reduce(out);
    expect(Array.from(out)).toEqual(referenceRoot(values, 8));
  });

  it('refuses to reduce while a chunk is uncovered', () => {
    const parts = new TreeParts(4, WIDTH);
    parts.reset(4);
    parts.accept(1, 0, new Float64Array(WIDTH), 0);
    expect(() => parts.reduce(new Float64Array(WIDTH))).toThrow(/uncovered/);
  });
});

describe('aligned shares', () => {
  it('cuts the chunks into contiguous, non-empty, aligned ranges: one subtree each when counts are powers of two', () => {
    for (const chunks of [1, 2, 3, 7, 8, 48, 64, 100]) {
      for (let workers = 1; workers <= chunks; workers++) {
        const bounds = alignedShares(chunks, workers);
        expect(bounds[0]).toBe(0);
        expect(bounds[workers]).toBe(chunks);
        for (let i = 0; i < workers; i++) expect(bounds[i + 1]!).toBeGreaterThan(bounds[i]!);
        const isPowerOfTwo = (n: number): boolean => (n & (n - 1)) === 0;
        if (isPowerOfTwo(chunks) && isPowerOfTwo(workers)) {
          for (let i = 0; i < workers; i++) expect(decomposeRange(bounds[i]!, bounds[i + 1]!, chunks).length).toBe(2);
        }
        // Each share is at most 2 + 2·log2(granules) subtrees, whatever the counts.
        for (let i = 0; i < workers; i++)
          expect(decomposeRange(bounds[i]!, bounds[i + 1]!, chunks).length / 2).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(chunks + 1)));
      }
    }
    expect(alignedShares(64, 2)).toEqual([0, 32, 64]);
    expect(alignedShares(64, 3)).toEqual([0, 16, 32, 64]);
  });
});

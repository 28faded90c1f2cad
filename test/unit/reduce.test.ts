import { describe, expect, it } from 'vitest';
import { ChunkParts } from '../../shared/reduce.js';

const CHUNKS = 100_000;
const WIDTH = 3;

/** Seeded values with a wide exponent range and cancellations (pairs of ±large). */
function parts(): Float64Array {
  let state = 12_345;
  const next = (): number => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32;
  };
  const values = new Float64Array(CHUNKS * WIDTH);
  for (let i = 0; i < values.length; i++) {
    const magnitude = 10 ** Math.floor(next() * 40 - 20);
    values[i] = (next() - 0.5) * magnitude;
    if (i % 7 === 0 && i + WIDTH < values.length) values[i + WIDTH] = -values[i]! * (1 + 1e-12); // near-cancellation
  }
  return values;
}

function shuffled(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let state = seed;
  for (let i = n - 1; i > 0; i--) {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

describe('ChunkParts', () => {
  const values = parts();

  it('reduces to identical bits whatever the arrival order and grouping of 10^5 parts', () => {
    const parts = new ChunkParts(CHUNKS, WIDTH);
    const first = new Float64Array(WIDTH);
    const out = new Float64Array(WIDTH);
    let naiveDiffers = false;
    for (let trial = 0; trial < 100; trial++) {
      parts.reset(CHUNKS);
      const order = shuffled(CHUNKS, trial + 1);
      const naive = new Float64Array(WIDTH);
      // Deliver in random groups (as workers would), each group's chunks in arrival order.
      for (let i = 0; i < CHUNKS; ) {
        const group = 1 + ((i * 31 + trial) % 97);
        for (const c of order.slice(i, i + group)) {
          parts.accept(c, values, c * WIDTH);
          for (let k = 0; k < WIDTH; k++) naive[k]! += values[c * WIDTH + k]!;
        }
        i += group;
      }
      expect(parts.pending).toBe(0);
      parts.reduce(out);
      if (trial === 0) first.set(out);
      expect(Array.from(out)).toEqual(Array.from(first));
      if (Array.from(naive).some((v, k) => v !== first[k])) naiveDiffers = true;
    }
    // Summing in arrival order instead would not have been reproducible on this data.
    expect(naiveDiffers).toBe(true);
  });

  it('keeps the first copy of a chunk and ignores a second (backup) copy', () => {
    const parts = new ChunkParts(2, 1);
    parts.reset(2);
    expect(parts.accept(0, Float64Array.from([1]), 0)).toBe(true);
    expect(parts.accept(0, Float64Array.from([100]), 0)).toBe(false);
    expect(parts.pending).toBe(1);
    parts.accept(1, Float64Array.from([2]), 0);
    const out = new Float64Array(1);
    parts.reduce(out);
    expect(out[0]).toBe(3);
  });
});

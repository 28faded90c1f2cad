// A small seeded random number generator (xoshiro128**, seeded by splitmix32) and the
// Fisher–Yates shuffle built on it. Same seed, same numbers, on every machine.

import { loadNativeAddon } from './native-addon.js';

function splitmix32(state: number): [next: number, output: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/** The generator's state for (seed, stream): four words of splitmix32. */
export function seedState(seed: number, stream: number): Uint32Array {
  let state = (seed ^ Math.imul(stream + 1, 0x27d4eb2d)) | 0;
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const [next, output] = splitmix32(state);
    state = next;
    s[i] = output;
  }
  return s;
}

/** Returns a generator of uniform doubles in [0, 1) with 53 random bits, for (seed, stream). */
export function createRandom(seed: number, stream: number): () => number {
  const s = seedState(seed, stream);
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  };
  return () => ((nextUint32() >>> 5) * 67_108_864 + (nextUint32() >>> 6)) / 9_007_199_254_740_992;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Shuffles `values` in place (Fisher–Yates) with the generator given. */
export function shuffleInPlace(values: Uint32Array, random: () => number): void {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const held = values[i]!;
    values[i] = values[j]!;
    values[j] = held;
  }
}

interface ShuffleAddon {
  /** shuffleInPlace(values, the generator of `state`), the same swaps (native/shuffle.c). */
  shuffle(values: Uint32Array, state: Uint32Array): void;
}

/**
 * shuffleInPlace(values, createRandom(seed, stream)): the same permutation, through the native
 * addon native/shuffle.c where it is built (its draws run ahead and prefetch the rows to swap:
 * an epoch's order of millions of rows misses the cache at every swap), else here.
 */
export function shuffleSeeded(values: Uint32Array, seed: number, stream: number): void {
  const addon = loadNativeAddon<ShuffleAddon>('shuffle');
  if (addon === undefined) shuffleInPlace(values, createRandom(seed, stream));
  else addon.shuffle(values, seedState(seed, stream));
}

// The epoch order's native shuffle (native/shuffle.c, through shared/rng.ts shuffleSeeded) against
// the JavaScript Fisher–Yates with the same generator: the same permutation bit for bit, for
// every length around the addon's look-ahead of 16 draws, extreme seeds and streams, and a
// training-sized array; the generator's state is left as JavaScript's would be. Without the addon
// shuffleSeeded is the JavaScript path itself (DPT_NATIVE=off).

import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../../shared/native-addon.js';
import { createRandom, seedState, shuffleInPlace, shuffleSeeded } from '../../shared/rng.js';
import { epochOrder } from '../../shared/schedule.js';

interface ShuffleAddon {
  shuffle(values: Uint32Array, state: Uint32Array): void;
}

const addon = loadNativeAddon<ShuffleAddon>('shuffle', 'require')!;

function identity(n: number): Uint32Array {
  const values = new Uint32Array(n);
  for (let i = 0; i < n; i++) values[i] = i;
  return values;
}

/** The plain JavaScript shuffle, written here from the algorithm (not shared/rng.ts's loop). */
function referenceShuffle(n: number, seed: number, stream: number): Uint32Array {
  const values = identity(n);
  const random = createRandom(seed, stream);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return values;
}

describe('the native shuffle', () => {
  it('gives the JavaScript permutation for every length from 0 to 70 and around the look-ahead', () => {
    for (let n = 0; n <= 70; n++) {
      for (const [seed, stream] of [
        [1, 0],
        [0, 7],
        [0xffff_ffff, 1_000_000_000],
      ] as const) {
        const values = identity(n);
        addon.shuffle(values, seedState(seed, stream));
        expect(Array.from(values), `n=${n} seed=${seed} stream=${stream}`).toEqual(Array.from(referenceShuffle(n, seed, stream)));
      }
    }
  });

  it('gives the JavaScript permutation at 1,000,003 rows, and leaves the generator where JavaScript would', () => {
    const n = 1_000_003;
    const native = identity(n);
    const state = seedState(42, 3);
    addon.shuffle(native, state);
    const script = identity(n);
    shuffleInPlace(script, createRandom(42, 3));
    expect(Buffer.from(native.buffer).equals(Buffer.from(script.buffer))).toBe(true);
    // 2 draws of 32 bits per swap: the JavaScript generator after n − 1 swaps gives the next double.
    const random = createRandom(42, 3);
    for (let i = 0; i < 2 * (n - 1); i += 2) random();
    expect(state).not.toEqual(seedState(42, 3));
    // The next double of the state the addon left, by xoshiro128** written out here.
    const next = ((): number => {
      const words = state.slice();
      const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));
      const u32 = (): number => {
        const result = Math.imul(rotl(Math.imul(words[1]!, 5), 7), 9) >>> 0;
        const t = words[1]! << 9;
        words[2]! ^= words[0]!;
        words[3]! ^= words[1]!;
        words[1]! ^= words[2]!;
        words[0]! ^= words[3]!;
        words[2]! ^= t;
        words[3] = rotl(words[3]!, 11);
        return result;
      };
      return ((u32() >>> 5) * 67_108_864 + (u32() >>> 6)) / 9_007_199_254_740_992;
    })();
    expect(next).toBe(random());
  });

  it('is what epochOrder uses: its orders equal the JavaScript shuffle of the training rows', () => {
    const train = identity(50_000);
    for (const epoch of [0, 1, 9]) {
      const expected = train.slice();
      shuffleInPlace(expected, createRandom(5, epoch));
      expect(Buffer.from(epochOrder(train, 5, epoch, true).buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      const direct = train.slice();
      shuffleSeeded(direct, 5, epoch);
      expect(Buffer.from(direct.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    }
  });

  it('refuses arguments that are not a Uint32Array and a 4-word state', () => {
    expect(() => addon.shuffle(new Float64Array(4) as unknown as Uint32Array, seedState(1, 0))).toThrow(/Uint32Array/);
    expect(() => addon.shuffle(identity(4), new Uint32Array(3))).toThrow(/Uint32Array\(4\)/);
  });
});

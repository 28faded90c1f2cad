// The native passes (native/passes.c) against their JavaScript twins (shared/passes.ts's
// accumulateStatsScript and accumulateEvalScript, the fround formula for standardization):
// standardization to float32, Welford's statistics row by row (in any split into calls,
// through an order or not), the first non-finite feature, and the evaluation's loss and correct
// count (native fdlibm against V8's Math.exp and Math.log1p, over scores from 0 to beyond exp's
// underflow), bit for bit on seeded data with extreme magnitudes, subnormals and signed zeros; bad
// arguments are refused.

import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../../shared/native-addon.js';
import { accumulateEvalScript, accumulateStatsScript, initStats } from '../../shared/passes.js';
import type { PassesAddon } from '../../shared/passes-native.js';
import { createRandom } from '../../shared/rng.js';

const addon = loadNativeAddon<PassesAddon>('passes', 'require')!;
const random = createRandom(2026, 12);

/** A float32 value of a seeded kind: ordinary, huge, tiny, subnormal, ±0 or a small integer. */
function value(): number {
  const kind = Math.floor(random() * 8);
  const sign = random() < 0.5 ? -1 : 1;
  if (kind === 0) return sign * 3.4e38 * random();
  if (kind === 1) return sign * 1e-40 * random();
  if (kind === 2) return sign * 0;
  if (kind === 3) return Math.round(random() * 20 - 10);
  if (kind === 4) return sign * 1e6 * random();
  return sign * random() * 4;
}

function rows(n: number, D: number): Float32Array {
  return Float32Array.from({ length: n * D }, value);
}

const bytes = (array: Float32Array | Float64Array): Buffer => Buffer.from(array.buffer, array.byteOffset, array.byteLength);

describe('native standardize', () => {
  it('gives fround((x − mean) / std) for every value', () => {
    for (const D of [1, 3, 15, 33]) {
      const x = rows(500, D);
      const mean = Float64Array.from({ length: D }, () => value());
      const std = Float64Array.from({ length: D }, () => Math.abs(value()) || 1);
      const expected = Float32Array.from(x, (v, i) => Math.fround((v - mean[i % D]!) / std[i % D]!));
      addon.standardize(x, D, mean, std);
      expect(bytes(x).equals(bytes(expected)), `D=${D}`).toBe(true);
    }
  });

  it('refuses a length that is not a multiple of D and short mean or std arrays', () => {
    expect(() => addon.standardize(new Float32Array(7), 3, new Float64Array(3), new Float64Array(3))).toThrow(/multiple of D/);
    expect(() => addon.standardize(new Float32Array(6), 3, new Float64Array(2), new Float64Array(3))).toThrow(/mean/);
  });
});

describe('native accumulateStats', () => {
  /** Welford's update in JavaScript, shared/passes.ts's own (the definition the addon follows). */
  const reference = accumulateStatsScript;

  it('gives the JavaScript statistics bit for bit, in any split into calls, through an order or not', () => {
    for (const D of [1, 4, 15]) {
      const N = 3000;
      // Moderate values: Welford's sums of huge values overflow alike in both, which says little.
      const x = Float32Array.from({ length: N * D }, () => (random() - 0.3) * 1000 * (random() < 0.1 ? 1e4 : 1));
      const order = Uint32Array.from({ length: N }, () => Math.floor(random() * N));
      for (const rowsOrder of [null, order]) {
        const offset = 3;
        const native = new Float64Array(offset + 4 * D);
        const script = new Float64Array(offset + 4 * D);
        initStats(D, native, offset);
        initStats(D, script, offset);
        let countNative = 0;
        let countScript = 0;
        for (let from = 0; from < N; ) {
          const to = Math.min(N, from + 1 + Math.floor(random() * 700));
          countNative = addon.accumulateStats(x, D, rowsOrder, from, to, native, offset, countNative);
          countScript = reference(x, D, rowsOrder, from, to, script, offset, countScript);
          from = to;
        }
        expect(countNative).toBe(N);
        expect(countNative).toBe(countScript);
        expect(bytes(native).equals(bytes(script)), `D=${D} order=${rowsOrder !== null}`).toBe(true);
      }
    }
  });

  it('refuses ranges outside x, the order or out', () => {
    const x = new Float32Array(8);
    const out = new Float64Array(8);
    expect(() => addon.accumulateStats(x, 2, null, 0, 5, out, 0, 0)).toThrow(/outside/);
    expect(() => addon.accumulateStats(x, 2, Uint32Array.of(0, 9), 0, 2, out, 0, 0)).toThrow(/past x's rows/);
    expect(() => addon.accumulateStats(x, 2, null, 0, 1, new Float64Array(7), 0, 0)).toThrow(/outside/);
  });
});

describe('native firstNonFinite', () => {
  it('finds the first NaN or ±Infinity and nothing in finite data, the largest floats included', () => {
    const values = Float32Array.from({ length: 10_000 }, value);
    values[17] = 3.4028234663852886e38;
    values[18] = -3.4028234663852886e38;
    expect(addon.firstNonFinite(values)).toBe(-1);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const copy = values.slice();
      copy[9_001] = bad;
      copy[9_500] = Number.NaN;
      expect(addon.firstNonFinite(copy)).toBe(9_001);
    }
    expect(addon.firstNonFinite(new Float32Array(0))).toBe(-1);
  });
});

describe('native accumulateEval', () => {
  /** The evaluation in JavaScript, shared/passes.ts's own (linearScore, logLoss with V8's Math, predictClass). */
  const reference = accumulateEvalScript;

  it('gives the JavaScript loss sums and counts bit for bit, scores from ±0 to past exp’s underflow, in any split, through an order or not', () => {
    for (const D of [1, 3, 15]) {
      const N = 60_000;
      // Scores spread over many binades: |z| from 0 to ~1,000 (exp(−|z|) underflows to 0 past 745).
      const x = Float32Array.from({ length: N * D }, () => {
        const kind = random();
        if (kind < 0.05) return 0;
        const magnitude = kind < 0.5 ? random() * 4 : kind < 0.8 ? random() * 60 : kind < 0.95 ? random() * 1e-6 : random() * 400;
        return random() < 0.5 ? -magnitude : magnitude;
      });
      const y = Uint8Array.from({ length: N }, () => (random() < 0.4 ? 1 : 0));
      const w = Float64Array.from({ length: D }, () => (random() - 0.5) * 3);
      const b = random() - 0.5;
      const order = Uint32Array.from({ length: N }, () => Math.floor(random() * N));
      for (const rowsOrder of [null, order]) {
        const native = new Float64Array(5);
        const script = new Float64Array(5);
        for (let from = 0; from < N; ) {
          const to = Math.min(N, from + 1 + Math.floor(random() * 9_000));
          addon.accumulateEval(x, y, D, rowsOrder, from, to, w, b, native, 2);
          reference(x, y, D, rowsOrder, from, to, w, b, script, 2);
          from = to;
        }
        expect(native[3]).toBeGreaterThan(N / 3);
        expect(bytes(native).equals(bytes(script)), `D=${D} order=${rowsOrder !== null}: ${native[2]} against ${script[2]}`).toBe(true);
      }
    }
  });

  it('gives each row’s loss as JavaScript does, one row at a time, over 2 M seeded scores', () => {
    // One feature of 1 and w = z − b: each call scores one row, so every per-row loss is compared, not only sums.
    const x = Float32Array.of(1);
    const y = Uint8Array.of(1);
    const w = new Float64Array(1);
    const native = new Float64Array(2);
    const script = new Float64Array(2);
    let differing = 0;
    for (let i = 0; i < 2_000_000; i++) {
      const z = (random() - 0.5) * (i % 3 === 0 ? 1_600 : i % 3 === 1 ? 80 : 2);
      w[0] = z;
      y[0] = i & 1;
      native.fill(0);
      script.fill(0);
      addon.accumulateEval(x, y, 1, null, 0, 1, w, 0, native, 0);
      reference(x, y, 1, null, 0, 1, w, 0, script, 0);
      if (native[0] !== script[0]) differing++;
    }
    expect(differing).toBe(0);
  });

  it('refuses ranges outside x, y, the order or out', () => {
    const x = new Float32Array(8);
    const y = new Uint8Array(4);
    const w = new Float64Array(2);
    expect(() => addon.accumulateEval(x, y, 2, null, 0, 5, w, 0, new Float64Array(2), 0)).toThrow(/outside/);
    expect(() => addon.accumulateEval(x, new Uint8Array(2), 2, null, 0, 3, w, 0, new Float64Array(2), 0)).toThrow(/outside/);
    expect(() => addon.accumulateEval(x, y, 2, Uint32Array.of(7), 0, 1, w, 0, new Float64Array(2), 0)).toThrow(/past x's rows/);
    expect(() => addon.accumulateEval(x, y, 2, null, 0, 1, w, 0, new Float64Array(1), 0)).toThrow(/outside/);
  });
});

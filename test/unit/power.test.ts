import { describe, expect, it } from 'vitest';
import { powerOfFraction } from '../../coordinator/power.js';

const scratch = new DataView(new ArrayBuffer(8));

/** A positive finite double as mantissa·2^exponent with an integer mantissa. */
function decompose(value: number): { mantissa: bigint; exponent: bigint } {
  scratch.setFloat64(0, value);
  const bits = scratch.getBigUint64(0);
  const biased = (bits >> 52n) & 0x7ffn;
  const fraction = bits & ((1n << 52n) - 1n);
  return biased === 0n ? { mantissa: fraction, exponent: -1074n } : { mantissa: fraction | (1n << 52n), exponent: biased - 1075n };
}

/**
 * Whether r is base^t correctly rounded, decided in exact integer arithmetic: |base^t − r| is at
 * most half the gap to r's neighbour on that side (the gap below a power of two is half the one above).
 */
function isCorrectlyRounded(base: number, t: number, r: number): boolean {
  const b = decompose(base);
  const rr = decompose(r);
  const exactExponent = b.exponent * BigInt(t);
  const floor = (exactExponent < rr.exponent - 2n ? exactExponent : rr.exponent - 2n) as bigint;
  const exact = (b.mantissa ** BigInt(t)) << (exactExponent - floor);
  const rounded = rr.mantissa << (rr.exponent - floor);
  const halfGapAbove = 1n << (rr.exponent - 1n - floor);
  const isPowerOfTwo = rr.mantissa === 1n << 52n;
  const halfGapBelow = isPowerOfTwo ? halfGapAbove / 2n : halfGapAbove;
  return exact >= rounded ? exact - rounded <= halfGapAbove : rounded - exact <= halfGapBelow;
}

describe('powerOfFraction', () => {
  it('is correctly rounded for the optimizers’ and schedules’ bases, checked in exact integer arithmetic', () => {
    let checked = 0;
    for (const base of [0.9, 0.999, 0.99, 0.95, 0.5, 0.3, 0.7, 0.9999, 0.1, 0.123456789]) {
      const exponents = [...Array.from({ length: 300 }, (_, t) => t + 1), 494, 503, 1024, 2904];
      for (const t of exponents) {
        const r = powerOfFraction(base, t);
        if (r < 1e-280) continue; // below the documented range (Math.pow's result there)
        expect(isCorrectlyRounded(base, t, r), `${base}^${t} = ${r}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(2000);
  });

  it("differs from V8's ** where ** rounds each repeated product (0.9^4, 0.9^3)", () => {
    expect(0.9 ** 4).toBe(0.6561000000000001);
    expect(powerOfFraction(0.9, 4)).toBe(0.6561);
    expect(powerOfFraction(0.9, 3)).toBe(0.7290000000000001); // 0.9 itself is above 9/10
    expect(isCorrectlyRounded(0.9, 4, 0.6561)).toBe(true);
    expect(isCorrectlyRounded(0.9, 4, 0.6561000000000001)).toBe(false);
  });

  it('rounds 0.999^2904 correctly where glibc 2.36 pow() is an ulp off', () => {
    // Python on Debian bookworm prints 0.999 ** 2904.0 as 0.05472399672737824 (one ulp low).
    expect(powerOfFraction(0.999, 2904)).toBe(0.054723996727378245);
    expect(isCorrectlyRounded(0.999, 2904, 0.054723996727378245)).toBe(true);
    expect(isCorrectlyRounded(0.999, 2904, 0.05472399672737824)).toBe(false);
  });

  it('handles the edges: exponent 0, bases 0 and 1, results below 1e-280', () => {
    expect(powerOfFraction(0.3, 0)).toBe(1);
    expect(powerOfFraction(0, 0)).toBe(1);
    expect(powerOfFraction(0, 5)).toBe(0);
    expect(powerOfFraction(1, 123_456_789)).toBe(1);
    expect(powerOfFraction(0.5, 1074)).toBe(5e-324);
    expect(powerOfFraction(0.9, 1e7)).toBe(0);
  });

  it('refuses bases outside [0, 1] and non-integer or negative exponents', () => {
    expect(() => powerOfFraction(1.5, 2)).toThrow(/invariant broken/);
    expect(() => powerOfFraction(-0.5, 2)).toThrow(/invariant broken/);
    expect(() => powerOfFraction(0.5, 1.5)).toThrow(/invariant broken/);
    expect(() => powerOfFraction(0.5, -1)).toThrow(/invariant broken/);
    expect(() => powerOfFraction(Number.NaN, 1)).toThrow(/invariant broken/);
  });
});

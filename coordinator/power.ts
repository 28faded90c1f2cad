// β^t for the optimizers' bias corrections (1 − β1^t, 1 − β2^t) and the step decay's G^k, rounded
// as C's pow() rounds them (glibc's pow, which torch.optim reaches through Python's float ** float).
// Needed because V8's Math.pow and ** with an integer exponent multiply by repeated squaring, one
// rounding per product: 0.9 ** 4 gives 0.6561000000000001 where pow() gives 0.6561, and that ulp
// would change Adam's bits from torch's.
//
// How: exponentiation by squaring in double-double arithmetic (each value an unevaluated sum hi + lo
// carrying ~106 bits, products exact through Dekker's splitting), rounded once at the end. The
// relative error before that rounding is below 2·log2(t)·2^-104, so the result is the correctly
// rounded β^t except when β^t lies within that distance of a rounding midpoint, as glibc's pow is
// (its documented bound is 0.52 ulp; both agree on every case tested in test/unit/power.test.ts).

/** 2^27 + 1: Dekker's constant splitting a double into two 26-bit halves. */
const SPLITTER = 134_217_729;
/** Below this a double-double loses its low half to underflow; plain products are as good there. */
const TINY = 1e-280;

/** The last product of multiply(), as module state so that a step allocates nothing. */
let productHi = 0;
let productLo = 0;

/**
 * base^exponent for 0 ≤ base ≤ 1 and a non-negative integer exponent, correctly rounded (see
 * above) down to 1e-280; below that (where 1 − β^t is 1 and G^k·lr is far below any useful rate)
 * the result is Math.pow's, within an ulp or so. Not for bases above 1: squaring could overflow
 * Dekker's split.
 */
export function powerOfFraction(base: number, exponent: number): number {
  if (!(base >= 0 && base <= 1) || !Number.isSafeInteger(exponent) || exponent < 0) {
    throw new Error(`invariant broken: powerOfFraction(${base}, ${exponent})`);
  }
  let resultHi = 1;
  let resultLo = 0;
  let baseHi = base;
  let baseLo = 0;
  for (let remaining = exponent; remaining > 0; remaining = Math.floor(remaining / 2)) {
    if (baseHi < TINY || resultHi < TINY) return base ** exponent;
    if (remaining % 2 === 1) {
      multiply(resultHi, resultLo, baseHi, baseLo);
      resultHi = productHi;
      resultLo = productLo;
    }
    if (remaining > 1) {
      multiply(baseHi, baseLo, baseHi, baseLo);
      baseHi = productHi;
      baseLo = productLo;
    }
  }
  return resultHi;
}

/** (ah + al)·(bh + bl) into productHi + productLo, normalized: productHi = fl(productHi + productLo). */
function multiply(ah: number, al: number, bh: number, bl: number): void {
  const product = ah * bh;
  // Dekker's two-product: the exact rounding error of ah·bh, without a fused multiply-add.
  const aSplit = SPLITTER * ah;
  const aHigh = aSplit - (aSplit - ah);
  const aLow = ah - aHigh;
  const bSplit = SPLITTER * bh;
  const bHigh = bSplit - (bSplit - bh);
  const bLow = bh - bHigh;
  const error = aHigh * bHigh - product + aHigh * bLow + aLow * bHigh + aLow * bLow;
  const lo = error + (ah * bl + al * bh);
  productHi = product + lo;
  productLo = lo - (productHi - product);
}

// TypeScript ports of the WebAssembly kernels' exp (x ≤ 0) and log1p (0 ≤ x < 2^53), operation for
// operation (shared/kernel-wasm.ts, MATH_FUNCTIONS: fdlibm's e_exp.c and s_log1p.c, Sun
// Microsystems 1993, "permission to use, copy, modify, and distribute this software is freely
// granted, provided that this notice is preserved"), so a TypeScript kernel gives the wasm
// kernels' bits on any Node.js version, where Math.exp and Math.log1p may change between versions.
// Tested bit for bit against the wasm functions.

const word = new Float64Array(1);
const halves = new Int32Array(word.buffer);
// Typed arrays use the platform's byte order; every Node.js platform we run on is little-endian.
const HIGH = new Uint8Array(Float64Array.of(1).buffer)[7] === 0x3f ? 1 : 0;
const LOW = 1 - HIGH;

/** The double with high word `hi` and low word `lo` (fdlibm's INSERT_WORDS). */
function fromWords(hi: number, lo: number): number {
  halves[HIGH] = hi;
  halves[LOW] = lo;
  return word[0]!;
}

/** High 32 bits of x as a signed int (fdlibm's GET_HIGH_WORD). */
function highWord(x: number): number {
  word[0] = x;
  return halves[HIGH]!;
}

/** x with its high 32 bits replaced by `hi` (fdlibm's SET_HIGH_WORD). */
function setHighWord(x: number, hi: number): number {
  word[0] = x;
  halves[HIGH] = hi;
  return word[0]!;
}

/** 2^k for −1022 ≤ k ≤ 1023. */
function pow2(k: number): number {
  return fromWords((0x3ff00000 + (k << 20)) | 0, 0);
}

const LN2_HI = fromWords(0x3fe62e42, 0xfee00000 | 0);
const LN2_LO = fromWords(0x3dea39ef, 0x35793c76);
const NEG_LN2_LO = fromWords(0xbdea39ef | 0, 0x35793c76);
const INV_LN2 = fromWords(0x3ff71547, 0x652b82fe);
const U_THRESHOLD = fromWords(0xc0874910 | 0, 0xd52d3051 | 0);
const TWO_M1000 = fromWords(0x01700000, 0);
const P1 = fromWords(0x3fc55555, 0x5555553e);
const P2 = fromWords(0xbf66c16c | 0, 0x16bebd93);
const P3 = fromWords(0x3f11566a, 0xaf25de2c | 0);
const P4 = fromWords(0xbebbbd41 | 0, 0xc5d26bf1 | 0);
const P5 = fromWords(0x3e663769, 0x72bea4d0);
const LP1 = fromWords(0x3fe55555, 0x55555593);
const LP2 = fromWords(0x3fd99999, 0x9997fa04 | 0);
const LP3 = fromWords(0x3fd24924, 0x94229359 | 0);
const LP4 = fromWords(0x3fcc71c5, 0x1d8e78af);
const LP5 = fromWords(0x3fc74664, 0x96cb03de | 0);
const LP6 = fromWords(0x3fc39a09, 0xd078c69f | 0);
const LP7 = fromWords(0x3fc2f112, 0xdf3e5244 | 0);

/** e^x for x ≤ 0, < 1 ulp: x = k·ln2 + r, exp(r) = 1 + r + r·R1/(2 − R1), scaled by 2^k. */
export function exp(x: number): number {
  if (Number.isNaN(x)) return x;
  const hx = highWord(x) & 0x7fffffff;
  if (hx >= 0x40862e42 && x < U_THRESHOLD) return 0; // below u_threshold exp underflows to 0
  let k = 0;
  let hi = 0;
  let lo = 0;
  if (hx > 0x3fd62e42) {
    if (hx < 0x3ff0a2b2) {
      k = -1;
      hi = x + LN2_HI;
      lo = NEG_LN2_LO;
    } else {
      k = Math.trunc(INV_LN2 * x + -0.5); // i32.trunc_f64_s
      hi = x - k * LN2_HI;
      lo = k * LN2_LO;
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    return 1 + x;
  }
  const t = x * x;
  const c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k === 0) return 1 - ((x * c) / (c - 2) - x);
  const y = 1 - (lo - (x * c) / (2 - c) - hi);
  if (k >= -1021) return y * pow2(k);
  return y * pow2(k + 1000) * TWO_M1000;
}

/** log(1 + x) for 0 ≤ x < 2^53, < 1 ulp: 1 + x = 2^k·(1 + f), log(1 + f) = f − (f²/2 − s·(f²/2 + R(s²))). */
export function log1p(x: number): number {
  const hx = highWord(x);
  let k = 1;
  let f = 0;
  let hu = 0;
  let c = 0;
  if (hx < 0x3fda827a) {
    if (hx < 0x3e200000) {
      if (hx < 0x3c900000) return x;
      return x - x * x * 0.5;
    }
    k = 0;
    f = x;
    hu = 1;
  }
  if (hx >= 0x7ff00000) return x + x; // NaN, +∞
  if (k !== 0) {
    let u = 1 + x;
    hu = highWord(u);
    k = (hu >> 20) - 1023;
    c = k > 0 ? 1 - (u - x) : x - (u - 1);
    c = c / u;
    hu &= 0x000fffff;
    if (hu < 0x6a09e) {
      u = setHighWord(u, hu | 0x3ff00000);
    } else {
      k += 1;
      u = setHighWord(u, hu | 0x3fe00000);
      hu = (0x00100000 - hu) >> 2;
    }
    f = u - 1;
  }
  const hfsq = 0.5 * f * f;
  const dk = k;
  if (hu === 0) {
    if (f === 0) {
      if (k === 0) return 0;
      return dk * LN2_HI + (c + dk * LN2_LO);
    }
    const R = hfsq * (1 - 0.6666666666666666 * f); // fdlibm writes 0.66666666666666666, the same double
    if (k === 0) return f - R;
    return dk * LN2_HI - (R - (dk * LN2_LO + c) - f);
  }
  const s = f / (2 + f);
  const z = s * s;
  const R = z * (LP1 + z * (LP2 + z * (LP3 + z * (LP4 + z * (LP5 + z * (LP6 + z * LP7))))));
  if (k === 0) return f - (hfsq - s * (hfsq + R));
  return dk * LN2_HI - (hfsq - (s * (hfsq + R) + (dk * LN2_LO + c)) - f);
}

// fdlibm's exp (x ≤ 0) and log1p (0 ≤ x) as shared/fdlibm.ts ports them, constant for constant
// and operation for operation (fdlibm's e_exp.c and s_log1p.c, Sun Microsystems 1993, "permission
// to use, copy, modify, and distribute this software is freely granted, provided that this notice
// is preserved"); not libm's. Included by the gradient kernel (native/kernel.c) and the passes
// (native/passes.c): one copy, so both give the same bits. V8's Math.exp and Math.log1p are the
// same fdlibm routines (its src/base/ieee754.cc), so these also give JavaScript's bits.
// build.mjs and shared/native-addon.ts count this header in every addon's source digest.

#ifndef DPT_FDLIBM_H
#define DPT_FDLIBM_H

#include <stdint.h>
#include <string.h>

static inline uint64_t bits_of(double x) {
  uint64_t u;
  memcpy(&u, &x, 8);
  return u;
}
static inline double from_bits(uint64_t u) {
  double x;
  memcpy(&x, &u, 8);
  return x;
}
static inline double from_words(uint32_t hi, uint32_t lo) { return from_bits(((uint64_t)hi << 32) | lo); }
static inline int32_t high_word(double x) { return (int32_t)(uint32_t)(bits_of(x) >> 32); }
static inline double set_high_word(double x, int32_t hi) { return from_bits((bits_of(x) & 0xffffffffu) | ((uint64_t)(uint32_t)hi << 32)); }
/** 2^k for −1022 ≤ k ≤ 1023 (fdlibm's INSERT_WORDS(0x3ff00000 + (k << 20), 0), in modular uint32 arithmetic). */
static inline double pow2(int32_t k) { return from_words(0x3ff00000u + ((uint32_t)k << 20), 0); }

#define LN2_HI from_words(0x3fe62e42, 0xfee00000)
#define LN2_LO from_words(0x3dea39ef, 0x35793c76)
#define NEG_LN2_LO from_words(0xbdea39ef, 0x35793c76)
#define INV_LN2 from_words(0x3ff71547, 0x652b82fe)
#define U_THRESHOLD from_words(0xc0874910, 0xd52d3051)
#define TWO_M1000 from_words(0x01700000, 0)
#define P1 from_words(0x3fc55555, 0x5555553e)
#define P2 from_words(0xbf66c16c, 0x16bebd93)
#define P3 from_words(0x3f11566a, 0xaf25de2c)
#define P4 from_words(0xbebbbd41, 0xc5d26bf1)
#define P5 from_words(0x3e663769, 0x72bea4d0)
#define LP1 from_words(0x3fe55555, 0x55555593)
#define LP2 from_words(0x3fd99999, 0x9997fa04)
#define LP3 from_words(0x3fd24924, 0x94229359)
#define LP4 from_words(0x3fcc71c5, 0x1d8e78af)
#define LP5 from_words(0x3fc74664, 0x96cb03de)
#define LP6 from_words(0x3fc39a09, 0xd078c69f)
#define LP7 from_words(0x3fc2f112, 0xdf3e5244)

/** e^x for x ≤ 0, < 1 ulp: x = k·ln2 + r, exp(r) = 1 + r + r·R1/(2 − R1), scaled by 2^k. */
static inline __attribute__((always_inline)) double dpt_exp(double x) {
  if (x != x) return x;
  uint32_t hx = (uint32_t)high_word(x) & 0x7fffffffu;
  if (hx >= 0x40862e42u && x < U_THRESHOLD) return 0; // below u_threshold exp underflows to 0
  int32_t k = 0;
  double hi = 0, lo = 0;
  if (hx > 0x3fd62e42u) {
    if (hx < 0x3ff0a2b2u) {
      k = -1;
      hi = x + LN2_HI;
      lo = NEG_LN2_LO;
    } else {
      k = (int32_t)(INV_LN2 * x + -0.5); // truncation, as i32.trunc_f64_s (|x| < 746 here)
      double t = (double)k;
      hi = x - t * LN2_HI;
      lo = t * LN2_LO;
    }
    x = hi - lo;
  } else if (hx < 0x3e300000u) {
    return 1 + x;
  }
  double t = x * x;
  double c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k == 0) return 1 - ((x * c) / (c - 2) - x);
  double y = 1 - ((lo - (x * c) / (2 - c)) - hi);
  if (k >= -1021) return y * pow2(k);
  return y * pow2(k + 1000) * TWO_M1000;
}

/** log(1 + x) for 0 ≤ x, < 1 ulp: 1 + x = 2^k·(1 + f), log(1 + f) = f − (f²/2 − s·(f²/2 + R(s²))). */
static inline __attribute__((always_inline)) double dpt_log1p(double x) {
  int32_t hx = high_word(x);
  int32_t k = 1;
  double f = 0, c = 0;
  int32_t hu = 0;
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
  if (k != 0) {
    double u = 1 + x;
    hu = high_word(u);
    k = (hu >> 20) - 1023;
    c = k > 0 ? 1 - (u - x) : x - (u - 1);
    c = c / u;
    hu &= 0x000fffff;
    if (hu < 0x6a09e) {
      u = set_high_word(u, hu | 0x3ff00000);
    } else {
      k += 1;
      u = set_high_word(u, hu | 0x3fe00000);
      hu = (0x00100000 - hu) >> 2;
    }
    f = u - 1;
  }
  double hfsq = 0.5 * f * f;
  double dk = (double)k;
  if (hu == 0) {
    if (f == 0) {
      if (k == 0) return 0;
      return dk * LN2_HI + (c + dk * LN2_LO);
    }
    double R = hfsq * (1 - 0.66666666666666666 * f);
    if (k == 0) return f - R;
    return dk * LN2_HI - ((R - (dk * LN2_LO + c)) - f);
  }
  double s = f / (2 + f);
  double z = s * s;
  double R = z * (LP1 + z * (LP2 + z * (LP3 + z * (LP4 + z * (LP5 + z * (LP6 + z * LP7))))));
  if (k == 0) return f - (hfsq - s * (hfsq + R));
  return dk * LN2_HI - ((hfsq - (s * (hfsq + R) + (dk * LN2_LO + c))) - f);
}

#endif

// dpt's native dense logistic kernel (issue #15): the lanes8 operation order of
// shared/kernel-wasm.ts (its header is the definition; kernel id lanes8-r4-f64acc-1) in C, with
// 8 float64 lanes where the CPU has them, over the WebAssembly memory the worker keeps its rows
// in, addressed by the same byte offsets as the wasm module's accumulate. An optional N-API addon
// (native/build.mjs builds it at install; shared/kernel-native.ts loads it): it must give the
// wasm kernel's bits for every input, only faster.
//
// Why the bits cannot differ: every operation below is one IEEE-754 float64 operation in the
// order's sequence. The 8 partial sums are 8 vector lanes: lane k only ever adds w_j·x_j for
// j ≡ k (mod 8) in increasing j, whether they sit in one 8-lane vector (AVX-512), two 4-lane ones
// (AVX2) or four 2-lane ones (SSE2, NEON). The gradient's out_j are independent across j. The
// build forbids contraction into FMA and fast-math reassociation (-ffp-contract=off
// -fno-fast-math, native/build.mjs); x86-64 and arm64 compute float64 in SSE/NEON registers (no
// x87 excess precision). exp and log1p are ports of shared/fdlibm.ts (native/fdlibm.h: fdlibm's
// e_exp.c and s_log1p.c, Sun Microsystems 1993, "permission to use, copy, modify, and distribute
// this software is freely granted, provided that this notice is preserved"), constant for constant
// and operation for operation; not libm's.
//
// CPU dispatch: the kernel body (the template at the end of this file, included once per vector
// width) is compiled for AVX-512F (1 × 8 lanes), AVX2 (2 × 4) and the baseline (4 × 2: SSE2 on
// x86-64, NEON on arm64); each call picks by the CPU it runs on (__builtin_cpu_supports), so one
// binary runs on any x86-64. Never -march=native. Each width uses vectors its target holds in
// registers: GCC keeps a generic vector wider than the hardware's in memory (measured: the AVX2
// build of an 8-lane vector ran at a third of the WebAssembly kernel's speed).

// dpt-cflags: -Wno-psabi

#include <node_api.h>
#include <stdint.h>
#include <string.h>

#ifndef DPT_KERNEL_TEMPLATE

#if defined(__x86_64__) && defined(__GNUC__)
#define DPT_X86 1
#include <immintrin.h>
#endif

#include "fdlibm.h"

// ---- the lanes8 kernel: scalar helpers, then the template once per vector width ----

static inline float load_f32(const uint8_t *p) {
  float v;
  memcpy(&v, p, 4);
  return v;
}
static inline double load_f64(const uint8_t *p) {
  double v;
  memcpy(&v, p, 8);
  return v;
}
static inline void store_f64(uint8_t *p, double v) { memcpy(p, &v, 8); }
static inline uint32_t load_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

#define DPT_CAT_(a, b) a##_##b
#define DPT_CAT(a, b) DPT_CAT_(a, b)
#define FN(name) DPT_CAT(name, DPT_SUFFIX)
#define DPT_KERNEL_TEMPLATE 1

#ifdef DPT_X86
#define DPT_W 8
#define DPT_SUFFIX avx512
#define DPT_TARGET __attribute__((target("avx512f")))
#include "kernel.c" // this file again, as the template
#undef DPT_W
#undef DPT_SUFFIX
#undef DPT_TARGET

#define DPT_W 4
#define DPT_SUFFIX avx2
#define DPT_TARGET __attribute__((target("avx2")))
#include "kernel.c" // this file again, as the template
#undef DPT_W
#undef DPT_SUFFIX
#undef DPT_TARGET
#endif

#define DPT_W 2
#define DPT_SUFFIX baseline
#define DPT_TARGET
#include "kernel.c" // this file again, as the template
#undef DPT_W
#undef DPT_SUFFIX
#undef DPT_TARGET

typedef double (*accumulate_fn)(const uint8_t *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, double, uint32_t, uint32_t);

/** The widest build this CPU runs, and its name. */
static accumulate_fn pick(const char **isa) {
#ifdef DPT_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    *isa = "avx512f";
    return accumulate_avx512;
  }
  if (__builtin_cpu_supports("avx2")) {
    *isa = "avx2";
    return accumulate_avx2;
  }
#endif
  *isa = "baseline";
  return accumulate_baseline;
}

// ---- N-API ----

static napi_value fail(napi_env env, const char *message, int range) {
  if (range)
    napi_throw_range_error(env, "DPT_NATIVE_KERNEL", message);
  else
    napi_throw_type_error(env, "DPT_NATIVE_KERNEL", message);
  return NULL;
}

/** argv[i] as a uint32 (a byte offset, D or n); 0 and false when it is not an integer in [0, 2^32). */
static int get_u32(napi_env env, napi_value value, uint32_t *result) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok || !(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) return 0;
  *result = (uint32_t)d;
  return 1;
}

/** Runs `kernel` on argv[0..9] (memory, x, y, D, order, n, w, b, out, classWeights) after checking every address. */
static napi_value run(napi_env env, napi_value *argv, accumulate_fn kernel) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array)
    return fail(env, "accumulate: the memory must be a Uint8Array", 0);
  uint32_t x, y, D, order, n, w, out, cw;
  double b;
  if (!get_u32(env, argv[1], &x) || !get_u32(env, argv[2], &y) || !get_u32(env, argv[3], &D) || !get_u32(env, argv[4], &order) ||
      !get_u32(env, argv[5], &n) || !get_u32(env, argv[6], &w) || napi_get_value_double(env, argv[7], &b) != napi_ok ||
      !get_u32(env, argv[8], &out) || !get_u32(env, argv[9], &cw))
    return fail(env, "accumulate: offsets, D and n must be integers in [0, 2^32), b a number", 0);
  const uint8_t *mem = data;
  const uint64_t len = length, rowBytes = 4 * (uint64_t)D;
  // Every byte the kernel touches lies in the view (what a wasm trap guarantees for the wasm kernel), checked before any write.
  int ok = (uint64_t)w + 8 * (uint64_t)D <= len && (uint64_t)out + 8 * ((uint64_t)D + 1) <= len && (cw == 0 || (uint64_t)cw + 16 <= len);
  if (ok && order == 0) {
    ok = (uint64_t)x + (uint64_t)n * rowBytes <= len && (uint64_t)y + n <= len;
  } else if (ok) {
    ok = (uint64_t)order + 4 * (uint64_t)n <= len;
    for (uint32_t i = 0; ok && i < n; i++) {
      const uint64_t row = load_u32(mem + order + 4 * (size_t)i);
      ok = (uint64_t)x + (row + 1) * rowBytes <= len && (uint64_t)y + row < len;
    }
  }
  if (!ok) return fail(env, "native kernel: an address lies outside the memory", 1);
  napi_value result;
  napi_create_double(env, kernel(mem, x, y, D, order, n, w, b, out, cw), &result);
  return result;
}

/** accumulate(memory: Uint8Array, x, y, D, order, n, w, b, out, classWeights) → Σ L, on the widest build this CPU runs. */
static napi_value Accumulate(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 10) return fail(env, "accumulate takes 10 arguments", 0);
  const char *isa;
  return run(env, argv, pick(&isa));
}

/** accumulateOn(isa, memory, x, …): the same on the build `isa` ('avx512f', 'avx2', 'baseline'), for tests; the CPU must run it. */
static napi_value AccumulateOn(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  char name[16];
  size_t size;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 11) return fail(env, "accumulateOn takes 11 arguments", 0);
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &size) != napi_ok) return fail(env, "accumulateOn: the build must be a string", 0);
  const char *widest;
  pick(&widest);
  accumulate_fn kernel = NULL;
  if (strcmp(name, "baseline") == 0) kernel = accumulate_baseline;
#ifdef DPT_X86
  if (strcmp(name, "avx2") == 0 && strcmp(widest, "baseline") != 0) kernel = accumulate_avx2;
  if (strcmp(name, "avx512f") == 0 && strcmp(widest, "avx512f") == 0) kernel = accumulate_avx512;
#endif
  if (kernel == NULL) return fail(env, "accumulateOn: this CPU does not run that build", 1);
  return run(env, argv + 1, kernel);
}

static napi_value unary(napi_env env, napi_callback_info info, double (*f)(double)) {
  size_t argc = 1;
  napi_value argv[1];
  double v;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_double(env, argv[0], &v) != napi_ok)
    return fail(env, "expects one number", 0);
  napi_value result;
  napi_create_double(env, f(v), &result);
  return result;
}
static napi_value Exp(napi_env env, napi_callback_info info) { return unary(env, info, dpt_exp); }
static napi_value Log1p(napi_env env, napi_callback_info info) { return unary(env, info, dpt_log1p); }

/** The build pick() runs on this CPU: 'avx512f', 'avx2' or 'baseline'. */
static napi_value Isa(napi_env env, napi_callback_info info) {
  (void)info;
  const char *isa;
  pick(&isa);
  napi_value result;
  napi_create_string_utf8(env, isa, NAPI_AUTO_LENGTH, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"accumulate", NULL, Accumulate, NULL, NULL, NULL, napi_default, NULL},
      {"accumulateOn", NULL, AccumulateOn, NULL, NULL, NULL, napi_default, NULL},
      {"exp", NULL, Exp, NULL, NULL, NULL, napi_default, NULL},
      {"log1p", NULL, Log1p, NULL, NULL, NULL, napi_default, NULL},
      {"isa", NULL, Isa, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

#else // DPT_KERNEL_TEMPLATE: the kernel for vectors of DPT_W float64 lanes (8 / DPT_W of them hold the 8 partial sums)

#define NV (8 / DPT_W)
typedef double FN(vd) __attribute__((vector_size(8 * DPT_W)));
typedef float FN(vf) __attribute__((vector_size(4 * DPT_W)));

DPT_TARGET static inline FN(vd) FN(load_x)(const uint8_t *p) {
  // float32 → float64 is exact. GCC 12 lowers __builtin_convertvector of 8 or 4 lanes into a
  // load, two half conversions, an extract and an insert (measured: the AVX-512 kernel ran at
  // 0.6× the C reference); the intrinsic is one vcvtps2pd from memory.
#if defined(DPT_X86) && DPT_W == 8
  return (FN(vd))_mm512_cvtps_pd(_mm256_loadu_ps((const float *)p));
#elif defined(DPT_X86) && DPT_W == 4
  return (FN(vd))_mm256_cvtps_pd(_mm_loadu_ps((const float *)p));
#else
  FN(vf) f;
  memcpy(&f, p, sizeof f);
  return __builtin_convertvector(f, FN(vd));
#endif
}
DPT_TARGET static inline FN(vd) FN(load_d)(const uint8_t *p) {
  FN(vd) d;
  memcpy(&d, p, sizeof d);
  return d;
}

/** The order's z for one row: 8 lanes over j < D8, ((S0 + S4) + (S2 + S6)) + ((S1 + S5) + (S3 + S7)), the tail in order, + b. */
DPT_TARGET static inline double FN(score)(const uint8_t *row, const uint8_t *w, uint32_t D, uint32_t D8, double b) {
  FN(vd) s[NV];
  for (int v = 0; v < NV; v++) s[v] = (FN(vd)){0};
  for (uint32_t j = 0; j < D8; j += 8)
    for (int v = 0; v < NV; v++) s[v] = s[v] + FN(load_d)(w + 8 * ((size_t)j + v * DPT_W)) * FN(load_x)(row + 4 * ((size_t)j + v * DPT_W));
  double S[8];
  for (int v = 0; v < NV; v++)
    for (int l = 0; l < DPT_W; l++) S[v * DPT_W + l] = s[v][l];
  double z = ((S[0] + S[4]) + (S[2] + S[6])) + ((S[1] + S[5]) + (S[3] + S[7]));
  for (uint32_t j = D8; j < D; j++) z = z + load_f64(w + 8 * (size_t)j) * (double)load_f32(row + 4 * (size_t)j);
  return z + b;
}

/**
 * z of 4 rows at once, each exactly as score computes it: the rows' partial sums are independent
 * chains of additions, so interleaving them hides the latency of each add (one row alone waits
 * for its previous add at every step) and shares each load of w; no lane changes what it sums.
 */
DPT_TARGET static inline void FN(score4)(const uint8_t *const p[4], const uint8_t *const next[4], const uint8_t *w, uint32_t D, uint32_t D8, double b,
                                          double z[4]) {
  FN(vd) s[4][NV];
  for (int r = 0; r < 4; r++)
    for (int v = 0; v < NV; v++) s[r][v] = (FN(vd)){0};
  for (uint32_t j = 0; j < D8; j += 8) {
    // The next 4 rows' line at the same column, one cache line (16 floats) ahead of need: a row is
    // often exactly a 4 KiB page, where the hardware prefetcher stops (no effect on the bits).
    if ((j & 15) == 0)
      for (int r = 0; r < 4; r++) __builtin_prefetch(next[r] + 4 * (size_t)j, 0, 3);
    for (int v = 0; v < NV; v++) {
      const size_t at = (size_t)j + v * DPT_W;
      const FN(vd) wv = FN(load_d)(w + 8 * at);
      for (int r = 0; r < 4; r++) s[r][v] = s[r][v] + wv * FN(load_x)(p[r] + 4 * at);
    }
  }
  for (int r = 0; r < 4; r++) {
    double S[8];
    for (int v = 0; v < NV; v++)
      for (int l = 0; l < DPT_W; l++) S[v * DPT_W + l] = s[r][v][l];
    double zr = ((S[0] + S[4]) + (S[2] + S[6])) + ((S[1] + S[5]) + (S[3] + S[7]));
    for (uint32_t j = D8; j < D; j++) zr = zr + load_f64(w + 8 * (size_t)j) * (double)load_f32(p[r] + 4 * (size_t)j);
    z[r] = zr + b;
  }
}

/** The wasm module's accumulate over `mem` (offsets checked by the caller): returns Σ L·c_y. */
DPT_TARGET static double FN(accumulate)(const uint8_t *mem, uint32_t x, uint32_t y, uint32_t D, uint32_t order, uint32_t n, uint32_t w, double b,
                                        uint32_t out, uint32_t cw) {
  const size_t rowBytes = 4 * (size_t)D;
  const uint32_t D8 = D & ~7u;
  uint8_t *o = (uint8_t *)mem + out;
  double bias = 0, loss = 0;
  for (uint32_t k = 0; k < n;) {
    const uint32_t count = n - k >= 4 ? 4 : 1;
    const uint8_t *p[4];
    size_t rows[4];
    double r[4], zs[4];
    for (uint32_t i = 0; i < count; i++) {
      rows[i] = order == 0 ? (size_t)k + i : load_u32(mem + order + 4 * ((size_t)k + i));
      p[i] = mem + x + rows[i] * rowBytes;
    }
    // The rows after these 4 (or these again at the end), to prefetch while these are scored.
    const uint8_t *next[4];
    for (uint32_t i = 0; i < 4; i++) {
      const size_t at = (size_t)k + 4 + i;
      next[i] = at < n ? mem + x + (order == 0 ? at : load_u32(mem + order + 4 * at)) * rowBytes : p[0];
    }
    if (count == 4)
      FN(score4)(p, next, mem + w, D, D8, b, zs);
    else
      zs[0] = FN(score)(p[0], mem + w, D, D8, b);
    for (uint32_t i = 0; i < count; i++) {
      const uint8_t label = mem[y + rows[i]];
      const double c = cw == 0 ? 1 : load_f64(mem + cw + 8 * (size_t)label);
      const double yv = (double)label;
      const double z = zs[i];
      const double e = dpt_exp(-__builtin_fabs(z));
      r[i] = ((z >= 0 ? 1 : e) / (1 + e) - yv) * c;
      bias = bias + r[i];
      const double zmax = z != z ? z : (z > 0 ? z : 0.0); // f64.max(z, 0): NaN stays NaN, −0 gives +0
      loss = loss + ((dpt_log1p(e) + zmax) - yv * z) * c;
    }
    // out_j += ((r0·x0j + r1·x1j) + (r2·x2j + r3·x3j)), or r0·x0j: lanes over j, each out_j on its own.
    if (count == 4) {
      for (uint32_t j = 0; j < D8; j += DPT_W) {
        const size_t xo = 4 * (size_t)j, oo = 8 * (size_t)j;
        FN(vd) g = (FN(load_x)(p[0] + xo) * r[0] + FN(load_x)(p[1] + xo) * r[1]) + (FN(load_x)(p[2] + xo) * r[2] + FN(load_x)(p[3] + xo) * r[3]);
        FN(vd) sum = FN(load_d)(o + oo) + g;
        memcpy(o + oo, &sum, sizeof sum);
      }
      for (uint32_t j = D8; j < D; j++) {
        const size_t xo = 4 * (size_t)j;
        double g = ((double)load_f32(p[0] + xo) * r[0] + (double)load_f32(p[1] + xo) * r[1]) +
                   ((double)load_f32(p[2] + xo) * r[2] + (double)load_f32(p[3] + xo) * r[3]);
        store_f64(o + 8 * (size_t)j, load_f64(o + 8 * (size_t)j) + g);
      }
    } else {
      for (uint32_t j = 0; j < D8; j += DPT_W) {
        FN(vd) sum = FN(load_d)(o + 8 * (size_t)j) + FN(load_x)(p[0] + 4 * (size_t)j) * r[0];
        memcpy(o + 8 * (size_t)j, &sum, sizeof sum);
      }
      for (uint32_t j = D8; j < D; j++) store_f64(o + 8 * (size_t)j, load_f64(o + 8 * (size_t)j) + (double)load_f32(p[0] + 4 * (size_t)j) * r[0]);
    }
    k += count;
  }
  store_f64(o + 8 * (size_t)D, load_f64(o + 8 * (size_t)D) + bias);
  return loss;
}

#undef NV
#endif // DPT_KERNEL_TEMPLATE

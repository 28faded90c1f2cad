// Cross-architecture check of native/kernel.c (test/integration/kernel-arm64.test.ts): runs every
// build of the kernel this CPU has on the same pseudo-random inputs (seeded, so identical on every
// machine) and prints one FNV-1a hash of every output bit per build, plus one of dpt_exp and
// dpt_log1p. Equal hashes on x86-64 and arm64 (under qemu-user) mean equal bits. NaN results are
// hashed as one value: the data dpt trains on is finite, a NaN fails the run, and x86 and arm64
// give NaNs of different signs by design. Compiled with native/build.mjs's floating-point flags
// against node_api.h beside it (a stand-in: no N-API function is called). Usage: cross-check
// [calls] [exp inputs].
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "../../native/kernel.c"

static uint64_t state = 0x9e3779b97f4a7c15u;
static uint64_t next(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }
static double uniform(void) { return (next() >> 11) * (1.0 / 9007199254740992.0); }
static uint64_t hash = 0xcbf29ce484222325u;
static void mix(double v) {
  uint64_t u = v != v ? 0x7ff8000000000000u : bits_of(v);
  for (int i = 0; i < 8; i++) { hash ^= (u >> (8 * i)) & 0xff; hash *= 0x100000001b3u; }
}

/** A float32 of any finite magnitude: ±0, subnormals, 1e-38 … 3e38, and ordinary values. */
static float any_float(void) {
  uint64_t r = next();
  switch (r % 8) {
    case 0: return (r >> 8) % 2 ? 0.0f : -0.0f;
    case 1: { uint32_t u = (uint32_t)(r >> 9) & 0x807fffffu; float f; memcpy(&f, &u, 4); return f; } // subnormal
    case 2: { uint32_t u = ((uint32_t)(r >> 9) & 0x807fffffu) | ((uint32_t)(1 + (r >> 40) % 254) << 23); float f; memcpy(&f, &u, 4); return f; }
    default: return (float)((uniform() * 4 - 2) * pow(10, (int)((r >> 20) % 7) - 3));
  }
}

int main(int argc, char **argv) {
  const int CALLS = argc > 1 ? atoi(argv[1]) : 20000, EXPS = argc > 2 ? atoi(argv[2]) : 2000000;
  enum { MEM = 1 << 22 };
  uint8_t *mem = aligned_alloc(64, MEM);
  typedef double (*fn)(const uint8_t *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, double, uint32_t, uint32_t);
  struct { const char *name; fn f; int runs; } builds[] = {
#ifdef DPT_X86
    {"avx512f", accumulate_avx512, __builtin_cpu_supports("avx512f")},
    {"avx2", accumulate_avx2, __builtin_cpu_supports("avx2")},
#endif
    {"baseline", accumulate_baseline, 1},
  };
  const int nb = sizeof builds / sizeof builds[0];
  uint64_t hashes[4] = {0};
  long calls = 0, rows = 0;
  for (int b = 0; b < nb; b++) {
    if (!builds[b].runs) continue;
    state = 0x9e3779b97f4a7c15u;
    hash = 0xcbf29ce484222325u;
    calls = rows = 0;
    for (int t = 0; t < CALLS; t++) {
      const uint32_t D = 1 + next() % (t % 10 == 0 ? 1200 : 40), n = 1 + next() % 37;
      const uint32_t X = 64, Y = X + n * 4 * D + 64, O = (Y + n + 64) & ~63u, W = O + 4 * n + 64, OUT = W + 8 * D + 64, CW = OUT + 8 * (D + 1) + 64;
      if (CW + 16 > MEM) continue;
      for (uint32_t i = 0; i < n * D; i++) { float f = any_float(); memcpy(mem + X + 4 * (size_t)i, &f, 4); }
      for (uint32_t i = 0; i < n; i++) mem[Y + i] = next() % 2;
      for (uint32_t i = 0; i < n; i++) { uint32_t r = next() % n; memcpy(mem + O + 4 * (size_t)i, &r, 4); }
      // w scaled so |z| reaches 1e280 now and then, and stays ordinary mostly.
      const double scale = t % 7 == 0 ? 1e240 : t % 5 == 0 ? 1e-30 : 1.0;
      for (uint32_t j = 0; j < D; j++) { double w = (uniform() * 2 - 1) * scale; memcpy(mem + W + 8 * (size_t)j, &w, 8); }
      for (uint32_t j = 0; j <= D; j++) { double o = t % 3 == 0 ? uniform() : 0; memcpy(mem + OUT + 8 * (size_t)j, &o, 8); }
      const double cw[2] = {0.5 + uniform(), 0.25 + uniform() * 3};
      memcpy(mem + CW, cw, 16);
      const double bias = (uniform() * 2 - 1) * (t % 11 == 0 ? 1e300 : 3);
      const uint32_t order = t % 2 ? O : 0, weights = t % 4 == 0 ? CW : 0;
      mix(builds[b].f(mem, X, Y, D, order, n, W, bias, OUT, weights));
      for (uint32_t j = 0; j <= D; j++) mix(load_f64(mem + OUT + 8 * (size_t)j));
      calls++;
      rows += n;
    }
    hashes[b] = hash;
    printf("kernel %-8s %016llx (%ld calls, %ld rows)\n", builds[b].name, (unsigned long long)hash, calls, rows);
  }
  // exp on x ≤ 0 and log1p on x ≥ 0, as the kernel calls them, across every binade.
  state = 12345;
  hash = 0xcbf29ce484222325u;
  for (int i = 0; i < EXPS; i++) {
    const double x = uniform() * pow(2, (int)(next() % 2100) - 1075);
    mix(dpt_exp(-x));
    mix(dpt_log1p(x));
  }
  printf("exp/log1p %016llx (%d inputs each)\n", (unsigned long long)hash, EXPS);
  for (int b = 1; b < nb; b++)
    if (builds[b].runs && builds[0].runs && hashes[b] != hashes[0]) { printf("BUILDS DIFFER\n"); return 1; }
  return 0;
}

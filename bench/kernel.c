// Plain C reference of dpt's gradient kernel (shared/model.ts accumulateGradient): float32 rows,
// float64 accumulation, the same stable sigmoid and softplus loss. It sets the floor the
// TypeScript and WebAssembly kernels are measured against (bench/kernel.ts builds and runs it).
//
// Usage: kernel D B N SECONDS  → prints one JSON line {"D","B","N","rows","seconds","rowsPerSec","checksum"}.
// Each call covers one batch of B contiguous rows; batches cycle over N rows (N a multiple of B),
// so small data sets stay in cache and large ones stream from memory, as in training.

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double accumulate(const float *x, const uint8_t *y, int D, long from, long to, const double *w, double b, double *out) {
  double loss = 0, bias = 0;
  for (long i = from; i < to; i++) {
    const float *row = x + i * D;
    double z = b;
    for (int j = 0; j < D; j++) z += w[j] * (double)row[j];
    double e = exp(-fabs(z));
    double a = z >= 0 ? 1 / (1 + e) : e / (1 + e);
    double r = a - y[i];
    for (int j = 0; j < D; j++) out[j] += r * (double)row[j];
    bias += r;
    loss += log1p(e) + fmax(z, 0) - y[i] * z;
  }
  out[D] += bias;
  return loss;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: kernel D B N SECONDS\n");
    return 2;
  }
  int D = atoi(argv[1]);
  long B = atol(argv[2]), N = atol(argv[3]);
  double seconds = atof(argv[4]);
  float *x = malloc(sizeof(float) * N * D);
  uint8_t *y = malloc(N);
  double *w = malloc(sizeof(double) * D), *out = calloc(D + 1, sizeof(double));
  // Deterministic values in [−2, 2) and labels; the same formulas as bench/kernel.ts.
  uint32_t s = 12345;
  for (long i = 0; i < N * D; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)((s >> 8) * (1.0 / 16777216.0) * 4 - 2);
  }
  for (long i = 0; i < N; i++) y[i] = i % 3 == 0;
  for (int j = 0; j < D; j++) w[j] = 0.5 / sqrt(D) * ((j % 7) - 3) / 3.0;
  double checksum = 0;
  long rows = 0, batches = N / B, batch = 0;
  double started = now(), elapsed;
  do {
    for (int rep = 0; rep < 8; rep++) {
      for (int j = 0; j <= D; j++) out[j] = 0;
      checksum += accumulate(x, y, D, batch * B, batch * B + B, w, 0.1, out) + out[0];
      rows += B;
      batch = (batch + 1) % batches;
    }
    elapsed = now() - started;
  } while (elapsed < seconds);
  printf("{\"D\":%d,\"B\":%ld,\"N\":%ld,\"rows\":%ld,\"seconds\":%.6f,\"rowsPerSec\":%.1f,\"checksum\":%.17g}\n", D, B, N, rows, elapsed, rows / elapsed,
         checksum);
  return 0;
}

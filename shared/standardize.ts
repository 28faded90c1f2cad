// Feature standardization: z-scores with the mean and population standard deviation of the
// training rows. Computed once by the coordinator, applied by everyone with the same code so
// every process sees the same float32 bits.

export interface Standardization {
  readonly mean: Float64Array;
  /** Population standard deviation (divides by n); 1 for a constant column. */
  readonly std: Float64Array;
}

/** Two-pass mean and variance over the rows listed in `rows` (stable for large offsets). */
export function computeStandardization(x: Float32Array, D: number, rows: Uint32Array): Standardization {
  const mean = new Float64Array(D);
  const std = new Float64Array(D);
  const n = rows.length;
  for (const row of rows) for (let j = 0; j < D; j++) mean[j]! += x[row * D + j]!;
  for (let j = 0; j < D; j++) mean[j]! /= n;
  for (const row of rows) {
    for (let j = 0; j < D; j++) {
      const d = x[row * D + j]! - mean[j]!;
      std[j]! += d * d;
    }
  }
  for (let j = 0; j < D; j++) {
    const s = Math.sqrt(std[j]! / n);
    std[j] = s > 0 && Number.isFinite(s) ? s : 1;
  }
  return { mean, std };
}

/** x ← fround((x − mean) / std), in place, for every row. */
export function applyStandardization(x: Float32Array, D: number, stats: Standardization): void {
  const rows = x.length / D;
  for (let row = 0; row < rows; row++) {
    const base = row * D;
    for (let j = 0; j < D; j++) x[base + j] = (x[base + j]! - stats.mean[j]!) / stats.std[j]!;
  }
}

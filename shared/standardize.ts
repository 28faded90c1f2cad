// Feature standardization: z-scores with the mean and population standard deviation of the
// training rows (computed by the statistics pass, shared/passes.ts), applied by every worker
// with this same code so every process sees the same float32 bits.

import { nativePasses } from './passes-native.js';

export interface Standardization {
  readonly mean: Float64Array;
  /** Population standard deviation (divides by n); 1 for a constant column. */
  readonly std: Float64Array;
}

/** x ← fround((x − mean) / std), in place, for every row (natively where native/passes.c is built: the same bits). */
export function applyStandardization(x: Float32Array, D: number, stats: Standardization): void {
  const addon = nativePasses();
  if (addon === undefined) standardizeScript(x, D, stats);
  else addon.standardize(x, D, stats.mean, stats.std);
}

/** applyStandardization in JavaScript: the definition native/passes.c follows (test/unit/passes-native.test.ts compares them). */
export function standardizeScript(x: Float32Array, D: number, stats: Standardization): void {
  const rows = x.length / D;
  for (let row = 0; row < rows; row++) {
    const base = row * D;
    for (let j = 0; j < D; j++) x[base + j] = (x[base + j]! - stats.mean[j]!) / stats.std[j]!;
  }
}

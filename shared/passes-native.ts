// The optional native addon native/passes.c: the passes a worker makes over all its rows
// (standardization, feature statistics, the content check of finite features, evaluation),
// the same arithmetic in the same order as their JavaScript twins, so the same bits; absent
// (no compiler, DPT_NATIVE=off) the JavaScript runs.

import { loadNativeAddon } from './native-addon.js';
import type { accumulateEval, accumulateStats } from './passes.js';

export interface PassesAddon {
  /** x ← fround((x − mean_j) / std_j) for every row (shared/standardize.ts). */
  standardize(x: Float32Array, D: number, mean: Float64Array, std: Float64Array): void;
  /** shared/passes.ts accumulateStats, bit for bit; returns the new count. */
  accumulateStats: typeof accumulateStats;
  /** Index of the first NaN or ±Infinity in `values`, or −1. */
  firstNonFinite(values: Float32Array): number;
  /** shared/passes.ts accumulateEval, bit for bit (fdlibm's exp and log1p are V8's Math.exp and Math.log1p). */
  accumulateEval: typeof accumulateEval;
}

/** The addon, or undefined when it is not built, stale or off. */
export function nativePasses(): PassesAddon | undefined {
  return loadNativeAddon<PassesAddon>('passes');
}

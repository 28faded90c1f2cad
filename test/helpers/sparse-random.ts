// Seeded random sparse rows and parameters for the sparse kernel and reduction tests (issue #13).

import type { SparseParams, SparseRows } from '../../shared/sparse-rows.js';

/** A seeded LCG in [0, 1). */
export function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

export interface RandomRowsOptions {
  readonly rows: number;
  readonly D: number;
  /** Entries per row drawn from [0, 2·meanNnz]. */
  readonly meanNnz: number;
  /** Label bound: 2 for logistic (uint8), K for softmax (uint16). */
  readonly classes: number;
  readonly isSoftmax: boolean;
  readonly seed: number;
  /** Values: 'plain' in (−2, 2); 'extreme' mixes tiny, huge (near float32 max) and plain values. */
  readonly values?: 'plain' | 'extreme';
}

/** Seeded CSR rows: distinct ascending indices per row, non-zero float32 values. */
export function randomRows(options: RandomRowsOptions): SparseRows {
  const { rows, D, meanNnz, classes, isSoftmax, seed } = options;
  const next = lcg(seed);
  const rowStart = new Uint32Array(rows + 1);
  const indexList: number[] = [];
  const valueList: number[] = [];
  const picked = new Set<number>();
  for (let i = 0; i < rows; i++) {
    const n = Math.min(D, Math.floor(next() * (2 * meanNnz + 1)));
    picked.clear();
    while (picked.size < n) picked.add(Math.floor(next() * D));
    for (const j of [...picked].sort((a, b) => a - b)) {
      indexList.push(j);
      valueList.push(randomValue(next, options.values ?? 'plain'));
    }
    rowStart[i + 1] = indexList.length;
  }
  const labels = isSoftmax ? new Uint16Array(rows) : new Uint8Array(rows);
  for (let i = 0; i < rows; i++) labels[i] = Math.floor(next() * classes);
  return { rows, dims: D, rowStart, indices: Uint32Array.from(indexList), values: Float32Array.from(valueList), labels };
}

function randomValue(next: () => number, kind: 'plain' | 'extreme'): number {
  const sign = next() < 0.5 ? -1 : 1;
  let v = next() * 2 * sign;
  if (kind === 'extreme') {
    const pick = next();
    if (pick < 0.15)
      v = sign * 3.4e38 * (0.5 + next() / 2); // near float32 max
    else if (pick < 0.3)
      v = sign * 1e-40 * (1 + next()); // float32 subnormal
    else if (pick < 0.45) v = sign * 2 ** Math.floor(next() * 200 - 100);
  }
  return Math.fround(v) === 0 ? sign : v;
}

/** Seeded parameters: v ~ ±amplitude, scale, bias ~ ±amplitude; 'extreme' adds huge and tiny v. */
export function randomParams(O: number, D: number, seed: number, amplitude = 1, kind: 'plain' | 'extreme' = 'plain'): SparseParams {
  const next = lcg(seed);
  const v = new Float64Array(O * D);
  for (let i = 0; i < v.length; i++) {
    v[i] = (next() * 2 - 1) * amplitude;
    if (kind === 'extreme') {
      const pick = next();
      if (pick < 0.1) v[i] = (next() < 0.5 ? -1 : 1) * 1e300 * next();
      else if (pick < 0.2) v[i] = (next() < 0.5 ? -1 : 1) * 1e-300 * next();
    }
  }
  const bias = new Float64Array(O);
  for (let o = 0; o < O; o++) bias[o] = (next() * 2 - 1) * amplitude;
  return { v, scale: 0.5 + next(), bias };
}

/** The float64 bits of a vector (NaN compares equal to NaN whatever its payload). */
export function bitsOf(values: ArrayLike<number>): string[] {
  const view = new DataView(new ArrayBuffer(8));
  const out: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (Number.isNaN(x)) {
      out.push('NaN');
      continue;
    }
    view.setFloat64(0, x);
    out.push(view.getBigUint64(0).toString(16));
  }
  return out;
}

// What the benches that compare with liblinear share (bench/flights-sparse.ts, bench/e2e-runners.ts):
// reading a `liblinear-train -s 0` model file, and the stable log-loss term.

import { readFileSync } from 'node:fs';

/** log(1 + e^z), stably. */
export function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** A liblinear -s 0 model file: w for the features 1…n, the bias weight, and which label w scores. */
export interface LiblinearModel {
  readonly w: Float64Array;
  readonly biasWeight: number;
  /** The bias feature's value (-B), 0 without one. */
  readonly biasValue: number;
  /** +1 when σ(w·x) = P(y = 1), −1 when liblinear's first label is 0 (then w scores class 0). */
  readonly sign: 1 | -1;
}

export function readLiblinearModel(path: string): LiblinearModel {
  const lines = readFileSync(path, 'utf8').split('\n');
  const field = (name: string): string[] => {
    const line = lines.find((text) => text.startsWith(`${name} `));
    if (line === undefined) throw new Error(`${path}: no '${name}' line`);
    return line.split(' ').slice(1);
  };
  const labels = field('label');
  const n = Number(field('nr_feature')[0]);
  const biasValue = Number(field('bias')[0]);
  const start = lines.indexOf('w') + 1;
  const count = biasValue > 0 ? n + 1 : n;
  const w = new Float64Array(count);
  for (let j = 0; j < count; j++) w[j] = Number(lines[start + j]!.trim());
  return { w: w.subarray(0, n), biasWeight: biasValue > 0 ? w[n]! : 0, biasValue: Math.max(biasValue, 0), sign: labels[0] === '1' ? 1 : -1 };
}

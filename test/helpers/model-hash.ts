// The SHA-256 of a model file's weights and bias as float64 bytes: equal hashes, equal bits.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function modelHash(path: string): string {
  const model = JSON.parse(readFileSync(path, 'utf8')) as { weights: number[] | { indices: number[]; values: number[] }; bias: number | number[] };
  // A sparse model file (issue #13) may hold its weights as {dims, indices, values}: those numbers then.
  const weights = Array.isArray(model.weights) ? model.weights.flat() : [...model.weights.indices, ...model.weights.values];
  return createHash('sha256')
    .update(new Uint8Array(Float64Array.from([...weights, ...[model.bias].flat()]).buffer))
    .digest('hex');
}

/** The loss of every step event of a --metrics JSONL file, in file order. */
export function stepLosses(path: string): number[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; loss?: number })
    .filter((event) => event.type === 'step')
    .map((event) => event.loss as number);
}

// A seeded .dpt file with a learnable label, for tests that compare runs with each other: the
// same (rows, D, seed, direction) always gives the same bytes.

import { join } from 'node:path';
import { BinaryDatasetWriter } from '../../shared/binary-dataset.js';

/**
 * Writes `folder`/`name`.dpt: rows × D features uniform in [−2, 2) from a seeded LCG, label 1 when
 * Σ x_j·direction(j) plus uniform noise in [−0.5, 0.5) is positive.
 */
export function writeSeededDpt(folder: string, name: string, rows: number, D: number, seed: number, direction: (j: number) => number): string {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32;
  };
  const x = new Float32Array(rows * D);
  const y = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    let z = 0;
    for (let j = 0; j < D; j++) {
      const value = (next() - 0.5) * 4;
      x[r * D + j] = value;
      z += value * direction(j);
    }
    y[r] = z + (next() - 0.5) > 0 ? 1 : 0;
  }
  const path = join(folder, `${name}.dpt`);
  const writer = new BinaryDatasetWriter(path, { featureNames: Array.from({ length: D }, (_, j) => `f${j}`), labelName: 'label' });
  writer.append(x, y, rows);
  writer.finish();
  return path;
}

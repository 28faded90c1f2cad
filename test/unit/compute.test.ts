import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BinaryDatasetWriter } from '../../shared/binary-dataset.js';
import { ProtocolError } from '../../shared/errors.js';
import { logisticModelKernel } from '../../shared/model-kernel.js';
import type { ScheduleSpec } from '../../shared/schedule.js';
import { PartComputer } from '../../worker/compute.js';
import { RowStore } from '../../worker/row-store.js';
import { thetaOf } from '../helpers/theta.js';

const directory = mkdtempSync(join(tmpdir(), 'dpt-compute-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const D = 2;
const ROWS = 10;
const x = Float32Array.from({ length: ROWS * D }, (_, i) => (i % 7) / 4 - 0.5);
const y = Uint8Array.from({ length: ROWS }, (_, i) => i % 2);
const path = join(directory, 'small.dpt');
const writer = new BinaryDatasetWriter(path, { featureNames: ['a', 'b'], labelName: 'label' });
writer.append(x, y, ROWS);
writer.finish();
const schedule: ScheduleSpec = { rows: ROWS, valFraction: 0, seed: 1, shuffle: false, shuffleBlockRows: 0, batchSize: 4, chunksPerBatch: 2 };

function computer(): PartComputer {
  const kernel = logisticModelKernel('js', D);
  return new PartComputer(RowStore.open(path, 1 << 20, PartComputer.maxChunkRows(schedule), kernel), schedule, kernel);
}

describe('PartComputer', () => {
  it('computes per-chunk sums equal to a plain loop, again on the next step with its reused buffer', () => {
    // Two one-chunk ranges for worker 3: two level-0 subtrees, one vector per chunk.
    const parts = computer();
    for (const [step, w] of [
      [0, [0.5, -1]],
      [1, [0.25, 2]],
    ] as const) {
      const part = parts.compute({ kind: 'step', step, assign: Uint32Array.from([3, 0, 1, 3, 1, 2]), theta: thetaOf(w, 0.1) }, 3);
      expect(Array.from(part.subtrees)).toEqual([0, 0, 0, 1]);
      // Step `step` covers rows 4·step … 4·step + 3, chunks of 2 rows each.
      for (let c = 0; c < 2; c++) {
        const expected = [0, 0, 0, 0];
        for (let r = 4 * step + 2 * c; r < 4 * step + 2 * c + 2; r++) {
          const z = (w[0] as number) * (x[r * D] as number) + (w[1] as number) * (x[r * D + 1] as number) + 0.1;
          const residual = 1 / (1 + Math.exp(-z)) - (y[r] as number);
          expected[0]! += residual * (x[r * D] as number);
          expected[1]! += residual * (x[r * D + 1] as number);
          expected[2]! += residual;
          expected[3]! += Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - (y[r] as number) * z;
        }
        for (let k = 0; k < 4; k++) expect(part.sums[c * 4 + k]).toBeCloseTo(expected[k] as number, 12);
      }
      expect(Array.from(part.rows)).toEqual([2, 2]);
    }
  });

  it('refuses a step naming a chunk the schedule does not have', () => {
    const parts = computer();
    let error: unknown;
    try {
      parts.compute({ kind: 'step', step: 0, assign: Uint32Array.from([3, 0, 5]), theta: new Float64Array(D + 1) }, 3);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).field).toBe('assign');
  });

  it('refuses a step that gives this worker no range', () => {
    expect(() => computer().compute({ kind: 'step', step: 0, assign: Uint32Array.from([4, 0, 2]), theta: new Float64Array(D + 1) }, 3)).toThrow(
      /no range for worker 3/,
    );
  });
});

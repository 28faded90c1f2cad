// Scatter and gather of one step over 1 … 16 workers with the real worker code (PartComputer)
// and the coordinator's store (TreeParts): every cluster size, cut into aligned ranges, gives
// the bits of an independent reference tree over per-chunk parts, whatever the arrival order.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { alignedShares } from '../../coordinator/assignment.js';
import { BinaryDatasetWriter } from '../../shared/binary-dataset.js';
import { logisticModelKernel } from '../../shared/model-kernel.js';
import { TreeParts } from '../../shared/reduce.js';
import { defaultChunksPerBatch, type ScheduleSpec } from '../../shared/schedule.js';
import { PartComputer } from '../../worker/compute.js';
import { RowStore } from '../../worker/row-store.js';

const directory = mkdtempSync(join(tmpdir(), 'dpt-gather-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const D = 6;
const ROWS = 5000;
const B = 2048;
const WIDTH = D + 2;
const path = join(directory, 'gather.dpt');
{
  let state = 99;
  const next = (): number => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32;
  };
  const x = Float32Array.from({ length: ROWS * D }, () => (next() - 0.5) * 8);
  const y = Uint8Array.from({ length: ROWS }, () => (next() < 0.4 ? 1 : 0));
  const writer = new BinaryDatasetWriter(path, { featureNames: Array.from({ length: D }, (_, j) => `f${j}`), labelName: 'label' });
  writer.append(x, y, ROWS);
  writer.finish();
}
const schedule: ScheduleSpec = {
  rows: ROWS,
  valFraction: 0,
  seed: 5,
  shuffle: true,
  shuffleBlockRows: 0,
  batchSize: B,
  chunksPerBatch: defaultChunksPerBatch(B),
};
const kernel = logisticModelKernel('js', D);
const computer = new PartComputer(RowStore.open(path, 1 << 24, PartComputer.maxChunkRows(schedule), kernel), schedule, kernel);
const theta = Float64Array.from({ length: D + 1 }, (_, j) => (j < D ? Math.sin(j + 1) / 2 : 0.3));

/** Reference: each chunk's part alone, then the tree written out recursively. */
function reference(step: number, chunks: number): number[] {
  const leaves: Float64Array[] = [];
  for (let c = 0; c < chunks; c++) leaves.push(computer.compute({ kind: 'step', step, assign: Uint32Array.of(0, c, c + 1), theta }, 0).sums.slice());
  const node = (level: number, index: number): Float64Array => {
    if (level === 0) return leaves[index]!;
    const left = node(level - 1, 2 * index);
    if ((2 * index + 1) * 2 ** (level - 1) >= chunks) return left;
    const right = node(level - 1, 2 * index + 1);
    return left.map((v, k) => v + right[k]!);
  };
  return Array.from(node(Math.ceil(Math.log2(chunks)), 0));
}

describe('a step gathered along the tree', () => {
  it('gives the same bits with 1 … 16 workers, in any arrival order, as the reference tree', () => {
    expect(schedule.chunksPerBatch).toBe(64);
    const parts = new TreeParts(64, WIDTH);
    const out = new Float64Array(WIDTH);
    // Step 2 is the short last batch of the epoch (5000 − 2·2048 = 904 rows, still 64 chunks: a function of B).
    for (const step of [0, 2]) {
      const chunks = 64;
      const expected = reference(step, chunks);
      for (let workers = 1; workers <= 16; workers++) {
        const bounds = alignedShares(chunks, workers);
        const table: number[] = [];
        for (let i = 0; i < workers; i++) table.push(100 + i, bounds[i]!, bounds[i + 1]!);
        const assign = Uint32Array.from(table);
        const answers = Array.from({ length: workers }, (_, i) => {
          const part = computer.compute({ kind: 'step', step, assign, theta }, 100 + i);
          return { subtrees: part.subtrees.slice(), sums: part.sums.slice() };
        });
        answers.reverse(); // arrival order: last worker first
        parts.reset(chunks);
        for (const answer of answers) {
          // O(D) per worker: one subtree when the counts are powers of two.
          if ((workers & (workers - 1)) === 0 && chunks === 64) expect(answer.subtrees.length).toBe(2);
          for (let k = 0; k < answer.subtrees.length; k += 2)
            expect(parts.accept(answer.subtrees[k]!, answer.subtrees[k + 1]!, answer.sums, (k / 2) * WIDTH)).toBe(true);
        }
        expect(parts.pending).toBe(0);
        parts.reduce(out);
        expect(Array.from(out)).toEqual(expected);
      }
    }
  });
});

// A data pass computed in slices (issue #10 item 13): however short the slices, the part has the
// same bits as the pass computed in one go, in memory or paged, and a slice ends at its deadline.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BinaryDatasetWriter } from '../../shared/binary-dataset.js';
import { logisticModelKernel } from '../../shared/model-kernel.js';
import type { PassMessage, PassPartMessage } from '../../shared/protocol.js';
import type { ScheduleSpec } from '../../shared/schedule.js';
import { PartComputer } from '../../worker/compute.js';
import { RowStore } from '../../worker/row-store.js';

const directory = mkdtempSync(join(tmpdir(), 'dpt-pass-slices-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const D = 3;
const ROWS = 40_000;
let state = 5;
const x = Float32Array.from({ length: ROWS * D }, () => {
  state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
  return 100 + (state / 2 ** 32) * 7;
});
const y = Uint8Array.from({ length: ROWS }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0));
const path = join(directory, 'rows.dpt');
const writer = new BinaryDatasetWriter(path, { featureNames: ['a', 'b', 'c'], labelName: 'label' });
writer.append(x, y, ROWS);
writer.finish();
// A validation split makes the row set a sorted subset: paged reads come in short runs.
const schedule: ScheduleSpec = { rows: ROWS, valFraction: 0.3, seed: 3, shuffle: true, shuffleBlockRows: 0, batchSize: 64, chunksPerBatch: 64 };

function computer(budgetBytes: number): PartComputer {
  const kernel = logisticModelKernel('js', D);
  return new PartComputer(RowStore.open(path, budgetBytes, PartComputer.maxChunkRows(schedule), kernel), schedule, kernel);
}

const passes: PassMessage[] = [
  { kind: 'pass', job: 1, purpose: 'stats', set: 'train', blocks: Uint32Array.from([0, 7, 255]), theta: new Float64Array(D + 1) },
  { kind: 'pass', job: 2, purpose: 'eval', set: 'validation', blocks: Uint32Array.from([3, 4, 100]), theta: Float64Array.from([0.3, -0.2, 0.1, -2]) },
];

/** Advances with an already passed deadline: every call does the least a slice can do. */
function inSmallestSlices(parts: PartComputer, message: PassMessage): { part: PassPartMessage; slices: number } {
  const run = parts.startPass(message);
  for (let slices = 1; slices <= 100_000; slices++) {
    const part = run.advance(0);
    if (part !== null) return { part, slices };
  }
  throw new Error('the pass did not finish in 100,000 slices');
}

describe('a pass computed in slices', () => {
  for (const [mode, budget] of [
    ['memory', 1 << 30],
    ['paged', 0],
  ] as const) {
    for (const message of passes) {
      it(`gives the bits of the pass in one go (${message.purpose}, ${mode})`, () => {
        const whole = computer(budget).computePass(message);
        const { part, slices } = inSmallestSlices(computer(budget), message);
        // A passed deadline still lets each slice finish at least a look's worth of rows: one block or more per slice.
        expect(slices).toBeGreaterThanOrEqual(message.blocks.length);
        expect(Array.from(part.rows)).toEqual(Array.from(whole.rows));
        expect(Array.from(part.sums)).toEqual(Array.from(whole.sums));
      });
    }
  }

  it('resumes a block where its slice stopped: slices of 7 rows give the same bits', () => {
    for (const [mode, budget] of [
      ['memory', 1 << 30],
      ['paged', 0],
    ] as const) {
      for (const message of passes) {
        const whole = computer(budget).computePass(message);
        const run = computer(budget).startPass(message, 7);
        let part: PassPartMessage | null = null;
        let slices = 0;
        while (part === null && slices < 100_000) {
          part = run.advance(0);
          slices++;
        }
        expect(part, `${mode} ${message.purpose}`).not.toBeNull();
        // Blocks of ~40 to ~110 rows in slices of 7: many slices per block.
        expect(slices).toBeGreaterThan(5 * message.blocks.length);
        expect(Array.from(part!.sums)).toEqual(Array.from(whole.sums)); // not null: checked above
      }
    }
  });
});

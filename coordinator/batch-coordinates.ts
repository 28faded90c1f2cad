// The coordinates a step's batch touches (the union of its rows' indices), as the coordinator
// computes them from its own copy of a sparse run's rows and the schedule (issue #13). Only sgd with
// --l1 needs them: its exact lazy L1 (sparse-model.ts) brings those coordinates up to date before
// the step is sent, so that the workers compute the gradient at the dense formula's weights.
// Not the schedule itself (shared/schedule.ts), which the workers follow the same way.
//
// Exports: createBatchCoordinates, BatchCoordinates.

import { epochOrder, locateStep, splitRows } from '../shared/schedule.js';
import type { SparseRows } from '../shared/sparse-rows.js';

/** The sorted, distinct coordinates of step `step`'s rows (a fresh array; O(non-zeros of the batch) plus the sort). */
export type BatchCoordinates = (step: number) => Uint32Array;

/** What fixes which rows form a step: the seeded split and order, the batch size (config.ts's fields). */
export interface BatchSchedule {
  readonly seed: number;
  readonly valFraction: number;
  readonly shuffle: boolean;
  readonly shuffleBlockRows: number;
  readonly batchSize: number;
}

export function createBatchCoordinates(rows: SparseRows, schedule: BatchSchedule): BatchCoordinates {
  const train = splitRows(rows.rows, schedule.valFraction, schedule.seed).train;
  let orderEpoch = -1;
  let order = train;
  // seen[j] = the step (+1) that last collected j: no clearing between steps.
  const seen = new Uint32Array(rows.dims);
  let found = new Uint32Array(1024);
  return (step) => {
    const location = locateStep(step, train.length, schedule.batchSize, 1);
    if (location.epoch !== orderEpoch) {
      order = epochOrder(train, schedule.seed, location.epoch, schedule.shuffle, schedule.shuffleBlockRows);
      orderEpoch = location.epoch;
    }
    const mark = step + 1;
    let count = 0;
    for (let position = location.start; position < location.start + location.size; position++) {
      const row = order[position]!;
      for (let k = rows.rowStart[row]!; k < rows.rowStart[row + 1]!; k++) {
        const j = rows.indices[k]!;
        if (seen[j] === mark) continue;
        seen[j] = mark;
        if (count === found.length) {
          const grown = new Uint32Array(2 * found.length);
          grown.set(found);
          found = grown;
        }
        found[count++] = j;
      }
    }
    return found.slice(0, count).sort();
  };
}

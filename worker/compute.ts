// Computes gradient parts: for each chunk a step names, the sums of the gradient and the loss
// over that chunk's rows, with the model as the coordinator sent it; and the blocks of a data
// pass (statistics, evaluation). Derives the rows from the schedule (shared/schedule.ts,
// shared/passes.ts), so a message never carries row data.

import type { Dataset } from '../shared/dataset.js';
import { accumulateGradient } from '../shared/model.js';
import { accumulateEval, accumulateStats, blockStart, passBlocks, passWidth } from '../shared/passes.js';
import type { PartMessage, PassMessage, PassPartMessage, StepMessage } from '../shared/protocol.js';
import { chunkStart, epochOrder, locateStep, type ScheduleSpec, splitRows } from '../shared/schedule.js';
import { applyStandardization, type Standardization } from '../shared/standardize.js';

export class PartComputer {
  private readonly data: Dataset;
  private readonly schedule: ScheduleSpec;
  /** false: the chunks of a step are added together before sending (one vector per part). */
  private readonly reproducible: boolean;
  private readonly train: Uint32Array;
  private readonly validation: Uint32Array;
  /** True when the training rows are all rows in file order: chunks are contiguous rows. */
  private readonly isIdentity: boolean;
  private orderEpoch = -1;
  private order: Uint32Array = new Uint32Array(0);

  /** `data` as read from the file; the coordinator's standardization arrives later (standardize). */
  constructor(data: Dataset, schedule: ScheduleSpec, reproducible: boolean) {
    this.data = data;
    this.schedule = schedule;
    this.reproducible = reproducible;
    const split = splitRows(data.rows, schedule.valFraction, schedule.seed);
    this.train = split.train;
    this.validation = split.validation;
    this.isIdentity = !schedule.shuffle && this.train.length === data.rows;
  }

  compute(message: StepMessage): PartMessage {
    const { batchSize, chunksPerBatch, seed, shuffle } = this.schedule;
    const location = locateStep(message.step, this.train.length, batchSize, chunksPerBatch);
    if (location.epoch !== this.orderEpoch) {
      this.order = epochOrder(this.train, seed, location.epoch, shuffle);
      this.orderEpoch = location.epoch;
    }
    const D = this.data.features;
    const width = D + 2;
    const merged = !this.reproducible;
    const sums = new Float64Array((merged ? 1 : message.chunks.length) * width);
    const rows = new Uint32Array(message.chunks.length);
    for (let i = 0; i < message.chunks.length; i++) {
      const c = message.chunks[i]!;
      const from = location.start + chunkStart(location.size, location.chunks, c);
      const to = location.start + chunkStart(location.size, location.chunks, c + 1);
      const offset = merged ? 0 : i * width;
      sums[offset + D + 1]! += accumulateGradient(
        this.data.x,
        this.data.y,
        D,
        this.isIdentity ? null : this.order,
        from,
        to,
        message.w,
        message.b,
        sums,
        offset,
      );
      rows[i] = to - from;
    }
    return { kind: 'part', step: message.step, chunks: message.chunks, merged, sums, rows };
  }

  /** Statistics of raw rows or loss/accuracy of standardized rows, per block of a row set. */
  computePass(message: PassMessage): PassPartMessage {
    const set = message.set === 'train' ? this.train : this.validation;
    const blocks = passBlocks(set.length);
    const D = this.data.features;
    const width = passWidth(message.purpose, D);
    const sums = new Float64Array(message.blocks.length * width);
    const rows = new Uint32Array(message.blocks.length);
    for (let i = 0; i < message.blocks.length; i++) {
      const block = message.blocks[i]!;
      const from = blockStart(set.length, blocks, block);
      const to = blockStart(set.length, blocks, block + 1);
      if (message.purpose === 'stats') accumulateStats(this.data.x, D, set, from, to, sums, i * width);
      else accumulateEval(this.data.x, this.data.y, D, set, from, to, message.w, message.b, sums, i * width);
      rows[i] = to - from;
    }
    return { kind: 'passPart', job: message.job, blocks: message.blocks, sums, rows };
  }

  /** x ← (x − mean) / std on every row, as the coordinator computed it from the statistics pass. */
  standardize(stats: Standardization): void {
    applyStandardization(this.data.x, this.data.features, stats);
  }
}

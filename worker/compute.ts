// Computes gradient parts: for each chunk a step names, the sums of the gradient and the loss
// over that chunk's rows, with the model as the coordinator sent it. Derives the rows from the
// schedule (shared/schedule.ts), so a step message never carries row data.

import type { Dataset } from '../shared/dataset.js';
import { accumulateGradient } from '../shared/model.js';
import type { PartMessage, StepMessage } from '../shared/protocol.js';
import { chunkStart, epochOrder, locateStep, type ScheduleSpec, splitRows } from '../shared/schedule.js';

export class PartComputer {
  private readonly data: Dataset;
  private readonly schedule: ScheduleSpec;
  /** false: the chunks of a step are added together before sending (one vector per part). */
  private readonly reproducible: boolean;
  private readonly train: Uint32Array;
  /** True when the training rows are all rows in file order: chunks are contiguous rows. */
  private readonly isIdentity: boolean;
  private orderEpoch = -1;
  private order: Uint32Array = new Uint32Array(0);

  /** `data` must already be standardized as the coordinator said. */
  constructor(data: Dataset, schedule: ScheduleSpec, reproducible: boolean) {
    this.data = data;
    this.schedule = schedule;
    this.reproducible = reproducible;
    this.train = splitRows(data.rows, schedule.valFraction, schedule.seed).train;
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
}

// Computes gradient parts: for each chunk a step names, the sums of the gradient and the loss
// over that chunk's rows, with the model as the coordinator sent it; and the blocks of a data
// pass (statistics, evaluation). Derives the rows from the schedule (shared/schedule.ts,
// shared/passes.ts), so a message never carries row data.

import { ProtocolError } from '../shared/errors.js';
import type { GradientKernel } from '../shared/kernel.js';
import { accumulateEval, accumulateStats, blockStart, initStats, passBlocks, passWidth } from '../shared/passes.js';
import type { PartMessage, PassMessage, PassPartMessage, StepMessage } from '../shared/protocol.js';
import { chunkStart, epochOrder, locateStep, type ScheduleSpec, splitRows } from '../shared/schedule.js';
import type { Standardization } from '../shared/standardize.js';
import type { RowStore } from './row-store.js';

export class PartComputer {
  private readonly store: RowStore;
  private readonly kernel: GradientKernel;
  private readonly schedule: ScheduleSpec;
  /** false: the chunks of a step are added together before sending (one vector per part). */
  private readonly reproducible: boolean;
  private readonly train: Uint32Array;
  private readonly validation: Uint32Array;
  /** True when the training rows are all rows in file order: chunks are contiguous rows. */
  private readonly isIdentity: boolean;
  /** The step's weights and the parts, in the kernel's memory and reused every step: no model-sized allocation or copy per chunk. */
  private readonly w: Float64Array;
  private readonly sums: Float64Array;
  private orderEpoch = -1;
  private order: Uint32Array = new Uint32Array(0);

  /** `store` holds the rows as read from the file; the coordinator's standardization arrives later (standardize). */
  constructor(store: RowStore, schedule: ScheduleSpec, reproducible: boolean, kernel: GradientKernel) {
    this.store = store;
    this.kernel = kernel;
    this.schedule = schedule;
    this.reproducible = reproducible;
    const split = splitRows(store.rows, schedule.valFraction, schedule.seed);
    this.train = split.train;
    this.validation = split.validation;
    this.isIdentity = !schedule.shuffle && this.train.length === store.rows;
    this.w = kernel.allocateVector(store.features);
    this.sums = kernel.allocateVector(schedule.chunksPerBatch * (store.features + 2));
  }

  /** 'memory' or 'paged': how the rows are held. */
  get mode(): 'memory' | 'paged' {
    return this.store.mode;
  }

  /** Rows of the largest chunk a step can have: the staging a paged store needs. */
  static maxChunkRows(schedule: ScheduleSpec): number {
    return Math.ceil(schedule.batchSize / Math.min(schedule.chunksPerBatch, schedule.batchSize));
  }

  /** The part for `message`. Its `sums` is a view this object reuses: encode it before the next call. */
  compute(message: StepMessage): PartMessage {
    const { batchSize, chunksPerBatch, seed, shuffle, shuffleBlockRows } = this.schedule;
    const location = locateStep(message.step, this.train.length, batchSize, chunksPerBatch);
    if (location.epoch !== this.orderEpoch) {
      this.order = epochOrder(this.train, seed, location.epoch, shuffle, shuffleBlockRows);
      this.orderEpoch = location.epoch;
    }
    checkUnits('step', 'chunks', message.chunks, location.chunks);
    const D = this.store.features;
    const width = D + 2;
    const merged = !this.reproducible;
    const sums = this.sums.subarray(0, (merged ? 1 : message.chunks.length) * width);
    sums.fill(0);
    const w = this.w;
    w.set(message.w);
    const rows = new Uint32Array(message.chunks.length);
    for (let i = 0; i < message.chunks.length; i++) {
      const c = message.chunks[i]!;
      const from = location.start + chunkStart(location.size, location.chunks, c);
      const to = location.start + chunkStart(location.size, location.chunks, c + 1);
      const offset = merged ? 0 : i * width;
      // One kernel call per chunk, over the same rows in the same order whether they sit in
      // memory or were read from the file: the same bits either way.
      this.store.gather(this.isIdentity ? null : this.order, from, to, (x, y, order, first, last) => {
        sums[offset + D + 1]! += this.kernel.accumulate(x, y, D, order, first, last, w, message.b, sums, offset);
      });
      rows[i] = to - from;
    }
    return { kind: 'part', step: message.step, chunks: message.chunks, merged, sums, rows };
  }

  /** Statistics of raw rows or loss/accuracy of standardized rows, per block of a row set. */
  computePass(message: PassMessage): PassPartMessage {
    const set = message.set === 'train' ? this.train : this.validation;
    const blocks = passBlocks(set.length);
    checkUnits('pass', 'blocks', message.blocks, blocks);
    const D = this.store.features;
    const width = passWidth(message.purpose, D);
    const sums = new Float64Array(message.blocks.length * width);
    const rows = new Uint32Array(message.blocks.length);
    for (let i = 0; i < message.blocks.length; i++) {
      const block = message.blocks[i]!;
      const from = blockStart(set.length, blocks, block);
      const to = blockStart(set.length, blocks, block + 1);
      const offset = i * width;
      if (message.purpose === 'stats') {
        initStats(D, sums, offset);
        let count = 0;
        this.store.forEachRun(set, from, to, (x, _y, order, first, last) => {
          count = accumulateStats(x, D, order, first, last, sums, offset, count);
        });
      } else {
        this.store.forEachRun(set, from, to, (x, y, order, first, last) => accumulateEval(x, y, D, order, first, last, message.w, message.b, sums, offset));
      }
      rows[i] = to - from;
    }
    return { kind: 'passPart', job: message.job, blocks: message.blocks, sums, rows };
  }

  /** From now on rows are standardized as the coordinator computed from the statistics pass. */
  standardize(stats: Standardization): void {
    this.store.standardize(stats);
  }
}

/** Units named by a message must exist in this step or pass (so they also fit the reused parts buffer). */
function checkUnits(kind: string, field: string, units: Uint32Array, count: number): void {
  if (units.length > count) throw new ProtocolError(kind, field, `${units.length} units named, the ${kind} has ${count}`);
  for (const unit of units) {
    if (unit >= count) throw new ProtocolError(kind, field, `unit ${unit} does not exist (the ${kind} has ${count})`);
  }
}

// Computes gradient parts: for each chunk a step names, the sums of the gradient and the loss
// over that chunk's rows, with the model as the coordinator sent it; and the blocks of a data
// pass (statistics, evaluation). Derives the rows from the schedule (shared/schedule.ts,
// shared/passes.ts), so a message never carries row data.

import { ProtocolError } from '../shared/errors.js';
import { adviseHugePages } from '../shared/huge-pages.js';
import type { RawCall, SharedKernel } from '../shared/kernel.js';
import type { ModelKernel } from '../shared/model-kernel.js';
import type { ModelShape } from '../shared/model-shape.js';
import { accumulateStats, blockStart, initStats, passBlocks, passWidth } from '../shared/passes.js';
import type { PartMessage, PassMessage, PassPartMessage, StepMessage } from '../shared/protocol.js';
import { decomposeRange, reduceSubtreeInPlace, subtreeEnd } from '../shared/reduce.js';
import { chunkStart, epochOrder, epochOrderInto, locateStep, type ScheduleSpec, splitRows } from '../shared/schedule.js';
import type { Standardization } from '../shared/standardize.js';
import { type ComputePool, MIN_SPLIT_WORK } from './compute-pool.js';
import type { RowStore } from './row-store.js';

export class PartComputer {
  private readonly store: RowStore;
  private readonly kernel: ModelKernel;
  private readonly schedule: ScheduleSpec;
  private readonly train: Uint32Array;
  private readonly validation: Uint32Array;
  /** True when the training rows are all rows in file order: chunks are contiguous rows. */
  private readonly isIdentity: boolean;
  /** True when the epoch order is kept in the kernel's memory (set once per epoch, never copied per chunk). */
  private readonly orderInKernel: boolean;
  /** The step's parameters θ and the parts, in the kernel's memory and reused every step: no model-sized allocation or copy per chunk. */
  private readonly theta: Float64Array;
  private readonly sums: Float64Array;
  /** The chunk ids of the step being computed, in order (reused). */
  private readonly chunkIds: Uint32Array;
  private orderEpoch = -1;
  private order: Uint32Array = new Uint32Array(0);
  /** Compute threads sharing the kernel's memory, or null (one thread). */
  private readonly pool: ComputePool | null;

  /**
   * `store` holds the rows as read from the file; the coordinator's standardization arrives later
   * (standardize). With a `pool`, large steps are split over its threads.
   */
  constructor(store: RowStore, schedule: ScheduleSpec, kernel: ModelKernel, pool: ComputePool | null = null) {
    this.store = store;
    this.kernel = kernel;
    this.schedule = schedule;
    const split = splitRows(store.rows, schedule.valFraction, schedule.seed);
    this.train = split.train;
    this.validation = split.validation;
    this.isIdentity = !schedule.shuffle && this.train.length === store.rows;
    this.theta = kernel.allocateVector(kernel.shape.parameterCount);
    this.sums = kernel.allocateVector(schedule.chunksPerBatch * kernel.shape.partWidth);
    this.chunkIds = new Uint32Array(schedule.chunksPerBatch);
    this.pool = pool !== null && PartComputer.sharedKernelFor(store, kernel) !== null ? pool : null;
    if (pool !== null && this.pool === null) pool.close(); // threads this run cannot use
    // A shuffled epoch order lives where the kernel reads it (and helper threads see it): the
    // wasm kernels then read it in place instead of copying each chunk's indices into their
    // memory on every call. Rows held in memory only: the in-memory cap counts these 4 bytes a row.
    this.orderInKernel = store.mode === 'memory' && !this.isIdentity;
    if (this.orderInKernel) {
      this.order = kernel.allocateIndex(this.train.length);
      // Before its first write, as for the rows (shared/huge-pages.ts): millions of indices fault in 2 MiB pages.
      adviseHugePages(this.order);
    }
  }

  /**
   * The kernel compute threads can share for this data, or null when steps stay on one thread:
   * rows read from the file are not in shared memory, and the TypeScript kernel has none.
   */
  static sharedKernelFor(store: RowStore, kernel: ModelKernel): SharedKernel | null {
    return store.mode === 'memory' ? kernel.shared : null;
  }

  /** The model the parts are computed for. */
  get shape(): ModelShape {
    return this.kernel.shape;
  }

  /** 'memory' or 'paged': how the rows are held. */
  get mode(): 'memory' | 'paged' {
    return this.store.mode;
  }

  /** How the rows are held, for the ready line: 'memory', 'paged, mapped' or 'paged, reads'. */
  get holding(): string {
    return this.store.holding;
  }

  /** Threads a large step is split over (1: no compute threads). */
  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  /** Rows of the largest chunk a step can have: the staging a paged store needs. */
  static maxChunkRows(schedule: ScheduleSpec): number {
    return Math.ceil(schedule.batchSize / Math.min(schedule.chunksPerBatch, schedule.batchSize));
  }

  /**
   * The part for the ranges `message` assigns to worker `workerId`: each chunk computed by one
   * kernel call, then each range reduced along the reduction tree (shared/reduce.ts) into its
   * maximal aligned subtrees, one vector per subtree. Its `sums` is a view this object reuses:
   * encode it before the next call. Throws a ProtocolError when the table gives this worker no
   * range or names chunks the step does not have.
   */
  compute(message: StepMessage, workerId: number): PartMessage {
    const { batchSize, chunksPerBatch } = this.schedule;
    const location = locateStep(message.step, this.train.length, batchSize, chunksPerBatch);
    this.useEpoch(location.epoch);
    // This worker's ranges, in chunk order (the table is ordered and never overlaps).
    const table = message.assign;
    let count = 0;
    const subtrees: number[] = [];
    for (let e = 0; e < table.length; e += 3) {
      if (table[e] !== workerId) continue;
      const first = table[e + 1]!;
      const end = table[e + 2]!;
      if (end > location.chunks) throw new ProtocolError('step', 'assign', `chunks [${first}, ${end}) do not exist (the step has ${location.chunks})`);
      for (let c = first; c < end; c++) this.chunkIds[count++] = c;
      decomposeRange(first, end, location.chunks, subtrees);
    }
    if (count === 0) throw new ProtocolError('step', 'assign', `no range for worker ${workerId}`);
    const chunks = this.chunkIds.subarray(0, count);
    const { partWidth: width, lossIndex } = this.kernel.shape;
    const sums = this.sums.subarray(0, count * width);
    sums.fill(0);
    const theta = this.theta;
    theta.set(message.theta);
    const range = (i: number): [number, number] => {
      const c = chunks[i]!;
      return [location.start + chunkStart(location.size, location.chunks, c), location.start + chunkStart(location.size, location.chunks, c + 1)];
    };
    const order = this.isIdentity ? null : this.order;
    // Chunks [firstInline, count) run here; those before it on the compute threads, if worth it.
    const shares = this.splitAcrossThreads(range, order, count);
    const firstInline = shares === null ? 0 : shares.inline;
    if (shares !== null) this.pool!.start(shares.calls); // shares exist only with a pool
    try {
      for (let i = firstInline; i < count; i++) {
        const [from, to] = range(i);
        const offset = i * width;
        // One kernel call per chunk, over the same rows in the same order whether they sit in
        // memory or were read from the file, on whichever thread: the same bits either way.
        this.store.gather(order, from, to, (x, y, rowOrder, first, last) => {
          this.kernel.accumulate(x, y, rowOrder, first, last, theta, sums, offset);
        });
      }
    } finally {
      // Even when this thread's share failed, the helpers' answers are awaited: a helper still
      // writing into the parts buffer must not overlap the next step, which clears and reuses it.
      if (shares !== null) {
        const losses = this.pool!.finish(shares.calls);
        let i = 0;
        for (const share of losses) {
          for (const loss of share) {
            sums[i * width + lossIndex]! += loss;
            i++;
          }
        }
      }
    }
    // Reduce each subtree in place (its value lands on its first chunk's slot), then pack the
    // subtree values to the front in order: slot k ≤ the subtree's first slot, so nothing is overwritten early.
    const parts = subtrees.length / 2;
    const ids = new Uint32Array(subtrees);
    const rows = new Uint32Array(parts);
    let slot = 0;
    let k = 0;
    for (let e = 0; e < table.length; e += 3) {
      if (table[e] !== workerId) continue;
      const first = table[e + 1]!;
      const end = table[e + 2]!;
      let at = first;
      while (at < end) {
        const level = ids[2 * k]!;
        const index = ids[2 * k + 1]!;
        const stop = subtreeEnd(level, index, location.chunks);
        reduceSubtreeInPlace(sums, width, first - slot, level, index, location.chunks);
        const from = slot + (at - first);
        if (from !== k) sums.copyWithin(k * width, from * width, (from + 1) * width);
        rows[k] = chunkStart(location.size, location.chunks, stop) - chunkStart(location.size, location.chunks, at);
        at = stop;
        k++;
      }
      slot += end - first;
    }
    return { kind: 'part', step: message.step, subtrees: ids, sums: sums.subarray(0, parts * width), rows };
  }

  /** Makes this.order the visiting order of epoch `epoch` (computed once per epoch). */
  private useEpoch(epoch: number): void {
    if (epoch === this.orderEpoch) return;
    const { seed, shuffle, shuffleBlockRows } = this.schedule;
    if (this.orderInKernel && shuffle) epochOrderInto(this.train, seed, epoch, shuffleBlockRows, this.order);
    else if (this.orderInKernel) this.order.set(this.train);
    else this.order = epochOrder(this.train, seed, epoch, shuffle, shuffleBlockRows);
    this.orderEpoch = epoch;
  }

  /**
   * Calls `visit(order, from, to)` for the rows worker `workerId` computes in step `step` under
   * the assignment table `assign`: rows order[from..to) (rows from..to when order is null). A range
   * past the step's chunks is skipped (a guess at a later step may name one). For a reader that
   * must fetch those rows' blocks before the step runs, or ahead of it (the schedule is a pure
   * function and assignments are sticky, so step t + 1 usually needs what step t's table says).
   */
  forEachStepRows(step: number, assign: Uint32Array, workerId: number, visit: (order: Uint32Array | null, from: number, to: number) => void): void {
    const location = locateStep(step, this.train.length, this.schedule.batchSize, this.schedule.chunksPerBatch);
    this.useEpoch(location.epoch);
    const order = this.isIdentity ? null : this.order;
    for (let e = 0; e < assign.length; e += 3) {
      if (assign[e] !== workerId) continue;
      const first = Math.min(assign[e + 1]!, location.chunks);
      const end = Math.min(assign[e + 2]!, location.chunks);
      if (first >= end) continue;
      const from = location.start + chunkStart(location.size, location.chunks, first);
      const to = location.start + chunkStart(location.size, location.chunks, end);
      visit(order, from, to);
    }
  }

  /**
   * Paged rows: starts reading ahead the rows of step `step` + 1 if the table stays `assign`
   * (its first range for this worker), while this worker waits for that step. A wrong guess is
   * dropped (worker/prefetch-rows.ts): the step reads its rows itself. Nothing to do in memory.
   */
  prefetchAfter(step: number, assign: Uint32Array, workerId: number): void {
    if (this.store.mode !== 'paged') return;
    let isFirst = true;
    const stepRows = this.schedule.batchSize;
    this.forEachStepRows(step + 1, assign, workerId, (order, from, to) => {
      if (isFirst) this.store.prefetch(order, from, to, stepRows);
      isFirst = false;
    });
  }

  /** Calls `visit(set, from, to)` for the rows of each block a pass message names (rows set[from..to)); blocks it does not have are skipped. */
  forEachPassRows(message: PassMessage, visit: (order: Uint32Array, from: number, to: number) => void): void {
    const set = message.set === 'train' ? this.train : this.validation;
    const blocks = passBlocks(set.length);
    for (const block of message.blocks) {
      if (block < blocks) visit(set, blockStart(set.length, blocks, block), blockStart(set.length, blocks, block + 1));
    }
  }

  /**
   * The raw kernel calls of the first chunks, one share per helper thread, when the step is big
   * enough to be worth waking them; `inline` is the first chunk the calling thread computes.
   */
  private splitAcrossThreads(range: (i: number) => [number, number], order: Uint32Array | null, count: number): { calls: RawCall[][]; inline: number } | null {
    const pool = this.pool;
    const shared = this.kernel.shared;
    if (pool === null || shared === null || count < 2) return null;
    const D = this.store.features;
    const width = this.kernel.shape.partWidth;
    let rows = 0;
    for (let i = 0; i < count; i++) {
      const [from, to] = range(i);
      rows += to - from;
    }
    if (rows * (D + 40) < MIN_SPLIT_WORK) return null;
    const threads = Math.min(pool.threads, count);
    // Thread t takes chunks [t·count/threads, (t+1)·count/threads); the calling thread takes the last group.
    const calls: RawCall[][] = [];
    for (let t = 0; t < threads - 1; t++) {
      const share: RawCall[] = [];
      for (let i = Math.floor((t * count) / threads); i < Math.floor(((t + 1) * count) / threads); i++) {
        const [from, to] = range(i);
        let call: RawCall | null = null;
        this.store.gather(order, from, to, (x, y, rowOrder, first, last) => {
          // Only a logistic kernel is shared (model-kernel.ts): θ = [w, b], 0/1 byte labels.
          if (y instanceof Uint8Array)
            call = shared.rawArguments(x, y, D, rowOrder, first, last, this.theta, this.theta[D]!, this.sums, i * width, this.kernel.classWeights);
        });
        if (call === null) return null;
        share.push(call);
      }
      calls.push(share);
    }
    return { calls, inline: Math.floor(((threads - 1) * count) / threads) };
  }

  /** Stops the compute threads, if any. */
  close(): void {
    this.pool?.close();
  }

  /** Statistics of raw rows or loss/accuracy of standardized rows, per block of a row set, in one go. */
  computePass(message: PassMessage): PassPartMessage {
    const run = this.startPass(message);
    let part: PassPartMessage | null = null;
    while (part === null) part = run.advance(Number.POSITIVE_INFINITY);
    return part;
  }

  /**
   * A pass computed in slices (issue #10 item 13): each advance() works until `deadline`
   * (performance.now() time) and returns null, or returns the part once every block is done, so
   * the caller can yield to the event loop between slices and heartbeats are answered however
   * large a block is. Throws a ProtocolError at once for blocks the pass does not have.
   */
  startPass(message: PassMessage, rowsPerLook: number = sliceRows(this.store.features)): PassRun {
    const set = message.set === 'train' ? this.train : this.validation;
    const blocks = passBlocks(set.length);
    checkUnits('pass', 'blocks', message.blocks, blocks);
    return new PassRun(this.store, this.kernel, message, set, blocks, rowsPerLook);
  }

  /** From now on rows are standardized as the coordinator computed from the statistics pass. */
  standardize(stats: Standardization): void {
    this.store.standardize(stats);
  }
}

/** Rows handled between two looks at the clock: about 2^20 values, and few enough reads when paged. */
function sliceRows(D: number): number {
  return Math.max(1, Math.min(4096, Math.floor(2 ** 20 / (D + 1))));
}

/** One pass message being computed: the blocks in order, each row by row, so any slicing gives the same bits. */
export class PassRun {
  private readonly store: RowStore;
  private readonly kernel: ModelKernel;
  private readonly message: PassMessage;
  private readonly set: Uint32Array;
  private readonly blocks: number;
  private readonly width: number;
  private readonly sums: Float64Array;
  private readonly rows: Uint32Array;
  /** Index into message.blocks of the block under way, the next row of it, and its rows so far (stats). */
  private index = 0;
  private next = -1;
  private count = 0;
  /** Rows between two looks at the clock. */
  private readonly rowsPerLook: number;

  constructor(store: RowStore, kernel: ModelKernel, message: PassMessage, set: Uint32Array, blocks: number, rowsPerLook: number) {
    this.store = store;
    this.kernel = kernel;
    this.rowsPerLook = Math.max(1, Math.floor(rowsPerLook));
    this.message = message;
    this.set = set;
    this.blocks = blocks;
    this.width = passWidth(message.purpose, store.features);
    this.sums = new Float64Array(message.blocks.length * this.width);
    this.rows = new Uint32Array(message.blocks.length);
  }

  /** Works until `deadline` (performance.now() time; checked every few thousand rows): null, or the finished part. */
  advance(deadline: number): PassPartMessage | null {
    const { message, set, store } = this;
    const D = store.features;
    const step = this.rowsPerLook;
    while (this.index < message.blocks.length) {
      const block = message.blocks[this.index]!;
      const from = blockStart(set.length, this.blocks, block);
      const to = blockStart(set.length, this.blocks, block + 1);
      const offset = this.index * this.width;
      if (this.next < 0) {
        if (message.purpose === 'stats') initStats(D, this.sums, offset);
        this.next = from;
        this.count = 0;
      }
      while (this.next < to) {
        const end = Math.min(to, this.next + step);
        if (message.purpose === 'stats') {
          store.forEachRun(set, this.next, end, (x, _y, order, first, last) => {
            this.count = accumulateStats(x, D, order, first, last, this.sums, offset, this.count);
          });
        } else {
          store.forEachRun(set, this.next, end, (x, y, order, first, last) => this.kernel.evaluate(x, y, order, first, last, message.theta, this.sums, offset));
        }
        this.next = end;
        if (this.next < to && performance.now() >= deadline) return null;
      }
      this.rows[this.index] = to - from;
      this.index++;
      this.next = -1;
      if (this.index < message.blocks.length && performance.now() >= deadline) return null;
    }
    return { kind: 'passPart', job: message.job, blocks: message.blocks, sums: this.sums, rows: this.rows };
  }
}

/** Units named by a message must exist in this step or pass (so they also fit the reused parts buffer). */
function checkUnits(kind: string, field: string, units: Uint32Array, count: number): void {
  if (units.length > count) throw new ProtocolError(kind, field, `${units.length} units named, the ${kind} has ${count}`);
  for (const unit of units) {
    if (unit >= count) throw new ProtocolError(kind, field, `unit ${unit} does not exist (the ${kind} has ${count})`);
  }
}

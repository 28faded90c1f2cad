// A worker's computation for a sparse run (issue #13): sparse rows held in memory, a replica of
// the parameters (shared/sparse-replica.ts) kept current by params messages, and for each step the
// part of the chunks it was assigned: one sparse kernel call per chunk (shared/sparse-kernel.ts),
// reduced along the tree into one sparse part per maximal aligned subtree (shared/sparse-reduce.ts),
// sent as the touched coordinates only. Evaluation passes read the replica the same way.
// Not the dense computer (compute.ts) nor the connection (client.ts).
//
// Exports: SparsePartComputer, SparsePassRun, createSparseKernel.

import { ProtocolError } from '../shared/errors.js';
import type { ModelShape } from '../shared/model-shape.js';
import { blockStart, passBlocks } from '../shared/passes.js';
import type { ParamsMessage, PartMessage, PassMessage, PassPartMessage, StepMessage } from '../shared/protocol.js';
import { chunkStart, epochOrder, locateStep, type ScheduleSpec, splitRows } from '../shared/schedule.js';
import { type SparseKernel, sparseKernelId } from '../shared/sparse-kernel.js';
import { createSparseKernel as createKernelOf } from '../shared/sparse-kernel-wasm.js';
import { reduceSparseRange, sparsePartsToWire } from '../shared/sparse-reduce.js';
import { SparseReplica } from '../shared/sparse-replica.js';
import type { SparsePart, SparseRows } from '../shared/sparse-rows.js';

/**
 * The sparse kernel of id `id` for `shape`, or null when this worker has none by that id. Every
 * implementation of an id gives the same bits (shared/sparse-kernel.ts): the WebAssembly one where
 * it runs, else the TypeScript definition.
 */
export function createSparseKernel(id: string, shape: ModelShape, classWeights: Float64Array | null): SparseKernel | null {
  return id === sparseKernelId(shape) ? createKernelOf(shape, classWeights) : null;
}

/** Rows a pass evaluates between two looks at the clock. */
const PASS_ROWS_PER_LOOK = 4096;

export class SparsePartComputer {
  readonly rows: SparseRows;
  readonly replica: SparseReplica;
  private readonly kernel: SparseKernel;
  private readonly schedule: ScheduleSpec;
  private readonly train: Uint32Array;
  private readonly validation: Uint32Array;
  /** True when the training rows are all rows in file order: chunks are contiguous rows. */
  private readonly isIdentity: boolean;
  private orderEpoch = -1;
  private order: Uint32Array = new Uint32Array(0);

  constructor(rows: SparseRows, schedule: ScheduleSpec, kernel: SparseKernel) {
    this.rows = rows;
    this.kernel = kernel;
    this.schedule = schedule;
    const split = splitRows(rows.rows, schedule.valFraction, schedule.seed);
    this.train = split.train;
    this.validation = split.validation;
    this.isIdentity = !schedule.shuffle && this.train.length === rows.rows;
    this.replica = new SparseReplica(kernel.allocateParams(), kernel.shape.features, kernel.shape.outputs);
  }

  /** Applies a params message to the replica; a delta for another base is a ProtocolError (the replica is unchanged). */
  applyParams(message: ParamsMessage): void {
    this.replica.apply(message);
  }

  /**
   * The part for the ranges `message` assigns to worker `workerId`, with the replica's parameters
   * (which must be the version the step names). Throws a ProtocolError when the table gives this
   * worker no range, names chunks the step does not have, or the replica is at another version.
   */
  compute(message: StepMessage, workerId: number): PartMessage {
    this.replica.require('step', message.version);
    const { batchSize, chunksPerBatch } = this.schedule;
    const location = locateStep(message.step, this.train.length, batchSize, chunksPerBatch);
    this.useEpoch(location.epoch);
    const order = this.isIdentity ? null : this.order;
    const O = this.kernel.shape.outputs;
    const params = this.replica.params;
    const table = message.assign;
    const subtrees: number[] = [];
    const rowCounts: number[] = [];
    const values: SparsePart[] = [];
    for (let e = 0; e < table.length; e += 3) {
      if (table[e] !== workerId) continue;
      const first = table[e + 1]!;
      const end = table[e + 2]!;
      if (end > location.chunks) throw new ProtocolError('step', 'assign', `chunks [${first}, ${end}) do not exist (the step has ${location.chunks})`);
      // One kernel call per chunk, then the range's subtrees along the tree (the same bits whoever holds them).
      const chunkParts: SparsePart[] = [];
      for (let c = first; c < end; c++) {
        const from = location.start + chunkStart(location.size, location.chunks, c);
        const to = location.start + chunkStart(location.size, location.chunks, c + 1);
        this.kernel.accumulate(this.rows, order, from, to, params);
        chunkParts.push(this.kernel.takePart());
      }
      for (const subtree of reduceSparseRange(chunkParts, first, end, location.chunks, O)) {
        subtrees.push(subtree.level, subtree.index);
        const start = subtree.index * 2 ** subtree.level;
        const stop = Math.min((subtree.index + 1) * 2 ** subtree.level, location.chunks);
        rowCounts.push(chunkStart(location.size, location.chunks, stop) - chunkStart(location.size, location.chunks, start));
        values.push(subtree.part);
      }
    }
    if (values.length === 0) throw new ProtocolError('step', 'assign', `no range for worker ${workerId}`);
    const wire = sparsePartsToWire(values, O);
    return {
      kind: 'part',
      step: message.step,
      subtrees: Uint32Array.from(subtrees),
      sums: wire.sums,
      rows: Uint32Array.from(rowCounts),
      sparse: { counts: wire.counts, indices: wire.indices, values: wire.values },
    };
  }

  /** An evaluation pass with the replica's parameters, computed in slices (statistics passes never come in a sparse run). */
  startPass(message: PassMessage): SparsePassRun {
    if (message.purpose !== 'eval') throw new ProtocolError('pass', 'purpose', 'a sparse run has no statistics pass');
    this.replica.require('pass', message.version);
    const set = message.set === 'train' ? this.train : this.validation;
    const blocks = passBlocks(set.length);
    for (const block of message.blocks) {
      if (block >= blocks) throw new ProtocolError('pass', 'blocks', `unit ${block} does not exist (the pass has ${blocks})`);
    }
    return new SparsePassRun(this, this.kernel, message, set, blocks);
  }

  /** Makes this.order the visiting order of epoch `epoch` (computed once per epoch). */
  private useEpoch(epoch: number): void {
    if (epoch === this.orderEpoch) return;
    const { seed, shuffle, shuffleBlockRows } = this.schedule;
    this.order = epochOrder(this.train, seed, epoch, shuffle, shuffleBlockRows);
    this.orderEpoch = epoch;
  }
}

/** One evaluation pass being computed: blocks in order, rows in order, so any slicing gives the same bits. */
export class SparsePassRun {
  private readonly computer: SparsePartComputer;
  private readonly kernel: SparseKernel;
  private readonly message: PassMessage;
  private readonly set: Uint32Array;
  private readonly blocks: number;
  private readonly sums: Float64Array;
  private readonly rowCounts: Uint32Array;
  private index = 0;
  private next = -1;

  constructor(computer: SparsePartComputer, kernel: SparseKernel, message: PassMessage, set: Uint32Array, blocks: number) {
    this.computer = computer;
    this.kernel = kernel;
    this.message = message;
    this.set = set;
    this.blocks = blocks;
    this.sums = new Float64Array(message.blocks.length * 2);
    this.rowCounts = new Uint32Array(message.blocks.length);
  }

  /** Works until `deadline` (performance.now() time): null, or the finished part. */
  advance(deadline: number): PassPartMessage | null {
    const { message, set } = this;
    const { rows, replica } = this.computer;
    while (this.index < message.blocks.length) {
      const block = message.blocks[this.index]!;
      const from = blockStart(set.length, this.blocks, block);
      const to = blockStart(set.length, this.blocks, block + 1);
      if (this.next < 0) this.next = from;
      while (this.next < to) {
        const end = Math.min(to, this.next + PASS_ROWS_PER_LOOK);
        this.kernel.evaluate(rows, set, this.next, end, replica.params, this.sums, this.index * 2);
        this.next = end;
        if (this.next < to && performance.now() >= deadline) return null;
      }
      this.rowCounts[this.index] = to - from;
      this.index++;
      this.next = -1;
      if (this.index < message.blocks.length && performance.now() >= deadline) return null;
    }
    return { kind: 'passPart', job: message.job, blocks: message.blocks, sums: this.sums, rows: this.rowCounts };
  }
}

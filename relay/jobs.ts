// The coordinator's jobs as a relay runs them: each step or pass message is scattered over the
// group for the units it gives this relay (one run of the group's Scatter each, in arrival order,
// one answer each, as a worker answers), and the group's parts are combined into the relay's
// answer: for a step, one value per maximal aligned subtree of each of its ranges, finished along
// the same fixed tree (shared/reduce.ts), so the coordinator gets the bits any worker would send;
// for a pass, the blocks' values in the order they were asked for. A sparse run's (issue #13) params
// messages take their place in the same queue: the relay's replica (relay/sparse-params.ts) moves
// to a version only once the jobs before it are answered, so a job's recomputations mid-way still
// get the parameters it names; its workers' parts are sparse subtrees reduced along the same tree
// (shared/sparse-reduce.ts).

import { broadcastStep } from '../coordinator/broadcast.js';
import type { Assignment, PassJobSpec, Scatter, StepJobSpec, StepParts } from '../coordinator/scatter.js';
import type { SparseBroadcast } from '../coordinator/sparse-broadcast.js';
import { sparseSubtree } from '../coordinator/trainer.js';
import { NoWorkersError, ProtocolError } from '../shared/errors.js';
import { blockStart, passBlocks, passSliceBlocks, passWidth } from '../shared/passes.js';
import {
  encodeMessage,
  type ParamsMessage,
  type PartMessage,
  type PassMessage,
  type PassPartMessage,
  type StepMessage,
  type WorkerToCoordinator,
} from '../shared/protocol.js';
import { ChunkParts, decomposeRange, subtreeEnd, subtreeStart, TreeParts } from '../shared/reduce.js';
import { chunkStart, locateStep, type ScheduleSpec, splitSizes } from '../shared/schedule.js';
import { SparseTreeParts, sparsePartsToWire } from '../shared/sparse-reduce.js';
import type { SparsePart } from '../shared/sparse-rows.js';
import type { RelayParams } from './sparse-params.js';

/** How a job of the queue ended when it produced no answer. */
export interface JobFailureHandlers {
  /** The coordinator's message named units this relay cannot hold: the relay gives up its session. */
  badMessage(error: ProtocolError): void;
  /** No worker of the group was left for the rejoin timeout while the job was owed: the relay gives its work back. */
  noWorkers(reason: string): void;
  /** The group's scatter stopped for good (a fault that recurs): the relay fails. */
  fatal(error: Error): void;
}

/** A sparse run's parameters at the relay (issue #13): its replica, the broadcast to its group, O outputs. */
export interface RelaySparse {
  readonly params: RelayParams;
  readonly broadcast: SparseBroadcast;
  readonly outputs: number;
}

interface QueuedJob {
  readonly message: StepMessage | PassMessage | ParamsMessage;
  /** The upstream session it came in: answers of an ended session are void. */
  readonly session: number;
}

/** Error a job is cancelled with when its session ended; expected, never reported. */
class SessionEnded extends Error {}

export class RelayJobs {
  private readonly scatter: Scatter;
  private readonly schedule: ScheduleSpec;
  /** Values of a gradient part of the run's model (its shape's partWidth). */
  private readonly partWidth: number;
  private readonly trainRows: number;
  private readonly validationRows: number;
  private readonly send: (message: WorkerToCoordinator) => boolean;
  private readonly failures: JobFailureHandlers;
  private readonly stepParts: TreeParts;
  private readonly statsParts: ChunkParts;
  private readonly evalParts: ChunkParts;
  /** A sparse run's replica, broadcast and subtree values; null for dense data. */
  private readonly sparse: (RelaySparse & { readonly parts: SparseTreeParts }) | null;
  private readonly queue: QueuedJob[] = [];
  private session = 0;
  private relayId = -1;
  private isRunning = false;

  constructor(
    scatter: Scatter,
    schedule: ScheduleSpec,
    D: number,
    partWidth: number,
    send: (message: WorkerToCoordinator) => boolean,
    failures: JobFailureHandlers,
    sparse: RelaySparse | null = null,
  ) {
    this.scatter = scatter;
    this.schedule = schedule;
    this.partWidth = partWidth;
    const sizes = splitSizes(schedule.rows, schedule.valFraction);
    this.trainRows = sizes.train;
    this.validationRows = sizes.validation;
    this.send = send;
    this.failures = failures;
    // A sparse run keeps none of the dense buffers (at 2^24 features a step's would take gigabytes).
    const dense = sparse === null ? 1 : 0;
    this.sparse = sparse === null ? null : { ...sparse, parts: new SparseTreeParts(schedule.chunksPerBatch, sparse.outputs) };
    this.stepParts = new TreeParts(sparse === null ? schedule.chunksPerBatch : 1, dense * partWidth);
    const maxBlocks = passBlocks(Math.max(sizes.train, sizes.validation));
    this.statsParts = new ChunkParts(dense * maxBlocks, dense * passWidth('stats', D));
    this.evalParts = new ChunkParts(maxBlocks, passWidth('eval', D));
  }

  /** Units the group's scatter may be asked to track at once. */
  static maxUnits(schedule: ScheduleSpec): number {
    const sizes = splitSizes(schedule.rows, schedule.valFraction);
    return Math.max(schedule.chunksPerBatch, passBlocks(Math.max(sizes.train, sizes.validation)));
  }

  /** A new upstream session welcomed this relay with `relayId`: later messages are that session's. */
  startSession(relayId: number): void {
    this.relayId = relayId;
  }

  /** The upstream session ended: queued jobs are dropped and the one under way is cancelled (the coordinator recomputes them). */
  endSession(): void {
    this.session++;
    this.queue.length = 0;
    this.scatter.cancel(new SessionEnded('the coordinator session ended'));
  }

  /** A job, or (a sparse run) the parameters the jobs after it need: applied in the queue's order. */
  enqueue(message: StepMessage | PassMessage | ParamsMessage): void {
    this.queue.push({ message, session: this.session });
    if (!this.isRunning) {
      this.isRunning = true;
      this.drain().catch((error: unknown) => this.failures.fatal(error instanceof Error ? error : new Error(String(error))));
    }
  }

  private async drain(): Promise<void> {
    try {
      for (let job = this.queue.shift(); job !== undefined; job = this.queue.shift()) {
        if (job.session !== this.session) continue;
        try {
          if (job.message.kind === 'params') {
            this.applyParams(job.message);
            continue;
          }
          const answer = job.message.kind === 'step' ? await this.runStep(job.message) : await this.runPass(job.message);
          if (job.session === this.session) this.send(answer);
        } catch (error) {
          if (job.session !== this.session || error instanceof SessionEnded) continue;
          const failure = this.scatter.failure;
          if (failure !== null) this.failures.fatal(failure);
          else if (error instanceof ProtocolError) this.failures.badMessage(error);
          else if (error instanceof NoWorkersError) this.failures.noWorkers(error.message);
          else throw error;
        }
      }
    } finally {
      this.isRunning = false;
    }
  }

  private applyParams(message: ParamsMessage): void {
    if (this.sparse === null) throw new ProtocolError('params', 'kind', 'only a sparse run sends params'); // the decoder refuses it first
    this.sparse.params.apply(message);
  }

  /**
   * How the job's messages go to the group: a dense step carries θ; a sparse one first brings each
   * assigned worker's replica to the version the coordinator named (the relay's replica must hold
   * it), then names that version.
   */
  private stepSender(message: StepMessage): (assignments: readonly Assignment[]) => void {
    const sparse = this.sparse;
    if (sparse === null) return (assignments) => broadcastStep(message.step, assignments, message.theta);
    sparse.params.require('step', message.version);
    return (assignments) => {
      sparse.broadcast.sync(assignments.map((assignment) => assignment.worker));
      broadcastStep(message.step, assignments, message.theta, message.version);
    };
  }

  /** Scatters this relay's ranges of a step over the group and answers with one value per maximal aligned subtree of each range. */
  private async runStep(message: StepMessage): Promise<PartMessage> {
    const { batchSize, chunksPerBatch } = this.schedule;
    const { chunks, size } = locateStep(message.step, this.trainRows, batchSize, chunksPerBatch);
    const table = message.assign;
    const only: number[] = [];
    const subtrees: number[] = [];
    for (let e = 0; e < table.length; e += 3) {
      if (table[e] !== this.relayId) continue;
      const first = table[e + 1]!;
      const end = table[e + 2]!;
      if (end > chunks) throw new ProtocolError('step', 'assign', `chunks [${first}, ${end}) do not exist (step ${message.step} has ${chunks})`);
      for (let c = first; c < end; c++) only.push(c);
      decomposeRange(first, end, chunks, subtrees);
    }
    if (only.length === 0) throw new ProtocolError('step', 'assign', `no range for relay ${this.relayId}`);
    const unitRows = (first: number, end: number): number => chunkStart(size, chunks, end) - chunkStart(size, chunks, first);
    const sparse = this.sparse;
    const common = {
      kind: 'step',
      id: message.step,
      units: chunks,
      only,
      label: `step ${message.step}`,
      unitRows,
      // The coordinator's θ (or version), re-encoded once with the group's table and written to each worker of it.
      send: this.stepSender(message),
    } as const;
    if (sparse !== null) {
      const O = sparse.outputs;
      const spec: StepJobSpec<StepParts> = {
        ...common,
        parts: sparse.parts,
        acceptSubtree: (level, index, part, k) => sparse.parts.accept(level, index, sparseSubtree(part, k, O)),
      };
      const result = await this.scatter.run(spec);
      return this.sparseAnswer(message.step, subtrees, unitRows, chunks, result.contributors);
    }
    const result = await this.scatter.run({ ...common, parts: this.stepParts });
    const width = this.partWidth;
    const count = subtrees.length / 2;
    const sums = new Float64Array(count * width);
    const rows = new Uint32Array(count);
    for (let k = 0; k < count; k++) {
      const level = subtrees[2 * k]!;
      const index = subtrees[2 * k + 1]!;
      this.stepParts.reduceNode(level, index, sums, k * width);
      rows[k] = unitRows(subtreeStart(level, index), subtreeEnd(level, index, chunks));
    }
    return { kind: 'part', step: message.step, subtrees: Uint32Array.from(subtrees), sums, rows, workers: Math.max(1, result.contributors) };
  }

  /** The relay's sparse part: each of its subtrees reduced along the tree from its group's values, as one worker holding them would send. */
  private sparseAnswer(step: number, subtrees: number[], unitRows: (first: number, end: number) => number, chunks: number, contributors: number): PartMessage {
    const sparse = this.sparse!; // called for sparse runs only
    const count = subtrees.length / 2;
    const values: SparsePart[] = [];
    const rows = new Uint32Array(count);
    for (let k = 0; k < count; k++) {
      const level = subtrees[2 * k]!;
      const index = subtrees[2 * k + 1]!;
      values.push(sparse.parts.reduceNode(level, index));
      rows[k] = unitRows(subtreeStart(level, index), subtreeEnd(level, index, chunks));
    }
    const wire = sparsePartsToWire(values, sparse.outputs);
    return {
      kind: 'part',
      step,
      subtrees: Uint32Array.from(subtrees),
      sums: wire.sums,
      rows,
      sparse: { counts: wire.counts, indices: wire.indices, values: wire.values },
      workers: Math.max(1, contributors),
    };
  }

  /** Scatters a pass's blocks over the group (pull-based, as the coordinator does) and answers with their values in the order asked. */
  private async runPass(message: PassMessage): Promise<PassPartMessage> {
    const setRows = message.set === 'train' ? this.trainRows : this.validationRows;
    const blocks = passBlocks(setRows);
    for (const block of message.blocks) {
      if (block >= blocks) throw new ProtocolError('pass', 'blocks', `block ${block} does not exist (the pass has ${blocks})`);
    }
    const parts = message.purpose === 'stats' ? this.statsParts : this.evalParts;
    const unitRows = (first: number, end: number): number => blockStart(setRows, blocks, end) - blockStart(setRows, blocks, first);
    const { job, purpose, set, theta } = message;
    const sparse = this.sparse;
    sparse?.params.require('pass', message.version);
    const version = message.version === undefined ? {} : { version: message.version };
    const spec: PassJobSpec = {
      kind: 'pass',
      id: job,
      units: blocks,
      only: Array.from(message.blocks),
      parts,
      // The coordinator's words for its passes (coordinator/trainer.ts), for this relay's share of one.
      label: `${purpose === 'stats' ? 'feature statistics' : 'evaluation'} over the ${setRows.toLocaleString('en-US')} ${set === 'train' ? 'training' : 'validation'} rows`,
      maxUnitsPerWorker: passSliceBlocks(setRows),
      unitRows,
      send: (assignments) => {
        sparse?.broadcast.sync(assignments.map((assignment) => assignment.worker));
        for (const { worker, units } of assignments) {
          worker.sendBytes(encodeMessage({ kind: 'pass', job, purpose, set, blocks: Uint32Array.from(units), theta, ...version }));
        }
      },
    };
    await this.scatter.run(spec);
    const sums = new Float64Array(message.blocks.length * parts.width);
    const rows = new Uint32Array(message.blocks.length);
    for (let i = 0; i < message.blocks.length; i++) {
      const block = message.blocks[i]!;
      parts.read(block, sums, i * parts.width);
      rows[i] = unitRows(block, block + 1);
    }
    return { kind: 'passPart', job, blocks: message.blocks, sums, rows };
  }
}

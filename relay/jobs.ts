// The coordinator's jobs as a relay runs them: each step or pass message is scattered over the
// group for the units it gives this relay (one run of the group's Scatter each, in arrival order,
// one answer each, as a worker answers), and the group's parts are combined into the relay's
// answer: for a step, one value per maximal aligned subtree of each of its ranges, finished along
// the same fixed tree (shared/reduce.ts), so the coordinator gets the bits any worker would send;
// for a pass, the blocks' values in the order they were asked for.

import { broadcastStep } from '../coordinator/broadcast.js';
import type { PassJobSpec, Scatter, StepJobSpec } from '../coordinator/scatter.js';
import { NoWorkersError, ProtocolError } from '../shared/errors.js';
import { blockStart, passBlocks, passSliceBlocks, passWidth } from '../shared/passes.js';
import { encodeMessage, type PartMessage, type PassMessage, type PassPartMessage, type StepMessage, type WorkerToCoordinator } from '../shared/protocol.js';
import { ChunkParts, decomposeRange, subtreeEnd, subtreeStart, TreeParts } from '../shared/reduce.js';
import { chunkStart, locateStep, type ScheduleSpec, splitSizes } from '../shared/schedule.js';

/** How a job of the queue ended when it produced no answer. */
export interface JobFailureHandlers {
  /** The coordinator's message named units this relay cannot hold: the relay gives up its session. */
  badMessage(error: ProtocolError): void;
  /** No worker of the group was left for the rejoin timeout while the job was owed: the relay gives its work back. */
  noWorkers(reason: string): void;
  /** The group's scatter stopped for good (a fault that recurs): the relay fails. */
  fatal(error: Error): void;
}

interface QueuedJob {
  readonly message: StepMessage | PassMessage;
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
  ) {
    this.scatter = scatter;
    this.schedule = schedule;
    this.partWidth = partWidth;
    const sizes = splitSizes(schedule.rows, schedule.valFraction);
    this.trainRows = sizes.train;
    this.validationRows = sizes.validation;
    this.send = send;
    this.failures = failures;
    this.stepParts = new TreeParts(schedule.chunksPerBatch, partWidth);
    const maxBlocks = passBlocks(Math.max(sizes.train, sizes.validation));
    this.statsParts = new ChunkParts(maxBlocks, passWidth('stats', D));
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

  enqueue(message: StepMessage | PassMessage): void {
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
    const spec: StepJobSpec = {
      kind: 'step',
      id: message.step,
      units: chunks,
      only,
      parts: this.stepParts,
      label: `step ${message.step}`,
      unitRows,
      // The coordinator's θ, re-encoded once with the group's table and written to each worker of it.
      send: (assignments) => broadcastStep(message.step, assignments, message.theta),
    };
    const result = await this.scatter.run(spec);
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
        for (const { worker, units } of assignments) {
          worker.sendBytes(encodeMessage({ kind: 'pass', job, purpose, set, blocks: Uint32Array.from(units), theta }));
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

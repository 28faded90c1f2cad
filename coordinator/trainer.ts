// The training loop: for each step of the schedule, scatter the batch's chunks over the ready
// workers, gather their parts, recompute what a lost worker owed, reduce in chunk order to the
// exact batch mean, update w and b, and publish the step. Owns the model; workers own nothing.

import { DivergedError, NoWorkersError, ProtocolError } from '../shared/errors.js';
import { lossAndAccuracy } from '../shared/evaluation.js';
import type { EvalEvent, StepEvent, TrainingEvent } from '../shared/events.js';
import { encodeMessage, type PartMessage } from '../shared/protocol.js';
import { sumChunksInOrder } from '../shared/reduce.js';
import { batchesPerEpoch, chunkStart, locateStep, type RowSplit, type StepLocation } from '../shared/schedule.js';
import type { CoordinatorConfig } from './config.js';
import type { WorkerConnection, WorkerListener, WorkerServer } from './server.js';

/** The coordinator's own copy of the data, standardized, for evaluation at epoch ends. */
export interface TrainingData {
  readonly x: Float32Array;
  readonly y: Uint8Array;
  readonly D: number;
  readonly split: RowSplit;
}

export interface TrainResult {
  readonly w: Float64Array;
  readonly b: number;
  readonly steps: number;
  readonly lastEval: EvalEvent | null;
  readonly wallMs: number;
  readonly rowsProcessed: number;
}

/** The step in flight: which chunks are done and who owes the rest. */
interface StepInFlight {
  readonly step: number;
  readonly location: StepLocation;
  pending: number;
  readonly contributors: Set<number>;
  deadline: NodeJS.Timeout | undefined;
  waitingSince: number | null;
  resolve: () => void;
  reject: (error: Error) => void;
}

const UNASSIGNED = -1;
/** Largest |z| a model may produce on the data: far from overflow even summed over 10^8 rows. */
const MAX_SCORE = 1e290;

export class Trainer implements WorkerListener {
  private w: Float64Array;
  private b = 0;
  private readonly config: CoordinatorConfig;
  private readonly data: TrainingData;
  private readonly emit: (event: TrainingEvent) => void;
  private readonly log: (line: string) => void;
  private server: WorkerServer | null = null;
  /** chunksPerBatch × (D + 2) parts of the step in flight, kept in chunk order. */
  private readonly parts: Float64Array;
  private readonly isChunkDone: Uint8Array;
  /** Worker id each chunk of the step in flight is assigned to, or UNASSIGNED. */
  private readonly chunkOwner: Int32Array;
  private readonly batchSum: Float64Array;
  /** max |x_j| over all rows, to bound |z| = |w·x + b| ≤ Σ|w_j|·max|x_j| + |b| after an update. */
  private readonly featureMaxAbs: Float64Array;
  private current: StepInFlight | null = null;
  private joinWaiter: (() => void) | null = null;
  private state: 'waiting' | 'training' | 'finished' = 'waiting';
  private committedSteps = 0;
  private lastLoss: number | null = null;

  constructor(config: CoordinatorConfig, data: TrainingData, emit: (event: TrainingEvent) => void, log: (line: string) => void) {
    this.config = config;
    this.data = data;
    this.emit = emit;
    this.log = log;
    this.w = new Float64Array(data.D);
    this.parts = new Float64Array(config.chunksPerBatch * (data.D + 2));
    this.isChunkDone = new Uint8Array(config.chunksPerBatch);
    this.chunkOwner = new Int32Array(config.chunksPerBatch);
    this.batchSum = new Float64Array(data.D + 2);
    this.featureMaxAbs = new Float64Array(data.D);
    for (let i = 0; i < data.x.length; i++) {
      const j = i % data.D;
      this.featureMaxAbs[j] = Math.max(this.featureMaxAbs[j]!, Math.abs(data.x[i]!));
    }
  }

  attach(server: WorkerServer): void {
    this.server = server;
  }

  get totalSteps(): number {
    return this.config.epochs * batchesPerEpoch(this.data.split.train.length, this.config.batchSize);
  }

  /** Waits for the configured number of workers, bounded by the join timeout. */
  async waitForWorkers(): Promise<void> {
    const server = this.requireServer();
    const wanted = this.config.workers;
    if (server.readyWorkers().length >= wanted) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.joinWaiter = null;
        reject(new NoWorkersError(`only ${server.readyWorkers().length} of ${wanted} workers joined within ${this.config.joinTimeoutMs} ms`));
      }, this.config.joinTimeoutMs);
      this.joinWaiter = () => {
        if (server.readyWorkers().length < wanted) return;
        clearTimeout(timer);
        this.joinWaiter = null;
        resolve();
      };
    });
  }

  async run(): Promise<TrainResult> {
    const started = performance.now();
    const total = this.totalSteps;
    const perEpoch = batchesPerEpoch(this.data.split.train.length, this.config.batchSize);
    let lastEval: EvalEvent | null = null;
    let rowsProcessed = 0;
    this.state = 'training';
    for (let step = 0; step < total; step++) {
      const location = locateStep(step, this.data.split.train.length, this.config.batchSize, this.config.chunksPerBatch);
      const stepStarted = performance.now();
      const contributors = await this.runStep(step, location);
      const loss = this.commit(step, location);
      const stepMs = performance.now() - stepStarted;
      rowsProcessed += location.size;
      this.committedSteps = step + 1;
      this.lastLoss = loss;
      this.emit({
        type: 'step',
        step,
        epoch: location.epoch,
        loss,
        rows: location.size,
        workers: contributors,
        stepMs,
        rowsPerSec: stepMs > 0 ? (location.size * 1000) / stepMs : 0,
        time: Date.now(),
      } satisfies StepEvent);
      if (location.batch === perEpoch - 1) {
        lastEval = this.evaluate(location.epoch);
        this.emit(lastEval);
      }
    }
    this.state = 'finished';
    return { w: this.w, b: this.b, steps: total, lastEval, wallMs: performance.now() - started, rowsProcessed };
  }

  /** Scatters step `step` and resolves with the number of contributing workers once every chunk is in. */
  private runStep(step: number, location: StepLocation): Promise<number> {
    this.isChunkDone.fill(0);
    this.chunkOwner.fill(UNASSIGNED);
    return new Promise<number>((resolve, reject) => {
      const inFlight: StepInFlight = {
        step,
        location,
        pending: location.chunks,
        contributors: new Set(),
        deadline: undefined,
        waitingSince: null,
        resolve: () => {
          clearTimeout(inFlight.deadline);
          this.current = null;
          resolve(inFlight.contributors.size);
        },
        reject: (error) => {
          clearTimeout(inFlight.deadline);
          this.current = null;
          reject(error);
        },
      };
      this.current = inFlight;
      this.assignUnowned();
    });
  }

  /** Assigns every pending chunk that has no owner to the ready workers, in contiguous even shares. */
  private assignUnowned(): void {
    const inFlight = this.current;
    if (inFlight === null) return;
    const unowned: number[] = [];
    for (let c = 0; c < inFlight.location.chunks; c++) {
      if (this.isChunkDone[c] === 0 && this.chunkOwner[c] === UNASSIGNED) unowned.push(c);
    }
    if (unowned.length === 0) return;
    const workers = this.requireServer().readyWorkers();
    if (workers.length === 0) {
      this.waitForRejoin(inFlight);
      return;
    }
    inFlight.waitingSince = null;
    const shares = Math.min(workers.length, unowned.length);
    for (let i = 0; i < shares; i++) {
      const worker = workers[i]!; // i < shares <= workers.length
      const mine = unowned.slice(Math.floor((i * unowned.length) / shares), Math.floor(((i + 1) * unowned.length) / shares));
      for (const c of mine) this.chunkOwner[c] = worker.id;
      worker.sendBytes(encodeMessage({ kind: 'step', step: inFlight.step, chunks: Uint32Array.from(mine), w: this.w, b: this.b }));
    }
    this.armDeadline(inFlight);
  }

  /** After --step-timeout without completion, workers that still owe chunks are dropped. */
  private armDeadline(inFlight: StepInFlight): void {
    clearTimeout(inFlight.deadline);
    inFlight.deadline = setTimeout(() => {
      const late = new Set<number>();
      for (let c = 0; c < inFlight.location.chunks; c++) {
        if (this.isChunkDone[c] === 0 && this.chunkOwner[c] !== UNASSIGNED) late.add(this.chunkOwner[c]!);
      }
      const server = this.requireServer();
      for (const worker of server.readyWorkers()) {
        if (late.has(worker.id)) server.drop(worker, `no part for step ${inFlight.step} within ${this.config.stepTimeoutMs} ms`);
      }
    }, this.config.stepTimeoutMs);
  }

  private waitForRejoin(inFlight: StepInFlight): void {
    if (inFlight.waitingSince !== null) return;
    inFlight.waitingSince = Date.now();
    this.log(`no worker left at step ${inFlight.step}; waiting up to ${this.config.rejoinTimeoutMs} ms for one to join`);
    clearTimeout(inFlight.deadline);
    inFlight.deadline = setTimeout(() => {
      inFlight.reject(new NoWorkersError(`no worker was available for step ${inFlight.step} for ${this.config.rejoinTimeoutMs} ms`));
    }, this.config.rejoinTimeoutMs);
  }

  workerReady(worker: WorkerConnection): void {
    const workers = this.requireServer().readyWorkers().length;
    this.emit({ type: 'worker', event: 'joined', workerId: worker.id, address: worker.address, reason: 'handshake complete', workers, time: Date.now() });
    this.joinWaiter?.();
    // A worker that joins mid-step only takes chunks nobody owns (rows of a lost worker
    // while none was left); otherwise it gets work from the next step on.
    this.assignUnowned();
  }

  workerLost(worker: WorkerConnection, reason: string): void {
    const workers = this.requireServer().readyWorkers().length;
    if (this.state !== 'finished') this.log(`worker ${worker.id} left: ${reason}`);
    this.emit({ type: 'worker', event: 'left', workerId: worker.id, address: worker.address, reason, workers, time: Date.now() });
    const inFlight = this.current;
    if (inFlight === null) return;
    let owed = 0;
    for (let c = 0; c < inFlight.location.chunks; c++) {
      if (this.isChunkDone[c] === 0 && this.chunkOwner[c] === worker.id) {
        this.chunkOwner[c] = UNASSIGNED;
        owed++;
      }
    }
    if (owed > 0) {
      this.log(`recomputing ${owed} chunk(s) of step ${inFlight.step} that worker ${worker.id} owed`);
      this.assignUnowned();
    }
  }

  part(worker: WorkerConnection, message: PartMessage): void {
    const inFlight = this.current;
    // A part for another step (a late answer) is discarded: never counted twice.
    if (inFlight === null || message.step !== inFlight.step) return;
    const { chunks: count, size } = inFlight.location;
    const width = this.data.D + 2;
    // Check the whole part before any of it touches state.
    for (let i = 0; i < message.chunks.length; i++) {
      const c = message.chunks[i]!;
      if (c >= count || this.chunkOwner[c] !== worker.id || this.isChunkDone[c] === 1) {
        throw new ProtocolError('part', 'chunks', `chunk ${c} of step ${inFlight.step} was not assigned to worker ${worker.id} or is already in`);
      }
      const rows = chunkStart(size, count, c + 1) - chunkStart(size, count, c);
      if (message.rows[i] !== rows) throw new ProtocolError('part', 'rows', `chunk ${c} has ${rows} rows, the part says ${message.rows[i]}`);
    }
    for (let i = 0; i < message.chunks.length; i++) {
      const c = message.chunks[i]!;
      this.parts.set(message.sums.subarray(i * width, (i + 1) * width), c * width);
      this.isChunkDone[c] = 1;
    }
    inFlight.contributors.add(worker.id);
    inFlight.pending -= message.chunks.length;
    if (inFlight.pending === 0) inFlight.resolve();
  }

  /** Reduces the parts to the batch mean, applies the update, and returns the batch's mean loss. */
  private commit(step: number, location: StepLocation): number {
    const D = this.data.D;
    sumChunksInOrder(this.parts, location.chunks, D + 2, this.batchSum);
    const n = location.size;
    const { lr, l2 } = this.config;
    // w ← w − η·((1/n)·Σ(a−y)x + λ·w);  b ← b − η·(1/n)·Σ(a−y). Computed in full, then swapped in.
    const next = new Float64Array(D);
    const nextB = this.b - lr * (this.batchSum[D]! / n);
    let scoreBound = Math.abs(nextB);
    for (let j = 0; j < D; j++) {
      const wj = this.w[j]!;
      const value = wj - lr * (this.batchSum[j]! / n + l2 * wj);
      next[j] = value;
      scoreBound += Math.abs(value) * this.featureMaxAbs[j]!;
    }
    // Beyond this bound a worker's z, loss or gradient sums could overflow to Infinity or NaN.
    if (!(scoreBound <= MAX_SCORE)) {
      throw new DivergedError(
        `step ${step}: the update made the model non-finite (|w·x + b| could reach ${scoreBound}; learning rate ${lr} too large?); the last good model is kept`,
      );
    }
    this.w = next;
    this.b = nextB;
    return this.batchSum[D + 1]! / n;
  }

  private evaluate(epoch: number): EvalEvent {
    const { x, y, D, split } = this.data;
    const train = lossAndAccuracy(x, y, D, split.train, this.w, this.b);
    const validation = split.validation.length > 0 ? lossAndAccuracy(x, y, D, split.validation, this.w, this.b) : null;
    return {
      type: 'eval',
      epoch,
      trainLoss: train.loss,
      trainAccuracy: train.accuracy,
      valLoss: validation?.loss ?? null,
      valAccuracy: validation?.accuracy ?? null,
      time: Date.now(),
    };
  }

  /** The run's state as GET /status shows it. */
  status(): Record<string, unknown> {
    return {
      state: this.state,
      step: this.committedSteps,
      totalSteps: this.totalSteps,
      epochs: this.config.epochs,
      lastLoss: this.lastLoss,
      workers: (this.server?.readyWorkers() ?? []).map((worker) => ({ id: worker.id, address: worker.address })),
    };
  }

  /** The model as it stands (the last committed step). */
  model(): { w: Float64Array; b: number } {
    return { w: this.w, b: this.b };
  }

  private requireServer(): WorkerServer {
    if (this.server === null) throw new Error('Trainer used before attach(server)');
    return this.server;
  }
}

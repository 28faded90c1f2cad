// The training loop: for each step of the schedule, scatter the batch's chunks over the ready
// workers, gather their parts, recompute what a lost worker owed, back up stragglers, reduce to
// the exact batch mean, update w and b, and publish the step. Owns the model; workers own nothing.

import { DivergedError, NoWorkersError, ProtocolError } from '../shared/errors.js';
import { lossAndAccuracy } from '../shared/evaluation.js';
import type { EvalEvent, StepEvent, TrainingEvent } from '../shared/events.js';
import { encodeMessage, type PartMessage } from '../shared/protocol.js';
import { ChunkParts } from '../shared/reduce.js';
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

/** Where a run starts: step 0 with a zero model, or a checkpoint's position and model. */
export interface StartPoint {
  readonly step: number;
  readonly w: Float64Array;
  readonly b: number;
  readonly lastEval: EvalEvent | null;
}

/** The model after a committed step, for checkpoints. */
export interface CommittedState {
  /** The next step to run. */
  readonly step: number;
  readonly w: Float64Array;
  readonly b: number;
  readonly lastEval: EvalEvent | null;
  readonly isEpochEnd: boolean;
}

export interface TrainResult {
  readonly w: Float64Array;
  readonly b: number;
  readonly steps: number;
  readonly lastEval: EvalEvent | null;
  readonly wallMs: number;
  /** Rows processed by this process (from the start point on). */
  readonly rowsProcessed: number;
  /** Steps run by this process (from the start point on). */
  readonly stepsRun: number;
}

/** The step in flight: which chunks are done and who owes the rest. */
interface StepInFlight {
  readonly step: number;
  readonly location: StepLocation;
  readonly startedAt: number;
  readonly contributors: Set<number>;
  rowsAccounted: number;
  deadline: NodeJS.Timeout | undefined;
  backupTimer: NodeJS.Timeout | undefined;
  waitingSince: number | null;
  resolve: () => void;
  reject: (error: Error) => void;
}

const NOBODY = -1;
/** Largest |z| a model may produce on the data: far from overflow even summed over 10^8 rows. */
const MAX_SCORE = 1e290;
/** Backups are not worth launching for steps shorter than this. */
const MIN_BACKUP_DELAY_MS = 20;

export class Trainer implements WorkerListener {
  private w: Float64Array;
  private b: number;
  private readonly config: CoordinatorConfig;
  private readonly data: TrainingData;
  private readonly emit: (event: TrainingEvent) => void;
  private readonly log: (line: string) => void;
  private server: WorkerServer | null = null;
  private readonly parts: ChunkParts;
  /** Worker id each chunk of the step in flight is assigned to, or NOBODY. */
  private readonly chunkOwner: Int32Array;
  /** Worker id computing a backup copy of each chunk, or NOBODY. */
  private readonly chunkBackup: Int32Array;
  private readonly batchSum: Float64Array;
  /** D + 2 zeros: the other chunks of a merged part. */
  private readonly zeros: Float64Array;
  /** Step messages sent to each worker and not yet answered: a worker with some is busy. */
  private readonly outstanding = new Map<number, number>();
  /** max |x_j| over all rows, to bound |z| = |w·x + b| ≤ Σ|w_j|·max|x_j| + |b| after an update. */
  private readonly featureMaxAbs: Float64Array;
  private readonly startStep: number;
  private lastEval: EvalEvent | null;
  private current: StepInFlight | null = null;
  private joinWaiter: (() => void) | null = null;
  private state: 'waiting' | 'training' | 'finished' = 'waiting';
  private committedSteps: number;
  private lastLoss: number | null = null;
  private onCommitted: (state: CommittedState) => void = () => undefined;
  private onPartAccepted: (workerId: number, rows: number) => void = () => undefined;

  constructor(config: CoordinatorConfig, data: TrainingData, start: StartPoint, emit: (event: TrainingEvent) => void, log: (line: string) => void) {
    this.config = config;
    this.data = data;
    this.emit = emit;
    this.log = log;
    this.w = start.w;
    this.b = start.b;
    this.startStep = start.step;
    this.committedSteps = start.step;
    this.lastEval = start.lastEval;
    this.parts = new ChunkParts(config.chunksPerBatch, data.D + 2);
    this.chunkOwner = new Int32Array(config.chunksPerBatch);
    this.chunkBackup = new Int32Array(config.chunksPerBatch);
    this.batchSum = new Float64Array(data.D + 2);
    this.zeros = new Float64Array(data.D + 2);
    this.featureMaxAbs = new Float64Array(data.D);
    for (let i = 0; i < data.x.length; i++) {
      const j = i % data.D;
      this.featureMaxAbs[j] = Math.max(this.featureMaxAbs[j]!, Math.abs(data.x[i]!));
    }
  }

  attach(server: WorkerServer): void {
    this.server = server;
  }

  /** Called after every committed step (for checkpoints); runs synchronously before the next step. */
  setCommitListener(listener: (state: CommittedState) => void): void {
    this.onCommitted = listener;
  }

  /** Called for each accepted part with the worker's id and the rows it added (per-worker monitoring, issue 3); on the hot path, so it must not allocate. */
  setPartListener(listener: (workerId: number, rows: number) => void): void {
    this.onPartAccepted = listener;
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
    let rowsProcessed = 0;
    this.state = 'training';
    for (let step = this.startStep; step < total; step++) {
      const location = locateStep(step, this.data.split.train.length, this.config.batchSize, this.config.chunksPerBatch);
      const stepStarted = performance.now();
      const inFlight = await this.runStep(step, location);
      if (inFlight.rowsAccounted !== location.size) {
        throw new Error(`invariant broken: step ${step} accounted ${inFlight.rowsAccounted} rows of ${location.size}`);
      }
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
        rows: inFlight.rowsAccounted,
        workers: inFlight.contributors.size,
        stepMs,
        rowsPerSec: stepMs > 0 ? (location.size * 1000) / stepMs : 0,
        time: Date.now(),
      } satisfies StepEvent);
      const isEpochEnd = location.batch === perEpoch - 1;
      if (isEpochEnd) {
        this.lastEval = this.evaluate(location.epoch);
        this.emit(this.lastEval);
      }
      this.onCommitted({ step: step + 1, w: this.w, b: this.b, lastEval: this.lastEval, isEpochEnd });
    }
    this.state = 'finished';
    return {
      w: this.w,
      b: this.b,
      steps: total,
      lastEval: this.lastEval,
      wallMs: performance.now() - started,
      rowsProcessed,
      stepsRun: total - this.startStep,
    };
  }

  /** Scatters step `step` and resolves once every chunk is in. */
  private runStep(step: number, location: StepLocation): Promise<StepInFlight> {
    this.parts.reset(location.chunks);
    this.chunkOwner.fill(NOBODY);
    this.chunkBackup.fill(NOBODY);
    return new Promise<StepInFlight>((resolve, reject) => {
      const inFlight: StepInFlight = {
        step,
        location,
        startedAt: performance.now(),
        contributors: new Set(),
        rowsAccounted: 0,
        deadline: undefined,
        backupTimer: undefined,
        waitingSince: null,
        resolve: () => {
          clearTimeout(inFlight.deadline);
          clearTimeout(inFlight.backupTimer);
          this.current = null;
          resolve(inFlight);
        },
        reject: (error) => {
          clearTimeout(inFlight.deadline);
          clearTimeout(inFlight.backupTimer);
          this.current = null;
          reject(error);
        },
      };
      this.current = inFlight;
      this.assignUnowned();
    });
  }

  /**
   * Assigns every pending chunk without an owner to the ready workers in contiguous, even
   * shares. Idle workers are preferred: a straggler still busy with an old step is skipped.
   */
  private assignUnowned(): void {
    const inFlight = this.current;
    if (inFlight === null) return;
    const unowned: number[] = [];
    for (let c = 0; c < inFlight.location.chunks; c++) {
      if (!this.parts.has(c) && this.chunkOwner[c] === NOBODY) unowned.push(c);
    }
    if (unowned.length === 0) return;
    const ready = this.requireServer().readyWorkers();
    if (ready.length === 0) {
      this.waitForRejoin(inFlight);
      return;
    }
    const idle = ready.filter((worker) => (this.outstanding.get(worker.id) ?? 0) === 0);
    const workers = idle.length > 0 ? idle : ready;
    inFlight.waitingSince = null;
    const shares = Math.min(workers.length, unowned.length);
    for (let i = 0; i < shares; i++) {
      const worker = workers[i]!; // i < shares <= workers.length
      const mine = unowned.slice(Math.floor((i * unowned.length) / shares), Math.floor(((i + 1) * unowned.length) / shares));
      for (const c of mine) this.chunkOwner[c] = worker.id;
      this.sendStep(worker, inFlight.step, mine);
    }
    this.armDeadline(inFlight);
  }

  private sendStep(worker: WorkerConnection, step: number, chunks: number[]): void {
    this.outstanding.set(worker.id, (this.outstanding.get(worker.id) ?? 0) + 1);
    worker.sendBytes(encodeMessage({ kind: 'step', step, chunks: Uint32Array.from(chunks), w: this.w, b: this.b }));
  }

  /** After --step-timeout without completion, workers that still owe chunks are dropped. */
  private armDeadline(inFlight: StepInFlight): void {
    clearTimeout(inFlight.deadline);
    inFlight.deadline = setTimeout(() => {
      const late = new Set<number>();
      for (let c = 0; c < inFlight.location.chunks; c++) {
        if (this.parts.has(c)) continue;
        if (this.chunkOwner[c] !== NOBODY) late.add(this.chunkOwner[c]!);
        if (this.chunkBackup[c] !== NOBODY) late.add(this.chunkBackup[c]!);
      }
      const server = this.requireServer();
      for (const worker of server.readyWorkers()) {
        if (late.has(worker.id)) server.drop(worker, `no part for step ${inFlight.step} within ${this.config.stepTimeoutMs} ms`);
      }
    }, this.config.stepTimeoutMs);
  }

  /**
   * Backup tasks (as MapReduce does for stragglers): once a worker has answered its share and
   * chunks are still pending elsewhere, wait backupFactor × the time it took, then give those
   * chunks also to idle workers. The first copy of a chunk wins; the other is ignored.
   */
  private scheduleBackups(inFlight: StepInFlight): void {
    if (this.config.backupFactor === 0 || inFlight.backupTimer !== undefined) return;
    const firstMs = performance.now() - inFlight.startedAt;
    const delayMs = Math.max(MIN_BACKUP_DELAY_MS, (this.config.backupFactor - 1) * firstMs);
    inFlight.backupTimer = setTimeout(() => this.launchBackups(inFlight), delayMs);
  }

  private launchBackups(inFlight: StepInFlight): void {
    if (this.current !== inFlight) return;
    const idle = this.requireServer()
      .readyWorkers()
      .filter((worker) => (this.outstanding.get(worker.id) ?? 0) === 0);
    const pending: number[] = [];
    for (let c = 0; c < inFlight.location.chunks; c++) {
      if (!this.parts.has(c) && this.chunkOwner[c] !== NOBODY && this.chunkBackup[c] === NOBODY) pending.push(c);
    }
    if (idle.length === 0 || pending.length === 0) return;
    const shares = Math.min(idle.length, pending.length);
    for (let i = 0; i < shares; i++) {
      const worker = idle[i]!; // i < shares <= idle.length
      const mine = pending.slice(Math.floor((i * pending.length) / shares), Math.floor(((i + 1) * pending.length) / shares));
      for (const c of mine) this.chunkBackup[c] = worker.id;
      this.sendStep(worker, inFlight.step, mine);
    }
    this.log(`step ${inFlight.step}: ${pending.length} straggling chunk(s) also given to ${shares} idle worker(s)`);
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
    this.outstanding.delete(worker.id);
    const workers = this.requireServer().readyWorkers().length;
    if (this.state !== 'finished') this.log(`worker ${worker.id} left: ${reason}`);
    this.emit({ type: 'worker', event: 'left', workerId: worker.id, address: worker.address, reason, workers, time: Date.now() });
    const inFlight = this.current;
    if (inFlight === null) return;
    let owed = 0;
    for (let c = 0; c < inFlight.location.chunks; c++) {
      if (this.parts.has(c)) continue;
      if (this.chunkBackup[c] === worker.id) this.chunkBackup[c] = NOBODY;
      if (this.chunkOwner[c] === worker.id) {
        // The backup copy, if any, becomes the chunk's owner; else the chunk is reassigned.
        this.chunkOwner[c] = this.chunkBackup[c]!;
        this.chunkBackup[c] = NOBODY;
        if (this.chunkOwner[c] === NOBODY) owed++;
      }
    }
    if (owed > 0) {
      this.log(`recomputing ${owed} chunk(s) of step ${inFlight.step} that worker ${worker.id} owed`);
      this.assignUnowned();
    }
  }

  part(worker: WorkerConnection, message: PartMessage): void {
    const left = (this.outstanding.get(worker.id) ?? 1) - 1;
    this.outstanding.set(worker.id, Math.max(0, left));
    const inFlight = this.current;
    // A part for another step (a late answer) is discarded: never counted twice.
    if (inFlight === null || message.step !== inFlight.step) return;
    const { chunks: count, size } = inFlight.location;
    const width = this.data.D + 2;
    if (message.merged === this.config.reproducible) {
      throw new ProtocolError('part', 'merged', this.config.reproducible ? 'this run needs per-chunk parts' : 'this run needs merged parts');
    }
    // Check the whole part before any of it touches state.
    let isDuplicate = false;
    for (let i = 0; i < message.chunks.length; i++) {
      const c = message.chunks[i]!;
      if (c >= count || (this.chunkOwner[c] !== worker.id && this.chunkBackup[c] !== worker.id)) {
        throw new ProtocolError('part', 'chunks', `chunk ${c} of step ${inFlight.step} was not assigned to worker ${worker.id}`);
      }
      const rows = chunkStart(size, count, c + 1) - chunkStart(size, count, c);
      if (message.rows[i] !== rows) throw new ProtocolError('part', 'rows', `chunk ${c} has ${rows} rows, the part says ${message.rows[i]}`);
      if (this.parts.has(c)) isDuplicate = true;
    }
    const rowsBefore = inFlight.rowsAccounted;
    if (message.merged) {
      // A merged part cannot be split: it counts only if none of its chunks is in yet.
      if (isDuplicate) return;
      this.acceptMerged(message);
    } else {
      for (let i = 0; i < message.chunks.length; i++) {
        if (this.parts.accept(message.chunks[i]!, message.sums, i * width)) inFlight.rowsAccounted += message.rows[i]!;
      }
    }
    inFlight.contributors.add(worker.id);
    if (inFlight.rowsAccounted > rowsBefore) this.onPartAccepted(worker.id, inFlight.rowsAccounted - rowsBefore);
    if (this.parts.pending === 0) inFlight.resolve();
    else if (left <= 0) this.scheduleBackups(inFlight);
  }

  /** Non-reproducible mode: the worker's chunks arrive already added; the sum lands on its first chunk. */
  private acceptMerged(message: PartMessage): void {
    const inFlight = this.current;
    if (inFlight === null) return;
    for (let i = 0; i < message.chunks.length; i++) {
      this.parts.accept(message.chunks[i]!, i === 0 ? message.sums : this.zeros, 0);
      inFlight.rowsAccounted += message.rows[i]!;
    }
  }

  /** Reduces the parts to the batch mean, applies the update, and returns the batch's mean loss. */
  private commit(step: number, location: StepLocation): number {
    const D = this.data.D;
    this.parts.reduce(this.batchSum);
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

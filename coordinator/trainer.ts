// The training schedule: a statistics pass (standardization and the divergence bound), then
// for each step of the schedule a scattered gradient job reduced to the exact batch mean, the
// optimizer's update of the flat parameter vector at the schedule's rate, the step event, and an
// evaluation pass at each epoch end. Owns the model and the optimizer state; workers own nothing,
// and the coordinator never reads the data rows itself.

import { DivergedError } from '../shared/errors.js';
import type { EvalEvent, StepEvent, TrainingEvent } from '../shared/events.js';
import { type ModelShape, scoreBound } from '../shared/model-shape.js';
import { blockStart, type MergedStats, mergeStats, passBlocks, passSliceBlocks, passWidth } from '../shared/passes.js';
import { encodeMessage, type PartMessage, type PassPurpose, type RowSet } from '../shared/protocol.js';
import { ChunkParts, TreeParts } from '../shared/reduce.js';
import { batchesPerEpoch, chunkStart, evaluatesAfterEpoch, locateStep, type StepLocation } from '../shared/schedule.js';
import { SparseTreeParts } from '../shared/sparse-reduce.js';
import type { SparsePart } from '../shared/sparse-rows.js';
import type { Standardization } from '../shared/standardize.js';
import type { BatchCoordinates } from './batch-coordinates.js';
import { broadcastStep } from './broadcast.js';
import type { CoordinatorConfig } from './config.js';
import { EarlyStopping, type EarlyStoppingOutcome, type SavedEarlyStopping } from './early-stopping.js';
import { createLrSchedule, type LrSchedule } from './lr-schedule.js';
import { createOptimizer, type Optimizer, type OptimizerState } from './optimizers.js';
import type { PassJobSpec, Scatter, StepJobSpec, StepParts } from './scatter.js';
import type { WorkerServer } from './server.js';
import { SparseBroadcast } from './sparse-broadcast.js';
import { checkSparseOptimizer, SparseModel } from './sparse-model.js';

/** What the trainer knows of the data: its shape, never its rows. */
export interface DataShape {
  readonly D: number;
  readonly trainRows: number;
  readonly validationRows: number;
  /** Sparse rows (issue #13): O(touched) updates and params deltas, no statistics pass. Absent: dense. */
  readonly isSparse?: boolean;
  /** The coordinates of a step's batch (batch-coordinates.ts), which sgd with --l1 on sparse rows needs; absent otherwise. */
  readonly batchCoordinates?: BatchCoordinates;
}

/** Where a run starts: step 0 with a zero model, or a checkpoint's position, model and optimizer state. */
export interface StartPoint {
  readonly step: number;
  /** The flat parameter vector (the shape's layout); the trainer takes ownership. */
  readonly params: Float64Array;
  /** The optimizer's state after step − 1; null at step 0. */
  readonly optimizer: OptimizerState | null;
  readonly lastEval: EvalEvent | null;
  /** The early-stopping rule's state (with --early-stopping); absent or null: a fresh one. */
  readonly earlyStopping?: SavedEarlyStopping | null;
  /** A sparse run's checkpoint: `params` holds v and the biases, w = scale·v; absent: θ itself (scale 1, version = step). */
  readonly sparse?: { readonly scale: number; readonly version: number } | null;
}

/** The model after a committed step, for checkpoints: valid only during the listener's call. */
export interface CommittedState {
  /** The next step to run. */
  readonly step: number;
  /**
   * The parameter vector θ (the shape's layout): read it during the call, never keep it. A sparse
   * run's is v then the biases (w = scale·v, see `sparse`), built when read (O(D)).
   */
  readonly params: Float64Array;
  /** A sparse run's scale and params version (issue #13); null for a dense run. */
  readonly sparse: { readonly scale: number; readonly version: number } | null;
  readonly lastEval: EvalEvent | null;
  readonly isEpochEnd: boolean;
  /** A copy of the optimizer's state (taken only when called). */
  readonly optimizer: () => OptimizerState;
  /** A copy of the early-stopping state (taken only when called); null without --early-stopping. */
  readonly earlyStopping: () => SavedEarlyStopping | null;
}

export interface TrainResult {
  /** The parameter vector θ (the shape's layout): with --early-stopping the best evaluation's (see earlyStopping), else the last step's. */
  readonly params: Float64Array;
  /** Steps committed (fewer than the schedule's when early stopping ended the run). */
  readonly steps: number;
  readonly lastEval: EvalEvent | null;
  readonly wallMs: number;
  /** Rows processed by this process (from the start point on). */
  readonly rowsProcessed: number;
  /** Steps run by this process (from the start point on). */
  readonly stepsRun: number;
  /** The standardization in force (null with --no-standardize). */
  readonly standardization: Standardization | null;
  /** With --early-stopping: the best evaluation, and where the run stopped. */
  readonly earlyStopping: EarlyStoppingOutcome | null;
}

/** A data pass's progress, as reported to setPassListener (the CLI's progress line). */
export interface PassProgress {
  readonly purpose: PassPurpose;
  readonly set: RowSet;
  /** Rows the pass covers. */
  readonly rows: number;
  /** Rows whose parts are in so far: 0 when it starts, `rows` when it is done. */
  readonly rowsDone: number;
}

/** θ of a sparse run's step and pass messages: the replicas hold the parameters. */
const EMPTY = new Float64Array(0);

/**
 * Subtree k of a sparse run's part (checked at the boundary: counts, increasing indices, finite
 * values), as views into the message: its touched coordinates, bias sums and loss.
 */
export function sparseSubtree(message: PartMessage, k: number, O: number): SparsePart {
  const fields = message.sparse;
  if (fields === undefined) throw new Error('invariant broken: a dense part in a sparse run (the protocol checks it)');
  let at = 0;
  for (let i = 0; i < k; i++) at += fields.counts[i]!;
  const end = at + fields.counts[k]!;
  return {
    indices: fields.indices.subarray(at, end),
    values: fields.values.subarray(at * O, end * O),
    bias: message.sums.subarray(k * (O + 1), k * (O + 1) + O),
    loss: message.sums[k * (O + 1) + O]!,
  };
}

/** Largest |z| a model may produce on the data: far from overflow even summed over 10^8 rows. */
const MAX_SCORE = 1e290;

export class Trainer {
  /** The parameters θ (model-shape.ts), sent in step messages without a copy. */
  private params: Float64Array;
  /** The other half of a double buffer for the parameters: an update allocates nothing. */
  private spareParams: Float64Array;
  /** (1/n)·Σ∂L/∂θ of the step being committed, one value per parameter. */
  private readonly gradient: Float64Array;
  /** The dense optimizer; null in a sparse run (its SparseModel updates itself). */
  private readonly optimizer: Optimizer | null;
  /** A sparse run's parameters, subtree values and params broadcast (issue #13); null for dense data. */
  private readonly sparse: { readonly model: SparseModel; readonly parts: SparseTreeParts; readonly broadcast: SparseBroadcast } | null;
  private readonly lrSchedule: LrSchedule;
  private readonly earlyStopping: EarlyStopping | null;
  private readonly config: CoordinatorConfig;
  private readonly shape: DataShape;
  private readonly modelShape: ModelShape;
  private readonly scatter: Scatter;
  private readonly emit: (event: TrainingEvent) => void;
  private server: WorkerServer | null = null;
  private readonly stepParts: TreeParts;
  private readonly statsParts: ChunkParts;
  private readonly evalParts: ChunkParts;
  private readonly batchSum: Float64Array;
  /** max |x_j| over all rows as the workers see them, to bound |z| ≤ Σ|w_j|·max|x_j| + |b| after an update. */
  private featureMaxAbs: Float64Array;
  private standardization: Standardization | null = null;
  private readonly startStep: number;
  private lastEval: EvalEvent | null;
  private passCount = 0;
  private state: 'waiting' | 'training' | 'finished' = 'waiting';
  private committedSteps: number;
  private lastLoss: number | null = null;
  private onCommitted: (state: CommittedState) => void = () => undefined;
  private onStats: (train: MergedStats) => void = () => undefined;
  private onPass: (progress: PassProgress) => void = () => undefined;

  /**
   * Throws ConfigError (naming the flag) when the schedule does not fit the run (a warm-up longer
   * than the run), CheckpointError when the start's optimizer state does not fit the optimizer.
   */
  constructor(config: CoordinatorConfig, shape: DataShape, modelShape: ModelShape, start: StartPoint, scatter: Scatter, emit: (event: TrainingEvent) => void) {
    if (modelShape.features !== shape.D || start.params.length !== modelShape.parameterCount) {
      throw new Error(`invariant broken: ${start.params.length} parameters for the shape of ${modelShape.features} features and data of ${shape.D}`);
    }
    this.config = config;
    this.shape = shape;
    this.modelShape = modelShape;
    this.scatter = scatter;
    this.emit = emit;
    this.params = start.params;
    // A sparse run keeps none of the dense buffers (at 2^24 buckets each would be 128 MB, a step's parts gigabytes).
    const isSparse = shape.isSparse === true;
    const dense = isSparse ? 0 : 1;
    this.spareParams = new Float64Array(dense * modelShape.parameterCount);
    this.gradient = new Float64Array(dense * modelShape.parameterCount);
    if (isSparse) {
      checkSparseOptimizer(config.optimizer, config.lr, config.lrSchedule);
      const model = new SparseModel(modelShape, config.optimizer, start.params, start.sparse?.scale ?? 1, start.sparse?.version ?? start.step, start.optimizer);
      if (model.hasLazyL1 && shape.batchCoordinates === undefined)
        throw new Error('invariant broken: sgd with --l1 on sparse data without the batches’ coordinates');
      this.sparse = {
        model,
        parts: new SparseTreeParts(config.chunksPerBatch, modelShape.outputs),
        broadcast: new SparseBroadcast(model, modelShape.features, modelShape.outputs),
      };
      this.optimizer = null;
    } else {
      this.sparse = null;
      this.optimizer = createOptimizer(config.optimizer, modelShape.parameterCount, modelShape.isDecayed);
      if (start.optimizer !== null) this.optimizer.restore(start.optimizer);
    }
    this.earlyStopping =
      config.earlyStoppingPatience === null ? null : new EarlyStopping(config.earlyStoppingPatience, modelShape.parameterCount, start.earlyStopping ?? null);
    // Over the epochs' steps, whatever --max-steps: a budget stops the run, it does not reshape its rates.
    this.lrSchedule = createLrSchedule(config.lrSchedule, Math.max(1, this.scheduledSteps), this.stepsPerEpoch);
    this.startStep = start.step;
    this.committedSteps = start.step;
    this.lastEval = start.lastEval;
    const D = shape.D;
    this.stepParts = new TreeParts(isSparse ? 1 : config.chunksPerBatch, dense * modelShape.partWidth);
    this.statsParts = new ChunkParts(dense * passBlocks(Math.max(shape.trainRows, shape.validationRows)), dense * passWidth('stats', D));
    this.evalParts = new ChunkParts(passBlocks(Math.max(shape.trainRows, shape.validationRows)), passWidth('eval', D));
    this.batchSum = new Float64Array(dense * modelShape.partWidth);
    this.featureMaxAbs = new Float64Array(dense * D);
  }

  attach(server: WorkerServer): void {
    this.server = server;
  }

  /** Called after every committed step (for checkpoints); runs synchronously before the next step. */
  setCommitListener(listener: (state: CommittedState) => void): void {
    this.onCommitted = listener;
  }

  /** Called once the statistics pass over the raw training rows is merged, before the first step (the scale warning). */
  setStatsListener(listener: (train: MergedStats) => void): void {
    this.onStats = listener;
  }

  /** Called when a data pass starts and as its parts come in (a few times per pass, not per row). */
  setPassListener(listener: (progress: PassProgress) => void): void {
    this.onPass = listener;
  }

  /** Steps the run takes: its epochs' steps, or fewer with --max-steps. */
  get totalSteps(): number {
    const { maxSteps } = this.config;
    return maxSteps === null ? this.scheduledSteps : Math.min(maxSteps, this.scheduledSteps);
  }

  /** Steps in one epoch. */
  get stepsPerEpoch(): number {
    return batchesPerEpoch(this.shape.trainRows, this.config.batchSize);
  }

  /** Steps of all the epochs: what the rate schedule spans. */
  private get scheduledSteps(): number {
    return this.config.epochs * this.stepsPerEpoch;
  }

  async run(): Promise<TrainResult> {
    const started = performance.now();
    await this.prepareData();
    const total = this.totalSteps;
    const perEpoch = this.stepsPerEpoch;
    let rowsProcessed = 0;
    this.state = 'training';
    const locate = (step: number): StepLocation => locateStep(step, this.shape.trainRows, this.config.batchSize, this.config.chunksPerBatch);
    // The next step is scattered as soon as this one is committed, before its event is published
    // and checkpointed, so the workers compute while the coordinator does its bookkeeping.
    let location = locate(this.startStep);
    let stepStarted = performance.now();
    // A checkpoint written when early stopping ended the run resumes to no step at all.
    const isStopped = (): boolean => this.earlyStopping?.isStopped ?? false;
    let inFlight = this.startStep < total && !isStopped() ? this.scatter.run(this.stepJob(this.startStep, location)) : null;
    for (let step = this.startStep; step < total; step++) {
      if (inFlight === null) break;
      const job = await inFlight;
      if (job.rowsAccounted !== location.size) {
        throw new Error(`invariant broken: step ${step} accounted ${job.rowsAccounted} rows of ${location.size}`);
      }
      const loss = this.commit(step, location);
      const stepMs = performance.now() - stepStarted;
      rowsProcessed += location.size;
      this.committedSteps = step + 1;
      this.lastLoss = loss;
      const event: StepEvent = {
        type: 'step',
        step,
        epoch: location.epoch,
        loss,
        rows: job.rowsAccounted,
        workers: job.contributors,
        stepMs,
        rowsPerSec: stepMs > 0 ? (location.size * 1000) / stepMs : 0,
        time: Date.now(),
      };
      const committed = location;
      const isEpochEnd = committed.batch === perEpoch - 1;
      // After the run's last step too when --max-steps ends it mid-epoch (or at an epoch --eval-every skips); never with --eval-every 0.
      const evaluates =
        this.config.evalEvery > 0 && (step + 1 === total || (isEpochEnd && evaluatesAfterEpoch(committed.epoch, this.config.epochs, this.config.evalEvery)));
      if (evaluates) {
        // The evaluation pass needs the workers first; the next step waits for it.
        this.emit(event);
        const evaluation = await this.evaluate(committed.epoch);
        this.lastEval = this.earlyStopping === null ? evaluation : this.earlyStopping.observe(evaluation, this.sparse?.model.theta() ?? this.params);
        this.emit(this.lastEval);
      }
      inFlight = null;
      if (step + 1 < total && !isStopped()) {
        location = locate(step + 1);
        stepStarted = performance.now();
        inFlight = this.scatter.run(this.stepJob(step + 1, location));
      }
      if (!evaluates) this.emit(event);
      const sparse = this.sparse;
      const params = this.params;
      this.onCommitted({
        step: step + 1,
        // A getter: a sparse run builds v ‖ b only for a checkpoint that reads it.
        get params() {
          return sparse === null ? params : sparse.model.rawParams();
        },
        sparse: sparse === null ? null : { scale: sparse.model.scale, version: sparse.model.version },
        lastEval: this.lastEval,
        isEpochEnd,
        optimizer: () => this.optimizerState(),
        earlyStopping: () => this.earlyStopping?.save() ?? null,
      });
    }
    this.state = 'finished';
    this.scatter.finish();
    const best = this.earlyStopping?.outcome() ?? null;
    const params = best?.params ?? this.sparse?.model.theta() ?? this.params;
    return {
      params,
      steps: this.committedSteps,
      lastEval: this.lastEval,
      wallMs: performance.now() - started,
      rowsProcessed,
      stepsRun: this.committedSteps - this.startStep,
      standardization: this.standardization,
      earlyStopping: best,
    };
  }

  /**
   * The statistics pass over the raw training rows (and the validation rows, for their range):
   * the standardization every worker then applies, and the bound on |x_j| the divergence guard
   * needs. Computed by the workers in fixed blocks, merged here in block order.
   */
  private async prepareData(): Promise<void> {
    // Sparse data is never standardized (centering would fill every row) and its parameters are
    // checked finite at each update instead of bounded from feature ranges (coordinator/sparse-model.ts).
    if (this.sparse !== null) return;
    const D = this.shape.D;
    const train = await this.statsPass('train');
    this.onStats(train);
    const validation = this.shape.validationRows > 0 ? await this.statsPass('validation') : null;
    const center = this.config.standardize ? train.mean : new Float64Array(D);
    const scale = this.config.standardize ? train.std : new Float64Array(D).fill(1);
    this.featureMaxAbs = new Float64Array(D);
    for (const stats of validation === null ? [train] : [train, validation]) {
      for (let j = 0; j < D; j++) {
        const spread = Math.max(Math.abs(stats.min[j]! - center[j]!), Math.abs(stats.max[j]! - center[j]!)) / scale[j]!;
        this.featureMaxAbs[j] = Math.max(this.featureMaxAbs[j]!, spread);
      }
    }
    if (this.config.standardize) {
      this.standardization = { mean: train.mean, std: train.std };
      this.requireServer().setStandardization(this.standardization);
    }
  }

  private async statsPass(set: RowSet): Promise<MergedStats> {
    const rows = set === 'train' ? this.shape.trainRows : this.shape.validationRows;
    const blocks = passBlocks(rows);
    const rowCounts = new Uint32Array(blocks);
    for (let block = 0; block < blocks; block++) rowCounts[block] = blockStart(rows, blocks, block + 1) - blockStart(rows, blocks, block);
    await this.scatter.run(this.passJob('stats', set, this.statsParts));
    const merged = new Float64Array(blocks * this.statsParts.width);
    this.statsParts.copyOut(merged);
    return mergeStats(merged, rowCounts, blocks, this.shape.D);
  }

  /** Mean loss and accuracy of the current model over a row set, merged in block order. */
  private async evalPass(set: RowSet): Promise<{ loss: number; accuracy: number }> {
    const rows = set === 'train' ? this.shape.trainRows : this.shape.validationRows;
    await this.scatter.run(this.passJob('eval', set, this.evalParts));
    const sum = new Float64Array(2);
    this.evalParts.reduce(sum);
    return { loss: sum[0]! / rows, accuracy: sum[1]! / rows };
  }

  private stepJob(step: number, location: StepLocation): StepJobSpec<StepParts> {
    const { chunks, size } = location;
    const sparse = this.sparse;
    if (sparse !== null) {
      const O = this.modelShape.outputs;
      return {
        kind: 'step',
        id: step,
        units: chunks,
        parts: sparse.parts,
        acceptSubtree: (level, index, message, k) => sparse.parts.accept(level, index, sparseSubtree(message, k, O)),
        label: `step ${step}`,
        unitRows: (first, end) => chunkStart(size, chunks, end) - chunkStart(size, chunks, first),
        send: (assignments) => {
          sparse.broadcast.sync(assignments.map((assignment) => assignment.worker));
          broadcastStep(step, assignments, EMPTY, sparse.model.version);
        },
      };
    }
    return {
      kind: 'step',
      id: step,
      units: chunks,
      parts: this.stepParts,
      label: `step ${step}`,
      unitRows: (first, end) => chunkStart(size, chunks, end) - chunkStart(size, chunks, first),
      send: (assignments) => broadcastStep(step, assignments, this.params),
    };
  }

  private passJob(purpose: PassPurpose, set: RowSet, parts: ChunkParts): PassJobSpec {
    const rows = set === 'train' ? this.shape.trainRows : this.shape.validationRows;
    const blocks = passBlocks(rows);
    const job = ++this.passCount;
    const setName = set === 'train' ? 'training' : 'validation';
    this.onPass({ purpose, set, rows, rowsDone: 0 });
    return {
      kind: 'pass',
      id: job,
      units: blocks,
      parts,
      // Words a user reads in log lines ("recomputing 3 chunk(s) of feature statistics over …"), not the protocol's.
      label: `${purpose === 'stats' ? 'feature statistics' : 'evaluation'} over the ${rows.toLocaleString('en-US')} ${setName} rows`,
      onProgress: (rowsDone) => this.onPass({ purpose, set, rows, rowsDone }),
      maxUnitsPerWorker: passSliceBlocks(rows),
      unitRows: (first, end) => blockStart(rows, blocks, end) - blockStart(rows, blocks, first),
      send: (assignments) => {
        const sparse = this.sparse;
        if (sparse !== null) sparse.broadcast.sync(assignments.map((assignment) => assignment.worker));
        const parameters = sparse === null ? { theta: this.params } : { theta: EMPTY, version: sparse.model.version };
        for (const { worker, units } of assignments) {
          worker.sendBytes(encodeMessage({ kind: 'pass', job, purpose, set, blocks: Uint32Array.from(units), ...parameters }));
        }
      },
    };
  }

  /** Reduces the parts to the batch mean, applies the update, and returns the batch's mean loss. */
  private commit(step: number, location: StepLocation): number {
    if (this.sparse !== null) {
      // The exact batch sum along the tree, then the O(touched) update (sparse-model.ts).
      const part = this.sparse.parts.reduce();
      const lr = this.lrSchedule.rateAt(step);
      const model = this.sparse.model;
      // sgd with --l1: the next batch's coordinates pay the L1 penalty they owe before that step goes out.
      const upcoming = model.hasLazyL1 && step + 1 < this.totalSteps ? this.shape.batchCoordinates!(step + 1) : null; // present with lazy L1 (constructor)
      try {
        model.update(part, location.size, lr, upcoming);
      } catch (error) {
        if (error instanceof DivergedError) throw new DivergedError(`step ${step}: ${error.message}`);
        throw error;
      }
      return part.loss / location.size;
    }
    const { parameterCount, lossIndex } = this.modelShape;
    this.stepParts.reduce(this.batchSum);
    const n = location.size;
    // g = (1/n)·Σ∂L/∂θ (the exact batch mean); θ ← optimizer(θ, g, η(t)). With plain sgd and a
    // constant rate this is w − η·(g_w + λ·w), b − η·g_b, bit for bit the pre-#12 update.
    for (let i = 0; i < parameterCount; i++) this.gradient[i] = this.batchSum[i]! / n;
    const lr = this.lrSchedule.rateAt(step);
    // Computed in full into the spare buffer, then swapped in (nothing holds the old parameters:
    // step messages encode them at once).
    const next = this.spareParams;
    this.optimizer!.step(this.params, this.gradient, lr, next); // a dense run always has one (constructor)
    const bound = scoreBound(this.modelShape, next, this.featureMaxAbs);
    // Beyond this bound a worker's z, loss or gradient sums could overflow to Infinity or NaN.
    // The optimizer's moments have moved already: the run ends here, so nothing uses them again.
    if (!(bound <= MAX_SCORE)) {
      throw new DivergedError(
        `step ${step}: the update made the model non-finite (|w·x + b| could reach ${bound}; learning rate ${lr} too large?); the last good model is kept`,
      );
    }
    this.spareParams = this.params;
    this.params = next;
    return this.batchSum[lossIndex]! / n;
  }

  private async evaluate(epoch: number): Promise<EvalEvent> {
    // sgd with --l1: the replicas get every coordinate's current value for the pass (sparse-model.ts).
    this.sparse?.model.exposeAll();
    const train = await this.evalPass('train');
    const validation = this.shape.validationRows > 0 ? await this.evalPass('validation') : null;
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
    const cpu = process.cpuUsage();
    return {
      state: this.state,
      step: this.committedSteps,
      totalSteps: this.totalSteps,
      epochs: this.config.epochs,
      lastLoss: this.lastLoss,
      // This process's CPU time (user + system) since it started, µs: sampled at two steps, the
      // coordinator's CPU per step, which oversubscribed benchmarks cannot distort (bench/scale.ts).
      cpuUs: cpu.user + cpu.system,
      workers: (this.server?.readyWorkers() ?? []).map((worker) => ({
        id: worker.id,
        address: worker.address,
        partBytes: worker.partBytes,
        parts: worker.parts,
        ...(worker.isRelay ? { relayWorkers: worker.capacity } : {}),
        stepBytes: worker.stepBytes,
        // Which code runs its kernel ('native avx512f', 'wasm' …); null when it did not say (a relay, a sparse run).
        kernel: worker.kernel,
      })),
    };
  }

  /** Steps committed so far (counting those before a resume). */
  get stepsCommitted(): number {
    return this.committedSteps;
  }

  /** The model as it stands (the last committed step: θ, not a copy; a sparse run's w = scale·v, a copy) and the standardization in force. */
  model(): { params: Float64Array; standardization: Standardization | null } {
    return { params: this.sparse?.model.theta() ?? this.params, standardization: this.standardization };
  }

  /** A copy of the optimizer's state (dense or sparse). */
  private optimizerState(): OptimizerState {
    return this.sparse?.model.optimizerState() ?? this.optimizer!.state(); // a dense run always has an optimizer
  }

  private requireServer(): WorkerServer {
    if (this.server === null) throw new Error('Trainer used before attach(server)');
    return this.server;
  }
}

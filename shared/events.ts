// The loss stream (DESIGN.md, "Interfaces others rely on"): one event per committed step and
// one per evaluated epoch, as JSON on the monitor socket and as lines of the --metrics file.

export interface StepEvent {
  readonly type: 'step';
  readonly step: number;
  readonly epoch: number;
  /** Mean negative log-likelihood of the batch before the update. */
  readonly loss: number;
  readonly rows: number;
  /** Workers whose parts entered this step. */
  readonly workers: number;
  readonly stepMs: number;
  readonly rowsPerSec: number;
  /** Milliseconds since the Unix epoch. */
  readonly time: number;
}

export interface EvalEvent {
  readonly type: 'eval';
  readonly epoch: number;
  /** Mean loss and accuracy over all training rows with the weights at the end of the epoch. */
  readonly trainLoss: number;
  readonly trainAccuracy: number;
  /** null without a validation split. */
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly time: number;
  /** With --early-stopping only: where the stopping rule stands after this evaluation. */
  readonly earlyStopping?: EarlyStoppingMark;
}

/** The stopping rule after an evaluation (--early-stopping P, issue #12). */
export interface EarlyStoppingMark {
  /** The epoch of the lowest validation loss so far, and that loss. */
  readonly bestEpoch: number;
  readonly bestValLoss: number;
  /** Evaluations since the best one, none of which improved on it. */
  readonly evalsSinceBest: number;
  /** True on the evaluation that ends the run (evalsSinceBest reached P). */
  readonly stop: boolean;
}

/** Workers joining and leaving; `reason` says why a worker left. */
export interface MembershipEvent {
  readonly type: 'worker';
  readonly event: 'joined' | 'left';
  readonly workerId: number;
  readonly address: string;
  readonly reason: string;
  readonly workers: number;
  readonly time: number;
  /** Joined only: which code runs the worker's kernel ('native avx512f', 'wasm' …), when it said. */
  readonly kernel?: string;
}

export type TrainingEvent = StepEvent | EvalEvent | MembershipEvent;

/**
 * The run's settings as monitors show them (never the token). `fingerprint` holds every option that
 * changes the result (coordinator/options-table.ts); the fields before it name the main ones, as
 * monitors and the dashboard have read them since before the table.
 */
export interface RunSettings {
  readonly data: string;
  readonly rows: number;
  readonly features: number;
  readonly trainRows: number;
  readonly valRows: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly l2: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly standardize: boolean;
  readonly valFraction: number;
  readonly chunksPerBatch: number;
  /** The optimizer, the hyper-parameters it reads, and the rate schedule (as in the run fingerprint). */
  readonly optimizer: Readonly<Record<string, string | number>>;
  /**
   * The run fingerprint, as checkpoints and the model file's trainedOn hold it: every option that
   * changes the result, the data's identity, the reduction. Absent from coordinators before it.
   */
  readonly fingerprint?: Readonly<Record<string, string | number | boolean | null>>;
  /** Workers the coordinator waited for before the first step. */
  readonly workers: number;
  /**
   * The model trained (issue #12): its kind, its classes (in class order; at most the first 50),
   * and their count K. Absent from coordinators before it (logistic over 0 and 1).
   */
  readonly model?: { readonly kind: string; readonly classCount: number; readonly classes: readonly (string | number)[] };
  /** --class-weight balanced: each class's weight c_k, in class order; absent otherwise. */
  readonly classWeights?: readonly number[];
}

/** Training begins (the workers have joined and the schedule is fixed). */
export interface RunStartEvent {
  readonly type: 'run';
  readonly event: 'start';
  readonly totalSteps: number;
  /** First step this run computes: 0, or the checkpoint's step when resuming. */
  readonly firstStep: number;
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  readonly config: RunSettings;
  readonly time: number;
}

/**
 * Training is over: `finished` after the last step (with a reason only when early stopping ended
 * the run before its last epoch), `failed` with the reason otherwise.
 */
export interface RunEndEvent {
  readonly type: 'run';
  readonly event: 'end';
  readonly outcome: 'finished' | 'failed';
  /** Steps committed so far: the next step's number (the schedule's position, resumed runs included). */
  readonly steps: number;
  readonly reason: string | null;
  readonly time: number;
}

export type RunEvent = RunStartEvent | RunEndEvent;

/** What the loss stream carries (monitor socket, /events): the training events plus run start and end. */
export type StreamEvent = TrainingEvent | RunEvent;

/** One worker as monitors see it: its accepted parts, throughput and latency. */
export interface WorkerSummary {
  readonly workerId: number;
  readonly address: string;
  readonly connected: boolean;
  /** Rows of accepted parts, over the run. */
  readonly rows: number;
  /** Rows per second over the last snapshot interval. */
  readonly rowsPerSec: number;
  /** Fraction of the last committed step's rows this worker computed, in [0, 1]. */
  readonly share: number;
  /** Mean time from a step's scatter to this worker's accepted parts over the last snapshot interval, ms. */
  readonly latencyMs: number;
  /** Its latency is well above the other workers' (see coordinator/worker-stats.ts). */
  readonly straggler: boolean;
  /** Time of its last accepted part (ms since the Unix epoch), or null. */
  readonly lastSeen: number | null;
  /** Times it left while training was running (disconnect, timeout, bad message). */
  readonly failures: number;
  /** Which code runs its kernel ('native avx512f', 'wasm', 'typescript'), or null when it did not say (a relay, a sparse run). */
  readonly kernel: string | null;
}

/** Per-worker snapshot, sent to monitors a few times a second while something changes. */
export interface WorkersEvent {
  readonly type: 'workers';
  readonly workers: readonly WorkerSummary[];
  readonly time: number;
}

/** Opens every monitor session: `events` history messages follow (steps kept every `stepStride`-th), then live ones. */
export interface HistoryNotice {
  readonly type: 'history';
  readonly events: number;
  readonly stepStride: number;
  /** Steps seen so far (history keeps a bounded sample of them). */
  readonly stepsSeen: number;
  readonly time: number;
}

/** `count` events were not sent to this monitor because it did not keep up. */
export interface DroppedNotice {
  readonly type: 'dropped';
  readonly count: number;
  readonly time: number;
}

/** Everything a monitor receives, one JSON object per WebSocket message or SSE `data:` line. */
export type MonitorMessage = StreamEvent | WorkersEvent | HistoryNotice | DroppedNotice;

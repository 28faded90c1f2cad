// The coordinator's configuration: options in, documented defaults merged, validated once,
// frozen. Internals never see undefined where a default exists.

import { DEFAULT_MAX_CLASSES } from '../shared/classes.js';
import { ConfigError } from '../shared/errors.js';
import { defaultChunksPerBatch } from '../shared/schedule.js';
import { type LrScheduleOptions, type LrScheduleSpec, resolveLrScheduleSpec } from './lr-schedule.js';
import { type OptimizerOptions, type OptimizerSpec, resolveOptimizerSpec } from './optimizers.js';

export interface CoordinatorConfig {
  readonly dataPath: string;
  /** Label column as the user named it (header name or 0-based index); undefined = last column. */
  readonly labelColumn: string | undefined;
  /** The model: 'auto' is logistic when the labels are exactly {0, 1}, else softmax (issue #12). */
  readonly model: ModelChoice;
  /** Distinct labels a run accepts, at most (a refusal bound: it never changes the result); in [1, MAX_CLASSES]. */
  readonly maxClasses: number;
  /** Per-class weights of each row's loss and gradient: none, or balanced (sklearn's n / (K·n_k)); the batch mean still divides by n. */
  readonly classWeight: ClassWeightMode;
  readonly epochs: number;
  /**
   * --max-steps N: end the run after step N (counted from the run's first step, so a resumed run
   * stops at the same step), with the evaluation and the model written; null: after the last
   * epoch. Where the run stops, not what a step computes: the rate schedule still spans the epochs.
   */
  readonly maxSteps: number | null;
  /** Evaluate (loss and accuracy over the training and validation rows) every this many epochs, and after the last; 0: never. */
  readonly evalEvery: number;
  /** Global mini-batch size B, in rows. */
  readonly batchSize: number;
  /** Learning rate η. */
  readonly lr: number;
  /** L2 strength λ (added as λ·w to the weight gradient, never to the bias): torch's weight_decay. */
  readonly l2: number;
  /** The update rule and its hyper-parameters (weightDecay is l2); plain sgd by default. */
  readonly optimizer: OptimizerSpec;
  /** The rate of each step (its lr is lr); constant by default. */
  readonly lrSchedule: LrScheduleSpec;
  readonly seed: number;
  readonly shuffle: boolean;
  /** 0: shuffle rows; R > 0: shuffle blocks of R consecutive rows (sequential reads for big files). */
  readonly shuffleBlockRows: number;
  readonly standardize: boolean;
  /** Whether --standardize or --no-standardize was given (sparse data refuses --standardize; its default is off). */
  readonly standardizeGiven: boolean;
  /** --format: 'libsvm' reads the data as LIBSVM whatever its name; 'auto' goes by the extension (issue #13). */
  readonly dataFormat: DataFormat;
  /** --hash-bits B: a CSV's features hashed into 2^B buckets (a sparse run); null: not hashed. */
  readonly hashBits: number | null;
  /** --categorical: comma-separated columns whose cells are categories (with --hash-bits); null: none. */
  readonly categorical: string | null;
  /** --cross: comma-separated a:b pairs of categorical columns hashed together (with --hash-bits); null: none. */
  readonly crosses: string | null;
  /** Fraction of rows held out for validation, in [0, 1). */
  readonly valFraction: number;
  /**
   * --early-stopping P: stop after P evaluations in a row whose validation loss is not below the
   * best so far, and keep the best evaluation's model (coordinator/early-stopping.ts); null: off.
   */
  readonly earlyStoppingPatience: number | null;
  /** Chunks per batch: the unit of work and the reduction tree's leaves (default: defaultChunksPerBatch(B)). */
  readonly chunksPerBatch: number;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Shared secret workers must present; null accepts any worker (loopback only). */
  readonly token: string | null;
  /** Read-only token for monitors (loss stream, /metrics, dashboard); null: the workers' token. */
  readonly monitorToken: string | null;
  /** Workers to wait for before the first step. */
  readonly workers: number;
  readonly joinTimeoutMs: number;
  /** A worker that has not answered a step within this time is dropped and its rows recomputed. */
  readonly stepTimeoutMs: number;
  /** With no worker left, how long to wait for one to (re)join before failing the run. */
  readonly rejoinTimeoutMs: number;
  /** Model file to write at the end, or null. */
  readonly outPath: string | null;
  /** JSONL file of the loss stream, or null. */
  readonly metricsPath: string | null;
  /**
   * Kept for compatibility (--no-reproducible): every run now sums along the fixed reduction tree
   * (shared/reduce.ts), which needs no more traffic than merged parts did, so false changes nothing.
   */
  readonly reproducible: boolean;
  /** The gradient kernel every worker must run: WebAssembly SIMD (default) or plain TypeScript. */
  readonly kernel: 'wasm-simd' | 'js';
  /** A chunk still pending this many times the time the first worker took is also given to an idle worker (0: never). */
  readonly backupFactor: number;
  /** Ping period for every peer; a peer that misses a whole period is dropped. */
  readonly heartbeatMs: number;
  /** Checkpoint file, or null. */
  readonly checkpointPath: string | null;
  /** Write a checkpoint every this many steps (and at every epoch end). */
  readonly checkpointEvery: number;
  /** Checkpoint to resume from, or null. */
  readonly resumePath: string | null;
  /** Connections that have not finished the handshake, at most; more are closed at once. */
  readonly maxPendingHandshakes: number;
  /** Time a new connection has to authenticate. */
  readonly handshakeTimeoutMs: number;
  /** Monitors (WebSocket, SSE, dashboards) connected at most; more get HTTP 503. */
  readonly maxMonitors: number;
  /** PEM certificate and key: serve wss:// and https:// instead of ws:// and http://. */
  readonly tlsCertPath: string | null;
  readonly tlsKeyPath: string | null;
  /** Also listen on this Unix socket for workers on this host (dpt train sets it); null: TCP only. */
  readonly unixSocketPath: string | null;
}

export const MODEL_CHOICES = ['auto', 'logistic', 'softmax'] as const;
export const DATA_FORMATS = ['auto', 'libsvm'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];
export type ModelChoice = (typeof MODEL_CHOICES)[number];
export const CLASS_WEIGHT_MODES = ['none', 'balanced'] as const;
export type ClassWeightMode = (typeof CLASS_WEIGHT_MODES)[number];
/** The most classes --max-classes allows (the bound issue #12 sets for the flag). */
export const MAX_CLASSES = 65_535;

/** The optimizer's and the schedule's own settings; their lr and weight decay come from lr and l2. */
export interface OptimizerChoice {
  readonly optimizer?: Omit<OptimizerOptions, 'weightDecay'> | undefined;
  readonly lrSchedule?: Omit<LrScheduleOptions, 'lr'> | undefined;
}

export type CoordinatorOptions = {
  [K in Exclude<keyof CoordinatorConfig, keyof OptimizerChoice | 'standardizeGiven'>]?: CoordinatorConfig[K] | undefined;
} & Pick<CoordinatorConfig, 'dataPath'> &
  OptimizerChoice;

export const DEFAULTS = {
  labelColumn: undefined,
  model: 'auto',
  maxClasses: DEFAULT_MAX_CLASSES,
  classWeight: 'none',
  epochs: 10,
  maxSteps: null,
  evalEvery: 1,
  batchSize: 64,
  lr: 0.1,
  l2: 0,
  seed: 1,
  shuffle: true,
  shuffleBlockRows: 0,
  standardize: true,
  dataFormat: 'auto',
  hashBits: null,
  categorical: null,
  crosses: null,
  valFraction: 0,
  earlyStoppingPatience: null,
  host: '127.0.0.1',
  port: 8787,
  token: null,
  monitorToken: null,
  workers: 1,
  joinTimeoutMs: 60_000,
  stepTimeoutMs: 30_000,
  rejoinTimeoutMs: 60_000,
  outPath: null,
  metricsPath: null,
  reproducible: true,
  kernel: 'wasm-simd',
  backupFactor: 2,
  heartbeatMs: 5000,
  checkpointPath: null,
  checkpointEvery: 100,
  resumePath: null,
  maxPendingHandshakes: 64,
  handshakeTimeoutMs: 10_000,
  maxMonitors: 64,
  tlsCertPath: null,
  tlsKeyPath: null,
  unixSocketPath: null,
} as const satisfies Omit<CoordinatorConfig, 'dataPath' | 'chunksPerBatch' | 'optimizer' | 'lrSchedule' | 'standardizeGiven'>;

export function resolveCoordinatorConfig(options: CoordinatorOptions): CoordinatorConfig {
  const { optimizer, lrSchedule, ...rest } = options;
  const given = definedOnly(rest);
  const batchSize = given.batchSize ?? DEFAULTS.batchSize;
  const lr = given.lr ?? DEFAULTS.lr;
  const l2 = given.l2 ?? DEFAULTS.l2;
  // The chunk count defaults to a function of B alone (never of the cluster): see shared/schedule.ts.
  const config: CoordinatorConfig = {
    ...DEFAULTS,
    chunksPerBatch: defaultChunksPerBatch(batchSize),
    ...given,
    dataPath: options.dataPath,
    standardizeGiven: given.standardize !== undefined,
    // Validated (errors name the flag) and frozen by their own modules.
    optimizer: resolveOptimizerSpec({ ...optimizer, weightDecay: l2 }),
    lrSchedule: resolveLrScheduleSpec({ ...lrSchedule, lr }),
  };
  if (!MODEL_CHOICES.includes(config.model)) throw new ConfigError(`--model must be one of ${MODEL_CHOICES.join(', ')}, got ${String(config.model)}`);
  if (!Number.isInteger(config.maxClasses) || config.maxClasses < 1 || config.maxClasses > MAX_CLASSES)
    throw new ConfigError(`--max-classes must be an integer in [1, ${MAX_CLASSES}], got ${config.maxClasses}`);
  if (!CLASS_WEIGHT_MODES.includes(config.classWeight))
    throw new ConfigError(`--class-weight must be one of ${CLASS_WEIGHT_MODES.join(', ')}, got ${String(config.classWeight)}`);
  positiveInteger('epochs', config.epochs);
  if (config.maxSteps !== null && (!Number.isSafeInteger(config.maxSteps) || config.maxSteps < 1))
    throw new ConfigError(`--max-steps must be a positive integer (steps), got ${config.maxSteps}`);
  if (!Number.isSafeInteger(config.evalEvery) || config.evalEvery < 0)
    throw new ConfigError(`--eval-every must be a non-negative integer (epochs; 0: never), got ${config.evalEvery}`);
  positiveInteger('batchSize', config.batchSize);
  positiveInteger('chunksPerBatch', config.chunksPerBatch);
  positiveInteger('workers', config.workers);
  positiveInteger('joinTimeoutMs', config.joinTimeoutMs);
  positiveInteger('stepTimeoutMs', config.stepTimeoutMs);
  positiveInteger('rejoinTimeoutMs', config.rejoinTimeoutMs);
  if (!(config.lr > 0 && Number.isFinite(config.lr))) throw new ConfigError(`lr must be a positive number, got ${config.lr}`);
  if (!(config.l2 >= 0 && Number.isFinite(config.l2))) throw new ConfigError(`l2 must be a non-negative number, got ${config.l2}`);
  if (!DATA_FORMATS.includes(config.dataFormat)) throw new ConfigError(`--format must be one of ${DATA_FORMATS.join(', ')}, got ${String(config.dataFormat)}`);
  if (config.hashBits === null && (config.categorical !== null || config.crosses !== null)) {
    throw new ConfigError(`${config.categorical !== null ? '--categorical' : '--cross'} needs --hash-bits (the number of hash buckets, 2^B)`);
  }
  if (config.hashBits !== null && config.dataFormat === 'libsvm')
    throw new ConfigError('--hash-bits hashes CSV columns; --format libsvm data is sparse already');
  if (!(config.valFraction >= 0 && config.valFraction < 1)) throw new ConfigError(`valFraction must be in [0, 1), got ${config.valFraction}`);
  if (config.earlyStoppingPatience !== null) {
    if (!Number.isSafeInteger(config.earlyStoppingPatience) || config.earlyStoppingPatience < 1)
      throw new ConfigError(`--early-stopping must be a positive integer (evaluations), got ${config.earlyStoppingPatience}`);
    // The rule reads the validation loss: without held-out rows there is nothing to stop on.
    if (config.valFraction === 0) throw new ConfigError('--early-stopping needs --val-split > 0 (it stops on the validation loss)');
    if (config.evalEvery === 0) throw new ConfigError('--early-stopping needs evaluations, and --eval-every 0 turns them off');
  }
  if (!Number.isInteger(config.seed) || config.seed < 0 || config.seed > 0xffff_ffff)
    throw new ConfigError(`seed must be an integer in [0, 4294967295], got ${config.seed}`);
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65_535) throw new ConfigError(`port must be in [0, 65535], got ${config.port}`);
  if (config.chunksPerBatch > 65_536) throw new ConfigError(`chunksPerBatch must be at most 65536, got ${config.chunksPerBatch}`);
  positiveInteger('heartbeatMs', config.heartbeatMs);
  positiveInteger('checkpointEvery', config.checkpointEvery);
  positiveInteger('maxPendingHandshakes', config.maxPendingHandshakes);
  positiveInteger('handshakeTimeoutMs', config.handshakeTimeoutMs);
  positiveInteger('maxMonitors', config.maxMonitors);
  if (!(config.backupFactor === 0 || (config.backupFactor >= 1 && Number.isFinite(config.backupFactor)))) {
    throw new ConfigError(`backupFactor must be 0 (off) or at least 1, got ${config.backupFactor}`);
  }
  if ((config.tlsCertPath === null) !== (config.tlsKeyPath === null)) throw new ConfigError('--tls-cert and --tls-key go together');
  if (config.token === '') throw new ConfigError('token must not be empty');
  if (config.monitorToken === '') throw new ConfigError('monitorToken must not be empty');
  return Object.freeze(config);
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${name} must be a positive integer, got ${value}`);
}

/** The options that are set: an undefined option takes its default. */
function definedOnly<T extends object>(options: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

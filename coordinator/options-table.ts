// The training options that `dpt train` and `dpt coordinator` share, declared once (issue #12):
// for each, the flag, its --help text, parser, default, whether it changes the result, where its
// value goes, and what it adds to the run fingerprint. cli/coordinator-flags.ts builds the flags
// (and their DPT_… environment variables) from it; run-description.ts builds the run fingerprint
// (checkpoints, model files) and the run event from it; README.md's table of flags is generated
// from it (options-docs.ts, checked by test/unit/options-docs.test.ts).
// Not here: each command's own flags (--workers, --min-workers, --threads, --pin, …: cli/main.ts).
// Ranges that depend on other options (ε's default, --lr-gamma without --lr-decay-epochs) are
// checked once the options are merged (config.ts, optimizers.ts, lr-schedule.ts). The file is long
// because the table is: one row of data per flag, not several concerns.

import type { ModelKind } from '../shared/model-shape.js';
import {
  backupFactor,
  booleanFlag,
  durationMs,
  finiteNumber,
  fraction,
  integerIn,
  kernelKind,
  MAX_CHUNKS,
  MAX_EPOCHS,
  MAX_PENDING_HANDSHAKES,
  MAX_ROWS,
  nonNegativeInteger,
  nonNegativeNumber,
  type OptionParser,
  oneOf,
  port,
  positiveInteger,
  positiveNumber,
  seed,
  shuffleMode,
} from '../shared/option-values.js';
import type { RunFingerprint } from './checkpoint.js';
import { CLASS_WEIGHT_MODES, type CoordinatorConfig, type CoordinatorOptions, DATA_FORMATS, DEFAULTS, MAX_CLASSES, MODEL_CHOICES } from './config.js';
import { LR_SCHEDULE_DEFAULTS, LR_SCHEDULE_NAMES, type LrScheduleOptions } from './lr-schedule.js';
import { ALL_OPTIMIZER_NAMES, describeOptimizer, OPTIMIZER_DEFAULTS, type OptimizerOptions } from './optimizers.js';

export type OptionValue = string | number | boolean;

/** What the data file says about the run, and the model its labels choose (found by the coordinator, not given as flags). */
export interface RunFacts {
  /** Identity of the data's rows (the .dpt content hash). */
  readonly dataSha256: string;
  readonly rows: number;
  readonly features: number;
  /** The label column's header name. */
  readonly labelName: string | null;
  /** The model the run trains (ModelShape's kind): --model, with 'auto' resolved by the labels. */
  readonly model: ModelKind;
  /** The kernel id the workers run: --kernel for logistic, the softmax kernel's for softmax (shared/model-kernel.ts). */
  readonly kernel: string;
  /** Whether the data is sparse (a LIBSVM file, a sparse .dpt, a hashed CSV: issue #13); absent: dense. */
  readonly isSparse?: boolean;
}

/** A result-changing option's fields of the run fingerprint, from the merged config and the data. */
export type FingerprintPart = (config: CoordinatorConfig, facts: RunFacts) => Partial<RunFingerprint>;

/** Options the table sets one to one (the optimizer's and the schedule's have their own targets). */
type DirectKey = Exclude<keyof CoordinatorOptions, 'optimizer' | 'lrSchedule'>;

/** Where a flag's value goes. */
export type OptionTarget =
  /** CoordinatorOptions[key] = the value. */
  | { readonly config: DirectKey }
  /** The optimizer's options (its weight decay is --l2). */
  | { readonly optimizer: Exclude<keyof OptimizerOptions, 'weightDecay'> }
  /** The rate schedule's options (its lr is --lr). */
  | { readonly lrSchedule: Exclude<keyof LrScheduleOptions, 'lr'> }
  /** Combined with other flags into these config fields (tableOptions below, or the CLI for the token, which it reads from a file). */
  | { readonly combined: readonly (keyof CoordinatorConfig)[] };

interface RowFields {
  /** The long flag, e.g. --epochs; --no-x negates --x (same property, no environment variable of its own). */
  readonly flag: string;
  /** The value's placeholder in --help ('<n>', '[mode]'), or null for a switch (--no-shuffle). */
  readonly value: string | null;
  /** The --help description; a default that commander does not show is written in it. */
  readonly help: string;
  /** Text to value; throws OptionValueError ("expected …"), which the CLI reports naming the flag. */
  readonly parse: OptionParser<OptionValue> | null;
  /** The default commander applies and --help shows; undefined: the config's default applies when merged. */
  readonly default?: OptionValue | { readonly perCommand: 'host' | 'port' };
  readonly isMandatory?: true;
  /** The default as README.md's table shows it. */
  readonly defaultText: string;
  /** The meaning as README.md's table shows it (Markdown). */
  readonly docs: string;
  readonly target: OptionTarget;
}

/** One training option; an option that changes the result says what it adds to the run fingerprint. */
export type OptionRow = RowFields &
  (
    | {
        /** A different value gives other bits: it is in the run fingerprint, so a checkpoint of another value is refused. */
        readonly changesResult: true;
        readonly fingerprint: FingerprintPart;
      }
    | { readonly changesResult: false }
  );

/** The property commander gives a flag: its name without dashes (and without no-) in camel case. */
export function optionProperty(flag: string): string {
  return flag.replace(/^--(no-)?/, '').replace(/-([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** The environment variable of a flag: DPT_ + its name in upper snake case (none for --no-x). */
export function optionEnvVar(flag: string): string | null {
  return flag.startsWith('--no-') ? null : `DPT_${flag.slice(2).replace(/-/g, '_').toUpperCase()}`;
}

/** The hyper-parameter the chosen optimizer reads under `key`, or nothing (a value it ignores may change on resume). */
const readHyperParameter =
  (key: 'momentum' | 'beta1' | 'beta2' | 'eps' | 'l1' | 'ftrlBeta'): FingerprintPart =>
  (config) => {
    const value = describeOptimizer(config.optimizer)[key];
    return value === undefined ? {} : { [key]: value };
  };

export const TRAINING_OPTIONS: readonly OptionRow[] = [
  {
    flag: '--data',
    value: '<path>',
    help: 'data file: CSV with a header row (.csv, or gzip .csv.gz) or binary .dpt (dpt data convert)',
    parse: null,
    isMandatory: true,
    defaultText: 'required',
    docs: 'CSV (or `.csv.gz`) file with a header row, or a `.dpt` binary file',
    target: { config: 'dataPath' },
    changesResult: true,
    fingerprint: (_config, facts) => ({ dataSha256: facts.dataSha256, rows: facts.rows, features: facts.features }),
  },
  {
    flag: '--label-column',
    value: '<name|index>',
    help: 'label column: header name or 0-based index (default: the last column)',
    parse: null,
    defaultText: 'last column',
    docs: 'label column, by header name or 0-based index (negative counts from the end); labels may be any values (numbers or strings); their distinct values are the classes',
    target: { config: 'labelColumn' },
    changesResult: true,
    fingerprint: (_config, facts) => ({ labelColumn: facts.labelName }),
  },
  {
    flag: '--format',
    value: '<format>',
    help: 'data format: auto (by the extension: .svm/.libsvm are LIBSVM, .dpt, else CSV) or libsvm',
    parse: oneOf(DATA_FORMATS),
    defaultText: 'auto',
    docs: '`libsvm`: read `--data` as LIBSVM/svmlight (`label index:value …`, 1-based indices) whatever its name; `auto`, the default, takes `.svm` and `.libsvm` files as LIBSVM. LIBSVM data trains sparse (see Sparse and categorical data)',
    target: { config: 'dataFormat' },
    changesResult: true,
    // Only for sparse data: a dense run keeps the fingerprint (and model file) of before the flag.
    fingerprint: (_config, facts) => (facts.isSparse === true ? { sparse: true } : {}),
  },
  {
    flag: '--hash-bits',
    value: '<B>',
    help: "hash a CSV's features into 2^B buckets (sparse training; with --categorical and --cross)",
    parse: integerIn(1, 24),
    defaultText: 'off',
    docs: "hash a CSV's features into 2^B buckets (B ≤ 24), murmur3 as specified under Sparse and categorical data: a numeric column `c` into bucket h(`c`) with its value, the data then trains sparse",
    target: { config: 'hashBits' },
    changesResult: true,
    fingerprint: (config) => (config.hashBits === null ? {} : { hashBits: config.hashBits }),
  },
  {
    flag: '--categorical',
    value: '<columns>',
    help: 'comma-separated CSV columns whose cells are categories (with --hash-bits)',
    parse: null,
    defaultText: 'none',
    docs: 'comma-separated columns whose cells are categories: cell `v` of column `c` goes to bucket h(`c=v`) with value 1 (needs `--hash-bits`)',
    target: { config: 'categorical' },
    changesResult: true,
    fingerprint: (config) => (config.categorical === null ? {} : { categorical: config.categorical }),
  },
  {
    flag: '--cross',
    value: '<a:b,...>',
    help: 'comma-separated pairs a:b of categorical columns also hashed together (with --hash-bits)',
    parse: null,
    defaultText: 'none',
    docs: 'comma-separated pairs `a:b` of categorical columns: each row also gets bucket h(`a=v^b=u`) with value 1 (needs `--hash-bits`)',
    target: { config: 'crosses' },
    changesResult: true,
    fingerprint: (config) => (config.crosses === null ? {} : { crosses: config.crosses }),
  },
  {
    flag: '--model',
    value: '<kind>',
    help: 'logistic or softmax (default: auto, i.e. logistic when the labels are exactly 0 and 1, else softmax)',
    parse: oneOf(MODEL_CHOICES),
    defaultText: 'by the labels',
    docs: '`logistic` (binary) or `softmax` (K classes); `auto`, the default, is logistic when the labels are exactly {0, 1}, else softmax',
    target: { config: 'model' },
    changesResult: true,
    // The model trained, not the flag: 'auto' and the model it picks for these labels give the same bits.
    // Only for softmax: a logistic run keeps the fingerprint (and model file) of before the flag.
    fingerprint: (_config, facts) => (facts.model === 'logistic' ? {} : { model: facts.model }),
  },
  {
    flag: '--max-classes',
    value: '<n>',
    help: 'refuse a label column of more distinct classes than this',
    parse: integerIn(1, MAX_CLASSES),
    default: DEFAULTS.maxClasses,
    defaultText: DEFAULTS.maxClasses.toLocaleString('en-US'),
    docs: `refuse (exit 2) a label column holding more distinct classes than this, at most ${MAX_CLASSES.toLocaleString('en-US')}; a bound, not a setting of the model`,
    target: { config: 'maxClasses' },
    changesResult: false,
  },
  {
    flag: '--class-weight',
    value: '<mode>',
    help: "weight each row's loss by its class: none or balanced (n / (K·n_k))",
    parse: oneOf(CLASS_WEIGHT_MODES),
    default: DEFAULTS.classWeight,
    defaultText: DEFAULTS.classWeight,
    docs: "`balanced`: each row's loss and gradient weighted by n / (K·n_k) (sklearn's), n_k the training rows of its class; the batch mean still divides by the batch's rows",
    target: { config: 'classWeight' },
    changesResult: true,
    // Only when balanced: an unweighted run keeps the fingerprint (and model file) of before the flag.
    fingerprint: (config) => (config.classWeight === 'none' ? {} : { classWeight: config.classWeight }),
  },
  {
    flag: '--epochs',
    value: '<n>',
    help: 'passes over the training rows',
    parse: integerIn(1, MAX_EPOCHS),
    default: DEFAULTS.epochs,
    defaultText: String(DEFAULTS.epochs),
    docs: 'passes over the training rows',
    target: { config: 'epochs' },
    changesResult: true,
    fingerprint: (config) => ({ epochs: config.epochs }),
  },
  {
    flag: '--max-steps',
    value: '<n>',
    help: 'stop after this many steps (mid-epoch too), then evaluate and write the model; the rate schedule still spans --epochs',
    parse: integerIn(1, Number.MAX_SAFE_INTEGER),
    defaultText: 'all',
    docs: "a step budget: end the run after step n (counted from the run's first step, so a resumed run stops at the same step), even mid-epoch, then evaluate and write the model (its `trainedOn.steps` says where it stopped). Each step computes what it would in the whole run (the rate schedule still spans `--epochs`), so the model is the first n steps of it, and a checkpoint resumes under another budget",
    target: { config: 'maxSteps' },
    // Where the run stops, not what any step computes: a resume may extend or shorten the budget.
    changesResult: false,
  },
  {
    flag: '--eval-every',
    value: '<epochs>',
    help: 'evaluate loss and accuracy every this many epochs, and after the last (0: never)',
    parse: integerIn(0, MAX_EPOCHS),
    default: DEFAULTS.evalEvery,
    defaultText: String(DEFAULTS.evalEvery),
    docs: 'evaluate loss and accuracy over the training (and validation) rows every this many epochs, and always after the last; the pass is distributed like a step but reads every row, so raise it when epochs are short. 0: never (a run scored elsewhere; the model file then has no `metrics`)',
    target: { config: 'evalEvery' },
    changesResult: false,
  },
  {
    flag: '--early-stopping',
    value: '<evals>',
    help: 'stop after this many evaluations in a row without a lower validation loss, keeping the best model (needs --val-split)',
    parse: integerIn(1, MAX_EPOCHS),
    defaultText: 'off',
    docs: "stop when the validation loss has not improved (strictly) for this many evaluations in a row; the model file holds the best evaluation's model and its epoch. Needs `--val-split`",
    target: { config: 'earlyStoppingPatience' },
    changesResult: true,
    // Only when set: the fingerprint (and checkpoints) of runs without it stay as they were.
    fingerprint: (config) => (config.earlyStoppingPatience === null ? {} : { earlyStopping: config.earlyStoppingPatience }),
  },
  {
    flag: '--batch-size',
    value: '<rows>',
    help: 'global mini-batch size B',
    parse: integerIn(1, MAX_ROWS),
    default: DEFAULTS.batchSize,
    defaultText: String(DEFAULTS.batchSize),
    docs: 'global mini-batch size B (split across workers)',
    target: { config: 'batchSize' },
    changesResult: true,
    fingerprint: (config) => ({ batchSize: config.batchSize }),
  },
  {
    flag: '--lr',
    value: '<eta>',
    help: 'learning rate η',
    parse: positiveNumber,
    default: DEFAULTS.lr,
    defaultText: String(DEFAULTS.lr),
    docs: 'learning rate η (the base rate of `--lr-schedule`); α of `--optimizer ftrl`',
    target: { config: 'lr' },
    changesResult: true,
    fingerprint: (config) => ({ lr: config.lr }),
  },
  {
    flag: '--l2',
    value: '<lambda>',
    help: 'L2 strength λ (not applied to the bias)',
    parse: nonNegativeNumber,
    default: DEFAULTS.l2,
    defaultText: String(DEFAULTS.l2),
    docs: "L2 strength λ, torch's `weight_decay`: added as λ·w to the weight gradient (never to the bias); with adamw, decoupled (w ← w·(1 − η_t·λ))",
    target: { config: 'l2' },
    changesResult: true,
    fingerprint: (config) => ({ l2: config.l2 }),
  },
  {
    flag: '--l1',
    value: '<lambda1>',
    help: `L1 strength λ1, sparse data only: sgd's proximal step or ftrl's λ1 (default: ${OPTIMIZER_DEFAULTS.l1}; not applied to the bias)`,
    parse: nonNegativeNumber,
    defaultText: String(OPTIMIZER_DEFAULTS.l1),
    docs: "L1 strength λ1 (sparse data, `sgd` or `ftrl`; never the bias): sgd's proximal step w ← sgn(w)·max(0, abs(w) − η·λ1) after each step on every weight (exact, paid lazily); ftrl's λ1 (see Training on sparse data)",
    target: { optimizer: 'l1' },
    changesResult: true,
    fingerprint: readHyperParameter('l1'),
  },
  {
    flag: '--seed',
    value: '<n>',
    help: 'seed of the shuffle and the validation split',
    parse: seed,
    default: DEFAULTS.seed,
    defaultText: String(DEFAULTS.seed),
    docs: 'seed of the shuffle and the validation split',
    target: { config: 'seed' },
    changesResult: true,
    fingerprint: (config) => ({ seed: config.seed }),
  },
  {
    flag: '--shuffle',
    value: '[mode]',
    help: 'shuffle every epoch: rows (default), blocks (of --block-rows rows, sequential reads), none',
    parse: shuffleMode,
    defaultText: 'rows',
    docs: 'a seeded permutation of the training rows every epoch (`rows`), of blocks of `--block-rows` rows (`blocks`; see Big data sets), or file order (`none`)',
    target: { combined: ['shuffle', 'shuffleBlockRows'] },
    changesResult: true,
    fingerprint: (config) => ({ shuffle: config.shuffle, shuffleBlockRows: config.shuffleBlockRows }),
  },
  {
    flag: '--block-rows',
    value: '<n>',
    help: 'rows per block of --shuffle blocks',
    parse: integerIn(1, MAX_ROWS),
    default: 4096,
    defaultText: '4096',
    docs: 'rows per block of `--shuffle blocks`',
    target: { combined: ['shuffleBlockRows'] },
    changesResult: true,
    fingerprint: (config) => ({ shuffleBlockRows: config.shuffleBlockRows }),
  },
  {
    flag: '--no-shuffle',
    value: null,
    help: 'take the training rows in file order',
    parse: null,
    defaultText: '',
    docs: '',
    target: { combined: ['shuffle', 'shuffleBlockRows'] },
    changesResult: true,
    fingerprint: (config) => ({ shuffle: config.shuffle }),
  },
  {
    flag: '--standardize',
    value: '[bool]',
    help: 'z-score features with training-row statistics (default: true)',
    parse: booleanFlag,
    defaultText: 'standardize',
    docs: 'z-score features with the mean and population std of the training rows (a constant column gets std 1); saved in the model',
    target: { config: 'standardize' },
    changesResult: true,
    fingerprint: (config) => ({ standardize: config.standardize }),
  },
  {
    flag: '--no-standardize',
    value: null,
    help: 'use the features as they are (a warning says when their scales make sgd, momentum or nesterov overshoot at --lr)',
    parse: null,
    defaultText: '',
    docs: '',
    target: { config: 'standardize' },
    changesResult: true,
    fingerprint: (config) => ({ standardize: config.standardize }),
  },
  {
    flag: '--val-split',
    value: '<fraction>',
    help: 'hold out this fraction of rows (seeded) for validation',
    parse: fraction,
    default: DEFAULTS.valFraction,
    defaultText: String(DEFAULTS.valFraction),
    docs: 'hold out a seeded fraction of rows; validation loss and accuracy are reported after every epoch',
    target: { config: 'valFraction' },
    changesResult: true,
    fingerprint: (config) => ({ valFraction: config.valFraction }),
  },
  {
    flag: '--chunks',
    value: '<n>',
    help: "chunks per batch: the unit of work and the reduction tree's leaves (default: floor(B/32), between 1 and 64; changes the bits)",
    parse: integerIn(1, MAX_CHUNKS),
    defaultText: 'floor(B / 32), between 1 and 64',
    docs: 'chunks per batch: the unit of work and the leaves of the reduction tree; at most this many workers share a step. The default is a function of `--batch-size` alone (64 chunks from B = 2048 on, enough for 64 workers; chunks of at least 32 rows below that); changing it changes the bits',
    target: { config: 'chunksPerBatch' },
    changesResult: true,
    fingerprint: (config) => ({ chunksPerBatch: config.chunksPerBatch }),
  },
  {
    flag: '--host',
    value: '<address>',
    help: 'address to listen on',
    parse: null,
    default: { perCommand: 'host' },
    defaultText: '127.0.0.1 (`dpt coordinator`: 0.0.0.0)',
    docs: 'address the coordinator listens on',
    target: { config: 'host' },
    changesResult: false,
  },
  {
    flag: '--port',
    value: '<n>',
    help: 'port to listen on (0 picks a free one)',
    parse: port,
    default: { perCommand: 'port' },
    defaultText: '0 (`dpt coordinator`: 8787)',
    docs: 'port the coordinator listens on (0 picks a free port and prints it)',
    target: { config: 'port' },
    changesResult: false,
  },
  {
    flag: '--token',
    value: '<secret>',
    help: 'shared secret workers must present',
    parse: null,
    defaultText: 'random (`dpt train`)',
    docs: 'shared secret of the workers',
    target: { combined: ['token'] },
    changesResult: false,
  },
  {
    flag: '--token-file',
    value: '<path>',
    help: 'read the token from this file (e.g. a Docker secret)',
    parse: null,
    defaultText: 'none',
    docs: 'read the token from this file (e.g. a Docker secret; a trailing newline is dropped)',
    target: { combined: ['token'] },
    changesResult: false,
  },
  {
    flag: '--monitor-token',
    value: '<secret>',
    help: 'read-only token for monitors, /metrics, /status and the dashboard (default: generated, in the printed dashboard link)',
    parse: null,
    defaultText: 'generated when a token is in force',
    docs: "read-only token for the dashboard, the loss stream, `/metrics` and `/status` (the workers' token opens them too); when none is given, one is generated and printed in the dashboard link",
    target: { config: 'monitorToken' },
    changesResult: false,
  },
  {
    flag: '--join-timeout',
    value: '<ms>',
    help: 'how long to wait for the workers before the first step',
    parse: durationMs,
    default: DEFAULTS.joinTimeoutMs,
    defaultText: String(DEFAULTS.joinTimeoutMs),
    docs: 'how long to wait for the workers before the first step',
    target: { config: 'joinTimeoutMs' },
    changesResult: false,
  },
  {
    flag: '--step-timeout',
    value: '<ms>',
    help: 'drop a worker that has not answered a step within this time',
    parse: durationMs,
    default: DEFAULTS.stepTimeoutMs,
    defaultText: String(DEFAULTS.stepTimeoutMs),
    docs: 'a worker that has not answered a step by then is dropped and its rows recomputed',
    target: { config: 'stepTimeoutMs' },
    changesResult: false,
  },
  {
    flag: '--rejoin-timeout',
    value: '<ms>',
    help: 'with no worker left, how long to wait for one',
    parse: durationMs,
    default: DEFAULTS.rejoinTimeoutMs,
    defaultText: String(DEFAULTS.rejoinTimeoutMs),
    docs: 'with no worker left, how long to wait for one before failing',
    target: { config: 'rejoinTimeoutMs' },
    changesResult: false,
  },
  {
    flag: '--out',
    value: '<path>',
    help: 'write the model file here',
    parse: null,
    defaultText: 'none',
    docs: 'write the model file (atomically and durably; a failed write keeps the previous file, exit 1 — see Files dpt writes)',
    target: { config: 'outPath' },
    changesResult: false,
  },
  {
    flag: '--metrics',
    value: '<path>',
    help: 'write the loss stream here as JSONL',
    parse: null,
    defaultText: 'none',
    docs: 'write the loss stream as JSONL, one event per line (a file, or a FIFO — the run waits for its reader — or `/dev/stdout` on a terminal or pipe; a failed append cuts the file to its last complete line, warns once and stops the stream)',
    target: { config: 'metricsPath' },
    changesResult: false,
  },
  {
    flag: '--reproducible',
    value: '[bool]',
    help: 'accepted for compatibility: every run sums along the fixed reduction tree (the same bits on any cluster)',
    parse: booleanFlag,
    defaultText: 'reproducible',
    docs: 'accepted for compatibility, no effect: every run sums along the fixed reduction tree (the same bits on any cluster), and a worker already sends one part per subtree it holds, as little as the merged parts `--no-reproducible` used to send',
    target: { config: 'reproducible' },
    changesResult: false,
  },
  {
    flag: '--no-reproducible',
    value: null,
    help: 'accepted for compatibility, no effect: workers already send one part per subtree',
    parse: null,
    defaultText: '',
    docs: '',
    target: { config: 'reproducible' },
    changesResult: false,
  },
  {
    flag: '--backup-factor',
    value: '<f>',
    help: 'give chunks still pending f× the first worker’s time also to an idle worker (0: never)',
    parse: backupFactor,
    default: DEFAULTS.backupFactor,
    defaultText: String(DEFAULTS.backupFactor),
    docs: 'once a worker has answered, chunks still pending f× its time later are also given to idle workers (0: never)',
    target: { config: 'backupFactor' },
    changesResult: false,
  },
  {
    flag: '--heartbeat',
    value: '<ms>',
    help: 'ping every peer this often; drop one that misses a ping',
    parse: durationMs,
    default: DEFAULTS.heartbeatMs,
    defaultText: String(DEFAULTS.heartbeatMs),
    docs: 'ping every peer this often; a peer that has not answered by the next ping is dropped',
    target: { config: 'heartbeatMs' },
    changesResult: false,
  },
  {
    flag: '--checkpoint',
    value: '<path>',
    help: 'write a checkpoint here (atomically, with a checksum)',
    parse: null,
    defaultText: 'none',
    docs: 'write a checkpoint (atomically, with a SHA-256 checksum; a failed write keeps the previous checkpoint, warns and training goes on)',
    target: { config: 'checkpointPath' },
    changesResult: false,
  },
  {
    flag: '--checkpoint-every',
    value: '<steps>',
    help: 'checkpoint every this many steps, and at every epoch end',
    parse: positiveInteger,
    default: DEFAULTS.checkpointEvery,
    defaultText: String(DEFAULTS.checkpointEvery),
    docs: 'checkpoint every this many steps, and at every epoch end',
    target: { config: 'checkpointEvery' },
    changesResult: false,
  },
  {
    flag: '--resume',
    value: '<path>',
    help: 'continue the run saved in this checkpoint',
    parse: null,
    defaultText: 'none',
    docs: 'continue the run saved in a checkpoint (same data and every option marked as changing the result; a resumed run ends with the bits of the uninterrupted one)',
    target: { config: 'resumePath' },
    changesResult: false,
  },
  {
    flag: '--max-pending-handshakes',
    value: '<n>',
    help: 'connections still authenticating, at most',
    parse: integerIn(1, MAX_PENDING_HANDSHAKES),
    default: DEFAULTS.maxPendingHandshakes,
    defaultText: String(DEFAULTS.maxPendingHandshakes),
    docs: 'connections still authenticating, at most; more are closed at once (code 1013)',
    target: { config: 'maxPendingHandshakes' },
    changesResult: false,
  },
  {
    flag: '--handshake-timeout',
    value: '<ms>',
    help: 'time a new connection has to authenticate',
    parse: durationMs,
    default: DEFAULTS.handshakeTimeoutMs,
    defaultText: String(DEFAULTS.handshakeTimeoutMs),
    docs: 'time a new connection has to authenticate',
    target: { config: 'handshakeTimeoutMs' },
    changesResult: false,
  },
  {
    flag: '--max-monitors',
    value: '<n>',
    help: 'monitors and dashboards connected at most; more get HTTP 503',
    parse: integerIn(1, 65_536),
    default: DEFAULTS.maxMonitors,
    defaultText: String(DEFAULTS.maxMonitors),
    docs: 'monitors (WebSocket, SSE, dashboards) connected at most; more get HTTP 503 with `Retry-After`',
    target: { config: 'maxMonitors' },
    changesResult: false,
  },
  {
    flag: '--tls-cert',
    value: '<path>',
    help: 'PEM certificate: serve wss:// and https://',
    parse: null,
    defaultText: 'none',
    docs: 'PEM certificate: serve `wss://` and `https://` (with `--tls-key`)',
    target: { config: 'tlsCertPath' },
    changesResult: false,
  },
  {
    flag: '--tls-key',
    value: '<path>',
    help: 'PEM private key of --tls-cert',
    parse: null,
    defaultText: 'none',
    docs: 'PEM private key of `--tls-cert`',
    target: { config: 'tlsKeyPath' },
    changesResult: false,
  },
  {
    flag: '--kernel',
    value: '<kind>',
    help: 'gradient kernel every worker runs: wasm-simd (default) or js',
    parse: kernelKind,
    default: DEFAULTS.kernel,
    defaultText: DEFAULTS.kernel,
    docs: 'the gradient kernel every worker runs (`wasm-simd`: the lanes8 order, native where built, else WebAssembly SIMD, the same bits; or `js`: plain TypeScript); all workers of a run use the same one',
    target: { config: 'kernel' },
    changesResult: true,
    // The kernel's identity (another implementation may give other bits).
    fingerprint: (_config, facts) => ({ kernel: facts.kernel }),
  },
  // The optimizer's and the schedule's options: no commander default, so an unset one takes its
  // default when merged (ε's depends on --optimizer).
  {
    flag: '--optimizer',
    value: '<name>',
    help: `update rule, as torch.optim defines it, or ftrl (FTRL-Proximal, sparse data): ${ALL_OPTIMIZER_NAMES.join(', ')} (default: ${OPTIMIZER_DEFAULTS.name})`,
    parse: oneOf(ALL_OPTIMIZER_NAMES),
    defaultText: OPTIMIZER_DEFAULTS.name,
    docs: `update rule, exactly as torch.optim defines it (see Optimizers and rate schedules): ${ALL_OPTIMIZER_NAMES.filter((name) => name !== 'ftrl')
      .map((name) => `\`${name}\``)
      .join(', ')}; \`ftrl\`: FTRL-Proximal on sparse data (see Training on sparse data)`,
    target: { optimizer: 'name' },
    changesResult: true,
    fingerprint: (config) => ({ optimizer: config.optimizer.name }),
  },
  {
    flag: '--momentum',
    value: '<mu>',
    help: `μ of momentum and nesterov, in (0, 1) (default: ${OPTIMIZER_DEFAULTS.momentum})`,
    parse: finiteNumber,
    defaultText: String(OPTIMIZER_DEFAULTS.momentum),
    docs: 'μ of momentum and nesterov, in (0, 1)',
    target: { optimizer: 'momentum' },
    changesResult: true,
    fingerprint: readHyperParameter('momentum'),
  },
  {
    flag: '--beta1',
    value: '<b1>',
    help: `adam's and adamw's first-moment decay β1, in [0, 1) (default: ${OPTIMIZER_DEFAULTS.beta1})`,
    parse: finiteNumber,
    defaultText: String(OPTIMIZER_DEFAULTS.beta1),
    docs: 'first-moment decay β1 of adam and adamw, in [0, 1)',
    target: { optimizer: 'beta1' },
    changesResult: true,
    fingerprint: readHyperParameter('beta1'),
  },
  {
    flag: '--beta2',
    value: '<b2>',
    help: `adam's and adamw's second-moment decay β2, in [0, 1) (default: ${OPTIMIZER_DEFAULTS.beta2})`,
    parse: finiteNumber,
    defaultText: String(OPTIMIZER_DEFAULTS.beta2),
    docs: 'second-moment decay β2 of adam and adamw, in [0, 1)',
    target: { optimizer: 'beta2' },
    changesResult: true,
    fingerprint: readHyperParameter('beta2'),
  },
  {
    flag: '--eps',
    value: '<epsilon>',
    help: `ε added to the denominator of adagrad, adam, adamw, > 0 (default: ${OPTIMIZER_DEFAULTS.eps}; adagrad ${OPTIMIZER_DEFAULTS.adagradEps})`,
    parse: finiteNumber,
    defaultText: `${OPTIMIZER_DEFAULTS.eps} (adagrad: ${OPTIMIZER_DEFAULTS.adagradEps})`,
    docs: 'added to the denominator of adagrad, adam, adamw',
    target: { optimizer: 'eps' },
    changesResult: true,
    fingerprint: readHyperParameter('eps'),
  },
  {
    flag: '--ftrl-beta',
    value: '<beta>',
    help: `β of ftrl, > 0: the per-coordinate rate is α / (β + √n) (default: ${OPTIMIZER_DEFAULTS.ftrlBeta})`,
    parse: finiteNumber,
    defaultText: String(OPTIMIZER_DEFAULTS.ftrlBeta),
    docs: 'β of `ftrl`, > 0: the per-coordinate rate is α / (β + √n_j), α = `--lr`',
    target: { optimizer: 'ftrlBeta' },
    changesResult: true,
    fingerprint: readHyperParameter('ftrlBeta'),
  },
  {
    flag: '--lr-schedule',
    value: '<name>',
    help: `rate over the run: ${LR_SCHEDULE_NAMES.join(', ')} (lr·0.5·(1 + cos(π·t/T))) (default: ${LR_SCHEDULE_DEFAULTS.schedule})`,
    parse: oneOf(LR_SCHEDULE_NAMES),
    defaultText: LR_SCHEDULE_DEFAULTS.schedule,
    docs: 'the rate of step t of T: η_t = η·c(t)·u(t)·d(t), c(t) = ½(1 + cos(π·t/T)) for `cosine`, 1 for `constant`',
    target: { lrSchedule: 'schedule' },
    changesResult: true,
    fingerprint: (config) => ({ lrSchedule: config.lrSchedule.schedule }),
  },
  {
    flag: '--warmup-steps',
    value: '<n>',
    help: `linear warm-up: the rate times (t+1)/N for the first N steps (default: ${LR_SCHEDULE_DEFAULTS.warmupSteps})`,
    parse: nonNegativeInteger,
    defaultText: String(LR_SCHEDULE_DEFAULTS.warmupSteps),
    docs: "linear warm-up: u(t) = (t+1)/N for t < N, 1 after (N ≤ the run's steps)",
    target: { lrSchedule: 'warmupSteps' },
    changesResult: true,
    fingerprint: (config) => ({ warmupSteps: config.lrSchedule.warmupSteps }),
  },
  {
    flag: '--lr-decay-epochs',
    value: '<epochs>',
    help: 'step decay: the rate times --lr-gamma every this many epochs (default: none)',
    parse: positiveInteger,
    defaultText: 'none',
    docs: 'step decay: d(t) = G^⌊e/E⌋ for a step of epoch e (0-based), with E this and G `--lr-gamma`',
    target: { lrSchedule: 'decayEpochs' },
    changesResult: true,
    fingerprint: (config) => ({ lrDecayEpochs: config.lrSchedule.decayEpochs }),
  },
  {
    flag: '--lr-gamma',
    value: '<g>',
    help: `factor of each step decay, in (0, 1] (default: ${LR_SCHEDULE_DEFAULTS.gamma})`,
    parse: finiteNumber,
    defaultText: String(LR_SCHEDULE_DEFAULTS.gamma),
    docs: 'G, the factor of each step decay, in (0, 1]; only with `--lr-decay-epochs`',
    target: { lrSchedule: 'gamma' },
    changesResult: true,
    fingerprint: (config) => ({ lrGamma: config.lrSchedule.gamma }),
  },
];

/**
 * The coordinator's options from parsed flag values (keyed by property, unset ones undefined) for
 * every target but the combined ones that read files (the token: the CLI resolves it).
 */
export function tableOptions(values: Readonly<Record<string, unknown>>): Omit<CoordinatorOptions, 'dataPath' | 'token'> {
  const options: Record<string, unknown> = {};
  const optimizer: Record<string, unknown> = {};
  const lrSchedule: Record<string, unknown> = {};
  for (const row of TRAINING_OPTIONS) {
    const value = values[optionProperty(row.flag)];
    const target = row.target;
    if ('config' in target) options[target.config] = value;
    else if ('optimizer' in target) optimizer[target.optimizer] = value;
    else if ('lrSchedule' in target) lrSchedule[target.lrSchedule] = value;
  }
  // --shuffle [mode] / --no-shuffle / --block-rows: one property (true, false or a mode) and the block size.
  const shuffle = values.shuffle as boolean | 'rows' | 'blocks' | 'none' | undefined; // what shuffleMode and --no-shuffle give
  options.shuffle = shuffle === undefined ? undefined : shuffle !== false && shuffle !== 'none';
  options.shuffleBlockRows = shuffle === 'blocks' ? values.blockRows : 0;
  // Each value came through its row's parser, of the type its target holds; the whole is validated when merged.
  return {
    ...(options as Omit<CoordinatorOptions, 'dataPath' | 'token' | 'optimizer' | 'lrSchedule'>),
    optimizer: optimizer as CoordinatorOptions['optimizer'],
    lrSchedule: lrSchedule as CoordinatorOptions['lrSchedule'],
  };
}

// The training flags that `dpt train` and `dpt coordinator` share, and their mapping to the
// coordinator's options. Defaults live in coordinator/config.ts and are shown in --help.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { type CoordinatorOptions, DEFAULTS } from '../coordinator/config.js';
import { OPTIMIZER_OPTIONS, optimizerChoice } from '../coordinator/optimizer-options.js';
import {
  backupFactor,
  booleanFlag,
  classWeightMode,
  durationMs,
  fraction,
  integerIn,
  kernelKind,
  MAX_CHUNKS,
  MAX_EPOCHS,
  MAX_PENDING_HANDSHAKES,
  MAX_ROWS,
  modelKind,
  nonNegativeNumber,
  port,
  positiveInteger,
  positiveNumber,
  resolveToken,
  seed,
  shuffleMode,
} from './options.js';

export interface TrainingFlags {
  data: string;
  labelColumn?: string;
  epochs: number;
  evalEvery: number;
  batchSize: number;
  lr: number;
  l2: number;
  seed: number;
  shuffle?: boolean | 'rows' | 'blocks' | 'none';
  blockRows: number;
  standardize: boolean;
  valSplit: number;
  earlyStopping?: number;
  chunks?: number;
  host: string;
  port: number;
  token?: string;
  tokenFile?: string;
  monitorToken?: string;
  workers: number;
  joinTimeout: number;
  stepTimeout: number;
  rejoinTimeout: number;
  out?: string;
  metrics?: string;
  reproducible?: boolean;
  backupFactor: number;
  heartbeat: number;
  checkpoint?: string;
  checkpointEvery: number;
  resume?: string;
  maxPendingHandshakes: number;
  handshakeTimeout: number;
  maxMonitors: number;
  tlsCert?: string;
  tlsKey?: string;
  kernel: 'wasm-simd' | 'js';
  model?: 'auto' | 'logistic' | 'softmax';
  maxClasses?: number;
  classWeight?: 'none' | 'balanced';
  // The optimizer's and the schedule's flags (coordinator/optimizer-options.ts), unset unless given.
  optimizer?: string;
  momentum?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  lrSchedule?: string;
  warmupSteps?: number;
  lrDecayEpochs?: number;
  lrGamma?: number;
}

export function addTrainingFlags(command: Command, defaults: { host: string; port: number }): Command {
  // Every flag can also come from the environment (DPT_ + the flag in upper snake case), which
  // is how docker-compose passes training settings; a flag on the command line wins.
  const flag = (spec: string, description: string, parse?: (value: string) => unknown, fallback?: unknown): Option => {
    const option = new Option(spec, description);
    const name = /--(?:no-)?([a-z0-9-]+)/.exec(spec)?.[1] ?? '';
    if (!spec.startsWith('--no-')) option.env(`DPT_${name.replace(/-/g, '_').toUpperCase()}`);
    if (parse !== undefined) option.argParser(parse);
    if (fallback !== undefined) option.default(fallback);
    return option;
  };
  command
    .addOption(flag('--data <path>', 'CSV data file with a header row').makeOptionMandatory())
    .addOption(flag('--label-column <name|index>', 'label column: header name or 0-based index (default: the last column)'))
    .addOption(flag('--epochs <n>', 'passes over the training rows', integerIn(1, MAX_EPOCHS), DEFAULTS.epochs))
    .addOption(
      flag('--eval-every <epochs>', 'evaluate loss and accuracy every this many epochs, and after the last', integerIn(1, MAX_EPOCHS), DEFAULTS.evalEvery),
    )
    .addOption(flag('--batch-size <rows>', 'global mini-batch size B', integerIn(1, MAX_ROWS), DEFAULTS.batchSize))
    .addOption(flag('--lr <eta>', 'learning rate η', positiveNumber, DEFAULTS.lr))
    .addOption(flag('--l2 <lambda>', 'L2 strength λ (not applied to the bias)', nonNegativeNumber, DEFAULTS.l2))
    .addOption(flag('--seed <n>', 'seed of the shuffle and the validation split', seed, DEFAULTS.seed))
    .addOption(flag('--shuffle [mode]', 'shuffle every epoch: rows (default), blocks (of --block-rows rows, sequential reads), none', shuffleMode))
    .addOption(flag('--block-rows <n>', 'rows per block of --shuffle blocks', integerIn(1, MAX_ROWS), 4096))
    .addOption(flag('--no-shuffle', 'take the training rows in file order'))
    .addOption(flag('--standardize [bool]', 'z-score features with training-row statistics (default: true)', booleanFlag))
    .addOption(flag('--no-standardize', 'use the features as they are'))
    .addOption(flag('--val-split <fraction>', 'hold out this fraction of rows (seeded) for validation', fraction, DEFAULTS.valFraction))
    .addOption(
      flag(
        '--early-stopping <evals>',
        'with --val-split: stop after this many evaluations in a row without a lower validation loss; the model file holds the model of the best evaluation',
        integerIn(1, MAX_EPOCHS),
      ),
    )
    .addOption(
      flag(
        '--chunks <n>',
        "chunks per batch: the unit of work and the reduction tree's leaves (default: floor(B/32), between 1 and 64; changes the bits)",
        integerIn(1, MAX_CHUNKS),
      ),
    )
    .addOption(flag('--host <address>', 'address to listen on', undefined, defaults.host))
    .addOption(flag('--port <n>', 'port to listen on (0 picks a free one)', port, defaults.port))
    .addOption(flag('--token <secret>', 'shared secret workers must present'))
    .addOption(flag('--token-file <path>', 'read the token from this file (e.g. a Docker secret)'))
    .addOption(flag('--monitor-token <secret>', "read-only token for monitors, /metrics and the dashboard (default: the workers' token)"))
    .addOption(flag('--join-timeout <ms>', 'how long to wait for the workers before the first step', durationMs, DEFAULTS.joinTimeoutMs))
    .addOption(flag('--step-timeout <ms>', 'drop a worker that has not answered a step within this time', durationMs, DEFAULTS.stepTimeoutMs))
    .addOption(flag('--rejoin-timeout <ms>', 'with no worker left, how long to wait for one', durationMs, DEFAULTS.rejoinTimeoutMs))
    .addOption(flag('--out <path>', 'write the model file here'))
    .addOption(flag('--metrics <path>', 'write the loss stream here as JSONL'))
    .addOption(
      flag('--reproducible [bool]', 'accepted for compatibility: every run sums along the fixed reduction tree (the same bits on any cluster)', booleanFlag),
    )
    .addOption(flag('--no-reproducible', 'accepted for compatibility, no effect: workers already send one part per subtree'))
    .addOption(
      flag(
        '--backup-factor <f>',
        'give chunks still pending f× the first worker’s time also to an idle worker (0: never)',
        backupFactor,
        DEFAULTS.backupFactor,
      ),
    )
    .addOption(flag('--heartbeat <ms>', 'ping every peer this often; drop one that misses a ping', durationMs, DEFAULTS.heartbeatMs))
    .addOption(flag('--checkpoint <path>', 'write a checkpoint here (atomically, with a checksum)'))
    .addOption(flag('--checkpoint-every <steps>', 'checkpoint every this many steps, and at every epoch end', positiveInteger, DEFAULTS.checkpointEvery))
    .addOption(flag('--resume <path>', 'continue the run saved in this checkpoint'))
    .addOption(
      flag('--max-pending-handshakes <n>', 'connections still authenticating, at most', integerIn(1, MAX_PENDING_HANDSHAKES), DEFAULTS.maxPendingHandshakes),
    )
    .addOption(flag('--handshake-timeout <ms>', 'time a new connection has to authenticate', durationMs, DEFAULTS.handshakeTimeoutMs))
    .addOption(flag('--max-monitors <n>', 'monitors and dashboards connected at most; more get HTTP 503', integerIn(1, 65_536), DEFAULTS.maxMonitors))
    .addOption(flag('--tls-cert <path>', 'PEM certificate: serve wss:// and https://'))
    .addOption(flag('--tls-key <path>', 'PEM private key of --tls-cert'))
    .addOption(flag('--kernel <kind>', 'gradient kernel every worker runs: wasm-simd (default) or js', kernelKind, DEFAULTS.kernel))
    .addOption(flag('--model <kind>', 'logistic or softmax (default: logistic when the labels are exactly 0 and 1, else softmax)', modelKind))
    .addOption(flag('--max-classes <n>', `refuse a label column with more distinct labels (default: ${DEFAULTS.maxClasses})`, integerIn(2, 65_535)))
    .addOption(
      flag(
        '--class-weight <mode>',
        `none, or balanced: weigh each training row's loss and gradient by n / (K·n_k) of its class (default: ${DEFAULTS.classWeight})`,
        classWeightMode,
      ),
    );
  // No commander default: an unset option takes its default when merged (ε's depends on --optimizer).
  for (const row of OPTIMIZER_OPTIONS) {
    const parse = (text: string): string | number => {
      try {
        return row.parse(text);
      } catch (error) {
        throw new InvalidArgumentError((error as Error).message);
      }
    };
    command.addOption(flag(`${row.flag} ${row.value}`, `${row.description} (default: ${row.defaultText})`, parse));
  }
  return command;
}

export function coordinatorOptions(flags: TrainingFlags): CoordinatorOptions {
  return {
    dataPath: flags.data,
    labelColumn: flags.labelColumn,
    epochs: flags.epochs,
    evalEvery: flags.evalEvery,
    batchSize: flags.batchSize,
    lr: flags.lr,
    l2: flags.l2,
    seed: flags.seed,
    shuffle: flags.shuffle === undefined ? undefined : flags.shuffle !== false && flags.shuffle !== 'none',
    shuffleBlockRows: flags.shuffle === 'blocks' ? flags.blockRows : 0,
    standardize: flags.standardize,
    valFraction: flags.valSplit,
    earlyStoppingPatience: flags.earlyStopping ?? null,
    chunksPerBatch: flags.chunks,
    host: flags.host,
    port: flags.port,
    token: resolveToken(flags.token, flags.tokenFile),
    monitorToken: flags.monitorToken ?? null,
    workers: flags.workers,
    joinTimeoutMs: flags.joinTimeout,
    stepTimeoutMs: flags.stepTimeout,
    rejoinTimeoutMs: flags.rejoinTimeout,
    outPath: flags.out ?? null,
    metricsPath: flags.metrics ?? null,
    reproducible: flags.reproducible,
    backupFactor: flags.backupFactor,
    heartbeatMs: flags.heartbeat,
    checkpointPath: flags.checkpoint ?? null,
    checkpointEvery: flags.checkpointEvery,
    resumePath: flags.resume ?? null,
    maxPendingHandshakes: flags.maxPendingHandshakes,
    handshakeTimeoutMs: flags.handshakeTimeout,
    maxMonitors: flags.maxMonitors,
    tlsCertPath: flags.tlsCert ?? null,
    tlsKeyPath: flags.tlsKey ?? null,
    kernel: flags.kernel,
    model: flags.model,
    maxClasses: flags.maxClasses,
    classWeight: flags.classWeight,
    ...optimizerChoice({ ...flags }),
  };
}

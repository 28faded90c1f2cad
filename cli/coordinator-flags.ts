// The training flags that `dpt train` and `dpt coordinator` share, and their mapping to the
// coordinator's options. Defaults live in coordinator/config.ts and are shown in --help.

import type { Command } from 'commander';
import { type CoordinatorOptions, DEFAULTS } from '../coordinator/config.js';
import { fraction, nonNegativeInteger, nonNegativeNumber, port, positiveInteger, positiveNumber } from './options.js';

export interface TrainingFlags {
  data: string;
  labelColumn?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  l2: number;
  seed: number;
  shuffle: boolean;
  standardize: boolean;
  valSplit: number;
  chunks: number;
  host: string;
  port: number;
  token?: string;
  workers: number;
  joinTimeout: number;
  stepTimeout: number;
  rejoinTimeout: number;
  out?: string;
  metrics?: string;
}

export function addTrainingFlags(command: Command, defaults: { host: string; port: number }): Command {
  return command
    .requiredOption('--data <path>', 'CSV data file with a header row')
    .option('--label-column <name|index>', 'label column: header name or 0-based index (default: the last column)')
    .option('--epochs <n>', 'passes over the training rows', positiveInteger, DEFAULTS.epochs)
    .option('--batch-size <rows>', 'global mini-batch size B', positiveInteger, DEFAULTS.batchSize)
    .option('--lr <eta>', 'learning rate η', positiveNumber, DEFAULTS.lr)
    .option('--l2 <lambda>', 'L2 strength λ (not applied to the bias)', nonNegativeNumber, DEFAULTS.l2)
    .option('--seed <n>', 'seed of the shuffle and the validation split', nonNegativeInteger, DEFAULTS.seed)
    .option('--shuffle', 'shuffle the training rows every epoch (default)')
    .option('--no-shuffle', 'take the training rows in file order')
    .option('--standardize', 'z-score features with training-row statistics (default)')
    .option('--no-standardize', 'use the features as they are')
    .option('--val-split <fraction>', 'hold out this fraction of rows (seeded) for validation', fraction, DEFAULTS.valFraction)
    .option('--chunks <n>', 'chunks per batch: the unit of work and of recomputation', positiveInteger, DEFAULTS.chunksPerBatch)
    .option('--host <address>', 'address to listen on', defaults.host)
    .option('--port <n>', 'port to listen on (0 picks a free one)', port, defaults.port)
    .option('--token <secret>', 'shared secret workers must present (default: $DPT_TOKEN)')
    .option('--join-timeout <ms>', 'how long to wait for the workers before the first step', positiveInteger, DEFAULTS.joinTimeoutMs)
    .option('--step-timeout <ms>', 'drop a worker that has not answered a step within this time', positiveInteger, DEFAULTS.stepTimeoutMs)
    .option('--rejoin-timeout <ms>', 'with no worker left, how long to wait for one', positiveInteger, DEFAULTS.rejoinTimeoutMs)
    .option('--out <path>', 'write the model file here')
    .option('--metrics <path>', 'write the loss stream here as JSONL');
}

export function coordinatorOptions(flags: TrainingFlags): CoordinatorOptions {
  return {
    dataPath: flags.data,
    labelColumn: flags.labelColumn,
    epochs: flags.epochs,
    batchSize: flags.batchSize,
    lr: flags.lr,
    l2: flags.l2,
    seed: flags.seed,
    shuffle: flags.shuffle,
    standardize: flags.standardize,
    valFraction: flags.valSplit,
    chunksPerBatch: flags.chunks,
    host: flags.host,
    port: flags.port,
    token: flags.token ?? process.env.DPT_TOKEN ?? null,
    workers: flags.workers,
    joinTimeoutMs: flags.joinTimeout,
    stepTimeoutMs: flags.stepTimeout,
    rejoinTimeoutMs: flags.rejoinTimeout,
    outPath: flags.out ?? null,
    metricsPath: flags.metrics ?? null,
  };
}

// What describes a run, derived from the options table (options-table.ts): the run fingerprint
// (what a checkpoint must match; the model file's trainedOn) and the settings of the run start
// event that monitors and the dashboard show. An option marked as changing the result is in both.

import type { RunSettings } from '../shared/events.js';
import { REDUCTION_ID } from '../shared/reduce.js';
import type { RunFingerprint } from './checkpoint.js';
import type { CoordinatorConfig } from './config.js';
import { type RunFacts, TRAINING_OPTIONS } from './options-table.js';

/** The run's fingerprint: each result-changing option's part (the data's identity comes with --data), then the reduction. */
export function runFingerprint(config: CoordinatorConfig, facts: RunFacts): RunFingerprint {
  const fields: Record<string, unknown> = {};
  for (const row of TRAINING_OPTIONS) if (row.changesResult) Object.assign(fields, row.fingerprint(config, facts));
  // Not an option: how parts are summed, fixed by this dpt (shared/reduce.ts); another one gives other bits.
  fields.reduction = REDUCTION_ID;
  return fields as unknown as RunFingerprint; // every field of RunFingerprint comes from a row (test/unit/options-table.test.ts)
}

/** The run start event's settings: the data's shape, the fingerprint, and (for monitors that read them) its main fields by name. */
export function runSettings(config: CoordinatorConfig, facts: RunFacts, sizes: { train: number; validation: number }): RunSettings {
  const fingerprint = runFingerprint(config, facts);
  // The optimizer, the hyper-parameters it reads and the schedule: the rows that target them, in table order.
  const optimizer: Record<string, string | number> = {};
  for (const row of TRAINING_OPTIONS) {
    if (row.changesResult && ('optimizer' in row.target || 'lrSchedule' in row.target)) Object.assign(optimizer, row.fingerprint(config, facts));
  }
  return {
    data: config.dataPath,
    rows: facts.rows,
    features: facts.features,
    trainRows: sizes.train,
    valRows: sizes.validation,
    batchSize: fingerprint.batchSize,
    lr: fingerprint.lr,
    l2: fingerprint.l2,
    seed: fingerprint.seed,
    shuffle: fingerprint.shuffle,
    standardize: fingerprint.standardize,
    valFraction: fingerprint.valFraction,
    chunksPerBatch: fingerprint.chunksPerBatch,
    optimizer,
    fingerprint: { ...fingerprint },
    workers: config.workers,
  };
}

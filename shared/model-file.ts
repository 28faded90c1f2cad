// The model file (DESIGN.md, "Interfaces others rely on"): written atomically, read back with
// every field checked, so predict and evaluate never run on a half-written or foreign file.

import { readFileSync } from 'node:fs';
import { type FileSystem, NODE_FS, writeFileAtomic } from './atomic-file.js';
import { ModelFileError } from './errors.js';

export interface ModelFile {
  readonly format: 'dpt-model';
  readonly version: 1;
  readonly kind: 'logistic-regression';
  /** Apply to standardized inputs when `standardization` is set. */
  readonly weights: number[];
  readonly bias: number;
  readonly features: string[];
  /** The label column's name in the training file. */
  readonly label: string | null;
  readonly standardization: { readonly mean: number[]; readonly std: number[] } | null;
  readonly trainedOn: Record<string, unknown>;
  readonly metrics: Record<string, unknown>;
  /**
   * Present when trained with --early-stopping P: the weights (and metrics) are those of the
   * evaluation after epoch bestEpoch; stoppedAfterEpoch is the epoch whose evaluation ended the
   * run, or null when it ran all its epochs.
   */
  readonly earlyStopping?: { readonly patience: number; readonly bestEpoch: number; readonly stoppedAfterEpoch: number | null };
}

/**
 * Replaces `path` atomically and durably (shared/atomic-file.ts). Throws WriteError when the file
 * cannot be written in full; the previous model file is then unchanged.
 */
export function writeModelFile(path: string, model: ModelFile, fileSystem: FileSystem = NODE_FS): void {
  writeFileAtomic(path, `${JSON.stringify(model, null, 2)}\n`, fileSystem);
}

export function readModelFile(path: string): ModelFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ModelFileError(`${path}: cannot read the model file (${(error as Error).message})`);
  }
  const fail = (field: string, expected: string): never => {
    throw new ModelFileError(`${path}: field '${field}' ${expected}`);
  };
  if (typeof parsed !== 'object' || parsed === null) return fail('(root)', 'must be a JSON object');
  const m = parsed as Record<string, unknown>; // every field is checked below
  if (m.format !== 'dpt-model') fail('format', "must be 'dpt-model'");
  if (m.version !== 1) fail('version', 'must be 1');
  if (m.kind !== 'logistic-regression') fail('kind', "must be 'logistic-regression'");
  const numbers = (value: unknown, field: string, length: number): number[] => {
    if (!Array.isArray(value) || value.length !== length || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      return fail(field, `must be an array of ${length} finite numbers`);
    }
    return value as number[]; // checked element by element just above
  };
  if (!Array.isArray(m.features) || m.features.length === 0 || !m.features.every((f) => typeof f === 'string'))
    fail('features', 'must be a non-empty array of column names');
  const features = m.features as string[]; // checked just above
  const D = features.length;
  const weights = numbers(m.weights, 'weights', D);
  if (typeof m.bias !== 'number' || !Number.isFinite(m.bias)) fail('bias', 'must be a finite number');
  let standardization: ModelFile['standardization'] = null;
  if (m.standardization !== null) {
    if (typeof m.standardization !== 'object' || m.standardization === undefined) return fail('standardization', 'must be null or an object');
    const s = m.standardization as Record<string, unknown>; // fields checked just below
    standardization = { mean: numbers(s.mean, 'standardization.mean', D), std: numbers(s.std, 'standardization.std', D) };
    if (standardization.std.some((v) => v <= 0)) fail('standardization.std', 'must be positive');
  }
  let earlyStopping: ModelFile['earlyStopping'];
  if (m.earlyStopping !== undefined) {
    const e = m.earlyStopping as Record<string, unknown> | null; // fields checked just below
    const isCount = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
    if (typeof e !== 'object' || e === null || !isCount(e.patience, 1) || !isCount(e.bestEpoch, 0))
      return fail('earlyStopping', 'must be an object with a positive integer patience and an epoch bestEpoch');
    if (e.stoppedAfterEpoch !== null && !(isCount(e.stoppedAfterEpoch, 0) && e.stoppedAfterEpoch > e.bestEpoch))
      return fail('earlyStopping.stoppedAfterEpoch', 'must be null or an epoch after bestEpoch');
    earlyStopping = { patience: e.patience, bestEpoch: e.bestEpoch, stoppedAfterEpoch: e.stoppedAfterEpoch };
  }
  return {
    format: 'dpt-model',
    version: 1,
    kind: 'logistic-regression',
    weights,
    bias: m.bias as number, // checked above
    features,
    label: typeof m.label === 'string' ? m.label : null,
    standardization,
    trainedOn: typeof m.trainedOn === 'object' && m.trainedOn !== null ? (m.trainedOn as Record<string, unknown>) : {},
    metrics: typeof m.metrics === 'object' && m.metrics !== null ? (m.metrics as Record<string, unknown>) : {},
    ...(earlyStopping === undefined ? {} : { earlyStopping }),
  };
}

// The model file (DESIGN.md, "Interfaces others rely on"): written atomically, read back with
// every field checked, so predict and evaluate never run on a half-written or foreign file.
// Two kinds (issue #12): binary logistic regression (byte for byte the format dpt always wrote)
// and softmax regression over K ≥ 2 classes.

import { readFileSync } from 'node:fs';
import { type FileSystem, NODE_FS, writeFileAtomic } from './atomic-file.js';
import type { ClassList } from './classes.js';
import { ModelFileError } from './errors.js';
import { softmaxParameterCount } from './softmax.js';

export interface ModelStandardization {
  readonly mean: number[];
  readonly std: number[];
}

/** Written by early stopping (issue #12): the file then holds the model of epoch `bestEpoch`. */
export interface EarlyStoppingRecord {
  /** Evaluations without a better validation loss that stop the run. */
  readonly patience: number;
  readonly bestEpoch: number;
  /** The last epoch trained; null when the run ended at its epoch count without stopping early. */
  readonly stoppedAfterEpoch: number | null;
}

/** The fields both kinds share. */
interface ModelFileCommon {
  readonly format: 'dpt-model';
  readonly version: 1;
  readonly features: string[];
  /** The label column's name in the training file. */
  readonly label: string | null;
  /** Weights apply to standardized inputs when set. */
  readonly standardization: ModelStandardization | null;
  readonly trainedOn: Record<string, unknown>;
  readonly metrics: Record<string, unknown>;
  readonly earlyStopping?: EarlyStoppingRecord;
}

/** Binary logistic regression: class 1 iff w·x + b > 0. */
export interface LogisticModelFile extends ModelFileCommon {
  readonly kind: 'logistic-regression';
  /** D weights. */
  readonly weights: number[];
  readonly bias: number;
}

/** Softmax regression: p = softmax(W x + b), class argmax_k z_k. */
export interface SoftmaxModelFile extends ModelFileCommon {
  readonly kind: 'softmax-regression';
  /** The K class labels in class-index order: all numbers or all strings (shared/classes.ts). */
  readonly classes: number[] | string[];
  /** K rows of D weights, row k = class k. */
  readonly weights: number[][];
  /** K biases. */
  readonly bias: number[];
}

export type ModelFile = LogisticModelFile | SoftmaxModelFile;

/** The fields a trainer supplies besides the parameters. */
export interface ModelFileDetails {
  readonly features: readonly string[];
  readonly label: string | null;
  readonly standardization: ModelStandardization | null;
  readonly trainedOn: Record<string, unknown>;
  readonly metrics: Record<string, unknown>;
  readonly earlyStopping?: EarlyStoppingRecord | undefined;
}

/** The logistic model file of θ = [w, b] (D + 1 values), in the field order every release wrote: the same model, the same bytes. */
export function logisticModelFile(theta: Float64Array, D: number, details: ModelFileDetails): LogisticModelFile {
  if (theta.length !== D + 1) throw new RangeError(`θ holds ${theta.length} numbers, D = ${D} needs ${D + 1}`);
  if (details.features.length !== D) throw new RangeError(`${details.features.length} feature names for D = ${D}`);
  return { format: 'dpt-model', version: 1, kind: 'logistic-regression', weights: Array.from(theta.subarray(0, D)), bias: theta[D]!, ...common(details) };
}

/**
 * The softmax model file of θ (shared/softmax.ts layout: K·D weights row-major, row k = class k,
 * then K biases). Throws RangeError when θ's length or the class count does not fit K and D.
 */
export function softmaxModelFile(theta: Float64Array, K: number, D: number, classes: ClassList, details: ModelFileDetails): SoftmaxModelFile {
  if (theta.length !== softmaxParameterCount(K, D))
    throw new RangeError(`θ holds ${theta.length} numbers, K = ${K} and D = ${D} need ${softmaxParameterCount(K, D)}`);
  if (classes.values.length !== K) throw new RangeError(`${classes.values.length} classes for K = ${K}`);
  if (details.features.length !== D) throw new RangeError(`${details.features.length} feature names for D = ${D}`);
  const weights = Array.from({ length: K }, (_, k) => Array.from(theta.subarray(k * D, (k + 1) * D)));
  return {
    format: 'dpt-model',
    version: 1,
    kind: 'softmax-regression',
    classes: classes.isNumeric ? [...classes.values] : [...classes.values],
    weights,
    bias: Array.from(theta.subarray(K * D, K * D + K)),
    ...common(details),
  };
}

function common(details: ModelFileDetails): Omit<ModelFileCommon, 'format' | 'version'> {
  return {
    features: [...details.features],
    label: details.label,
    standardization: details.standardization,
    trainedOn: details.trainedOn,
    metrics: details.metrics,
    ...(details.earlyStopping === undefined ? {} : { earlyStopping: details.earlyStopping }),
  };
}

/** θ of a softmax model file, in shared/softmax.ts's layout. */
export function softmaxTheta(model: SoftmaxModelFile): Float64Array {
  const K = model.classes.length;
  const D = model.features.length;
  const theta = new Float64Array(softmaxParameterCount(K, D));
  model.weights.forEach((row, k) => {
    theta.set(row, k * D);
  });
  theta.set(model.bias, K * D);
  return theta;
}

/** The classes of a softmax model file as a ClassList (numbers when the file lists numbers). */
export function modelClasses(model: SoftmaxModelFile): ClassList {
  const { classes } = model;
  return isNumberArray(classes) ? { isNumeric: true, values: classes } : { isNumeric: false, values: classes };
}

function isNumberArray(values: number[] | string[]): values is number[] {
  return values.every((value) => typeof value === 'number');
}

/**
 * Replaces `path` atomically and durably (shared/atomic-file.ts). Throws WriteError when the file
 * cannot be written in full; the previous model file is then unchanged.
 */
export function writeModelFile(path: string, model: ModelFile, fileSystem: FileSystem = NODE_FS): void {
  writeFileAtomic(path, `${JSON.stringify(model, null, 2)}\n`, fileSystem);
}

const COMMON_FIELDS = ['format', 'version', 'kind', 'weights', 'bias', 'features', 'label', 'standardization', 'trainedOn', 'metrics', 'earlyStopping'];
const FIELDS: Record<ModelFile['kind'], ReadonlySet<string>> = {
  'logistic-regression': new Set(COMMON_FIELDS),
  'softmax-regression': new Set([...COMMON_FIELDS, 'classes']),
};

/**
 * Reads and checks a model file of either kind. Throws ModelFileError (DPT_MODEL_FILE, exit 2)
 * naming the path and the first bad field: a wrong type or shape, a non-finite number, fewer
 * than 2 or repeated classes, or a field that neither kind has. `label`, `trainedOn` and
 * `metrics` may be absent (files written by hand), as may `earlyStopping`.
 */
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
  if (!isObject(parsed)) return fail('(root)', 'must be a JSON object');
  const m = parsed;
  if (m.format !== 'dpt-model') fail('format', "must be 'dpt-model'");
  if (m.version !== 1) fail('version', 'must be 1');
  const kind = m.kind;
  if (kind !== 'logistic-regression' && kind !== 'softmax-regression') return fail('kind', "must be 'logistic-regression' or 'softmax-regression'");
  for (const field of Object.keys(m)) {
    if (!FIELDS[kind].has(field)) fail(field, `is not a field of a '${kind}' model file`);
  }
  const numbers = (value: unknown, field: string, length: number): number[] => {
    if (!Array.isArray(value) || value.length !== length || !value.every(isFiniteNumber)) {
      return fail(field, `must be an array of ${length} finite numbers`);
    }
    return value as number[]; // checked element by element just above
  };
  if (!Array.isArray(m.features) || m.features.length === 0 || !m.features.every((f) => typeof f === 'string'))
    fail('features', 'must be a non-empty array of column names');
  const features = m.features as string[]; // checked just above
  const D = features.length;
  const duplicate = features.find((name, i) => features.indexOf(name) !== i);
  if (duplicate !== undefined) fail('features', `names column '${duplicate}' twice`);

  let standardization: ModelStandardization | null = null;
  if (m.standardization !== null) {
    if (!isObject(m.standardization)) return fail('standardization', 'must be null or an object');
    const s = m.standardization;
    standardization = { mean: numbers(s.mean, 'standardization.mean', D), std: numbers(s.std, 'standardization.std', D) };
    if (standardization.std.some((v) => v <= 0)) fail('standardization.std', 'must be positive');
  }
  if (m.label !== undefined && m.label !== null && typeof m.label !== 'string') fail('label', 'must be a column name or null');
  const object = (field: 'trainedOn' | 'metrics'): Record<string, unknown> => {
    const value = m[field];
    if (value === undefined) return {};
    if (!isObject(value)) return fail(field, 'must be an object');
    return value;
  };
  const details = {
    features,
    label: typeof m.label === 'string' ? m.label : null,
    standardization,
    trainedOn: object('trainedOn'),
    metrics: object('metrics'),
    ...(m.earlyStopping === undefined ? {} : { earlyStopping: checkEarlyStopping(m.earlyStopping, fail) }),
  };

  if (kind === 'logistic-regression') {
    const weights = numbers(m.weights, 'weights', D);
    if (!isFiniteNumber(m.bias)) return fail('bias', 'must be a finite number');
    return { format: 'dpt-model', version: 1, kind, weights, bias: m.bias, ...details };
  }
  const classes = checkClasses(m.classes, fail);
  const K = classes.length;
  if (!Array.isArray(m.weights) || m.weights.length !== K) return fail('weights', `must be an array of ${K} rows (one per class)`);
  const weights = m.weights.map((row, k) => numbers(row, `weights[${k}]`, D));
  const bias = numbers(m.bias, 'bias', K);
  return { format: 'dpt-model', version: 1, kind, classes, weights, bias, ...details };
}

type Fail = (field: string, expected: string) => never;

/** At least 2 distinct classes, all finite numbers or all non-empty trimmed strings (as label cells are read). */
function checkClasses(value: unknown, fail: Fail): number[] | string[] {
  if (!Array.isArray(value) || value.length < 2) return fail('classes', 'must be an array of at least 2 class labels');
  const seen = new Set<unknown>();
  const isNumeric = typeof value[0] === 'number';
  value.forEach((label: unknown, k) => {
    if (isNumeric ? !isFiniteNumber(label) : typeof label !== 'string')
      fail(`classes[${k}]`, `must be a ${isNumeric ? 'finite number' : 'string'} (classes are all numbers or all strings)`);
    if (typeof label === 'string' && (label === '' || label.trim() !== label)) fail(`classes[${k}]`, 'must be non-empty, without surrounding blanks');
    if (seen.has(label)) fail(`classes[${k}]`, `repeats class ${JSON.stringify(label)}`); // a Set holds −0 and 0 as one key, like class lookup
    seen.add(label);
  });
  return value as number[] | string[]; // checked element by element just above
}

function checkEarlyStopping(value: unknown, fail: Fail): EarlyStoppingRecord {
  if (!isObject(value)) return fail('earlyStopping', 'must be an object');
  for (const field of Object.keys(value)) {
    if (field !== 'patience' && field !== 'bestEpoch' && field !== 'stoppedAfterEpoch') fail(`earlyStopping.${field}`, 'is not a field of earlyStopping');
  }
  const { patience, bestEpoch, stoppedAfterEpoch } = value;
  if (!(Number.isSafeInteger(patience) && (patience as number) >= 1)) fail('earlyStopping.patience', 'must be a positive integer');
  if (!(Number.isSafeInteger(bestEpoch) && (bestEpoch as number) >= 0)) fail('earlyStopping.bestEpoch', 'must be a non-negative integer');
  // A stop comes after at least one evaluation that did not improve on the best.
  if (stoppedAfterEpoch !== null && !(Number.isSafeInteger(stoppedAfterEpoch) && (stoppedAfterEpoch as number) > (bestEpoch as number)))
    fail('earlyStopping.stoppedAfterEpoch', 'must be null or an epoch after bestEpoch');
  // checked one by one just above
  return { patience: patience as number, bestEpoch: bestEpoch as number, stoppedAfterEpoch: stoppedAfterEpoch as number | null };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

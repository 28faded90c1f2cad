// The model file (DESIGN.md, "Interfaces others rely on"): written atomically, read back with
// every field checked, so predict and evaluate never run on a half-written or foreign file.
// Two kinds (issue #12): binary logistic regression (byte for byte the format dpt always wrote)
// and softmax regression over K ≥ 2 classes. Each in two forms: over dense CSV/.dpt columns
// (`features` names the D columns), or over sparse inputs (issue #13: `input` says which, no
// `features`, weights dense or sparse as shared/sparse-weights.ts says).
//
// For the sparse training path (issue #13):
//   sparseModelFields(params: SparseParams, shape: ModelShape, hashing: ModelHashing | null): SparseModelFields
//     the fields {input, hashing?, weights, bias} of w = params.scale·params.v and params.bias
//     (hashing null: a LIBSVM-trained model, `"input": "libsvm"`);
//   sparseModelFile(params, shape, hashing, classes: ClassList | null, details: SparseModelDetails): SparseModelFile
//     the whole file (classes for softmax, null for logistic); write it with writeModelFile.
//   readModelFile(path): ModelFile | SparseModelFile; isSparseModel(model) tells them apart.

import { readFileSync } from 'node:fs';
import { type FileSystem, NODE_FS, writeFileAtomic } from './atomic-file.js';
import type { ClassList } from './classes.js';
import { ModelFileError } from './errors.js';
import type { FeatureHashing } from './feature-hashing.js';
import type { ModelShape } from './model-shape.js';
import { softmaxParameterCount } from './softmax.js';
import type { SparseParams } from './sparse-rows.js';
import { checkSparseWeights, encodeSparseWeights, type SparseWeightsRecord, type StoredWeights } from './sparse-weights.js';

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

/**
 * How CSV columns became hashed features (issue #13): shared/feature-hashing.ts's FeatureHashing,
 * recorded whole so that predict and evaluate hash their input as training did.
 */
export type ModelHashing = FeatureHashing;

/** The fields a sparse model file has where a dense one has `features` and dense weights. */
export type SparseModelFields =
  | { readonly input: 'hashed-csv'; readonly hashing: ModelHashing; readonly weights: StoredWeights; readonly bias: number | number[] }
  | { readonly input: 'libsvm'; readonly weights: StoredWeights; readonly bias: number | number[] };

interface SparseModelCommon {
  readonly format: 'dpt-model';
  readonly version: 1;
  /** 'hashed-csv': rows are CSV records hashed by `hashing`; 'libsvm': rows are LIBSVM lines, index j → weight j − 1. */
  readonly input: 'hashed-csv' | 'libsvm';
  readonly hashing?: ModelHashing;
  readonly label: string | null;
  /** Always null: sparse inputs are not standardized (centering would destroy sparsity). */
  readonly standardization: null;
  readonly trainedOn: Record<string, unknown>;
  readonly metrics: Record<string, unknown>;
  readonly earlyStopping?: EarlyStoppingRecord;
}

export interface SparseLogisticModelFile extends SparseModelCommon {
  readonly kind: 'logistic-regression';
  /** D numbers, or {dims, indices, values} with 1 value per index. */
  readonly weights: number[] | SparseWeightsRecord;
  readonly bias: number;
}

export interface SparseSoftmaxModelFile extends SparseModelCommon {
  readonly kind: 'softmax-regression';
  readonly classes: number[] | string[];
  /** K rows of D numbers, or {dims, indices, values} with K values per index. */
  readonly weights: number[][] | SparseWeightsRecord;
  readonly bias: number[];
}

export type SparseModelFile = SparseLogisticModelFile | SparseSoftmaxModelFile;

/** The details a sparse trainer supplies besides the parameters (no feature names, no standardization). */
export interface SparseModelDetails {
  readonly label: string | null;
  readonly trainedOn: Record<string, unknown>;
  readonly metrics: Record<string, unknown>;
  readonly earlyStopping?: EarlyStoppingRecord | undefined;
}

/** Whether a model file is over sparse inputs (hashed CSV or LIBSVM). */
export function isSparseModel(model: ModelFile | SparseModelFile): model is SparseModelFile {
  return 'input' in model;
}

/** D, the weights per output, of a model file of either form. */
export function modelDims(model: ModelFile | SparseModelFile): number {
  if (!isSparseModel(model)) return model.features.length;
  const { weights } = model;
  if (!Array.isArray(weights)) return weights.dims;
  return model.kind === 'logistic-regression' ? weights.length : (weights as number[][])[0]!.length;
}

/**
 * The sparse-input fields of the model w = params.scale·params.v, b = params.bias (O×D row-major,
 * shared/sparse-rows.ts) for `shape`: `"input": "hashed-csv"` with the hashing record, or
 * `"input": "libsvm"` when hashing is null. Weights in the smaller form (shared/sparse-weights.ts).
 */
export function sparseModelFields(params: SparseParams, shape: ModelShape, hashing: ModelHashing | null): SparseModelFields {
  if (params.bias.length !== shape.outputs) throw new RangeError(`${params.bias.length} biases for ${shape.outputs} outputs`);
  const weights = encodeSparseWeights(params, shape);
  const bias = shape.kind === 'logistic' ? params.bias[0]! : Array.from(params.bias);
  if (hashing === null) return { input: 'libsvm', weights, bias };
  if (2 ** hashing.bits !== shape.features) throw new RangeError(`hashing into 2^${hashing.bits} buckets, but D = ${shape.features}`);
  return { input: 'hashed-csv', hashing: copyHashing(hashing), weights, bias };
}

/** The whole sparse model file: sparseModelFields plus the classes (softmax; null for logistic) and details. */
export function sparseModelFile(
  params: SparseParams,
  shape: ModelShape,
  hashing: ModelHashing | null,
  classes: ClassList | null,
  details: SparseModelDetails,
): SparseModelFile {
  const fields = sparseModelFields(params, shape, hashing);
  const input = fields.input === 'hashed-csv' ? { input: fields.input, hashing: fields.hashing } : { input: fields.input };
  const tail = {
    label: details.label,
    standardization: null,
    trainedOn: details.trainedOn,
    metrics: details.metrics,
    ...(details.earlyStopping === undefined ? {} : { earlyStopping: details.earlyStopping }),
  };
  if (shape.kind === 'logistic') {
    const weights = fields.weights as number[] | SparseWeightsRecord; // O = 1: one row or one value per index
    return { format: 'dpt-model', version: 1, kind: 'logistic-regression', ...input, weights, bias: fields.bias as number, ...tail };
  }
  if (classes === null || classes.values.length !== shape.outputs)
    throw new RangeError(`softmax over ${shape.outputs} classes needs their ${shape.outputs} labels`);
  return {
    format: 'dpt-model',
    version: 1,
    kind: 'softmax-regression',
    ...input,
    classes: [...classes.values] as number[] | string[],
    weights: fields.weights as number[][] | SparseWeightsRecord, // O = K: K rows or K values per index
    bias: fields.bias as number[],
    ...tail,
  };
}

/** A plain copy with the record's fields in a fixed order (the same model, the same bytes). */
function copyHashing(hashing: ModelHashing): ModelHashing {
  return {
    function: hashing.function,
    seed: hashing.seed,
    bits: hashing.bits,
    columns: [...hashing.columns],
    categorical: [...hashing.categorical],
    numeric: [...hashing.numeric],
    crosses: hashing.crosses.map(([a, b]) => [a, b] as const),
    labelColumn: hashing.labelColumn,
  };
}

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
export function modelClasses(model: SoftmaxModelFile | SparseSoftmaxModelFile): ClassList {
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
export function writeModelFile(path: string, model: ModelFile | SparseModelFile, fileSystem: FileSystem = NODE_FS): void {
  writeFileAtomic(path, modelFileText(model), fileSystem);
}

/**
 * The text of a model file. Dense-input files: indented JSON, one number a line, as every release
 * wrote. Sparse-input files keep `weights` on one line (a million weights would be a million lines).
 */
export function modelFileText(model: ModelFile | SparseModelFile): string {
  if (!isSparseModel(model)) return `${JSON.stringify(model, null, 2)}\n`;
  // JSON.stringify(model, null, 2) member by member, but `weights` compact.
  const members = Object.entries(model).map(
    ([key, value]) => `  ${JSON.stringify(key)}: ${key === 'weights' ? JSON.stringify(value) : JSON.stringify(value, null, 2).replaceAll('\n', '\n  ')}`,
  );
  return `{\n${members.join(',\n')}\n}\n`;
}

const COMMON_FIELDS = ['format', 'version', 'kind', 'weights', 'bias', 'features', 'label', 'standardization', 'trainedOn', 'metrics', 'earlyStopping'];
const FIELDS: Record<ModelFile['kind'], ReadonlySet<string>> = {
  'logistic-regression': new Set(COMMON_FIELDS),
  'softmax-regression': new Set([...COMMON_FIELDS, 'classes']),
};
const SPARSE_COMMON_FIELDS = [...COMMON_FIELDS.filter((field) => field !== 'features'), 'input', 'hashing'];
const SPARSE_FIELDS: Record<ModelFile['kind'], ReadonlySet<string>> = {
  'logistic-regression': new Set(SPARSE_COMMON_FIELDS),
  'softmax-regression': new Set([...SPARSE_COMMON_FIELDS, 'classes']),
};

/**
 * Reads and checks a model file of either kind. Throws ModelFileError (DPT_MODEL_FILE, exit 2)
 * naming the path and the first bad field: a wrong type or shape, a non-finite number, fewer
 * than 2 or repeated classes, or a field that neither kind has. `label`, `trainedOn` and
 * `metrics` may be absent (files written by hand), as may `earlyStopping`.
 */
export function readModelFile(path: string): ModelFile | SparseModelFile {
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
  if (m.input !== undefined) return checkSparseModel(m, kind, fail);
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

/** The checks of readModelFile for a model over sparse inputs (`input` is set). */
function checkSparseModel(m: Record<string, unknown>, kind: ModelFile['kind'], fail: Fail): SparseModelFile {
  for (const field of Object.keys(m)) {
    if (!SPARSE_FIELDS[kind].has(field)) fail(field, `is not a field of a sparse-input '${kind}' model file`);
  }
  const input = m.input;
  if (input !== 'hashed-csv' && input !== 'libsvm') return fail('input', "must be 'hashed-csv' or 'libsvm'");
  if (input === 'libsvm' && m.hashing !== undefined) fail('hashing', "is not a field of an 'input': 'libsvm' model file");
  const hashing = input === 'hashed-csv' ? checkHashing(m.hashing, fail) : null;
  if (m.standardization !== null) fail('standardization', 'must be null (sparse inputs are not standardized)');
  if (m.label !== undefined && m.label !== null && typeof m.label !== 'string') fail('label', 'must be a column name or null');
  const object = (field: 'trainedOn' | 'metrics'): Record<string, unknown> => {
    const value = m[field];
    if (value === undefined) return {};
    if (!isObject(value)) return fail(field, 'must be an object');
    return value;
  };
  const common = {
    format: 'dpt-model' as const,
    version: 1 as const,
    kind,
    ...(hashing === null ? { input: 'libsvm' as const } : { input: 'hashed-csv' as const, hashing }),
  };
  const tail = {
    label: typeof m.label === 'string' ? m.label : null,
    standardization: null,
    trainedOn: object('trainedOn'),
    metrics: object('metrics'),
    ...(m.earlyStopping === undefined ? {} : { earlyStopping: checkEarlyStopping(m.earlyStopping, fail) }),
  };
  if (kind === 'logistic-regression') {
    const D = checkSparseWeights(m.weights, 1, fail);
    if (hashing !== null && D !== 2 ** hashing.bits) fail('weights', `must hold 2^${hashing.bits} = ${2 ** hashing.bits} weights (hashing.bits), not ${D}`);
    if (!isFiniteNumber(m.bias)) return fail('bias', 'must be a finite number');
    // checked by checkSparseWeights just above
    return { ...common, kind, weights: m.weights as number[] | SparseWeightsRecord, bias: m.bias, ...tail };
  }
  const classes = checkClasses(m.classes, fail);
  const K = classes.length;
  const D = checkSparseWeights(m.weights, K, fail);
  if (hashing !== null && D !== 2 ** hashing.bits)
    fail('weights', `must hold 2^${hashing.bits} = ${2 ** hashing.bits} weights per class (hashing.bits), not ${D}`);
  const bias = m.bias;
  if (!Array.isArray(bias) || bias.length !== K || !bias.every(isFiniteNumber)) return fail('bias', `must be an array of ${K} finite numbers`);
  // checked by checkSparseWeights and just above
  return { ...common, kind, classes, weights: m.weights as number[][] | SparseWeightsRecord, bias: bias as number[], ...tail };
}

const HASHING_FIELDS = new Set(['function', 'seed', 'bits', 'columns', 'categorical', 'numeric', 'crosses', 'labelColumn']);

/**
 * A hashing record as shared/feature-hashing.ts makes it: murmur3_x86_32, seed 0, 1 to 30 bits,
 * distinct columns split in order into categorical and numeric, crosses of two categorical
 * columns, a label column that is not a feature.
 */
function checkHashing(value: unknown, fail: Fail): ModelHashing {
  if (!isObject(value)) return fail('hashing', "must be an object (an 'input': 'hashed-csv' model file records its hashing)");
  for (const field of Object.keys(value)) {
    if (!HASHING_FIELDS.has(field)) fail(`hashing.${field}`, 'is not a field of the hashing record');
  }
  if (value.function !== 'murmur3_x86_32') fail('hashing.function', "must be 'murmur3_x86_32'");
  if (value.seed !== 0) fail('hashing.seed', 'must be 0');
  const bits = value.bits;
  if (!(Number.isSafeInteger(bits) && (bits as number) >= 1 && (bits as number) <= 30)) fail('hashing.bits', 'must be an integer from 1 to 30');
  const names = (field: 'columns' | 'categorical' | 'numeric'): string[] => {
    const list = value[field];
    if (!Array.isArray(list)) return fail(`hashing.${field}`, 'must be an array of column names');
    list.forEach((name: unknown, i) => {
      if (typeof name !== 'string' || name === '') fail(`hashing.${field}[${i}]`, 'must be a non-empty column name');
    });
    return list as string[]; // checked just above
  };
  const columns = names('columns');
  if (columns.length === 0) fail('hashing.columns', 'must name at least one column');
  const repeated = columns.find((name, i) => columns.indexOf(name) !== i);
  if (repeated !== undefined) fail('hashing.columns', `names column '${repeated}' twice`);
  const categorical = names('categorical');
  const numeric = names('numeric');
  // The entry order of a row follows `columns`: both lists must be it, split in order.
  if (JSON.stringify(categorical) !== JSON.stringify(columns.filter((name) => categorical.includes(name))))
    fail('hashing.categorical', 'must list columns of hashing.columns, in their order');
  if (JSON.stringify(numeric) !== JSON.stringify(columns.filter((name) => !categorical.includes(name))))
    fail('hashing.numeric', 'must list the other columns of hashing.columns, in their order');
  const crosses = value.crosses;
  if (!Array.isArray(crosses)) return fail('hashing.crosses', 'must be an array of [column, column] pairs');
  crosses.forEach((pair: unknown, i) => {
    if (!Array.isArray(pair) || pair.length !== 2 || pair[0] === pair[1] || !pair.every((name) => typeof name === 'string' && categorical.includes(name)))
      fail(`hashing.crosses[${i}]`, 'must be a pair of two categorical columns');
  });
  const labelColumn = value.labelColumn;
  if (typeof labelColumn !== 'string' || labelColumn === '' || columns.includes(labelColumn))
    fail('hashing.labelColumn', 'must be a column name that is not among hashing.columns');
  // checked field by field just above
  return {
    function: 'murmur3_x86_32',
    seed: 0,
    bits: bits as number,
    columns,
    categorical,
    numeric,
    crosses: crosses as [string, string][],
    labelColumn: labelColumn as string,
  };
}

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

// The feature hashing of issue #13: how the cells of one CSV row become sparse (index, value)
// entries in 2^B buckets, fully specified so that anyone can reproduce the features and the model
// file can record it. Exports: FeatureHashing, HashingOptions, MIN_HASH_BITS, MAX_HASH_BITS,
// createFeatureHashing, checkFeatureHashing, createRowHasher, RowHasher.
//
// The spec (README "Sparse and categorical data"). h(s) = murmur3_x86_32(utf8(s), seed 0) mod 2^B.
// For every feature column c in the order of `columns` (the header order of the file the spec was
// made from), then every cross in the order given:
//   categorical c, cell v (trimmed):   bucket h("c=v"), value 1 (an empty cell is the category "")
//   numeric c, cell x:                 bucket h("c"),   value float32(x); x = 0 gives no entry
//   cross a:b, cells v, u (trimmed):   bucket h("a=v^b=u"), value 1 (a and b are categorical)
// Collisions add: the entries of a row with one bucket are summed in float64 in that order, the
// sum rounded to float32; a bucket whose sum is 0 is dropped (a stored entry is never 0). The row's
// entries are then sorted by bucket. Column names are the header's, trimmed.
// Not here: the CSV reading (shared/csv-stream.ts) and the file written (shared/sparse-dataset.ts).

import { parseNumberCell } from './csv-rules.js';
import { ConfigError, DatasetError } from './errors.js';
import { murmur3_x86_32 } from './murmur3.js';

/** --hash-bits bounds: 2^1 to 2^30 buckets (a bucket is a uint32 index, a weight vector a Float64Array). */
export const MIN_HASH_BITS = 1;
export const MAX_HASH_BITS = 30;
/** Distinct values per column (and pairs per cross) whose buckets are remembered: bounds memory on id-like columns. */
const MAX_CACHED_VALUES = 1 << 18;

/** The hashing a sparse file was made with (JSON: the sparse .dpt and the model file record it). */
export interface FeatureHashing {
  readonly function: 'murmur3_x86_32';
  readonly seed: 0;
  /** B: the features are 2^B buckets. */
  readonly bits: number;
  /** Every hashed column, in the order the entries are taken (the converted file's header order). */
  readonly columns: readonly string[];
  /** The columns of `columns` whose cells are categories. */
  readonly categorical: readonly string[];
  /** The columns of `columns` whose cells are numbers (all but the categorical ones). */
  readonly numeric: readonly string[];
  /** Pairs of categorical columns, each hashed as "a=v^b=u". */
  readonly crosses: readonly (readonly [string, string])[];
  /** The label column's name. */
  readonly labelColumn: string;
}

/** The user's choices (flags --hash-bits, --categorical, --cross, --label-column). */
export interface HashingOptions {
  readonly bits: number;
  readonly categorical: readonly string[];
  /** Each "a:b". */
  readonly crosses: readonly string[];
  /** Header name or 0-based index (negative from the end); default: the last column. */
  readonly labelColumn?: string | undefined;
}

/**
 * The spec for a file whose header is `header` (line `line` of `path`): every column but the label
 * is hashed, the `categorical` ones as categories. Throws ConfigError for bad bits or a malformed
 * cross, DatasetError naming file, line and the flag for a column the header lacks.
 */
export function createFeatureHashing(options: HashingOptions, header: readonly string[], path: string, line: number): FeatureHashing {
  const { bits } = options;
  if (!(Number.isInteger(bits) && bits >= MIN_HASH_BITS && bits <= MAX_HASH_BITS)) {
    throw new ConfigError(`--hash-bits must be an integer from ${MIN_HASH_BITS} to ${MAX_HASH_BITS}, got ${bits}`);
  }
  const names = header.map((name) => name.trim());
  const labelIndex = resolveLabel(options.labelColumn, names, path, line);
  const labelColumn = names[labelIndex]!;
  const requireColumn = (name: string, flag: string): void => {
    if (!names.includes(name)) throw new DatasetError(path, line, undefined, `${flag} names column '${name}', which the header does not have`);
    if (name === labelColumn) throw new DatasetError(path, line, labelIndex + 1, `${flag} names column '${name}', the label`);
  };
  const categorical = new Set<string>();
  for (const name of options.categorical) {
    requireColumn(name, '--categorical');
    categorical.add(name);
  }
  const crosses: [string, string][] = [];
  for (const cross of options.crosses) {
    const parts = cross.split(':');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw new ConfigError(`--cross expects two column names as a:b, got '${cross}'`);
    const [a, b] = parts as [string, string];
    if (a === b) throw new ConfigError(`--cross ${cross}: a column crossed with itself adds nothing`);
    for (const name of [a, b]) {
      requireColumn(name, `--cross ${cross}`);
      if (!categorical.has(name))
        throw new ConfigError(`--cross ${cross}: column '${name}' is not categorical (list it in --categorical; only categories cross)`);
    }
    crosses.push([a, b]);
  }
  const columns = names.filter((_, index) => index !== labelIndex);
  if (columns.length === 0) throw new DatasetError(path, line, undefined, 'the file has no feature columns besides the label');
  return {
    function: 'murmur3_x86_32',
    seed: 0,
    bits,
    columns,
    categorical: columns.filter((name) => categorical.has(name)),
    numeric: columns.filter((name) => !categorical.has(name)),
    crosses,
    labelColumn,
  };
}

function resolveLabel(spec: string | undefined, names: readonly string[], path: string, line: number): number {
  if (spec === undefined) return names.length - 1;
  if (names.includes(spec)) return names.indexOf(spec);
  if (/^-?\d+$/.test(spec)) {
    const index = Number(spec) < 0 ? names.length + Number(spec) : Number(spec);
    if (index >= 0 && index < names.length) return index;
    throw new DatasetError(path, line, undefined, `label column index ${spec} is outside the ${names.length} columns`);
  }
  throw new DatasetError(path, line, undefined, `no column named '${spec}' for the label`);
}

/** `value` as a FeatureHashing (read from a file), or the problem as a sentence. */
export function checkFeatureHashing(value: unknown): FeatureHashing | string {
  if (typeof value !== 'object' || value === null) return 'expected a feature hashing object';
  const spec = value as Record<string, unknown>;
  if (spec.function !== 'murmur3_x86_32') return `function: expected 'murmur3_x86_32', found ${JSON.stringify(spec.function)}`;
  if (spec.seed !== 0) return `seed: expected 0, found ${JSON.stringify(spec.seed)}`;
  const bits = spec.bits;
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < MIN_HASH_BITS || bits > MAX_HASH_BITS) {
    return `bits: expected an integer from ${MIN_HASH_BITS} to ${MAX_HASH_BITS}, found ${JSON.stringify(bits)}`;
  }
  const isNames = (list: unknown): list is string[] => Array.isArray(list) && list.every((name) => typeof name === 'string' && name !== '');
  if (!isNames(spec.columns) || spec.columns.length === 0) return 'columns: expected a non-empty list of column names';
  if (new Set(spec.columns).size !== spec.columns.length) return 'columns: a column is named twice';
  if (typeof spec.labelColumn !== 'string' || spec.columns.includes(spec.labelColumn)) return 'labelColumn: expected a column name not among the features';
  const columns = spec.columns;
  if (!isNames(spec.categorical) || !isNames(spec.numeric)) return 'categorical, numeric: expected lists of column names';
  const categorical = new Set(spec.categorical);
  // Both lists are `columns` split in order: the reproducible order of entries depends on it.
  if (
    JSON.stringify(spec.categorical) !== JSON.stringify(columns.filter((name) => categorical.has(name))) ||
    JSON.stringify(spec.numeric) !== JSON.stringify(columns.filter((name) => !categorical.has(name)))
  ) {
    return 'categorical, numeric: expected the columns split into categorical and numeric, in column order';
  }
  if (!Array.isArray(spec.crosses)) return 'crosses: expected a list of [a, b] pairs';
  for (const cross of spec.crosses as unknown[]) {
    if (!Array.isArray(cross) || cross.length !== 2 || !cross.every((name) => typeof name === 'string' && categorical.has(name)) || cross[0] === cross[1]) {
      return `crosses: ${JSON.stringify(cross)} is not a pair of two categorical columns`;
    }
  }
  return {
    function: 'murmur3_x86_32',
    seed: 0,
    bits,
    columns,
    categorical: spec.categorical,
    numeric: spec.numeric,
    crosses: (spec.crosses as [string, string][]).map(([a, b]) => [a, b] as const),
    labelColumn: spec.labelColumn,
  };
}

/** Turns the cells of one CSV record into its sorted sparse entries (see the file header). */
export interface RowHasher {
  readonly spec: FeatureHashing;
  /** 0-based column of the label in the header, or −1 when the header has none (prediction input). */
  readonly labelIndex: number;
  /** The last row's entries: buckets increasing, values non-zero float32. Reused by the next call: copy what you keep. */
  readonly indices: Uint32Array;
  readonly values: Float32Array;
  /**
   * Hashes the record `fields` (line `line` of the file) into indices/values and returns how many
   * entries it has. A wrong column count or a numeric cell that is not a number is a DatasetError
   * naming file, line and column.
   */
  hashRow(fields: readonly string[], line: number): number;
}

/** One hashed column as the hasher applies it. */
interface HashedColumn {
  readonly name: string;
  /** 0-based index in the header. */
  readonly index: number;
  readonly isCategorical: boolean;
  /** utf8("name=") for a categorical column, utf8("name") for a numeric one. */
  readonly prefix: Buffer;
  /** Numeric: h("name"); categorical: unused. */
  readonly bucket: number;
  /** Categorical: value → id (the first MAX_CACHED_VALUES values), and each id's bucket. */
  readonly ids: Map<string, number>;
  readonly buckets: number[];
}

/**
 * The hasher of `spec` for records whose header is `header` (line `headerLine` of `path`, for
 * messages). Columns are found by name, in any order; every column of the spec must be there
 * (DatasetError otherwise), the label may be absent.
 */
export function createRowHasher(spec: FeatureHashing, header: readonly string[], path = 'the input', headerLine = 1): RowHasher {
  const names = header.map((name) => name.trim());
  const mask = 2 ** spec.bits - 1;
  const categorical = new Set(spec.categorical);
  const columns: HashedColumn[] = spec.columns.map((name) => {
    const index = names.indexOf(name);
    if (index < 0) throw new DatasetError(path, headerLine, undefined, `the hashed column '${name}' is missing from the header`);
    const isCategorical = categorical.has(name);
    const prefix = Buffer.from(isCategorical ? `${name}=` : name, 'utf8');
    return { name, index, isCategorical, prefix, bucket: murmur3_x86_32(prefix, 0) & mask, ids: new Map(), buckets: [] };
  });
  const columnOf = new Map(columns.map((column) => [column.name, column]));
  if (!spec.crosses.every(([a, b]) => columnOf.get(a)?.isCategorical === true && columnOf.get(b)?.isCategorical === true)) {
    throw new ConfigError('a cross of the feature hashing names a column that is not categorical');
  }
  const crosses = spec.crosses.map(([a, b]) => ({
    a: columnOf.get(a)!, // checkFeatureHashing: both are categorical columns of the spec
    /** Positions of a and b in `columns`. */
    at: columns.indexOf(columnOf.get(a)!),
    bt: columns.indexOf(columnOf.get(b)!),
    /** utf8("^b="), between the two "column=value" parts. */
    middle: Buffer.from(`^${b}=`, 'utf8'),
    cache: new Map<number, number>(),
  }));
  const entries = columns.length + crosses.length;
  const indices = new Uint32Array(entries);
  const values = new Float32Array(entries);
  const buckets = new Uint32Array(entries);
  const sums = new Float64Array(entries);
  /** Each categorical column's value id in this row (−1: not cached), and the trimmed value. */
  const rowIds = new Int32Array(columns.length);
  const rowValues: string[] = new Array<string>(columns.length).fill('');
  let scratch = Buffer.alloc(256);
  const labelIndex = names.indexOf(spec.labelColumn);

  /** Writes `parts` into the scratch buffer as UTF-8 and returns the byte length. */
  const writeKey = (first: Buffer, value: string, middle: Buffer | null, second: string): number => {
    const most = first.length + 3 * value.length + (middle === null ? 0 : middle.length + 3 * second.length);
    if (most > scratch.length) scratch = Buffer.alloc(Math.max(most, 2 * scratch.length));
    let at = first.copy(scratch, 0);
    at += scratch.write(value, at, 'utf8');
    if (middle !== null) {
      at += middle.copy(scratch, at);
      at += scratch.write(second, at, 'utf8');
    }
    return at;
  };

  const hashRow = (fields: readonly string[], line: number): number => {
    if (fields.length !== names.length) {
      throw new DatasetError(
        path,
        line,
        Math.min(fields.length, names.length) + 1,
        `expected ${names.length} columns as in the header, found ${fields.length}`,
      );
    }
    let m = 0;
    for (let c = 0; c < columns.length; c++) {
      const column = columns[c]!;
      const cell = fields[column.index]!;
      if (!column.isCategorical) {
        const x = Math.fround(parseNumberCell(path, line, column.index, column.name, cell));
        if (x === 0) continue;
        buckets[m] = column.bucket;
        sums[m++] = x;
        continue;
      }
      const value = cell.trim();
      rowValues[c] = value;
      let id = column.ids.get(value);
      let bucket: number;
      if (id !== undefined) bucket = column.buckets[id]!;
      else {
        bucket = murmur3_x86_32(scratch, 0, writeKey(column.prefix, value, null, '')) & mask;
        if (column.buckets.length < MAX_CACHED_VALUES) {
          id = column.buckets.length;
          column.ids.set(value, id);
          column.buckets.push(bucket);
        }
      }
      rowIds[c] = id ?? -1;
      buckets[m] = bucket;
      sums[m++] = 1;
    }
    for (const cross of crosses) {
      const a = cross.at;
      const b = cross.bt;
      const idA = rowIds[a]!;
      const idB = rowIds[b]!;
      const key = idA >= 0 && idB >= 0 ? idA * MAX_CACHED_VALUES + idB : -1;
      let bucket = key >= 0 ? cross.cache.get(key) : undefined;
      if (bucket === undefined) {
        bucket = murmur3_x86_32(scratch, 0, writeKey(cross.a.prefix, rowValues[a]!, cross.middle, rowValues[b]!)) & mask;
        if (key >= 0 && cross.cache.size < MAX_CACHED_VALUES) cross.cache.set(key, bucket);
      }
      buckets[m] = bucket;
      sums[m++] = 1;
    }
    // Insertion sort by bucket, stable: equal buckets keep the spec's order for the sum below.
    for (let i = 1; i < m; i++) {
      const bucket = buckets[i]!;
      const value = sums[i]!;
      let k = i - 1;
      while (k >= 0 && buckets[k]! > bucket) {
        buckets[k + 1] = buckets[k]!;
        sums[k + 1] = sums[k]!;
        k--;
      }
      buckets[k + 1] = bucket;
      sums[k + 1] = value;
    }
    let count = 0;
    for (let i = 0; i < m; ) {
      const bucket = buckets[i]!;
      let sum = 0;
      for (; i < m && buckets[i] === bucket; i++) sum += sums[i]!;
      const value = Math.fround(sum);
      if (value === 0) continue; // collisions that cancel: no entry (a stored entry is never 0)
      if (!Number.isFinite(value))
        throw new DatasetError(path, line, undefined, `the cells hashed to bucket ${bucket} sum to ${sum}, outside the float32 range`);
      indices[count] = bucket;
      values[count++] = value;
    }
    return count;
  };
  return { spec, labelIndex, indices, values, hashRow };
}

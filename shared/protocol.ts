// The wire protocol between coordinator and workers: every message declared once, encoded with
// msgpackr (typed arrays travel as raw bytes), and checked at the boundary before it touches
// state (DESIGN.md invariant 5). One decode function per direction; nothing is ever cast.

import { Packr } from 'msgpackr';
import { ProtocolError } from './errors.js';
import type { ModelKind } from './model-shape.js';
import { MAX_PASS_BLOCKS, passWidth } from './passes.js';
import type { ScheduleSpec } from './schedule.js';

/**
 * 2: parts name subtrees of the reduction tree, a step carries the whole assignment table (issue #11).
 * 3: relays (issue #11 item 3): ready may carry a capacity, a capacity message, a part its workers count.
 * 4: models (issue #12): the welcome names the model and its classes; steps and passes carry the
 *    flat parameter vector θ (shared/model-shape.ts) instead of w and b; parts are as wide as θ + 1.
 * 5: sparse data (issue #13): the welcome may name a sparse run; its parts carry the touched
 *    coordinates only, its parameters travel as params messages (full once, then deltas) to a
 *    replica the worker keeps, and its steps and passes name the replica's version instead of θ.
 *    Dense runs send the same messages as version 4.
 */
export const PROTOCOL_VERSION = 5;

/** WebSocket close codes dpt uses. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_POLICY = 1008; // failed authentication, bad message, timed out

// ---- worker → coordinator ----

export interface HelloMessage {
  readonly kind: 'hello';
  readonly protocol: number;
  readonly token: string;
  /** process.version of the worker: reproducible bits need the same Math.exp everywhere. */
  readonly node: string;
  /** Comma-separated ids of the gradient kernels this worker can run (shared/kernel.ts). */
  readonly kernel: string;
  /**
   * The CPUs the worker may run on, as a kernel CPU list ("1", "0-3"), or '' when unknown (also
   * when absent). Only a hint: the coordinator sends steps to workers on other CPUs than its own first.
   */
  readonly cpus: string;
  /**
   * The worker's host name (a container's name), for the coordinator's log only: at most
   * MAX_WORKER_NAME characters of [A-Za-z0-9._-] (workerName makes one). Optional, so a protocol 4
   * peer that sends none is still understood; it never identifies a worker (its id does).
   */
  readonly name?: string;
}

/** The worker opened the dataset the welcome named and reports what it found. */
export interface ReadyMessage {
  readonly kind: 'ready';
  readonly rows: number;
  readonly features: number;
  /** The .dpt identity of the worker's data (not a hash of the file: see `WelcomeMessage.sha256`). */
  readonly sha256: string;
  /**
   * Relays only (relay/): the workers ready behind this connection, its weight in the assignment
   * (a relay with 16 workers gets about 16 workers' share). Absent: a worker, capacity 1.
   */
  readonly capacity?: number;
  /**
   * Which code runs the worker's dense kernel (KERNEL_IMPLEMENTATION: 'native avx512f', 'wasm' …),
   * for the coordinator's log and /status only: the kernel id of the handshake decides the bits,
   * and every implementation of an id gives the same ones. Absent from relays, sparse runs and
   * protocol 5 peers before it.
   */
  readonly kernel?: string;
}

/** A relay's group changed: `workers` are ready behind it now (0: assign it nothing new). */
export interface CapacityMessage {
  readonly kind: 'capacity';
  readonly workers: number;
}

/**
 * Gradient parts for the chunk ranges a step assigned, one per maximal aligned subtree of the
 * reduction tree (shared/reduce.ts) inside those ranges. `subtrees` holds (level, index) pairs in
 * chunk order, never overlapping; `sums` one part per subtree, in that order: the gradient sums
 * in θ's layout then the loss sum (the shape's partWidth float64: for logistic regression
 * [Σ(a−y)·x_1 … Σ(a−y)·x_D, Σ(a−y), ΣL]) reduced along the tree; `rows` the rows each covered.
 */
export interface PartMessage {
  readonly kind: 'part';
  readonly step: number;
  readonly subtrees: Uint32Array;
  readonly sums: Float64Array;
  readonly rows: Uint32Array;
  /** Relays only: the workers of its group whose parts went into this one (the step event's count). Absent: 1. */
  readonly workers?: number;
  /**
   * Sparse runs only (issue #13), where `sums` holds O + 1 values per subtree (the O bias sums, then
   * the loss sum) and the weight sums travel here: `sparse.counts[k]` touched coordinates for
   * subtree k, their indices (strictly increasing within a subtree, below D) concatenated in
   * `sparse.indices`, and O gradient sums per index (output o of index i at i·O + o) in `sparse.values`.
   */
  readonly sparse?: SparsePartFields;
}

/** The touched coordinates of a sparse part's subtrees (PartMessage.sparse). */
export interface SparsePartFields {
  readonly counts: Uint32Array;
  readonly indices: Uint32Array;
  readonly values: Float64Array;
}

/** The worker is leaving on purpose (SIGTERM): it has answered everything it will answer. */
export interface LeaveMessage {
  readonly kind: 'leave';
  readonly reason: string;
}

/**
 * The worker cannot serve this run (e.g. its data file differs); it is about to close. When its
 * data failed a check (a .dpt content block's CRC-32, a non-finite feature, a label not 0 or 1),
 * `dataBlock` names that block: the coordinator checks the same block of its own copy, and stops
 * the run (the data is bad) or refuses only this worker (its copy is bad). Absent otherwise.
 */
export interface FailMessage {
  readonly kind: 'fail';
  readonly message: string;
  readonly dataBlock?: number;
}

/**
 * Results of a pass over fixed blocks of rows, in the order of `blocks`; `sums` holds
 * passWidth(purpose, D) float64 per block (see shared/passes.ts), `rows` the rows of each block.
 */
export interface PassPartMessage {
  readonly kind: 'passPart';
  readonly job: number;
  readonly blocks: Uint32Array;
  readonly sums: Float64Array;
  readonly rows: Uint32Array;
}

export type WorkerToCoordinator = HelloMessage | ReadyMessage | CapacityMessage | PartMessage | PassPartMessage | LeaveMessage | FailMessage;

// ---- coordinator → worker ----

export interface WelcomeMessage {
  readonly kind: 'welcome';
  readonly protocol: number;
  readonly workerId: number;
  /** Absolute path of the data file on the coordinator's host; a worker may override it locally (--data). */
  readonly dataPath: string;
  /**
   * Where a worker that cannot open `dataPath` fetches the .dpt file by HTTP Range (the
   * coordinator's GET /data): a URL, or a path resolved against the URL the worker connected
   * to; null when the coordinator does not serve its data. Absent (an older coordinator): null.
   */
  readonly dataUrl: string | null;
  readonly labelColumn: string | null;
  readonly rows: number;
  readonly features: number;
  /**
   * The data's .dpt identity (shared/data-file.ts): SHA-256 of header, names and content CRC table,
   * not of the file's bytes (the name predates that); a worker's blocks are checked against that
   * table as it reads them, so equal identities mean equal content.
   */
  readonly sha256: string;
  readonly schedule: ScheduleSpec;
  /** The gradient kernel every worker of the run uses: equal kernels give equal bits. */
  readonly kernel: string;
  /** The reduction every part follows (shared/reduce.ts REDUCTION_ID): a worker that does not know it refuses the run. */
  readonly reduction: string;
  readonly standardization: { readonly mean: Float64Array; readonly std: Float64Array } | null;
  /** The model (shared/model-shape.ts): with `classes` and `features` it fixes θ's layout and a part's width. */
  readonly model: ModelKind;
  /** Classes of the run (2 for logistic); a softmax's labels are class indices below it. */
  readonly classes: number;
  /**
   * --class-weight balanced (issue #12): c_k for each of the `classes` classes (finite, ≥ 0), by
   * which the kernels weigh a row of class k's gradient and loss; null for an unweighted run.
   */
  readonly classWeights: Float64Array | null;
  /**
   * A sparse run (issue #13), or null (absent: a dense run). Rows are the sparse .dpt the flags
   * make of the data (a LIBSVM file, a sparse .dpt, or a CSV hashed with `hashing`); parameters
   * come as params messages, steps and passes name their version.
   */
  readonly sparse?: SparseRunSpec | null;
}

/** How the workers of a sparse run turn the data file into sparse rows: the coordinator's flags. */
export interface SparseRunSpec {
  /** --format libsvm given (else the file's extension decides). */
  readonly format: 'libsvm' | null;
  /** --hash-bits B for a CSV, or null. */
  readonly hashBits: number | null;
  /** --categorical columns, in the order given. */
  readonly categorical: readonly string[];
  /** --cross pairs "a:b", in the order given. */
  readonly crosses: readonly string[];
}

/**
 * Parameters of a sparse run for the worker's replica (issue #13): w = scale·v (v O×D, row-major),
 * bias O values. `base` −1 resets v to zeros first (a worker joining, reconnecting, or a
 * renormalised scale); any other base must be the replica's version, or the worker fails loudly
 * (it never computes with other parameters than the coordinator's). Then v[o·D + indices[k]] =
 * values[k·O + o] for each listed coordinate, scale and bias are set, and the replica is at
 * `version`. A full vector may come as several messages: the first with base −1, the next with
 * base = version = the same version.
 */
export interface ParamsMessage {
  readonly kind: 'params';
  readonly base: number;
  readonly version: number;
  readonly scale: number;
  readonly bias: Float64Array;
  readonly indices: Uint32Array;
  readonly values: Float64Array;
}

/**
 * Compute step `step` with parameters θ (the welcome's model shape). `assign` is the step's assignment
 * table, (workerId, first chunk, end chunk) triples ordered by first chunk and never
 * overlapping: each worker computes the ranges with its id. One message for every worker, so θ
 * is encoded once per step (DESIGN.md invariant 4); only workers named in it receive it.
 */
export interface StepMessage {
  readonly kind: 'step';
  readonly step: number;
  readonly assign: Uint32Array;
  /** θ in full; empty in a sparse run, whose parameters are the replica at `version`. */
  readonly theta: Float64Array;
  /** Sparse runs only: the params version the step must be computed with. */
  readonly version?: number;
}

export interface StopMessage {
  readonly kind: 'stop';
  readonly reason: string;
}

export type PassPurpose = 'stats' | 'eval';
export type RowSet = 'train' | 'validation';

/**
 * A pass over the blocks of a row set that is not a training step: feature statistics of the
 * raw rows (stats) or loss and accuracy with parameters θ (eval). Blocks are fixed by the schedule
 * (shared/passes.ts), so the merged result does not depend on the workers.
 */
export interface PassMessage {
  readonly kind: 'pass';
  readonly job: number;
  readonly purpose: PassPurpose;
  readonly set: RowSet;
  readonly blocks: Uint32Array;
  /** θ in full; empty in a sparse run, whose parameters are the replica at `version`. */
  readonly theta: Float64Array;
  /** Sparse runs only: the params version the pass must be computed with. */
  readonly version?: number;
}

/** The standardization every worker applies to its rows from now on. */
export interface StandardizeMessage {
  readonly kind: 'standardize';
  readonly mean: Float64Array;
  readonly std: Float64Array;
}

export type CoordinatorToWorker = WelcomeMessage | ParamsMessage | StepMessage | PassMessage | StandardizeMessage | StopMessage;

/** Exhaustiveness check for a switch on a message kind: a new kind breaks the build. */
export function unhandledKind(message: never): never {
  throw new Error(`unhandled message kind ${JSON.stringify(message)}`);
}

// ---- codec ----

const packr = new Packr({ moreTypes: true, useRecords: false });

export function encodeMessage(message: WorkerToCoordinator | CoordinatorToWorker): Buffer {
  return packr.pack(message);
}

/** What the receiver knows that types cannot say: the model's dimensions and the chunk bound. */
export interface Limits {
  /** D, or null before the worker has been welcomed. */
  readonly features: number | null;
  /** Length of θ (the model shape's parameterCount), or null before the welcome; a part is one wider. */
  readonly parameters: number | null;
  readonly maxChunks: number;
  /** A sparse run (issue #13): parts carry touched coordinates, steps and passes a version instead of θ. Absent: dense. */
  readonly sparse?: boolean;
}

type Fields = Record<string, unknown>;

function unpackObject(bytes: Uint8Array): Fields {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (error) {
    throw new ProtocolError('?', 'bytes', `not a valid msgpack message (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new ProtocolError('?', 'bytes', 'not a msgpack map');
  }
  return value as Fields; // a plain object from msgpack: every field is checked below
}

function kindOf(fields: Fields): string {
  const kind = fields.kind;
  if (typeof kind !== 'string') throw new ProtocolError('?', 'kind', 'missing or not a string');
  return kind;
}

function integer(kind: string, fields: Fields, name: string, min: number, max: number): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ProtocolError(kind, name, `expected an integer in [${min}, ${max}], got ${describe(value)}`);
  }
  return value;
}

function finite(kind: string, fields: Fields, name: string): number {
  const value = fields[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ProtocolError(kind, name, `expected a finite number, got ${describe(value)}`);
  return value;
}

function string(kind: string, fields: Fields, name: string, maxLength: number): string {
  const value = fields[name];
  if (typeof value !== 'string' || value.length > maxLength) throw new ProtocolError(kind, name, `expected a string of at most ${maxLength} characters`);
  return value;
}

/** A worker's name (HelloMessage.name): it is printed in the log, so nothing but a host name's characters may pass. */
function hostName(kind: string, fields: Fields, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || !WORKER_NAME.test(value))
    throw new ProtocolError(kind, name, `expected 1 to ${MAX_WORKER_NAME} characters of A-Z a-z 0-9 . _ -`);
  return value;
}

function kernelImplementation(fields: Fields): string {
  const value = fields.kernel;
  if (typeof value !== 'string' || value.length > MAX_KERNEL_IMPLEMENTATION || !KERNEL_IMPLEMENTATION.test(value)) {
    throw new ProtocolError('ready', 'kernel', `expected 1 to ${MAX_KERNEL_IMPLEMENTATION} characters of a-z 0-9 . _ - in words separated by one space`);
  }
  return value;
}

/** A .dpt identity: 64 lower-case hex digits (a worker names its cache file after it, so nothing else may pass). */
function identity(kind: string, fields: Fields, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw new ProtocolError(kind, name, 'expected 64 lower-case hex digits');
  return value;
}

function float64s(kind: string, fields: Fields, name: string, length: number): Float64Array {
  const value = fields[name];
  if (!(value instanceof Float64Array)) throw new ProtocolError(kind, name, `expected a Float64Array, got ${describe(value)}`);
  if (value.length !== length) throw new ProtocolError(kind, name, `expected ${length} values, got ${value.length}`);
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i]!)) throw new ProtocolError(kind, name, `value ${i} is not finite (${value[i]})`, true);
  }
  return value;
}

function uint32s(kind: string, fields: Fields, name: string, minLength: number, maxLength: number): Uint32Array {
  const value = fields[name];
  if (!(value instanceof Uint32Array)) throw new ProtocolError(kind, name, `expected a Uint32Array, got ${describe(value)}`);
  if (value.length < minLength || value.length > maxLength)
    throw new ProtocolError(kind, name, `expected ${minLength} to ${maxLength} values, got ${value.length}`);
  return value;
}

/**
 * Unit ids (chunks of a step, blocks of a pass): strictly increasing, so a unit appears at most
 * once. A repeated unit would be counted twice (DESIGN.md invariant 3); every sender lists the
 * units in the ascending order they were assigned.
 */
function unitIds(kind: string, fields: Fields, name: string, maxLength: number): Uint32Array {
  const value = uint32s(kind, fields, name, 1, maxLength);
  for (let i = 1; i < value.length; i++) {
    if (value[i]! <= value[i - 1]!) throw new ProtocolError(kind, name, `units must be strictly increasing: ${value[i - 1]} then ${value[i]} at index ${i}`);
  }
  return value;
}

/**
 * Subtrees of the reduction tree as (level, index) pairs: at least one, levels at most
 * log2(maxChunks) rounded up, each starting below maxChunks, in chunk order and never
 * overlapping (an overlap would count chunks twice: DESIGN.md invariant 3).
 */
function subtreeIds(kind: string, fields: Fields, name: string, maxChunks: number): Uint32Array {
  const value = uint32s(kind, fields, name, 2, 2 * maxChunks);
  if (value.length % 2 !== 0) throw new ProtocolError(kind, name, `expected (level, index) pairs, got ${value.length} values`);
  let maxLevel = 0;
  while (2 ** maxLevel < maxChunks) maxLevel++;
  let end = 0;
  for (let i = 0; i < value.length; i += 2) {
    const level = value[i]!;
    const index = value[i + 1]!;
    if (level > maxLevel) throw new ProtocolError(kind, name, `subtree ${i / 2}: level ${level} is above the tree's ${maxLevel}`);
    const start = index * 2 ** level;
    if (start >= maxChunks) throw new ProtocolError(kind, name, `subtree ${i / 2}: (${level}, ${index}) starts at chunk ${start}, beyond ${maxChunks} chunks`);
    if (i > 0 && start < end) throw new ProtocolError(kind, name, `subtree ${i / 2}: (${level}, ${index}) overlaps or precedes the one before it`);
    end = start + 2 ** level;
  }
  return value;
}

/** An assignment table: (workerId, first, end) triples, first < end ≤ maxChunks, ordered by first, never overlapping. */
function assignTable(kind: string, fields: Fields, name: string, maxChunks: number): Uint32Array {
  const value = uint32s(kind, fields, name, 3, 3 * maxChunks);
  if (value.length % 3 !== 0) throw new ProtocolError(kind, name, `expected (worker, first, end) triples, got ${value.length} values`);
  let end = 0;
  for (let i = 0; i < value.length; i += 3) {
    const first = value[i + 1]!;
    const last = value[i + 2]!;
    if (!(first < last && last <= maxChunks))
      throw new ProtocolError(kind, name, `entry ${i / 3}: chunks [${first}, ${last}) are not a range within ${maxChunks} chunks`);
    if (first < end) throw new ProtocolError(kind, name, `entry ${i / 3}: chunks [${first}, ${last}) overlap or precede the entry before it`);
    end = last;
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'number' ? String(value) : typeof value;
}

const MAX_TOKEN = 1024;
/** Characters of a worker's name at most: a DNS label is 63, a container's name rarely longer. */
export const MAX_WORKER_NAME = 64;
const WORKER_NAME = new RegExp(`^[A-Za-z0-9._-]{1,${MAX_WORKER_NAME}}$`);
/** A ready message's kernel: 1 to 32 characters of a-z 0-9 . _ - and single spaces between words. */
export const KERNEL_IMPLEMENTATION = /^[a-z0-9._-]+( [a-z0-9._-]+)*$/;
const MAX_KERNEL_IMPLEMENTATION = 32;

/**
 * The name a worker gives itself from its host name (os.hostname()): characters outside
 * [A-Za-z0-9._-] become '-', cut to MAX_WORKER_NAME; undefined when nothing is left.
 */
export function workerName(host: string): string | undefined {
  const name = host.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, MAX_WORKER_NAME);
  return name === '' ? undefined : name;
}
const MAX_TEXT = 4096;
const MAX_STEP = Number.MAX_SAFE_INTEGER;
const MAX_ROWS = 2 ** 32 - 1;
const MAX_FEATURES = 1 << 24;
/** Classes of a model at most: a .dpt label is a uint16 class index. */
const MAX_CLASSES = 65_535;
/** Workers behind one relay, at most: far above any cluster dpt is built for, and an exact integer. */
const MAX_CAPACITY = 1 << 24;

function needFeatures(kind: string, limits: Limits): number {
  if (limits.features === null) throw new ProtocolError(kind, 'kind', 'not allowed before the handshake');
  return limits.features;
}

function needParameters(kind: string, limits: Limits): number {
  if (limits.parameters === null) throw new ProtocolError(kind, 'kind', 'not allowed before the handshake');
  return limits.parameters;
}

// One check per kind, in a table typed so that a kind without a check does not compile.
const workerChecks: { [K in WorkerToCoordinator['kind']]: (fields: Fields, limits: Limits) => Extract<WorkerToCoordinator, { kind: K }> } = {
  hello: (f) => ({
    kind: 'hello',
    protocol: integer('hello', f, 'protocol', 0, 65_535),
    token: string('hello', f, 'token', MAX_TOKEN),
    node: string('hello', f, 'node', 64),
    kernel: string('hello', f, 'kernel', 256),
    cpus: f.cpus === undefined ? '' : string('hello', f, 'cpus', MAX_TEXT),
    ...(f.name === undefined ? {} : { name: hostName('hello', f, 'name') }),
  }),
  ready: (f) => ({
    kind: 'ready',
    rows: integer('ready', f, 'rows', 0, MAX_ROWS),
    features: integer('ready', f, 'features', 0, MAX_FEATURES),
    sha256: string('ready', f, 'sha256', 64),
    ...(f.capacity === undefined ? {} : { capacity: integer('ready', f, 'capacity', 0, MAX_CAPACITY) }),
    ...(f.kernel === undefined ? {} : { kernel: kernelImplementation(f) }),
  }),
  capacity: (f) => ({ kind: 'capacity', workers: integer('capacity', f, 'workers', 0, MAX_CAPACITY) }),
  part: (f, limits) => {
    const parameters = needParameters('part', limits);
    const subtrees = subtreeIds('part', f, 'subtrees', limits.maxChunks);
    const count = subtrees.length / 2;
    if (limits.sparse === true) {
      const D = needFeatures('part', limits);
      const outputs = parameters / (D + 1);
      return {
        kind: 'part',
        step: integer('part', f, 'step', 0, MAX_STEP),
        subtrees,
        sums: float64s('part', f, 'sums', count * (outputs + 1)),
        rows: uint32s('part', f, 'rows', count, count),
        ...(f.workers === undefined ? {} : { workers: integer('part', f, 'workers', 1, MAX_CAPACITY) }),
        sparse: sparsePartFields(f, count, D, outputs),
      };
    }
    if (f.sparse !== undefined) throw new ProtocolError('part', 'sparse', 'touched coordinates in a part of a dense run');
    return {
      kind: 'part',
      step: integer('part', f, 'step', 0, MAX_STEP),
      subtrees,
      sums: float64s('part', f, 'sums', count * (parameters + 1)),
      rows: uint32s('part', f, 'rows', count, count),
      ...(f.workers === undefined ? {} : { workers: integer('part', f, 'workers', 1, MAX_CAPACITY) }),
    };
  },
  passPart: (f, limits) => {
    const D = needFeatures('passPart', limits);
    const blocks = unitIds('passPart', f, 'blocks', MAX_PASS_BLOCKS);
    const width = Math.max(passWidth('stats', D), passWidth('eval', D));
    const sums = f.sums;
    if (!(sums instanceof Float64Array) || (sums.length !== blocks.length * passWidth('stats', D) && sums.length !== blocks.length * passWidth('eval', D))) {
      throw new ProtocolError('passPart', 'sums', `expected a Float64Array of ${blocks.length} × a pass width (at most ${width})`);
    }
    return {
      kind: 'passPart',
      job: integer('passPart', f, 'job', 0, MAX_STEP),
      blocks,
      sums: float64s('passPart', f, 'sums', sums.length),
      rows: uint32s('passPart', f, 'rows', blocks.length, blocks.length),
    };
  },
  leave: (f) => ({ kind: 'leave', reason: string('leave', f, 'reason', MAX_TEXT) }),
  fail: (f) => ({
    kind: 'fail',
    message: string('fail', f, 'message', MAX_TEXT),
    ...(f.dataBlock === undefined ? {} : { dataBlock: integer('fail', f, 'dataBlock', 0, MAX_STEP) }),
  }),
};

const coordinatorChecks: { [K in CoordinatorToWorker['kind']]: (fields: Fields, limits: Limits) => Extract<CoordinatorToWorker, { kind: K }> } = {
  welcome: (f) => {
    const features = integer('welcome', f, 'features', 1, MAX_FEATURES);
    const schedule = f.schedule;
    if (typeof schedule !== 'object' || schedule === null) throw new ProtocolError('welcome', 'schedule', 'expected a map');
    const s = schedule as Fields; // checked field by field just below
    const standardization = f.standardization;
    let stats: WelcomeMessage['standardization'] = null;
    if (standardization !== null) {
      if (typeof standardization !== 'object' || standardization === undefined) throw new ProtocolError('welcome', 'standardization', 'expected a map or null');
      const st = standardization as Fields; // checked field by field just below
      stats = { mean: float64s('welcome', st, 'mean', features), std: float64s('welcome', st, 'std', features) };
    }
    const labelColumn = f.labelColumn === null ? null : string('welcome', f, 'labelColumn', MAX_TEXT);
    const model = f.model;
    if (model !== 'logistic' && model !== 'softmax') throw new ProtocolError('welcome', 'model', "expected 'logistic' or 'softmax'");
    const classes = integer('welcome', f, 'classes', 2, MAX_CLASSES);
    if (model === 'logistic' && classes !== 2) throw new ProtocolError('welcome', 'classes', 'expected 2 for a logistic model');
    let classWeights: Float64Array | null = null;
    if (f.classWeights !== undefined && f.classWeights !== null) {
      classWeights = float64s('welcome', f, 'classWeights', classes);
      if (classWeights.some((c) => c < 0)) throw new ProtocolError('welcome', 'classWeights', 'expected weights ≥ 0');
    }
    const valFraction = finite('welcome', s, 'valFraction');
    if (valFraction < 0 || valFraction >= 1) throw new ProtocolError('welcome', 'schedule.valFraction', 'expected a fraction in [0, 1)');
    if (typeof s.shuffle !== 'boolean') throw new ProtocolError('welcome', 'schedule.shuffle', 'expected a boolean');
    const sparse = f.sparse === undefined || f.sparse === null ? null : sparseRunSpec(f.sparse);
    return {
      kind: 'welcome',
      protocol: integer('welcome', f, 'protocol', 0, 65_535),
      workerId: integer('welcome', f, 'workerId', 0, MAX_STEP),
      dataPath: string('welcome', f, 'dataPath', MAX_TEXT),
      dataUrl: f.dataUrl === undefined || f.dataUrl === null ? null : string('welcome', f, 'dataUrl', MAX_TEXT),
      labelColumn,
      rows: integer('welcome', f, 'rows', 1, MAX_ROWS),
      features,
      sha256: identity('welcome', f, 'sha256'),
      schedule: {
        rows: integer('welcome', s, 'rows', 1, MAX_ROWS),
        valFraction,
        seed: integer('welcome', s, 'seed', -(2 ** 31), 2 ** 32 - 1),
        shuffle: s.shuffle,
        shuffleBlockRows: integer('welcome', s, 'shuffleBlockRows', 0, MAX_ROWS),
        batchSize: integer('welcome', s, 'batchSize', 1, MAX_ROWS),
        chunksPerBatch: integer('welcome', s, 'chunksPerBatch', 1, 65_536),
      },
      kernel: string('welcome', f, 'kernel', 64),
      reduction: string('welcome', f, 'reduction', 64),
      standardization: stats,
      model,
      classes,
      classWeights,
      sparse,
    };
  },
  params: (f, limits) => {
    const D = needFeatures('params', limits);
    if (limits.sparse !== true) throw new ProtocolError('params', 'kind', 'only a sparse run sends params');
    const outputs = needParameters('params', limits) / (D + 1);
    const version = integer('params', f, 'version', 0, MAX_STEP);
    const base = integer('params', f, 'base', -1, MAX_STEP);
    if (base > version) throw new ProtocolError('params', 'base', `base ${base} is after version ${version}`);
    const scale = finite('params', f, 'scale');
    if (!(scale > 0)) throw new ProtocolError('params', 'scale', `expected a positive scale, got ${scale}`);
    const indices = coordinateIds('params', f, 'indices', 0, MAX_FEATURES, D);
    return {
      kind: 'params',
      base,
      version,
      scale,
      bias: float64s('params', f, 'bias', outputs),
      indices,
      values: float64s('params', f, 'values', indices.length * outputs),
    };
  },
  step: (f, limits) => ({
    kind: 'step',
    step: integer('step', f, 'step', 0, MAX_STEP),
    assign: assignTable('step', f, 'assign', limits.maxChunks),
    ...thetaOrVersion('step', f, limits),
  }),
  pass: (f, limits) => {
    const purpose = f.purpose;
    if (purpose !== 'stats' && purpose !== 'eval') throw new ProtocolError('pass', 'purpose', "expected 'stats' or 'eval'");
    const set = f.set;
    if (set !== 'train' && set !== 'validation') throw new ProtocolError('pass', 'set', "expected 'train' or 'validation'");
    return {
      kind: 'pass',
      job: integer('pass', f, 'job', 0, MAX_STEP),
      purpose,
      set,
      blocks: unitIds('pass', f, 'blocks', MAX_PASS_BLOCKS),
      ...thetaOrVersion('pass', f, limits),
    };
  },
  standardize: (f, limits) => {
    const D = needFeatures('standardize', limits);
    const std = float64s('standardize', f, 'std', D);
    if (std.some((s) => !(s > 0))) throw new ProtocolError('standardize', 'std', 'expected positive values');
    return { kind: 'standardize', mean: float64s('standardize', f, 'mean', D), std };
  },
  stop: (f) => ({ kind: 'stop', reason: string('stop', f, 'reason', MAX_TEXT) }),
};

/** θ in full (a dense run), or an empty θ and the replica's version (a sparse run, issue #13). */
function thetaOrVersion(kind: string, f: Fields, limits: Limits): { theta: Float64Array; version?: number } {
  const parameters = needParameters(kind, limits);
  if (limits.sparse !== true) return { theta: float64s(kind, f, 'theta', parameters) };
  return { theta: float64s(kind, f, 'theta', 0), version: integer(kind, f, 'version', 0, MAX_STEP) };
}

/**
 * Coordinate indices: strictly increasing (a coordinate listed twice would be counted twice) and
 * below D; from `minLength` to `maxLength` of them.
 */
function coordinateIds(kind: string, fields: Fields, name: string, minLength: number, maxLength: number, D: number): Uint32Array {
  const value = uint32s(kind, fields, name, minLength, maxLength);
  checkCoordinates(kind, name, value, 0, value.length, D);
  return value;
}

function checkCoordinates(kind: string, name: string, value: Uint32Array, from: number, to: number, D: number): void {
  for (let i = from; i < to; i++) {
    if (value[i]! >= D) throw new ProtocolError(kind, name, `coordinate ${value[i]} at index ${i} is not below D = ${D}`);
    if (i > from && value[i]! <= value[i - 1]!)
      throw new ProtocolError(kind, name, `coordinates must be strictly increasing: ${value[i - 1]} then ${value[i]} at index ${i}`);
  }
}

/** A sparse part's touched coordinates for `count` subtrees (PartMessage.sparse). */
function sparsePartFields(f: Fields, count: number, D: number, outputs: number): SparsePartFields {
  const sparse = f.sparse;
  if (typeof sparse !== 'object' || sparse === null || Array.isArray(sparse)) throw new ProtocolError('part', 'sparse', 'expected a map');
  const fields = sparse as Fields; // checked field by field just below
  const counts = uint32s('part', fields, 'counts', count, count);
  let total = 0;
  for (const c of counts) total += c;
  const indices = uint32s('part', fields, 'indices', total, total);
  let at = 0;
  for (const c of counts) {
    checkCoordinates('part', 'sparse.indices', indices, at, at + c, D);
    at += c;
  }
  return { counts, indices, values: float64s('part', fields, 'values', total * outputs) };
}

/** The welcome's sparse run spec: the coordinator's flags for turning the data into sparse rows. */
function sparseRunSpec(value: unknown): SparseRunSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError('welcome', 'sparse', 'expected a map or null');
  const f = value as Fields; // checked field by field just below
  const names = (name: string): string[] => {
    const list = f[name];
    if (!Array.isArray(list) || list.length > 1024 || !list.every((item) => typeof item === 'string' && item.length <= MAX_TEXT)) {
      throw new ProtocolError('welcome', `sparse.${name}`, 'expected a list of at most 1024 strings');
    }
    return list as string[]; // every item checked just above
  };
  if (f.format !== null && f.format !== 'libsvm') throw new ProtocolError('welcome', 'sparse.format', "expected 'libsvm' or null");
  return {
    format: f.format,
    hashBits: f.hashBits === null ? null : integer('welcome', f, 'hashBits', 1, 24),
    categorical: names('categorical'),
    crosses: names('crosses'),
  };
}

function isKey<T extends object>(table: T, key: string): key is Extract<keyof T, string> {
  return Object.hasOwn(table, key);
}

/** Decodes and checks a message from a worker; throws ProtocolError naming kind and field. */
export function decodeWorkerMessage(bytes: Uint8Array, limits: Limits): WorkerToCoordinator {
  const fields = unpackObject(bytes);
  const kind = kindOf(fields);
  if (!isKey(workerChecks, kind)) throw new ProtocolError(kind, 'kind', 'unknown message kind');
  return workerChecks[kind](fields, limits);
}

/** Decodes and checks a message from the coordinator; throws ProtocolError naming kind and field. */
export function decodeCoordinatorMessage(bytes: Uint8Array, limits: Limits): CoordinatorToWorker {
  const fields = unpackObject(bytes);
  const kind = kindOf(fields);
  if (!isKey(coordinatorChecks, kind)) throw new ProtocolError(kind, 'kind', 'unknown message kind');
  return coordinatorChecks[kind](fields, limits);
}

/**
 * Largest encoded part (or pass part) for D features, θ of `parameters` values (default D + 1,
 * logistic regression) and up to maxChunks units (one subtree per chunk at worst), for ws maxPayload.
 */
export function maxPartBytes(features: number, maxChunks: number, parameters: number = features + 1): number {
  return 4096 + maxChunks * (Math.max(parameters + 1, passWidth('stats', features)) * 8 + 12);
}

/**
 * Largest encoded coordinator message for D features and θ of `parameters` values (the welcome
 * carries 2·D statistics; a step, θ and a table of up to maxChunks triples).
 */
export function maxCoordinatorMessageBytes(features: number, maxChunks: number, parameters: number = features + 1): number {
  return 3 * MAX_TEXT + 2 * 4096 + Math.max(features * 2, parameters) * 8 + maxChunks * 12;
}

// Checkpoints: the run's position and model, written atomically (temp file, every byte count
// checked, fsync, read-back check, rename, fsync of the directory) and protected by a SHA-256 checksum, so a torn or corrupted file is
// refused whole, never half-loaded. Version 2 (issue #12) adds the optimizer's state (step count
// and moments) and puts the optimizer and the rate schedule in the run fingerprint; a version 1
// file (plain sgd at a constant rate, the only rule then) still loads, as exactly that. Version 3
// (issue #12, softmax) holds the model as the flat parameter vector θ (shared/model-shape.ts) and
// names the model in the fingerprint; a version 1 or 2 file holds w and b, which is θ = [w, b] of
// the logistic model, the only one then. A run with --early-stopping also saves the rule's state
// (best model, evaluations since it); a file without it loads with an empty state.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type FileSystem, NODE_FS, writeFileAtomic } from '../shared/atomic-file.js';
import { CheckpointError, WriteError } from '../shared/errors.js';
import type { EvalEvent } from '../shared/events.js';
import type { SavedEarlyStopping } from './early-stopping.js';
import { ALL_OPTIMIZER_NAMES, type OptimizerName, type OptimizerState } from './optimizers.js';

/**
 * What must be equal for a checkpoint to continue this run: the data's identity, every option that
 * changes the result (built from the options table: coordinator/run-description.ts) and the reduction.
 */
export interface RunFingerprint {
  readonly dataSha256: string;
  /** The model trained (logistic or softmax; --model resolved by the labels; its classes follow from the data); absent from files written before it (then logistic). */
  readonly model?: string;
  readonly rows: number;
  readonly features: number;
  readonly labelColumn: string | null;
  /** --class-weight; absent from files written before it (then none). */
  readonly classWeight?: string;
  readonly epochs: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly l2: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly shuffleBlockRows: number;
  readonly standardize: boolean;
  readonly valFraction: number;
  readonly chunksPerBatch: number;
  /** The reduction of parts (shared/reduce.ts REDUCTION_ID): another one gives other bits. */
  readonly reduction: string;
  readonly kernel: string;
  /** The optimizer and the hyper-parameters it reads (describeOptimizer), then the rate schedule (version 2 on). */
  readonly optimizer: string;
  readonly momentum?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  /** --l1 (present when set) and ftrl's β (issue #13). */
  readonly l1?: number;
  readonly ftrlBeta?: number;
  readonly lrSchedule: string;
  readonly warmupSteps: number;
  readonly lrDecayEpochs: number;
  readonly lrGamma: number;
  /** --early-stopping P, present only when set (a run without it keeps its old fingerprint). */
  readonly earlyStopping?: number;
  /** Sparse data (issue #13), and how a CSV was hashed: present only for sparse runs. */
  readonly sparse?: boolean;
  readonly hashBits?: number;
  readonly categorical?: string;
  readonly crosses?: string;
}

/** A checkpoint's optimizer state as JSON: the buffers as number arrays (JSON round-trips float64). */
export interface SavedOptimizerState {
  readonly optimizer: string;
  readonly step: number;
  readonly buffers: Record<string, number[]>;
}

export function saveOptimizerState(state: OptimizerState): SavedOptimizerState {
  const buffers: Record<string, number[]> = {};
  for (const [name, values] of Object.entries(state.buffers)) buffers[name] = Array.from(values);
  return { optimizer: state.optimizer, step: state.step, buffers };
}

export interface CheckpointState {
  readonly fingerprint: RunFingerprint;
  /** The next step to run. */
  readonly step: number;
  /** The parameter vector θ in the model shape's layout. */
  readonly params: number[];
  readonly lastEval: EvalEvent | null;
  /** The optimizer's state after step − 1 (its step count equals step). */
  readonly optimizer: SavedOptimizerState;
  /** The early-stopping rule's state (--early-stopping only); absent: an empty state. */
  readonly earlyStopping?: SavedEarlyStopping;
  /**
   * Sparse runs (issue #13): `params` then holds v and the biases (w = scale·v), and the
   * parameters' version; a resumed run continues from the same v and scale, so the same bits.
   */
  readonly sparse?: { readonly scale: number; readonly version: number };
}

/** A checkpoint as read: its state, and the version it was written with. */
export interface LoadedCheckpoint {
  readonly version: 1 | 2 | 3;
  readonly state: CheckpointState;
}

const CHECKPOINT_VERSION = 3;

interface CheckpointFile {
  readonly format: 'dpt-checkpoint';
  readonly version: 1 | 2 | 3;
  readonly sha256: string;
  readonly state: CheckpointState;
}

/** The state of a version 1 or 2 file: the logistic model as w and b. */
type OlderState = Omit<CheckpointState, 'params'> & { readonly w: number[]; readonly b: number };

/** What a version 1 file (written before #12) means: plain sgd at a constant rate, no state. */
const VERSION_1_OPTIMIZER = { optimizer: 'sgd', lrSchedule: 'constant', warmupSteps: 0, lrDecayEpochs: 0, lrGamma: 1 } as const;

/**
 * Writes `state` to `path` atomically and durably (shared/atomic-file.ts); JSON numbers
 * round-trip float64 exactly. Throws WriteError when the file cannot be written in full (disk
 * full, directory gone): the previous checkpoint is then unchanged, byte for byte.
 */
export function writeCheckpoint(path: string, state: CheckpointState, fileSystem: FileSystem = NODE_FS): void {
  const body = JSON.stringify(state);
  const file: CheckpointFile = { format: 'dpt-checkpoint', version: CHECKPOINT_VERSION, sha256: sha256(body), state };
  writeFileAtomic(path, JSON.stringify(file), fileSystem);
}

/** Reads and checks a checkpoint (version 1, 2 or 3); throws CheckpointError naming the problem. */
export function readCheckpoint(path: string): LoadedCheckpoint {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CheckpointError(`${path}: cannot read the checkpoint (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch {
    throw new CheckpointError(`${path}: the checkpoint is not valid JSON (truncated or corrupt)`);
  }
  const f = file as Partial<CheckpointFile> | null; // every field is checked below
  if (f === null || typeof f !== 'object' || f.format !== 'dpt-checkpoint') {
    throw new CheckpointError(`${path}: not a dpt checkpoint (format dpt-checkpoint)`);
  }
  if (f.version !== 1 && f.version !== 2 && f.version !== 3) {
    throw new CheckpointError(`${path}: checkpoint version ${JSON.stringify(f.version)} is not one this dpt reads (1, 2 or 3)`);
  }
  if (typeof f.sha256 !== 'string' || typeof f.state !== 'object' || f.state === null || sha256(JSON.stringify(f.state)) !== f.sha256) {
    throw new CheckpointError(`${path}: the checkpoint's checksum does not match its contents (corrupt); refusing to load it`);
  }
  let state = f.state;
  if (f.version !== 3) {
    // θ = [w, b], the logistic model: the only one before version 3.
    const older = f.state as unknown as OlderState; // checked just below
    if (!Array.isArray(older.w) || !older.w.every(Number.isFinite) || !Number.isFinite(older.b)) {
      throw new CheckpointError(`${path}: the checkpoint's step or model is malformed`);
    }
    const { w, b, ...rest } = older;
    state = { ...rest, params: [...w, b] };
  }
  if (!Number.isInteger(state.step) || state.step < 0 || !Array.isArray(state.params) || !state.params.every(Number.isFinite)) {
    throw new CheckpointError(`${path}: the checkpoint's step or model is malformed`);
  }
  if (f.version === 1) {
    const fingerprint = { ...state.fingerprint, ...VERSION_1_OPTIMIZER } as RunFingerprint;
    return { version: 1, state: { ...state, fingerprint, optimizer: { optimizer: 'sgd', step: state.step, buffers: {} } } };
  }
  const optimizer = state.optimizer as Partial<SavedOptimizerState> | undefined; // every field is checked here
  if (
    optimizer === undefined ||
    optimizer === null ||
    typeof optimizer.optimizer !== 'string' ||
    optimizer.step !== state.step ||
    typeof optimizer.buffers !== 'object' ||
    optimizer.buffers === null ||
    !Object.values(optimizer.buffers).every((values) => Array.isArray(values) && values.every((v) => typeof v === 'number' && Number.isFinite(v)))
  ) {
    throw new CheckpointError(`${path}: the checkpoint's optimizer state is malformed (optimizer, step equal to the checkpoint's, buffers of finite numbers)`);
  }
  if (state.earlyStopping !== undefined && !isSavedEarlyStopping(state.earlyStopping)) {
    throw new CheckpointError(
      `${path}: the checkpoint's early-stopping state is malformed (bestEval, bestParams of finite numbers, evalsSinceBest, stoppedAfterEpoch)`,
    );
  }
  const sparse = state.sparse as { scale?: unknown; version?: unknown } | undefined; // checked just below
  if (
    sparse !== undefined &&
    !(typeof sparse.scale === 'number' && sparse.scale > 0 && Number.isFinite(sparse.scale) && Number.isSafeInteger(sparse.version))
  ) {
    throw new CheckpointError(`${path}: the checkpoint's sparse state is malformed (a positive finite scale, an integer version)`);
  }
  return { version: f.version, state };
}

/** A saved optimizer state as the optimizer restores it (its buffers' lengths and values are checked by restore()). */
export function loadOptimizerState(saved: SavedOptimizerState): OptimizerState {
  if (!(ALL_OPTIMIZER_NAMES as readonly string[]).includes(saved.optimizer)) {
    throw new CheckpointError(`optimizer state: unknown optimizer ${JSON.stringify(saved.optimizer)}`);
  }
  const buffers: Record<string, Float64Array> = {};
  for (const [name, values] of Object.entries(saved.buffers)) buffers[name] = Float64Array.from(values);
  return { optimizer: saved.optimizer as OptimizerName, step: saved.step, buffers };
}

/**
 * Reports failed checkpoint writes without stopping the run: the first failure of a streak is
 * one warning (with the step of the checkpoint still on disk), the recovery one line more.
 */
export class CheckpointWarnings {
  private readonly path: string;
  private readonly log: (line: string) => void;
  /** Step of the last checkpoint this run wrote. */
  private lastWrittenStep: number | null;
  private failures = 0;

  constructor(path: string, log: (line: string) => void) {
    this.path = path;
    this.log = log;
    this.lastWrittenStep = null;
  }

  /** Runs `write` (the checkpoint of `step`); a WriteError becomes a warning, anything else is thrown. */
  write(step: number, write: () => void): void {
    try {
      write();
    } catch (error) {
      if (!(error instanceof WriteError)) throw error;
      if (this.failures++ === 0) {
        const kept = this.lastWrittenStep === null ? '' : ` (the checkpoint of step ${this.lastWrittenStep} is kept)`;
        this.log(`dpt: warning: checkpoint of step ${step} not written: ${error.message}${kept}; training goes on`);
      }
      return;
    }
    if (this.failures > 0) this.log(`dpt: checkpoint written again at step ${step} (${this.failures} failed before) to ${this.path}`);
    this.failures = 0;
    this.lastWrittenStep = step;
  }
}

/** The types of the early-stopping state (its consistency with the run is EarlyStopping's check). */
function isSavedEarlyStopping(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<Record<keyof SavedEarlyStopping, unknown>>; // every field is checked here
  const bestEval = s.bestEval as Partial<Record<keyof EvalEvent, unknown>> | null | undefined; // checked here
  const isEval =
    bestEval === null || (typeof bestEval === 'object' && bestEval !== undefined && Number.isInteger(bestEval.epoch) && typeof bestEval.valLoss === 'number');
  const isParams = s.bestParams === null || (Array.isArray(s.bestParams) && s.bestParams.every((v) => typeof v === 'number' && Number.isFinite(v)));
  return isEval && isParams && Number.isInteger(s.evalsSinceBest) && (s.stoppedAfterEpoch === null || Number.isInteger(s.stoppedAfterEpoch));
}

/**
 * Fields a fingerprint lacks when they have their default (and every checkpoint written before they
 * existed), with that value: the only one there was then (binary logistic regression, unweighted rows).
 */
const IMPLIED_BY_OLDER_FILES: Readonly<Partial<Record<keyof RunFingerprint, string>>> = { model: 'logistic', classWeight: 'none' };

/** Names the first field in which a checkpoint's run differs from this one, or null. */
export function fingerprintMismatch(saved: RunFingerprint, current: RunFingerprint): string | null {
  // Both sides' fields: an optional one set on one side only is a difference, unless it is one an older file implies.
  for (const key of new Set([...Object.keys(current), ...Object.keys(saved)]) as Set<keyof RunFingerprint>) {
    const savedValue = Object.hasOwn(saved, key) ? saved[key] : IMPLIED_BY_OLDER_FILES[key];
    const currentValue = Object.hasOwn(current, key) ? current[key] : IMPLIED_BY_OLDER_FILES[key];
    if (savedValue !== currentValue) return `${key} (checkpoint: ${String(savedValue)}, now: ${String(currentValue)})`;
  }
  return null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

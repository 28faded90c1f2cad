// Checkpoints: the run's position and model, written atomically (temp file, fsync, rename,
// fsync of the directory) and protected by a SHA-256 checksum, so a torn or corrupted file is
// refused whole, never half-loaded. Plain SGD has no optimizer state beyond w and b.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { CheckpointError } from '../shared/errors.js';
import type { EvalEvent } from '../shared/events.js';

/** What must be equal for a checkpoint to continue this run. */
export interface RunFingerprint {
  readonly dataSha256: string;
  readonly rows: number;
  readonly features: number;
  readonly labelColumn: string | null;
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
  readonly reproducible: boolean;
  readonly kernel: string;
}

export interface CheckpointState {
  readonly fingerprint: RunFingerprint;
  /** The next step to run. */
  readonly step: number;
  readonly w: number[];
  readonly b: number;
  readonly lastEval: EvalEvent | null;
}

interface CheckpointFile {
  readonly format: 'dpt-checkpoint';
  readonly version: 1;
  readonly sha256: string;
  readonly state: CheckpointState;
}

/** Writes `state` to `path` atomically; JSON numbers round-trip float64 exactly. */
export function writeCheckpoint(path: string, state: CheckpointState): void {
  const body = JSON.stringify(state);
  const file: CheckpointFile = { format: 'dpt-checkpoint', version: 1, sha256: sha256(body), state };
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, JSON.stringify(file));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const directory = openSync(dirname(path), 'r');
  try {
    fsyncSync(directory); // the rename itself survives a crash
  } finally {
    closeSync(directory);
  }
}

export function readCheckpoint(path: string): CheckpointState {
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
  if (f === null || typeof f !== 'object' || f.format !== 'dpt-checkpoint' || f.version !== 1) {
    throw new CheckpointError(`${path}: not a dpt checkpoint (format dpt-checkpoint, version 1)`);
  }
  if (typeof f.sha256 !== 'string' || typeof f.state !== 'object' || f.state === null || sha256(JSON.stringify(f.state)) !== f.sha256) {
    throw new CheckpointError(`${path}: the checkpoint's checksum does not match its contents (corrupt); refusing to load it`);
  }
  const state = f.state;
  if (!Number.isInteger(state.step) || state.step < 0 || !Array.isArray(state.w) || !state.w.every(Number.isFinite) || !Number.isFinite(state.b)) {
    throw new CheckpointError(`${path}: the checkpoint's step or model is malformed`);
  }
  return state;
}

/** Names the first field in which a checkpoint's run differs from this one, or null. */
export function fingerprintMismatch(saved: RunFingerprint, current: RunFingerprint): string | null {
  for (const key of Object.keys(current) as (keyof RunFingerprint)[]) {
    if (saved[key] !== current[key]) return `${key} (checkpoint: ${String(saved[key])}, now: ${String(current[key])})`;
  }
  return null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

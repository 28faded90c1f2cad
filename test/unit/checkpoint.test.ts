// Checkpoint versions (issue #12): version 2 carries the optimizer's state and round-trips it
// exactly; version 1 (before the optimizers) loads as plain sgd at a constant rate; a malformed
// optimizer state is refused whole, naming what is wrong.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type CheckpointState,
  fingerprintMismatch,
  loadOptimizerState,
  readCheckpoint,
  saveOptimizerState,
  writeCheckpoint,
} from '../../coordinator/checkpoint.js';
import { createOptimizer, resolveOptimizerSpec } from '../../coordinator/optimizers.js';
import { CheckpointError } from '../../shared/errors.js';
import { logisticShape } from '../../shared/model-shape.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());

const FINGERPRINT_V1 = {
  dataSha256: 'b'.repeat(64),
  rows: 100,
  features: 3,
  labelColumn: 'label',
  epochs: 2,
  batchSize: 10,
  lr: 0.1,
  l2: 0,
  seed: 1,
  shuffle: true,
  shuffleBlockRows: 0,
  standardize: true,
  valFraction: 0,
  chunksPerBatch: 1,
  reduction: 'tree2-v1',
  kernel: 'js',
};

/** An adam state after 5 steps of made-up gradients, as the trainer would checkpoint it. */
function adamState(): CheckpointState {
  const shape = logisticShape(3);
  const optimizer = createOptimizer(resolveOptimizerSpec({ name: 'adam', weightDecay: 0.01 }), shape.parameterCount, shape.isDecayed);
  const params = new Float64Array(shape.parameterCount);
  for (let t = 0; t < 5; t++) optimizer.step(params, Float64Array.from([0.3, -0.1 * t, 1 / 3, Math.PI / (t + 1)]), 0.01);
  return {
    fingerprint: {
      ...FINGERPRINT_V1,
      l2: 0.01,
      optimizer: 'adam',
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      lrSchedule: 'constant',
      warmupSteps: 0,
      lrDecayEpochs: 0,
      lrGamma: 1,
    },
    step: 5,
    params: Array.from(params),
    lastEval: null,
    optimizer: saveOptimizerState(optimizer.state()),
  };
}

function writeRaw(name: string, version: unknown, state: unknown): string {
  const path = join(directory.path, name);
  const sha256 = createHash('sha256').update(JSON.stringify(state)).digest('hex');
  writeFileSync(path, JSON.stringify({ format: 'dpt-checkpoint', version, sha256, state }));
  return path;
}

function refusal(path: string): string {
  try {
    readCheckpoint(path);
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    return (error as Error).message;
  }
  throw new Error(`${path} was accepted`);
}

describe('a version 3 checkpoint', () => {
  it("round-trips θ, the optimizer's moments and step count bit for bit", () => {
    const path = join(directory.path, 'adam.ckpt');
    const state = adamState();
    writeCheckpoint(path, state);
    expect(JSON.parse(readFileSync(path, 'utf8')).version).toBe(3);
    const loaded = readCheckpoint(path);
    expect(loaded.version).toBe(3);
    expect(loaded.state.params).toEqual(state.params);
    const restored = loadOptimizerState(loaded.state.optimizer);
    expect(restored.optimizer).toBe('adam');
    expect(restored.step).toBe(5);
    for (const name of ['expAvg', 'expAvgSq']) {
      const saved = state.optimizer.buffers[name] as number[];
      expect(Array.from(restored.buffers[name] as Float64Array)).toEqual(saved);
      expect(saved.some((value) => value !== 0)).toBe(true);
    }
    // An optimizer restored from it continues exactly as the original.
    const shape = logisticShape(3);
    const optimizer = createOptimizer(resolveOptimizerSpec({ name: 'adam', weightDecay: 0.01 }), shape.parameterCount, shape.isDecayed);
    optimizer.restore(restored);
    expect(optimizer.stepCount).toBe(5);
  });

  it('is refused whole when its optimizer state is missing or malformed, naming it', () => {
    const { optimizer: _dropped, ...withoutOptimizer } = adamState();
    const state = adamState();
    for (const [name, body] of [
      ['missing', withoutOptimizer],
      ['other-step', { ...state, optimizer: { ...state.optimizer, step: 4 } }],
      ['not-numbers', { ...state, optimizer: { ...state.optimizer, buffers: { expAvg: ['x'], expAvgSq: [1] } } }],
    ] as const) {
      expect(refusal(writeRaw(`${name}.ckpt`, 3, body))).toMatch(/the checkpoint's optimizer state is malformed/);
    }
    expect(() => loadOptimizerState({ optimizer: 'rmsprop', step: 1, buffers: {} })).toThrow(/unknown optimizer "rmsprop"/);
  });

  it("keeps a sparse run's scale and params version (issue #13), and refuses a malformed one", () => {
    const state = { ...adamState(), sparse: { scale: 0.25, version: 5 } };
    const path = join(directory.path, 'sparse.ckpt');
    writeCheckpoint(path, state);
    expect(readCheckpoint(path).state.sparse).toEqual({ scale: 0.25, version: 5 });
    for (const [name, sparse] of [
      ['zero-scale', { scale: 0, version: 5 }],
      ['text-version', { scale: 1, version: '5' }],
      ['no-version', { scale: 1 }],
    ] as const) {
      expect(refusal(writeRaw(`${name}.ckpt`, 3, { ...state, sparse }))).toMatch(/the checkpoint's sparse state is malformed/);
    }
  });

  it('of an unknown version is refused, naming the version', () => {
    expect(refusal(writeRaw('v4.ckpt', 4, adamState()))).toMatch(/checkpoint version 4 is not one this dpt reads \(1, 2 or 3\)/);
  });
});

describe('a version 2 checkpoint (before softmax: w and b)', () => {
  it('loads as the logistic model θ = [w, b] with its optimizer state', () => {
    const { params, fingerprint, ...rest } = adamState();
    const { model: _model, ...olderFingerprint } = fingerprint;
    const path = writeRaw('v2.ckpt', 2, { ...rest, fingerprint: olderFingerprint, w: params.slice(0, 3), b: params[3] });
    const loaded = readCheckpoint(path);
    expect(loaded.version).toBe(2);
    expect(loaded.state.params).toEqual(params);
    expect(loaded.state.fingerprint).not.toHaveProperty('model'); // implied: logistic (fingerprintMismatch)
    expect(loaded.state.optimizer).toEqual(rest.optimizer);
  });
});

describe('a version 1 checkpoint', () => {
  it('loads as plain sgd at a constant rate, with no moments and the step count of its position', () => {
    const path = writeRaw('v1.ckpt', 1, { fingerprint: FINGERPRINT_V1, step: 7, w: [0.5, -0.25, 0.125], b: 0.1, lastEval: null });
    const loaded = readCheckpoint(path);
    expect(loaded.version).toBe(1);
    expect(loaded.state.fingerprint).toEqual({
      ...FINGERPRINT_V1,
      optimizer: 'sgd',
      lrSchedule: 'constant',
      warmupSteps: 0,
      lrDecayEpochs: 0,
      lrGamma: 1,
    });
    expect(loaded.state.optimizer).toEqual({ optimizer: 'sgd', step: 7, buffers: {} });
    expect(loaded.state.params).toEqual([0.5, -0.25, 0.125, 0.1]); // θ = [w, b]
  });
});

describe('a checkpoint written before --model and --class-weight (no such fields in its fingerprint)', () => {
  it('of version 2 or 1 loads and continues a run with their defaults, and no other', () => {
    const { params, ...adam } = adamState();
    const v2 = readCheckpoint(writeRaw('before-model-v2.ckpt', 2, { ...adam, w: params.slice(0, 3), b: params[3] }));
    const v1 = readCheckpoint(writeRaw('before-model-v1.ckpt', 1, { fingerprint: FINGERPRINT_V1, step: 7, w: [0.5, -0.25, 0.125], b: 0.1, lastEval: null }));
    for (const saved of [v2.state.fingerprint, v1.state.fingerprint]) {
      expect(saved).not.toHaveProperty('model');
      const now = { ...saved, model: 'logistic', classWeight: 'none' };
      expect(fingerprintMismatch(saved, now)).toBeNull();
      expect(fingerprintMismatch(saved, { ...now, classWeight: 'balanced' })).toBe('classWeight (checkpoint: none, now: balanced)');
      expect(fingerprintMismatch(saved, { ...now, model: 'softmax' })).toBe('model (checkpoint: logistic, now: softmax)');
    }
  });
});

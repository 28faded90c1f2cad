// The early-stopping rule (issue #12, --early-stopping P): strict improvement, a copy of the best
// evaluation's parameters, a stop after exactly P evaluations in a row without improvement, and
// its state through a checkpoint (and a model file's earlyStopping field) and back.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprintMismatch, type RunFingerprint, readCheckpoint, writeCheckpoint } from '../../coordinator/checkpoint.js';
import { resolveCoordinatorConfig } from '../../coordinator/config.js';
import { EarlyStopping, type SavedEarlyStopping } from '../../coordinator/early-stopping.js';
import { CheckpointError, ConfigError, ModelFileError } from '../../shared/errors.js';
import type { EvalEvent } from '../../shared/events.js';
import { readModelFile } from '../../shared/model-file.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());

function evaluation(epoch: number, valLoss: number): EvalEvent {
  return { type: 'eval', epoch, trainLoss: 0.5, trainAccuracy: 0.75, valLoss, valAccuracy: 0.5, time: 0 };
}

/** Feeds the validation losses in order (epoch = index); returns each verdict and the rule. */
function feed(patience: number, losses: readonly number[]): { rule: EarlyStopping; marks: NonNullable<EvalEvent['earlyStopping']>[] } {
  const rule = new EarlyStopping(patience, 2, null);
  const marks = losses.map((loss, epoch) => {
    const mark = rule.observe(evaluation(epoch, loss), Float64Array.from([epoch, -epoch])).earlyStopping;
    if (mark === undefined) throw new Error('observe() returned an evaluation without its mark');
    return mark;
  });
  return { rule, marks };
}

describe('EarlyStopping', () => {
  it('counts an evaluation as an improvement only when its validation loss is strictly lower (the first always is)', () => {
    const { marks } = feed(5, [2, 2, 1.5, 1.5000000000000002, 1.4999999999999998]);
    expect(marks.map((mark) => mark.bestEpoch)).toEqual([0, 0, 2, 2, 4]);
    expect(marks.map((mark) => mark.evalsSinceBest)).toEqual([0, 1, 0, 1, 0]);
    expect(marks.at(-1)?.bestValLoss).toBe(1.4999999999999998);
  });

  it('stops on exactly the P-th evaluation in a row without improvement; an improvement resets the count', () => {
    const { rule, marks } = feed(2, [1, 1.1, 0.9, 0.95, 0.9]);
    expect(marks.map((mark) => mark.stop)).toEqual([false, false, false, false, true]);
    expect(marks.map((mark) => mark.evalsSinceBest)).toEqual([0, 1, 0, 1, 2]);
    expect(rule.isStopped).toBe(true);
    expect(() => rule.observe(evaluation(5, 0.1), new Float64Array(2))).toThrow(/after early stopping/);
  });

  it('never counts a NaN validation loss as an improvement, but a first NaN is still the best so far', () => {
    expect(feed(3, [1, Number.NaN, Number.NaN, Number.NaN]).marks.at(-1)).toEqual({ bestEpoch: 0, bestValLoss: 1, evalsSinceBest: 3, stop: true });
    expect(feed(3, [Number.NaN, 5]).marks.map((mark) => mark.bestEpoch)).toEqual([0, 0]);
  });

  it("keeps a copy of the best evaluation's parameters, not a view of the live vector", () => {
    const rule = new EarlyStopping(3, 3, null);
    expect(rule.outcome()).toBeNull();
    const params = Float64Array.from([0.1, 0.2, 0.3]);
    rule.observe(evaluation(0, 1), params);
    params.fill(7);
    rule.observe(evaluation(1, 2), params);
    const outcome = rule.outcome();
    expect(Array.from(outcome?.params ?? [])).toEqual([0.1, 0.2, 0.3]);
    expect(outcome?.bestEpoch).toBe(0);
    expect(outcome?.bestEval.valLoss).toBe(1);
    expect(outcome?.stoppedAfterEpoch).toBeNull();
  });

  it('continues from a saved state (through JSON) exactly as the uninterrupted rule does', () => {
    const losses = [3, 2, 2.5, 1 / 3, 0.4, 0.5, 0.6];
    const whole = feed(3, losses);
    for (let cut = 0; cut <= 6; cut++) {
      const first = feed(3, losses.slice(0, cut));
      const saved = JSON.parse(JSON.stringify(first.rule.save())) as SavedEarlyStopping;
      const resumed = new EarlyStopping(3, 2, saved);
      const rest = losses.slice(cut).map((loss, i) => resumed.observe(evaluation(cut + i, loss), Float64Array.from([cut + i, -(cut + i)])).earlyStopping);
      expect([...first.marks, ...rest]).toEqual(whole.marks);
      expect(resumed.save()).toEqual(whole.rule.save());
    }
    expect(whole.rule.outcome()?.stoppedAfterEpoch).toBe(6);
    expect(Array.from(whole.rule.outcome()?.params ?? [])).toEqual([3, -3]);
  });

  it('refuses a saved state that does not fit the run, as a CheckpointError', () => {
    const good = feed(2, [1, 2]).rule.save();
    const bad: [SavedEarlyStopping, number, RegExp][] = [
      [{ ...good, bestParams: [1, 2, 3] }, 2, /holds 3 parameters, the model has 2/],
      [good, 1, /does not fit --early-stopping 1/], // one evaluation since the best: a patience of 1 would have stopped
      [{ ...good, stoppedAfterEpoch: 1 }, 2, /does not fit/],
      [{ ...good, bestParams: null }, 2, /does not fit/],
    ];
    for (const [saved, patience, message] of bad) {
      expect(() => new EarlyStopping(patience, 2, saved)).toThrow(CheckpointError);
      expect(() => new EarlyStopping(patience, 2, saved)).toThrow(message);
    }
  });
});

describe('--early-stopping in the configuration', () => {
  it('is refused without a validation split, or when not a positive integer, naming the flag', () => {
    expect(() => resolveCoordinatorConfig({ dataPath: 'x.csv', earlyStoppingPatience: 3 })).toThrow(ConfigError);
    expect(() => resolveCoordinatorConfig({ dataPath: 'x.csv', earlyStoppingPatience: 3 })).toThrow(/--early-stopping needs --val-split > 0/);
    expect(() => resolveCoordinatorConfig({ dataPath: 'x.csv', earlyStoppingPatience: 0, valFraction: 0.2 })).toThrow(
      /--early-stopping must be a positive integer/,
    );
    expect(resolveCoordinatorConfig({ dataPath: 'x.csv', earlyStoppingPatience: 3, valFraction: 0.2 }).earlyStoppingPatience).toBe(3);
    expect(resolveCoordinatorConfig({ dataPath: 'x.csv' }).earlyStoppingPatience).toBeNull();
  });
});

const FINGERPRINT = {
  dataSha256: 'c'.repeat(64),
  rows: 10,
  features: 1,
  labelColumn: 'label',
  epochs: 5,
  batchSize: 2,
  lr: 0.1,
  l2: 0,
  seed: 1,
  shuffle: true,
  shuffleBlockRows: 0,
  standardize: true,
  valFraction: 0.5,
  chunksPerBatch: 1,
  reduction: 'tree2-v1',
  kernel: 'js',
  model: 'logistic',
  optimizer: 'sgd',
  lrSchedule: 'constant',
  warmupSteps: 0,
  lrDecayEpochs: 0,
  lrGamma: 1,
} satisfies RunFingerprint;

describe('the early-stopping state in a checkpoint', () => {
  const base = { step: 6, params: [0.5, -0.25], lastEval: null, optimizer: { optimizer: 'sgd', step: 6, buffers: {} } };

  it('round-trips bit for bit, and a checkpoint without it loads with none', () => {
    const rule = feed(3, [0.7, 0.1 + 0.2, 0.5]).rule;
    const path = join(directory.path, 'early.ckpt');
    writeCheckpoint(path, { ...base, fingerprint: { ...FINGERPRINT, earlyStopping: 3 }, earlyStopping: rule.save() });
    const loaded = readCheckpoint(path).state.earlyStopping;
    expect(loaded).toEqual(rule.save());
    expect(loaded?.bestParams).toEqual([1, -1]);
    expect(loaded?.bestEval?.valLoss).toBe(0.1 + 0.2);
    writeCheckpoint(path, { ...base, fingerprint: FINGERPRINT });
    expect(readCheckpoint(path).state.earlyStopping).toBeUndefined();
  });

  it('is refused whole when malformed, naming it', () => {
    const good = feed(3, [0.7, 0.3]).rule.save();
    for (const [name, earlyStopping] of [
      ['not-numbers', { ...good, bestParams: [1, 'x'] }],
      ['no-count', { ...good, evalsSinceBest: undefined }],
      ['null', null],
    ] as const) {
      const state = { ...base, fingerprint: { ...FINGERPRINT, earlyStopping: 3 }, earlyStopping };
      const path = join(directory.path, `${name}.ckpt`);
      const sha256 = createHash('sha256').update(JSON.stringify(state)).digest('hex');
      writeFileSync(path, JSON.stringify({ format: 'dpt-checkpoint', version: 3, sha256, state }));
      expect(() => readCheckpoint(path)).toThrow(/the checkpoint's early-stopping state is malformed/);
    }
  });

  it('belongs to another run when --early-stopping is set on one side only or differs', () => {
    expect(fingerprintMismatch(FINGERPRINT, { ...FINGERPRINT, earlyStopping: 3 })).toBe('earlyStopping (checkpoint: undefined, now: 3)');
    expect(fingerprintMismatch({ ...FINGERPRINT, earlyStopping: 3 }, FINGERPRINT)).toBe('earlyStopping (checkpoint: 3, now: undefined)');
    expect(fingerprintMismatch({ ...FINGERPRINT, earlyStopping: 3 }, { ...FINGERPRINT, earlyStopping: 2 })).toBe('earlyStopping (checkpoint: 3, now: 2)');
    expect(fingerprintMismatch({ ...FINGERPRINT, earlyStopping: 3 }, { ...FINGERPRINT, earlyStopping: 3 })).toBeNull();
  });
});

describe("a model file's earlyStopping field", () => {
  const model = {
    format: 'dpt-model',
    version: 1,
    kind: 'logistic-regression',
    weights: [0.5],
    bias: 0,
    features: ['x'],
    label: 'y',
    standardization: null,
    trainedOn: {},
    metrics: {},
  };
  const write = (name: string, body: unknown): string => {
    const path = join(directory.path, name);
    writeFileSync(path, JSON.stringify(body));
    return path;
  };

  it('is read back when well-formed, and absent when the run had no early stopping', () => {
    const earlyStopping = { patience: 2, bestEpoch: 3, stoppedAfterEpoch: 5 };
    expect(readModelFile(write('early.json', { ...model, earlyStopping })).earlyStopping).toEqual(earlyStopping);
    const ranThrough = { patience: 2, bestEpoch: 3, stoppedAfterEpoch: null };
    expect(readModelFile(write('through.json', { ...model, earlyStopping: ranThrough })).earlyStopping).toEqual(ranThrough);
    expect(readModelFile(write('plain.json', model)).earlyStopping).toBeUndefined();
  });

  it('is refused when malformed, naming the field', () => {
    for (const [name, earlyStopping, field] of [
      ['zero-patience', { patience: 0, bestEpoch: 3, stoppedAfterEpoch: null }, /field 'earlyStopping.patience' must be a positive integer/],
      ['no-epoch', { patience: 2, stoppedAfterEpoch: null }, /field 'earlyStopping.bestEpoch' must be/],
      [
        'stopped-before-best',
        { patience: 2, bestEpoch: 3, stoppedAfterEpoch: 3 },
        /field 'earlyStopping.stoppedAfterEpoch' must be null or an epoch after bestEpoch/,
      ],
    ] as const) {
      const path = write(`${name}.json`, { ...model, earlyStopping });
      expect(() => readModelFile(path)).toThrow(ModelFileError);
      expect(() => readModelFile(path)).toThrow(field);
    }
  });
});

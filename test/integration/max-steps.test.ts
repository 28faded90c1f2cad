// --max-steps N (issue #15 item 4: time to a target loss without rounding up to whole epochs) with
// real processes: the run stops after step N mid-epoch, evaluates and writes a model equal to an
// independent plain loop's first N steps; the rate schedule still spans --epochs (the first N
// step losses of a cosine run are those of the whole run, bit for bit); a checkpoint written at the
// budget resumes under a larger one to the bits of the uninterrupted run; bad values exit 2.
// --eval-every 0 (no evaluation at all, for runs scored elsewhere) trains the same bits.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';
import { libsvmText } from '../helpers/libsvm-text.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';
import { generateData, maxAbsDifference, referenceTrain } from '../helpers/reference.js';

const directory = temporaryDirectory();
const dataPath = join(directory.path, 'rows.csv');
const data = generateData(200, 4, 77);
const BATCH = 16;
const EPOCHS = 3;
const LR = 0.5;
const L2 = 0.01;
/** ⌈200 / 16⌉ = 13 steps an epoch (the last batch 8 rows): 39 in all. */
const PER_EPOCH = 13;
/** Inside the second epoch (its 8th step). */
const BUDGET = 20;
// File order and raw values, so that the reference loop sees the same numbers; 4 chunks a batch so both workers take part.
const FLAGS = ['--data', dataPath, '--no-shuffle', '--no-standardize', '--batch-size', String(BATCH), '--chunks', '4', '--lr', String(LR), '--l2', String(L2)];

interface ModelFileJson {
  weights: number[];
  bias: number;
  trainedOn: { steps: number };
  metrics: { trainLoss?: number; trainAccuracy?: number };
}

async function train(name: string, extra: string[]): Promise<{ model: ModelFileJson; path: string; output: string; metrics: string }> {
  const path = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const result = await runCli(['train', ...FLAGS, '--epochs', String(EPOCHS), '--workers', '2', '--out', path, '--metrics', metrics, ...extra], {}, 120_000);
  expect(result.code, result.stderr).toBe(0);
  return { model: JSON.parse(readFileSync(path, 'utf8')) as ModelFileJson, path, output: result.stdout + result.stderr, metrics };
}

function evalEvents(path: string): { epoch: number; trainLoss: number }[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; epoch: number; trainLoss: number })
    .filter((event) => event.type === 'eval');
}

/** Mean log-loss of (w, b) over all rows, computed here (log(1 + e^z) − y·z, stable). */
function meanLogLoss(w: readonly number[], b: number): number {
  let sum = 0;
  data.X.forEach((x, i) => {
    const z = x.reduce((acc, v, j) => acc + v * (w[j] as number), b);
    sum += Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - (data.Y[i] as number) * z;
  });
  return sum / data.X.length;
}

beforeAll(() => writeFileSync(dataPath, data.csv));
afterAll(() => {
  killAll();
  directory.remove();
});

describe('dpt train --max-steps', () => {
  it('stops after step N mid-epoch, evaluates, and writes the first N steps of the run', async () => {
    const run = await train('budget', ['--max-steps', String(BUDGET)]);
    const reference = referenceTrain(data.X, data.Y, { epochs: EPOCHS, batchSize: BATCH, lr: LR, l2: L2, maxSteps: BUDGET });
    expect(reference.losses).toHaveLength(BUDGET);
    expect(run.model.trainedOn.steps).toBe(BUDGET);
    expect(stepLosses(run.metrics)).toHaveLength(BUDGET);
    expect(maxAbsDifference(run.model.weights, reference.w)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(run.model.bias - reference.b)).toBeLessThanOrEqual(1e-9);
    expect(maxAbsDifference(stepLosses(run.metrics), reference.losses)).toBeLessThanOrEqual(1e-9);
    // Evaluated after its last step, inside the second epoch (index 1); the eval after epoch 1 too.
    const evals = evalEvents(run.metrics);
    expect(evals.map((event) => event.epoch)).toEqual([0, 1]);
    expect(Math.abs((evals[1]?.trainLoss ?? Number.NaN) - meanLogLoss(reference.w, reference.b))).toBeLessThanOrEqual(1e-9);
    expect(run.model.metrics.trainLoss).toBe(evals[1]?.trainLoss);
    expect(run.output).toContain(`step ${BUDGET}/${BUDGET}`);
  });

  it('keeps the rate schedule over --epochs: a cosine run’s first N step losses are the whole run’s, bit for bit', async () => {
    const schedule = ['--lr-schedule', 'cosine'];
    const whole = await train('cosine-whole', schedule);
    const budget = await train('cosine-budget', [...schedule, '--max-steps', String(BUDGET)]);
    const wholeLosses = stepLosses(whole.metrics);
    expect(wholeLosses).toHaveLength(EPOCHS * PER_EPOCH);
    expect(stepLosses(budget.metrics)).toEqual(wholeLosses.slice(0, BUDGET));
    // A cosine over 20 steps would have cut the rate from the second step on: the losses would differ.
    expect(budget.model.trainedOn.steps).toBe(BUDGET);
  });

  it('resumes a budget’s checkpoint under a larger budget to the uninterrupted bits; a budget past the run changes nothing', async () => {
    const whole = await train('whole', []);
    const checkpoint = join(directory.path, 'budget.ckpt');
    const first = await train('first', ['--max-steps', String(BUDGET), '--checkpoint', checkpoint]);
    expect(first.model.trainedOn.steps).toBe(BUDGET);
    expect(JSON.parse(readFileSync(checkpoint, 'utf8')).state.step).toBe(BUDGET);
    const resumed = await train('resumed', ['--max-steps', '1000', '--resume', checkpoint]);
    expect(resumed.output).toContain(`resuming from ${checkpoint} at step ${BUDGET}`);
    expect(resumed.model.trainedOn.steps).toBe(EPOCHS * PER_EPOCH);
    expect(modelHash(resumed.path)).toBe(modelHash(whole.path));
    expect(stepLosses(resumed.metrics)).toEqual(stepLosses(whole.metrics).slice(BUDGET));
  });

  it('resumes a sparse sgd --l1 budget (its lazy penalties) to the uninterrupted bits', async () => {
    // sgd with --l1 on sparse data settles the L1 penalty the next batch's coordinates owe at each
    // commit (coordinator/sparse-model.ts): the budget's last commit must do it too, or its
    // checkpoint is not the uninterrupted run's state at that step.
    const svm = join(directory.path, 'rows.svm');
    writeFileSync(svm, libsvmText({ rows: 300, maxIndex: 500, seed: 5 }));
    const sparse = [
      '--data',
      svm,
      '--epochs',
      '3',
      '--batch-size',
      '20',
      '--chunks',
      '4',
      '--optimizer',
      'sgd',
      '--lr',
      '0.5',
      '--l1',
      '0.002',
      '--workers',
      '2',
    ];
    const run = async (name: string, extra: string[]): Promise<string> => {
      const path = join(directory.path, `${name}.json`);
      const result = await runCli(['train', ...sparse, '--out', path, ...extra], {}, 120_000);
      expect(result.code, result.stderr).toBe(0);
      return path;
    };
    const whole = await run('sparse-whole', []);
    const checkpoint = join(directory.path, 'sparse.ckpt');
    await run('sparse-budget', ['--max-steps', '23', '--checkpoint', checkpoint]);
    const resumed = await run('sparse-resumed', ['--resume', checkpoint]);
    expect(modelHash(resumed)).toBe(modelHash(whole));
  });

  it('with --eval-every 0 evaluates never, not even after the last step, and trains the same bits', async () => {
    const evaluated = await train('evaluated', ['--max-steps', String(BUDGET)]);
    const never = await train('never', ['--max-steps', String(BUDGET), '--eval-every', '0']);
    expect(evalEvents(never.metrics)).toEqual([]);
    expect(never.model.metrics).toEqual({});
    expect(never.model.trainedOn.steps).toBe(BUDGET);
    expect(modelHash(never.path)).toBe(modelHash(evaluated.path));
    // The progress line still ends at the epoch's end and at the last step, without an accuracy.
    expect(never.output).toContain(`step ${PER_EPOCH}/${BUDGET}`);
    expect(never.output).toContain(`step ${BUDGET}/${BUDGET}`);
    expect(never.output).not.toMatch(/train acc/);
  });

  it('refuses --eval-every 0 with --early-stopping, and a negative --eval-every, with exit code 2', async () => {
    const early = await runCli(['train', '--data', dataPath, '--val-split', '0.5', '--early-stopping', '2', '--eval-every', '0']);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/--early-stopping needs evaluations, and --eval-every 0 turns them off/);
    const negative = await runCli(['train', '--data', dataPath, '--eval-every', '-1']);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toMatch(/--eval-every.*expected a non-negative integer/);
  });

  it.each([['0'], ['-3'], ['1.5'], ['ten']])('refuses --max-steps %s with exit code 2, naming the flag', async (value) => {
    const result = await runCli(['train', '--data', dataPath, '--max-steps', value]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--max-steps.*expected a positive integer/);
  });
});

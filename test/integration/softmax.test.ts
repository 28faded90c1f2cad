// Softmax regression end to end (issue #12): `dpt train` on a CSV whose label column holds class
// names (the bundled digits set, its digits written as English words) trains over real worker
// processes and equals an independent float64 reference (test/helpers/softmax-training-reference.ts)
// to 1e-9 with sgd and adam; the model has the same bits with 1, 2, 3 and 5 workers, with a
// worker SIGKILLed mid-run, and with the coordinator SIGKILLed and resumed from its checkpoint;
// predict and evaluate read the model back; bad choices are refused naming the flag.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceTrainBalancedSoftmax } from '../helpers/class-weight-reference.js';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';
import { trainOnCluster, trainWithCoordinatorKilled, trainWithWorkerKilled } from '../helpers/cluster-runs.js';
import { modelHash } from '../helpers/model-hash.js';
import { maxAbsDifference } from '../helpers/reference.js';
import { referenceSoftmaxLoss, referenceTrainSoftmax, type SoftmaxReferenceOptions } from '../helpers/softmax-training-reference.js';

const directory = temporaryDirectory();
const NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
/** The classes as dpt must order them: by code point, not by the digits they name. */
const SORTED = [...NAMES].sort();
const standardizedPath = join(directory.path, 'digits-standardized.csv');
const rawPath = join(directory.path, 'digits-named.csv');

/**
 * The bundled digits with each label written as a word; and a copy standardized here (z-scores,
 * population std, 1 for a constant pixel), rounded to float32 as a .dpt stores it, so that dpt
 * (--no-standardize) and the reference see the same numbers.
 */
function digits(): { X: number[][]; Y: number[]; standardized: string; raw: string } {
  const [header, ...lines] = readFileSync(join(REPO, 'data', 'digits.csv'), 'utf8')
    .trim()
    .split('\n');
  const rows = lines.map((line) => line.split(',').map(Number));
  const D = (rows[0]?.length ?? 1) - 1;
  const mean = Array.from({ length: D }, (_, j) => rows.reduce((sum, row) => sum + (row[j] as number), 0) / rows.length);
  const std = Array.from(
    { length: D },
    (_, j) => Math.sqrt(rows.reduce((sum, row) => sum + ((row[j] as number) - (mean[j] as number)) ** 2, 0) / rows.length) || 1,
  );
  const X = rows.map((row) => Array.from({ length: D }, (_, j) => Math.fround(((row[j] as number) - (mean[j] as number)) / (std[j] as number))));
  const labels = rows.map((row) => NAMES[row[D] as number] as string);
  const Y = labels.map((label) => SORTED.indexOf(label));
  const standardized = `${header}\n${X.map((x, i) => [...x, labels[i]].join(',')).join('\n')}\n`;
  const raw = `${header}\n${rows.map((row, i) => [...row.slice(0, D), labels[i]].join(',')).join('\n')}\n`;
  return { X, Y, standardized, raw };
}

const data = digits();
const EPOCHS = 2;
const BATCH = 128; // 1,797 rows: 14 batches an epoch (the last of 5 rows), 28 steps

beforeAll(() => {
  writeFileSync(standardizedPath, data.standardized);
  writeFileSync(rawPath, data.raw);
});
afterAll(() => {
  killAll();
  directory.remove();
});

interface SoftmaxModel {
  kind: string;
  classes: string[];
  weights: number[][];
  bias: number[];
  metrics: { trainLoss: number; trainAccuracy: number };
  trainedOn: Record<string, unknown>;
}

/** The flags of a run in file order on the standardized copy (what the reference computes). */
function flagsOf(options: SoftmaxReferenceOptions): string[] {
  return [
    '--data',
    standardizedPath,
    '--no-shuffle',
    '--no-standardize',
    '--epochs',
    String(options.epochs),
    '--batch-size',
    String(options.batchSize),
    '--chunks',
    '8',
    '--lr',
    String(options.lr),
    '--l2',
    String(options.l2),
    '--optimizer',
    options.optimizer,
  ];
}

async function train(name: string, flags: string[], workers: number): Promise<{ model: SoftmaxModel; path: string; stderr: string }> {
  const path = join(directory.path, `${name}.json`);
  const result = await runCli(['train', ...flags, '--workers', String(workers), '--out', path], {}, 180_000);
  expect(result.code, result.stderr).toBe(0);
  return { model: JSON.parse(readFileSync(path, 'utf8')) as SoftmaxModel, path, stderr: result.stderr };
}

const SGD: SoftmaxReferenceOptions = { optimizer: 'sgd', lr: 0.5, l2: 0.001, epochs: EPOCHS, batchSize: BATCH };
const ADAM: SoftmaxReferenceOptions = { optimizer: 'adam', lr: 0.01, l2: 0.001, epochs: EPOCHS, batchSize: BATCH };

describe('dpt train on class names over 3 workers', () => {
  it.each([
    ['sgd', SGD],
    ['adam', ADAM],
  ] as const)('picks softmax by the labels and equals the float64 reference to 1e-9 (%s)', async (name, options) => {
    const { model, stderr } = await train(`names-${name}`, flagsOf(options), 3);
    expect(stderr).toMatch(/softmax regression over 10 classes/);
    expect(model.kind).toBe('softmax-regression');
    expect(model.classes).toEqual(SORTED);
    const reference = referenceTrainSoftmax(data.X, data.Y, 10, options);
    const difference = Math.max(...model.weights.map((row, k) => maxAbsDifference(row, reference.W[k] as number[])), maxAbsDifference(model.bias, reference.b));
    expect(difference).toBeLessThanOrEqual(1e-9);
    console.log(`softmax ${name} over 3 workers: max |dpt − reference| = ${difference.toExponential(2)}`); // for README and the closing note
    // A model that barely moved would prove little: it learned the digits.
    expect(model.metrics.trainAccuracy).toBeGreaterThan(0.9);
    expect(Math.abs(model.metrics.trainLoss - referenceSoftmaxLoss(data.X, data.Y, reference.W, reference.b))).toBeLessThanOrEqual(1e-9);
  });
});

describe('softmax with --class-weight balanced', () => {
  it('weights each row by n / (K·n_k) of its class and equals the weighted float64 reference to 1e-9 over 3 workers', async () => {
    // Imbalanced: only the first 20 rows of "zero" and 40 of "one" are kept (about 180 of each other digit).
    const kept: number[] = [];
    const seen = new Map<number, number>();
    data.Y.forEach((y, i) => {
      const name = SORTED[y] as string;
      const limit = name === 'zero' ? 20 : name === 'one' ? 40 : Number.POSITIVE_INFINITY;
      const count = seen.get(y) ?? 0;
      if (count < limit) kept.push(i);
      seen.set(y, count + 1);
    });
    const X = kept.map((i) => data.X[i] as number[]);
    const Y = kept.map((i) => data.Y[i] as number);
    const lines = data.standardized.trim().split('\n');
    const path = join(directory.path, 'digits-imbalanced.csv');
    writeFileSync(path, `${lines[0]}\n${kept.map((i) => lines[i + 1]).join('\n')}\n`);
    const options = { epochs: 2, batchSize: 128, lr: 0.5, l2: 0.001 };
    const flags = [...flagsOf({ ...options, optimizer: 'sgd' }), '--class-weight', 'balanced'];
    flags[1] = path;
    const { model, stderr } = await train('balanced', flags, 3);
    const reference = referenceTrainBalancedSoftmax(X, Y, 10, options);
    expect(Math.min(...reference.classWeights)).toBeLessThan(0.9);
    expect(Math.max(...reference.classWeights)).toBeGreaterThan(4); // "zero": 20 rows of 1,441
    expect(stderr).toContain(`class weights (balanced, n / (K·n_k)): ${reference.classWeights.join(', ')}`);
    const difference = Math.max(...model.weights.map((row, k) => maxAbsDifference(row, reference.W[k] as number[])), maxAbsDifference(model.bias, reference.b));
    expect(difference).toBeLessThanOrEqual(1e-9);
    console.log(`softmax, balanced class weights over 3 workers: max |dpt − reference| = ${difference.toExponential(2)}`);
    const unweighted = await train('unweighted', flags.slice(0, -2), 3);
    expect(maxAbsDifference(unweighted.model.bias, model.bias)).toBeGreaterThan(1e-3);
  });
});

describe('softmax with adam, shuffled, standardized by dpt, a validation split', () => {
  const flags = ['--data', rawPath, '--epochs', '3', '--batch-size', '100', '--val-split', '0.2', '--optimizer', 'adam', '--lr', '0.02', '--l2', '0.001'];
  let single = '';

  it('gives the same bits with 1, 2, 3 and 5 workers', async () => {
    single = modelHash((await train('w1', flags, 1)).path);
    for (const workers of [2, 3, 5]) expect(modelHash((await train(`w${workers}`, flags, workers)).path), `${workers} workers`).toBe(single);
  }, 300_000);

  it('gives the same bits with a worker SIGKILLed mid-run, and with the coordinator SIGKILLed mid-epoch and resumed', async () => {
    // 15 steps an epoch: the worker dies at step 8, the coordinator at step 20 (epoch 1).
    const whole = await trainOnCluster(directory.path, 'softmax-whole', flags, 3);
    if (single !== '') expect(modelHash(whole.out)).toBe(single);
    const workerKilled = await trainWithWorkerKilled(directory.path, 'softmax-worker-killed', flags, 8);
    expect(workerKilled.killedAt).toBeGreaterThanOrEqual(8);
    expect(workerKilled.leftLine).toMatch(/worker \d+(?: \([^)]*\))? left: disconnected/);
    expect(workerKilled.contributors.slice(workerKilled.killedAt + 1).every((count) => count === 2)).toBe(true);
    expect(workerKilled.digest).toBe(whole.digest);
    const coordinatorKilled = await trainWithCoordinatorKilled(directory.path, 'softmax-coordinator-killed', flags, 20, 3);
    expect(coordinatorKilled.killedAt).toBeGreaterThanOrEqual(20);
    expect(coordinatorKilled.checkpointStep % 15).not.toBe(0); // mid-epoch
    expect(coordinatorKilled.resumedAt).toBe(coordinatorKilled.checkpointStep);
    expect(coordinatorKilled.savedOptimizer.optimizer).toBe('adam');
    expect(coordinatorKilled.savedOptimizer.buffers.expAvg).toHaveLength(10 * 64 + 10);
    expect(coordinatorKilled.digest).toBe(whole.digest);
  }, 300_000);
});

describe('a softmax model read back', () => {
  it('predicts a class and 10 probabilities per row, and evaluate reports what training measured', async () => {
    const { path, model } = await train('read-back', flagsOf(SGD), 2);
    const predictions = join(directory.path, 'predictions.csv');
    const predicted = await runCli(['predict', '--model', path, '--data', standardizedPath, '--out', predictions]);
    expect(predicted.code, predicted.stderr).toBe(0);
    const [header, ...rows] = readFileSync(predictions, 'utf8').trim().split('\n');
    expect(header?.split(',')).toEqual(['prediction', ...SORTED.map((name) => `p_${name}`)]);
    expect(rows).toHaveLength(data.X.length);
    const evaluated = await runCli(['evaluate', '--model', path, '--data', standardizedPath, '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const report = JSON.parse(evaluated.stdout) as { accuracy: number; logLoss: number; confusion: number[][] };
    expect(report.accuracy).toBe(model.metrics.trainAccuracy);
    expect(Math.abs(report.logLoss - model.metrics.trainLoss)).toBeLessThanOrEqual(1e-9);
    const correct = rows.filter((row, i) => row.split(',')[0] === SORTED[data.Y[i] as number]).length;
    expect(correct / rows.length).toBe(report.accuracy);
    // The same rows as a multiclass .dpt (uint16 class indices): the same report.
    const dpt = join(directory.path, 'digits-named.dpt');
    const converted = await runCli(['data', 'convert', standardizedPath, dpt]);
    expect(converted.code, converted.stderr).toBe(0);
    const fromDpt = await runCli(['evaluate', '--model', path, '--data', dpt, '--json']);
    expect(fromDpt.code, fromDpt.stderr).toBe(0);
    expect(JSON.parse(fromDpt.stdout)).toEqual(report);
  });
});

describe('a model choice that does not fit the labels', () => {
  it('is refused before training, naming the flag (exit 2)', async () => {
    for (const [extra, message] of [
      [['--model', 'logistic'], /--model logistic needs labels that are exactly 0 and 1; these labels are "eight", "five"/],
      [['--max-classes', '5'], /more than --max-classes 5/],
    ] as const) {
      const result = await runCli(['train', ...flagsOf(SGD), ...extra, '--workers', '1']);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

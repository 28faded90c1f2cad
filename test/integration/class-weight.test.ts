// --class-weight balanced (issue #12): `dpt train` over real worker processes on an imbalanced
// 0/1 set derived from the bundled breast-cancer data (standardized here) equals an independent
// float64 reference to 1e-9, with sklearn's n / (K·n_k) weights recorded in the model file; the
// same bits with 1 and 3 workers and behind a relay; balanced and none differ; softmax (K = 2)
// equals its weighted reference; the weights count training rows only;
// a checkpoint of a balanced run is refused by an unweighted one; a bad mode is refused (exit 2).

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as ScheduleModule from '../../shared/schedule.js';
import { referenceBalancedWeights, referenceTrainBalanced, referenceTrainBalancedSoftmax } from '../helpers/class-weight-reference.js';
import { killAll, REPO, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';
import { maxAbsDifference, referenceTrain } from '../helpers/reference.js';

const { splitRows } = (await import(join(REPO, 'dist', 'shared', 'schedule.js'))) as typeof ScheduleModule;

const directory = temporaryDirectory();
const dataPath = join(directory.path, 'breast-cancer-imbalanced.csv');
const EPOCHS = 3;
const BATCH = 40;
const LR = 0.3;
const L2 = 0.01;

/**
 * The bundled data with 3 of every 4 class-1 rows dropped (53 : 357), standardized here
 * (z-scores, population std) and rounded to float32 as a .dpt stores it, so that dpt (with
 * --no-standardize) and the reference see the same numbers.
 */
function imbalancedData(): { X: number[][]; Y: number[]; csv: string } {
  const [header, ...lines] = readFileSync(join(REPO, 'data', 'breast_cancer.csv'), 'utf8')
    .trim()
    .split('\n');
  const all = lines.map((line) => line.split(',').map(Number));
  const D = (all[0]?.length ?? 1) - 1;
  let ones = 0;
  const rows = all.filter((row) => row[D] === 0 || ones++ % 4 === 0);
  const mean = new Array<number>(D).fill(0);
  const std = new Array<number>(D).fill(0);
  for (const row of rows) for (let j = 0; j < D; j++) mean[j] = (mean[j] as number) + (row[j] as number) / rows.length;
  for (const row of rows) for (let j = 0; j < D; j++) std[j] = (std[j] as number) + ((row[j] as number) - (mean[j] as number)) ** 2 / rows.length;
  const X = rows.map((row) => Array.from({ length: D }, (_, j) => Math.fround(((row[j] as number) - (mean[j] as number)) / Math.sqrt(std[j] as number))));
  const Y = rows.map((row) => row[D] as number);
  const csv = `${header}\n${X.map((x, i) => [...x, Y[i]].join(',')).join('\n')}\n`;
  return { X, Y, csv };
}

const data = imbalancedData();

beforeAll(() => writeFileSync(dataPath, data.csv));
afterAll(() => {
  killAll();
  directory.remove();
});

const FLAGS = [
  '--data',
  dataPath,
  '--no-shuffle',
  '--no-standardize',
  '--epochs',
  String(EPOCHS),
  '--batch-size',
  String(BATCH),
  '--lr',
  String(LR),
  '--l2',
  String(L2),
];

interface Trained {
  readonly path: string;
  readonly metrics: string;
  readonly model: { weights: number[]; bias: number; trainedOn: Record<string, unknown> };
}

async function train(name: string, workers: number, extra: string[]): Promise<Trained> {
  const path = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  // 8 chunks a batch so that every worker takes part (the default for B = 40 is one chunk).
  const result = await runCli(['train', ...FLAGS, '--chunks', '8', '--workers', String(workers), '--out', path, '--metrics', metrics, ...extra], {}, 180_000);
  expect(result.code, result.stderr).toBe(0);
  return { path, metrics, model: JSON.parse(readFileSync(path, 'utf8')) as Trained['model'] };
}

const runs = new Map<string, Trained>();

describe('dpt train --class-weight balanced (logistic, imbalanced 0/1 data)', () => {
  it('uses an imbalanced set (the weights are far from 1)', () => {
    const ones = data.Y.filter((y) => y === 1).length;
    expect(ones / data.Y.length).toBeLessThan(0.15);
  });

  it('over 2 workers equals the float64 reference to 1e-9, loss stream included, and records the weights', async () => {
    const run = await train('balanced-w2', 2, ['--class-weight', 'balanced']);
    runs.set('balanced', run);
    const reference = referenceTrainBalanced(data.X, data.Y, { epochs: EPOCHS, batchSize: BATCH, lr: LR, l2: L2 });
    expect(reference.classWeights[1]).toBeGreaterThan(3); // the rare class weighs several times a row of the common one
    expect(Math.max(...run.model.weights.map(Math.abs))).toBeGreaterThan(0.05); // the run moved
    const diff = { weights: maxAbsDifference(run.model.weights, reference.w), loss: maxAbsDifference(stepLosses(run.metrics), reference.losses) };
    console.log(`class-weight balanced vs float64 reference: max |diff| weights ${diff.weights.toExponential(3)}, step losses ${diff.loss.toExponential(3)}`);
    expect(diff.weights).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(run.model.bias - reference.b)).toBeLessThanOrEqual(1e-9);
    expect(diff.loss).toBeLessThanOrEqual(1e-9);
    expect(run.model.trainedOn.classWeight).toBe('balanced');
    expect(maxAbsDifference(run.model.trainedOn.classWeights as number[], reference.classWeights)).toBeLessThanOrEqual(1e-15);
  });

  it('gives the same bits with 1 and 3 workers', async () => {
    const two = runs.get('balanced') ?? (await train('balanced-again', 2, ['--class-weight', 'balanced']));
    const one = await train('balanced-w1', 1, ['--class-weight', 'balanced']);
    const three = await train('balanced-w3', 3, ['--class-weight', 'balanced']);
    expect(modelHash(one.path)).toBe(modelHash(two.path));
    expect(modelHash(three.path)).toBe(modelHash(two.path));
  });

  it('differs from --class-weight none, which equals the unweighted reference and records no weights', async () => {
    const balanced = runs.get('balanced') ?? (await train('balanced-again', 2, ['--class-weight', 'balanced']));
    const none = await train('none-w2', 2, ['--class-weight', 'none']);
    expect(modelHash(none.path)).not.toBe(modelHash(balanced.path));
    const reference = referenceTrain(data.X, data.Y, { epochs: EPOCHS, batchSize: BATCH, lr: LR, l2: L2 });
    expect(maxAbsDifference(none.model.weights, reference.w)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(none.model.bias - reference.b)).toBeLessThanOrEqual(1e-9);
    // 'none' is the rule of every older run: recorded as such or not at all, and no weights.
    expect([undefined, 'none']).toContain(none.model.trainedOn.classWeight);
    expect(none.model.trainedOn).not.toHaveProperty('classWeights');
  });

  it('counts the training rows of the seeded split only (--val-split)', async () => {
    const run = await train('balanced-split', 2, ['--class-weight', 'balanced', '--val-split', '0.3', '--seed', '7', '--epochs', '1']);
    const { train: trainRows } = splitRows(data.Y.length, 0.3, 7);
    const expected = referenceBalancedWeights(
      Array.from(trainRows, (row) => data.Y[row] as number),
      2,
    );
    const overAll = referenceBalancedWeights(data.Y, 2);
    expect(expected).not.toEqual(overAll); // the split changes the counts: the test can tell them apart
    expect(run.model.trainedOn.classWeights).toEqual(expected);
  });
});

describe('--class-weight balanced through a relay', () => {
  it('reaches the workers behind a relay with the welcome: the bits of dpt train over 2 workers', async () => {
    const direct = runs.get('balanced') ?? (await train('balanced-again', 2, ['--class-weight', 'balanced']));
    const out = join(directory.path, 'balanced-relayed.json');
    const token = 'class-weight-token';
    const patient = ['--heartbeat', '30000', '--step-timeout', '120000', '--backup-factor', '0'];
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--chunks',
      '8',
      '--class-weight',
      'balanced',
      ...patient,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '2',
      '--token',
      token,
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/, 60_000);
    const relay = startCli(['relay', '--connect', `ws://127.0.0.1:${port}`, '--host', '127.0.0.1', '--port', '0', '--token', token, ...patient]);
    const [, relayPort] = await relay.waitForLine(/^relay listening on ws:\/\/127\.0\.0\.1:(\d+)$/m, 60_000);
    const workers = [0, 1].map(() => startCli(['worker', '--connect', `ws://127.0.0.1:${relayPort}`, '--token', token, '--heartbeat', '30000']));
    const { code } = await coordinator.exited(180_000);
    expect(code, coordinator.stderr().slice(-3000)).toBe(0);
    expect((await relay.exited(30_000)).code, relay.stderr()).toBe(0);
    for (const worker of workers) expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    expect(coordinator.stderr()).toMatch(/^relay \d+(?: \([^)]*\))? now has 2 worker\(s\)$/m); // the workers were behind the relay
    expect(modelHash(out)).toBe(modelHash(direct.path));
  });
});

describe('dpt train --model softmax --class-weight balanced (K = 2 over the same 0/1 labels)', () => {
  it('equals the weighted softmax float64 reference to 1e-9 over 2 workers, and has the same bits over 1 and 3', async () => {
    const extra = ['--class-weight', 'balanced', '--model', 'softmax'];
    const runsOf: Trained[] = [];
    for (const workers of [1, 2, 3]) runsOf.push(await train(`softmax-balanced-w${workers}`, workers, extra));
    const models = runsOf.map((run) => run.model as unknown as { kind: string; weights: number[][]; bias: number[]; trainedOn: Record<string, unknown> });
    const two = models[1];
    if (two === undefined) throw new Error('expected three runs');
    expect(two.kind).toBe('softmax-regression');
    const reference = referenceTrainBalancedSoftmax(data.X, data.Y, 2, { epochs: EPOCHS, batchSize: BATCH, lr: LR, l2: L2 });
    const diff = Math.max(...two.weights.map((row, k) => maxAbsDifference(row, reference.W[k] as number[])), maxAbsDifference(two.bias, reference.b));
    console.log(`class-weight balanced softmax vs float64 reference: max |diff| ${diff.toExponential(3)}`);
    expect(diff).toBeLessThanOrEqual(1e-9);
    expect(Math.max(...(two.weights[0] as number[]).map(Math.abs))).toBeGreaterThan(0.05); // the run moved
    expect(maxAbsDifference(two.trainedOn.classWeights as number[], reference.classWeights)).toBeLessThanOrEqual(1e-15);
    // JSON numbers round-trip float64 exactly: equal text, equal bits.
    const text = (model: { weights: number[][]; bias: number[] } | undefined): string => JSON.stringify([model?.weights, model?.bias]);
    expect(text(models[0])).toBe(text(two));
    expect(text(models[2])).toBe(text(two));
  });
});

describe('--class-weight refusals', () => {
  it('refuses a checkpoint of a balanced run in an unweighted one, naming the field (exit 2)', async () => {
    const checkpoint = join(directory.path, 'balanced.ckpt');
    await train('balanced-checkpointed', 1, ['--class-weight', 'balanced', '--checkpoint', checkpoint]);
    const result = await runCli(['train', ...FLAGS, '--chunks', '8', '--workers', '1', '--resume', checkpoint], {}, 120_000);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/classWeight \(checkpoint: balanced, now: (undefined|none)\) differs/);
  });

  it('refuses an unknown mode before training, naming the flag, without a stack trace (exit 2)', async () => {
    const result = await runCli(['train', ...FLAGS, '--workers', '1', '--class-weight', 'inverse']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--class-weight <mode>.*'inverse' is invalid.*none.*balanced/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

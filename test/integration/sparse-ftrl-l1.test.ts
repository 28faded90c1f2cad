// FTRL-Proximal (--optimizer ftrl) and sgd's L1 proximal step (--l1) on sparse data (issue #13), end
// to end with real processes: a LIBSVM file trains over 2 and 3 workers to the model of an
// independent float64 reference written here (its own parsing, its own batching, the paper's FTRL
// formulas and the dense proximal step, every coordinate every step, over dense loops); the same bits with 1, 2 and 3 workers, a worker killed and with
// the coordinator SIGKILLed mid-epoch and resumed from its checkpoint (FTRL's z and n in it); bad
// combinations fail with exit 2 and one line naming the flag.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';
import { trainOnCluster, trainWithCoordinatorKilled, trainWithWorkerKilled } from '../helpers/cluster-runs.js';
import { libsvmText, parseLibsvmReference, type ReferenceRows } from '../helpers/libsvm-text.js';
import { stepLosses } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

const ROWS = 400;
const MAX_INDEX = 2000;

type Rule =
  /** FTRL-Proximal (McMahan et al. 2013, Algorithm 1) per coordinate, every coordinate every step; the bias without L1 or L2. */
  | { readonly name: 'ftrl'; readonly alpha: number; readonly beta: number; readonly l1: number; readonly l2: number }
  /** sgd with L2 and the dense proximal step: w ← sgn(u)·max(0, |u| − η·λ1) with u = w − η·(g + λ2·w), for EVERY weight every step. */
  | { readonly name: 'sgd'; readonly lr: number; readonly l1: number; readonly l2: number };

/** Plain float64 mini-batch training over rows in file order. Returns the weights, the bias and each step's mean loss. */
function referenceTrain(rows: ReferenceRows, epochs: number, batchSize: number, rule: Rule) {
  const { D, x, y } = rows;
  const w = new Array<number>(D + 1).fill(0); // the bias at D
  const z = new Array<number>(D + 1).fill(0);
  const nSum = new Array<number>(D + 1).fill(0);
  const losses: number[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let start = 0; start < x.length; start += batchSize) {
      const end = Math.min(start + batchSize, x.length);
      const n = end - start;
      const g = new Array<number>(D + 1).fill(0);
      let loss = 0;
      for (let i = start; i < end; i++) {
        let s = w[D]!;
        for (const [j, v] of x[i]!) s += w[j]! * v;
        const a = 1 / (1 + Math.exp(-s));
        loss += -(y[i]! * Math.log(a) + (1 - y[i]!) * Math.log(1 - a));
        for (const [j, v] of x[i]!) g[j]! += (a - y[i]!) * v;
        g[D]! += a - y[i]!;
      }
      for (let j = 0; j <= D; j++) {
        const gj = g[j]! / n;
        const isBias = j === D;
        if (rule.name === 'ftrl') {
          const l1 = isBias ? 0 : rule.l1;
          const l2 = isBias ? 0 : rule.l2;
          const sigma = (Math.sqrt(nSum[j]! + gj * gj) - Math.sqrt(nSum[j]!)) / rule.alpha;
          z[j] = z[j]! + gj - sigma * w[j]!;
          nSum[j] = nSum[j]! + gj * gj;
          w[j] = Math.abs(z[j]!) <= l1 ? 0 : -(z[j]! - Math.sign(z[j]!) * l1) / ((rule.beta + Math.sqrt(nSum[j]!)) / rule.alpha + l2);
        } else if (isBias) {
          w[j] = w[j]! - rule.lr * gj;
        } else {
          const stepped = w[j]! - rule.lr * (gj + rule.l2 * w[j]!);
          w[j] = Math.sign(stepped) * Math.max(0, Math.abs(stepped) - rule.lr * rule.l1);
        }
      }
      losses.push(loss / n);
    }
  }
  return { w: w.slice(0, D), b: w[D]!, losses };
}

/** The weights of a model file, dense (D numbers) whichever form it holds them in. */
function denseWeights(path: string, D: number): { w: number[]; b: number } {
  const model = JSON.parse(readFileSync(path, 'utf8')) as { weights: number[] | { indices: number[]; values: number[] }; bias: number };
  const { weights } = model;
  if (Array.isArray(weights)) return { w: weights, b: model.bias };
  const w = new Array<number>(D).fill(0);
  weights.indices.forEach((j, k) => {
    w[j] = weights.values[k]!;
  });
  return { w, b: model.bias };
}

const maxAbsDiff = (a: readonly number[], b: readonly number[]): number => a.reduce((max, value, i) => Math.max(max, Math.abs(value - b[i]!)), 0);

let svm = '';
let rows: ReferenceRows;
beforeAll(() => {
  const text = libsvmText({ rows: ROWS, maxIndex: MAX_INDEX, seed: 97, bias: -0.3 });
  svm = join(directory.path, 'rows.svm');
  writeFileSync(svm, text);
  rows = parseLibsvmReference(text);
});

describe('ftrl and sgd with --l1 match an independent float64 reference', () => {
  it.each([
    [
      'ftrl with L1 and L2',
      3,
      ['--optimizer', 'ftrl', '--lr', '0.5', '--ftrl-beta', '1', '--l1', '0.005', '--l2', '0.01'],
      { name: 'ftrl', alpha: 0.5, beta: 1, l1: 0.005, l2: 0.01 },
    ],
    ['sgd with L1 and L2', 2, ['--optimizer', 'sgd', '--lr', '0.5', '--l1', '0.001', '--l2', '0.01'], { name: 'sgd', lr: 0.5, l1: 0.001, l2: 0.01 }],
  ] as const)(
    'LIBSVM, %s, over %d workers',
    async (name, workers, flags, rule) => {
      const id = name.replace(/[^a-z0-9]+/gi, '-');
      const out = join(directory.path, `${id}.json`);
      const metrics = join(directory.path, `${id}.jsonl`);
      const args = ['--data', svm, '--epochs', '3', '--batch-size', '40', '--chunks', '4', '--no-shuffle', ...flags];
      const result = await runCli(['train', ...args, '--workers', String(workers), '--out', out, '--metrics', metrics], {}, 180_000);
      expect(result.code, result.stderr).toBe(0);
      const reference = referenceTrain(rows, 3, 40, rule);
      const model = denseWeights(out, rows.D);
      expect(model.w).toHaveLength(rows.D);
      // It learned something, and L1 made some touched weights exactly 0 (a model left near zero would match anything loosely).
      expect(Math.max(...reference.w.map(Math.abs))).toBeGreaterThan(0.1);
      const touchedZeros = reference.w.filter((w, j) => w === 0 && rows.x.some((row) => row.some(([k]) => k === j))).length;
      expect(touchedZeros, 'touched weights set to 0 by L1').toBeGreaterThan(10);
      const diff = Math.max(maxAbsDiff(model.w, reference.w), Math.abs(model.b - reference.b));
      expect(diff, `max |diff| of the weights and bias (${name})`).toBeLessThanOrEqual(1e-9);
      for (let j = 0; j < rows.D; j++) expect(model.w[j] === 0, `w[${j}] is 0 in one model only`).toBe(reference.w[j] === 0);
      const losses = stepLosses(metrics);
      expect(losses).toHaveLength(reference.losses.length);
      expect(maxAbsDiff(losses, reference.losses), 'max |diff| of the step losses').toBeLessThanOrEqual(1e-9);
      process.stdout.write(`${name}: max |diff| against the reference ${diff.toExponential(2)}\n`);
    },
    240_000,
  );
});

// 400 rows, 40 held out: 360 training rows, 8 batches of 45 per epoch, 24 steps.
const EPOCHS = 3;
const STEPS_PER_EPOCH = 8;
const BITS_FLAGS = (): string[] => [
  '--data',
  svm,
  '--epochs',
  String(EPOCHS),
  '--batch-size',
  '45',
  '--chunks',
  '8',
  '--lr',
  '0.5',
  '--val-split',
  '0.1',
  '--seed',
  '7',
];

describe('ftrl and sgd with --l1 give the same bits on any cluster and across a resumed coordinator', () => {
  it.each([
    ['ftrl', ['--optimizer', 'ftrl', '--l1', '0.002', '--l2', '0.01', '--ftrl-beta', '0.5'], ['z', 'n']],
    ['sgd with L1', ['--optimizer', 'sgd', '--l1', '0.001', '--l2', '0.02'], ['penalty', 'penaltyAt']],
  ] as const)(
    '%s: 1, 2 and 3 workers, a worker killed, the coordinator killed and resumed',
    async (name, flags, buffers) => {
      const all = [...BITS_FLAGS(), ...flags];
      const id = name.replace(/[^a-z0-9]+/gi, '-');
      const [one, two, three, workerKilled, coordinatorKilled] = await Promise.all([
        trainOnCluster(directory.path, `${id}-w1`, all, 1),
        trainOnCluster(directory.path, `${id}-w2`, all, 2),
        trainOnCluster(directory.path, `${id}-w3`, all, 3),
        trainWithWorkerKilled(directory.path, `${id}-worker-killed`, all, 9),
        trainWithCoordinatorKilled(directory.path, `${id}-coordinator-killed`, all, 13, 4),
      ]);
      expect(two.losses).toHaveLength(EPOCHS * STEPS_PER_EPOCH);
      const trained = JSON.parse(readFileSync(two.out, 'utf8')) as { trainedOn: Record<string, unknown> };
      expect([trained.trainedOn.sparse, trained.trainedOn.optimizer, trained.trainedOn.l1]).toEqual([true, flags[1], Number(flags[3])]);

      expect(workerKilled.killedAt).toBeGreaterThanOrEqual(9);
      expect(workerKilled.leftLine).toMatch(/left: disconnected/);

      const { killedAt, checkpointStep, resumedAt, savedOptimizer } = coordinatorKilled;
      expect(killedAt).toBeGreaterThanOrEqual(13);
      expect(checkpointStep % STEPS_PER_EPOCH).not.toBe(0);
      expect(resumedAt).toBe(checkpointStep);
      expect(Object.keys(savedOptimizer.buffers)).toEqual(buffers);

      for (const [cluster, run] of [
        ['1 worker', one],
        ['3 workers', three],
        ['a worker killed', workerKilled],
        ['the coordinator killed and resumed', coordinatorKilled],
      ] as const) {
        expect(run.digest, `${name}, ${cluster}: model file`).toBe(two.digest);
        expect(run.params, `${name}, ${cluster}: parameters`).toBe(two.params);
        expect(run.losses, `${name}, ${cluster}: loss stream`).toEqual(two.losses);
      }
    },
    400_000,
  );
});

describe('bad ftrl and --l1 flags fail with exit 2 and one line naming the flag', () => {
  it('refuses them on sparse and on dense data', async () => {
    const csv = join(directory.path, 'dense.csv');
    writeFileSync(csv, 'a,b,label\n1,2,0\n3,4,1\n2,2,0\n');
    for (const [data, flags, message] of [
      [svm, ['--optimizer', 'adagrad', '--l1', '0.1'], /--l1 applies to --optimizer sgd or ftrl, not adagrad/],
      [svm, ['--l1', '-1'], /--l1/],
      [svm, ['--optimizer', 'ftrl', '--ftrl-beta', '0'], /--ftrl-beta must be a positive finite number, got 0/],
      [svm, ['--optimizer', 'ftrl', '--lr-schedule', 'cosine'], /--lr-schedule cosine: --optimizer ftrl takes a constant α/],
      [csv, ['--optimizer', 'ftrl'], /--optimizer ftrl trains sparse data only/],
      [csv, ['--l1', '0.1'], /--l1 trains sparse data only/],
    ] as const) {
      const result = await runCli(['train', '--data', data, ...flags, '--workers', '1', '--epochs', '1'], {}, 120_000);
      expect(result.code, `${flags.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  }, 400_000);
});

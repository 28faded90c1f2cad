// The end-to-end bench's data side (bench/e2e-data.ts): the fixed split (last 20 % held out), the
// training rows' standardization written for the peers, and the one evaluator every model is
// scored by, checked against plain computations written here (no Python, no tool).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateModel, loadEvaluationData, preparedFiles, prepareSplit } from '../../bench/e2e-data.js';
import { budgetSteps, type ToolRun } from '../../bench/e2e-runners.js';
import { budgetsOf, formatBudget, parseBudgets, timeToTarget } from '../../bench/end-to-end.js';

const directory = mkdtempSync(join(tmpdir(), 'dpt-e2e-data-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** 10 rows: a (0…9), b (one-hot-like), c constant; labels alternate in pairs. */
const ROWS = Array.from({ length: 10 }, (_, i) => [i, i % 3 === 0 ? 1 : 0, 5, Math.floor(i / 2) % 2]);
const CSV = `a,b,c,label\n${ROWS.map((row) => row.join(',')).join('\n')}\n`;

async function prepare(name: string) {
  const source = join(directory, `${name}.csv.gz`);
  writeFileSync(source, gzipSync(CSV));
  const cache = join(directory, `${name}-cache`);
  const prepared = await prepareSplit(source, cache, () => {});
  return { source, cache, prepared, files: preparedFiles(cache) };
}

describe('prepareSplit', () => {
  it('holds out the last 20 % of the rows and writes the training rows byte for byte for dpt', async () => {
    const { prepared, files } = await prepare('split');
    expect(prepared.rows).toBe(10);
    expect(prepared.trainRows).toBe(8);
    expect(readFileSync(files.trainCsv, 'utf8')).toBe(`${CSV.split('\n').slice(0, 9).join('\n')}\n`);
    expect(prepared.trainPositives).toBe(ROWS.slice(0, 8).filter((row) => row[3] === 1).length);
    expect(prepared.testPositives).toBe(ROWS.slice(8).filter((row) => row[3] === 1).length);
  });

  it('standardizes with the training rows’ mean and population std (a constant column gets std 1)', async () => {
    const { prepared, files } = await prepare('standardize');
    const train = ROWS.slice(0, 8);
    for (let j = 0; j < 3; j++) {
      const values = train.map((row) => row[j]!);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
      expect(prepared.mean[j]).toBeCloseTo(mean, 12);
      expect(prepared.std[j]).toBeCloseTo(variance > 0 ? Math.sqrt(variance) : 1, 12);
    }
    const bytes = readFileSync(files.trainStandardized);
    const standardized = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    expect(standardized.length).toBe(8 * 3);
    const svm = readFileSync(files.trainSvm, 'utf8').trim().split('\n');
    expect(svm).toHaveLength(8);
    train.forEach((row, i) => {
      const fields = svm[i]!.split(' ');
      expect(fields[0]).toBe(String(row[3]));
      for (let j = 0; j < 3; j++) {
        const expected = Math.fround((row[j]! - prepared.mean[j]!) / prepared.std[j]!);
        expect(standardized[i * 3 + j]).toBe(expected);
        // liblinear's text reads back as the same float32 the numpy peers read.
        expect(fields[j + 1]!.startsWith(`${j + 1}:`)).toBe(true);
        expect(Math.fround(Number(fields[j + 1]!.slice(String(j + 1).length + 1)))).toBe(expected);
      }
    });
  });

  it('reuses the prepared files of the same source, and refuses a file without a label column last', async () => {
    const { source, cache, prepared } = await prepare('reuse');
    expect(await prepareSplit(source, cache, () => {})).toEqual(prepared);
    const bad = join(directory, 'bad.csv');
    writeFileSync(bad, 'label,a\n1,2\n');
    await expect(prepareSplit(bad, join(directory, 'bad-cache'), () => {})).rejects.toThrow(/last column is 'a', not 'label'/);
  });
});

describe('evaluateModel', () => {
  it('gives the log-loss of σ(w·(x − mean)/std + b), the objective with λ/2·‖w‖², and the accuracy', async () => {
    const { prepared, files } = await prepare('evaluate');
    const data = loadEvaluationData(prepared, files);
    const model = { w: [0.7, -1.3, 0.2], b: 0.1, mean: [4, 0.5, 5], std: [2, 0.5, 1] };
    const lambda = 0.01;
    // Independent: p = 1/(1 + e^(−z)), −[y·log p + (1 − y)·log(1 − p)] per row.
    const loss = (rows: number[][]): { loss: number; accuracy: number } => {
      let sum = 0;
      let correct = 0;
      for (const row of rows) {
        let z = model.b;
        for (let j = 0; j < 3; j++) z += (model.w[j]! * (row[j]! - model.mean[j]!)) / model.std[j]!;
        const p = 1 / (1 + Math.exp(-z));
        sum += -(row[3]! * Math.log(p) + (1 - row[3]!) * Math.log(1 - p));
        if ((p > 0.5 ? 1 : 0) === row[3]) correct++;
      }
      return { loss: sum / rows.length, accuracy: correct / rows.length };
    };
    const losses = evaluateModel(model, data, lambda);
    const train = loss(ROWS.slice(0, 8));
    const heldOut = loss(ROWS.slice(8));
    expect(losses.trainLoss).toBeCloseTo(train.loss, 12);
    expect(losses.objective).toBeCloseTo(train.loss + (lambda / 2) * (0.49 + 1.69 + 0.04), 12);
    expect(losses.heldOutLoss).toBeCloseTo(heldOut.loss, 12);
    expect(losses.heldOutAccuracy).toBe(heldOut.accuracy);
  });

  it('stays finite where σ(z) rounds to 0 or 1 (softplus form, no log of a rounded p)', async () => {
    const { prepared, files } = await prepare('extreme');
    const data = loadEvaluationData(prepared, files);
    const losses = evaluateModel({ w: [1000, 0, 0], b: 0, mean: [0, 0, 0], std: [1, 1, 1] }, data, 0);
    // Row 1 (a = 1, y = 0): z = 1000, loss 1000; row 0: z = 0, loss log 2; rows with y = 1 and z ≥ 2000: ~0.
    expect(Number.isFinite(losses.trainLoss)).toBe(true);
    expect(losses.trainLoss).toBeGreaterThan(1000 / 8);
  });

  it('refuses a model whose weight count is not the data’s', async () => {
    const { prepared, files } = await prepare('width');
    expect(() => evaluateModel({ w: [1, 2], b: 0, mean: [0, 0], std: [1, 1] }, loadEvaluationData(prepared, files), 0)).toThrow(/2 weights for 3 features/);
  });
});

describe('the budgets of the time-to-target ladder', () => {
  it('parses fractions and whole epochs, sorted and once each, and refuses the rest naming the item', () => {
    expect(parseBudgets('2,1/4,0.5,1/32,1,0.5')).toEqual([1 / 32, 1 / 4, 0.5, 1, 2]);
    for (const bad of ['0', '1.5', '-1/4', 'x', '1/0', '']) expect(() => parseBudgets(`1,${bad}`)).toThrow(`'${bad}'`);
    expect(budgetsOf({ budgets: null, epochs: 2 })).toEqual([1 / 32, 1 / 16, 1 / 4, 1 / 2, 3 / 4, 1, 2]);
    expect(budgetsOf({ budgets: [0.5], epochs: 2 })).toEqual([0.5]);
    expect([1 / 32, 3 / 4, 1, 2, 0.3].map(formatBudget)).toEqual(['1/32', '3/4', '1', '2', '0.3']);
  });

  it('turns a budget into whole epochs to schedule and the steps to stop after', () => {
    // flights_3m's 2,400,000 training rows at B = 256: 9,375 steps an epoch.
    expect(budgetSteps(1 / 32, 2_400_000, 256)).toEqual({ epochs: 1, maxSteps: 293 });
    expect(budgetSteps(3 / 4, 2_400_000, 256)).toEqual({ epochs: 1, maxSteps: 7031 });
    expect(budgetSteps(2, 2_400_000, 256)).toEqual({ epochs: 2, maxSteps: null });
    // A last partial batch is a step: ⌈1000 / 300⌉ = 4 steps an epoch.
    expect(budgetSteps(0.5, 1000, 300)).toEqual({ epochs: 1, maxSteps: 2 });
  });
});

describe('time to target', () => {
  const run = (epochs: number, trial: number, wallSeconds: number, heldOutLoss: number): ToolRun => ({
    tool: 't',
    epochs,
    trial,
    wallSeconds,
    losses: { trainLoss: heldOutLoss, objective: heldOutLoss, heldOutLoss, heldOutAccuracy: 0.5 },
    phases: {},
  });

  it('is the fastest run of the trial that reaches the target, whatever its budget; null when none does', () => {
    const runs = [run(0.25, 0, 2.0, 0.6), run(0.75, 0, 2.9, 0.49), run(1, 0, 2.4, 0.48), run(2, 0, 3.5, 0.47), run(0.75, 1, 2.1, 0.49)];
    expect(timeToTarget(runs, 0, 0.5)).toEqual({ seconds: 2.4, epochs: 1 });
    expect(timeToTarget(runs, 1, 0.5)).toEqual({ seconds: 2.1, epochs: 0.75 });
    expect(timeToTarget(runs, 0, 0.4)).toBeNull();
  });
});

// `dpt predict` and `dpt evaluate` with a softmax model file written by hand (issue #12): the
// predicted classes, the probabilities and every metric compared with a float64 computation of
// this file, on a CSV whose labels are class names (one with a comma and a quote).

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

function file(name: string, text: string): string {
  const path = join(directory.path, name);
  writeFileSync(path, text);
  return path;
}

const CLASSES = ['setosa', 'versicolor "v"', 'virginica, dark'];
const FEATURES = ['f1', 'f2', 'f3'];
const MEAN = [1, -2, 0.5];
const STD = [2, 0.5, 3];
const W = [
  [1.5, -0.25, 0.75],
  [-0.5, 1.25, 0.1],
  [0.2, -1, -1.5],
];
const B = [0.1, -0.3, 0.05];

/** The model file as a trainer would write it, but every number chosen here. */
function modelText(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    format: 'dpt-model',
    version: 1,
    kind: 'softmax-regression',
    classes: CLASSES,
    weights: W,
    bias: B,
    features: FEATURES,
    label: 'species',
    standardization: { mean: MEAN, std: STD },
    trainedOn: {},
    metrics: {},
    ...overrides,
  });
}

/** Seeded values with two decimals (exact in the CSV text, rounded to float32 when read). */
let state = 2026;
function next(): number {
  state = (state * 48_271) % 2_147_483_647;
  return state / 2_147_483_647;
}

/** One row of the reference: z_k = b_k + Σ_j W_kj·s_j with s_j = float32((float32(x_j) − mean_j) / std_j) as the CLI stores it. */
function reference(x: readonly number[]): { z: number[]; p: number[]; predicted: number } {
  const s = x.map((value, j) => Math.fround((Math.fround(value) - MEAN[j]!) / STD[j]!));
  const z = W.map((row, k) => row.reduce((sum, w, j) => sum + w * s[j]!, B[k]!));
  const m = Math.max(...z);
  const e = z.map((zk) => Math.exp(zk - m));
  const total = e.reduce((sum, ek) => sum + ek, 0);
  return { z, p: e.map((ek) => ek / total), predicted: z.indexOf(m) };
}

/** Splits one CSV line (RFC 4180 quoting, no line breaks inside). */
function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}

const quote = (text: string): string => (/[",]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);

// 80 rows, columns in another order than the model's, an extra column, labels by name: the
// reference prediction for three rows in four, another class for the rest.
const ROWS = 80;
const xs = Array.from({ length: ROWS }, () => [0, 1, 2].map((j) => Math.round((next() * 8 - 4 + MEAN[j]!) * 100) / 100));
const truth = xs.map((x, row) => (row % 4 === 3 ? (reference(x).predicted + 1 + (row % 8 === 3 ? 1 : 0)) % 3 : reference(x).predicted));
const csv = [
  'id,f2,species,f1,f3',
  ...xs.map((x, row) => `${row},${x[1]},${quote(row % 5 === 0 ? ` ${CLASSES[truth[row]!]} ` : CLASSES[truth[row]!]!)},${x[0]},${x[2]}`),
].join('\n');

describe('dpt predict with a softmax model', () => {
  it('writes the predicted class and one probability per class, equal to a float64 computation', async () => {
    const model = file('model.json', modelText());
    const data = file('iris-like.csv', `${csv}\n`);
    const out = join(directory.path, 'predictions.csv');
    const result = await runCli(['predict', '--model', model, '--data', data, '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('prediction,p_setosa,"p_versicolor ""v""","p_virginica, dark"');
    expect(splitCsvLine(lines[0]!)).toEqual(['prediction', ...CLASSES.map((c) => `p_${c}`)]);
    expect(lines).toHaveLength(ROWS + 1);
    let maxDifference = 0;
    const predictedCounts = [0, 0, 0];
    lines.slice(1).forEach((line, row) => {
      const [predicted, ...p] = splitCsvLine(line);
      const expected = reference(xs[row]!);
      expect(predicted).toBe(CLASSES[expected.predicted]);
      predictedCounts[expected.predicted]!++;
      expect(p).toHaveLength(3);
      p.forEach((value, k) => {
        maxDifference = Math.max(maxDifference, Math.abs(Number(value) - expected.p[k]!));
      });
    });
    expect(maxDifference).toBeLessThan(1e-12);
    expect(predictedCounts.every((count) => count > 0)).toBe(true); // every class is predicted somewhere
  });
});

describe('dpt evaluate with a softmax model', () => {
  /** Every metric of the report, computed here from the reference. */
  function expectedReport() {
    const confusion = [0, 1, 2].map(() => [0, 0, 0]);
    let lossSum = 0;
    xs.forEach((x, row) => {
      const { z, predicted } = reference(x);
      const m = Math.max(...z);
      lossSum += m + Math.log(z.reduce((sum, zk) => sum + Math.exp(zk - m), 0)) - z[truth[row]!]!;
      confusion[truth[row]!]![predicted]!++;
    });
    const perClass = CLASSES.map((name, k) => {
      const tp = confusion[k]![k]!;
      const support = confusion[k]!.reduce((a, b) => a + b, 0);
      const predicted = confusion.reduce((sum, counts) => sum + counts[k]!, 0);
      const precision = predicted === 0 ? 0 : tp / predicted;
      const recall = support === 0 ? 0 : tp / support;
      return { class: name, precision, recall, f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall), support, predicted };
    });
    const mean = (pick: (c: (typeof perClass)[number]) => number): number => perClass.reduce((sum, c) => sum + pick(c), 0) / 3;
    return {
      rows: ROWS,
      logLoss: lossSum / ROWS,
      accuracy: confusion.reduce((sum, counts, k) => sum + counts[k]!, 0) / ROWS,
      perClass,
      macro: { precision: mean((c) => c.precision), recall: mean((c) => c.recall), f1: mean((c) => c.f1) },
      confusion,
    };
  }

  it('prints accuracy, log-loss, per-class and macro precision/recall/F1 and the confusion matrix (--json)', async () => {
    const model = file('model-json.json', modelText());
    const data = file('eval.csv', `${csv}\n`);
    const result = await runCli(['evaluate', '--model', model, '--data', data, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    const expected = expectedReport();
    expect(report.kind).toBe('softmax-regression');
    expect(report.classes).toEqual(CLASSES);
    expect(report.rows).toBe(ROWS);
    expect(report.confusion).toEqual(expected.confusion);
    expect(report.accuracy).toBe(expected.accuracy);
    expect(expected.accuracy).toBeGreaterThan(0.5);
    expect(expected.accuracy).toBeLessThan(1); // some rows are wrong on purpose
    expect(Math.abs(report.logLoss - expected.logLoss)).toBeLessThan(1e-12);
    expect(report.perClass).toHaveLength(3);
    report.perClass.forEach((c: Record<string, unknown>, k: number) => {
      const e = expected.perClass[k]!;
      expect([c.class, c.support, c.predicted]).toEqual([e.class, e.support, e.predicted]);
      for (const name of ['precision', 'recall', 'f1'] as const) expect(c[name] as number).toBeCloseTo(e[name], 14);
    });
    for (const name of ['precision', 'recall', 'f1'] as const) expect(report.macro[name]).toBeCloseTo(expected.macro[name], 14);
    expect(report.macro.classes).toBe(3);
  });

  it('prints the same numbers as a table, and the confusion matrix with true classes as rows', async () => {
    const model = file('model-text.json', modelText());
    const data = file('eval-text.csv', `${csv}\n`);
    const result = await runCli(['evaluate', '--model', model, '--data', data]);
    expect(result.code, result.stderr).toBe(0);
    const expected = expectedReport();
    expect(result.stdout).toContain(`accuracy   ${expected.accuracy.toFixed(4)}\n`);
    expect(result.stdout).toContain(`log-loss   ${expected.logLoss.toFixed(6)}\n`);
    const lines = result.stdout.split('\n');
    const setosa = lines.find((line) => line.startsWith('setosa '));
    expect(setosa?.trim().split(/\s+/)).toEqual([
      'setosa',
      expected.perClass[0]!.precision.toFixed(4),
      expected.perClass[0]!.recall.toFixed(4),
      expected.perClass[0]!.f1.toFixed(4),
      String(expected.perClass[0]!.support),
    ]);
    expect(lines.some((line) => line.startsWith('macro avg'))).toBe(true);
    const matrix = lines.slice(lines.indexOf('confusion matrix (rows: true class, columns: predicted class)') + 2);
    const darkRow = matrix.find((line) => line.startsWith('virginica, dark'));
    expect(darkRow?.slice('virginica, dark'.length).trim().split(/\s+/).map(Number)).toEqual(expected.confusion[2]);
  });

  it('refuses a label that is not one of the classes: exit 2, naming file, line and column', async () => {
    const model = file('model-unknown.json', modelText());
    const lines = csv.split('\n');
    lines[4] = '3,0.5,versicolor,1,2'; // line 5 of the file: 'versicolor' is not 'versicolor "v"'
    const data = file('unknown-label.csv', `${lines.join('\n')}\n`);
    const result = await runCli(['evaluate', '--model', model, '--data', data]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `dpt: ${data}, line 5, column 3: label 'versicolor' in column 'species' is not one of the model's classes ('setosa', 'versicolor "v"', 'virginica, dark') (DPT_DATASET)\n`,
    );
    // predict reads no label: the same file predicts.
    expect((await runCli(['predict', '--model', model, '--data', data])).code).toBe(0);
  });

  it('refuses a model of one class (K = 1) in predict and evaluate: exit 2, naming the field', async () => {
    const model = file('model-k1.json', modelText({ classes: ['setosa'], weights: [W[0]], bias: [0] }));
    const data = file('k1.csv', `${csv}\n`);
    for (const command of ['predict', 'evaluate']) {
      const result = await runCli([command, '--model', model, '--data', data]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`dpt: ${model}: field 'classes' must be an array of at least 2 class labels (DPT_MODEL_FILE)\n`);
      expect(result.stdout).toBe('');
    }
  });

  it('evaluates a .dpt file (0/1 labels) like its CSV when 0 and 1 are classes of the model, and refuses it otherwise', async () => {
    // Numeric classes 0, 1, 2: the file's 0/1 labels are classes 0 and 1; nothing is labelled 2.
    const numeric = modelText({ classes: [0, 1, 2], label: 'label' });
    const model = file('model-numeric.json', numeric);
    const labelled = ['f1,f2,f3,label', ...xs.map((x, row) => `${x[0]},${x[1]},${x[2]},${row % 3 === 0 ? 1 : 0}`)].join('\n');
    const data = file('binary.csv', `${labelled}\n`);
    const binary = join(directory.path, 'binary.dpt');
    const convert = await runCli(['data', 'convert', data, binary]);
    expect(convert.code, convert.stderr).toBe(0);
    const fromCsv = await runCli(['evaluate', '--model', model, '--data', data, '--json']);
    const fromBinary = await runCli(['evaluate', '--model', model, '--data', binary, '--json']);
    expect(fromCsv.code, fromCsv.stderr).toBe(0);
    expect(fromBinary.code, fromBinary.stderr).toBe(0);
    expect(JSON.parse(fromBinary.stdout)).toEqual(JSON.parse(fromCsv.stdout));
    expect(JSON.parse(fromCsv.stdout).perClass[2].support).toBe(0);
    const predictCsv = await runCli(['predict', '--model', model, '--data', data]);
    const predictBinary = await runCli(['predict', '--model', model, '--data', binary]);
    expect(predictBinary.code, predictBinary.stderr).toBe(0);
    expect(predictBinary.stdout).toBe(predictCsv.stdout);
    expect(predictCsv.stdout.split('\n')[0]).toBe('prediction,p_0,p_1,p_2');
    const named = file('model-named.json', modelText());
    const refused = await runCli(['evaluate', '--model', named, '--data', binary]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^dpt: .*binary\.dpt: row 1: label 1 is not one of the model's classes .*\(DPT_DATASET\)\n$/);
  });
});

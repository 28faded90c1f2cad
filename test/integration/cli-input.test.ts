// Bad files and bad flags through the real CLI: exit code 2 and one line that names the problem.

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

describe('dpt train with a bad data file', () => {
  it.each([
    ['empty', '', /empty/],
    ['header-only', 'a,b,label\n', /line 2: the file has a header but no data rows/],
    ['non-numeric', 'a,b,label\n1,2,0\n3,x7,1\n', /line 3, column 2: column 'b' 'x7' is not a finite number/],
    ['empty-cell', 'a,b,label\n1,2,0\n,4,1\n', /line 3, column 1: column 'a' is empty/],
    ['wrong-columns', 'a,b,label\n1,2,0\n1,2,3,4\n', /line 3, column 4: expected 3 columns/],
    ['bad-label', 'a,b,label\n1,2,0\n1,2,0.5\n', /line 3, column 3: label '0.5'/],
    ['nan', 'a,b,label\n1,NaN,0\n', /line 2, column 2: column 'b' 'NaN' is not a finite number/],
    ['infinity', 'a,b,label\n1,2,0\n4,Infinity,1\n', /line 3, column 2: column 'b' 'Infinity' is not a finite number/],
  ])('rejects the %s case with exit code 2, naming file, line and column', async (name, text, message) => {
    const path = file(`${name}.csv`, text);
    const result = await runCli(['train', '--data', path, '--workers', '1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(path);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1); // one clear line, no stack trace
  });

  it('rejects a missing file with exit code 2', async () => {
    const result = await runCli(['train', '--data', join(directory.path, 'nope.csv')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/nope\.csv: cannot read the file \(ENOENT\)/);
  });
});

describe('dpt with bad flags', () => {
  const good = file('good.csv', 'a,label\n1,0\n2,1\n');
  it.each([
    [['train', '--data', good, '--epochs', '0'], /--epochs.*expected a positive integer/],
    [['train', '--data', good, '--batch-size', 'ten'], /--batch-size.*expected a positive integer/],
    [['train', '--data', good, '--lr', '-1'], /--lr.*expected a positive number/],
    [['train', '--data', good, '--val-split', '1'], /--val-split.*expected a fraction/],
    [['train', '--data', good, '--port', '70000'], /--port.*expected a port/],
    [['train'], /required option '--data <path>' not specified/],
    [['train', '--data', good, '--bogus'], /unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['worker'], /required option '--connect <url>' not specified/],
  ])('dpt %j exits 2', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('rejects a validation split that leaves no row with exit code 2', async () => {
    const result = await runCli(['train', '--data', good, '--val-split', '0.2']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/holds out no row/);
  });
});

describe('dpt predict and evaluate', () => {
  it('predicts every row and evaluates metrics that agree with the predictions', async () => {
    const out = join(directory.path, 'model.json');
    const train = await runCli(['train', '--data', 'data/breast_cancer.csv', '--workers', '2', '--epochs', '5', '--out', out]);
    expect(train.code, train.stderr).toBe(0);
    const predictions = join(directory.path, 'predictions.csv');
    const predict = await runCli(['predict', '--model', out, '--data', 'data/breast_cancer.csv', '--out', predictions]);
    expect(predict.code, predict.stderr).toBe(0);
    const lines = readFileSync(predictions, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('probability,prediction');
    expect(lines).toHaveLength(570);
    const rows = lines.slice(1).map((line) => line.split(',').map(Number));
    const labels = readFileSync('data/breast_cancer.csv', 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => Number(line.split(',').at(-1)));
    for (const [p, c] of rows) {
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
      expect(c).toBe((p as number) > 0.5 ? 1 : 0);
    }
    // Independent metrics from the predictions file.
    const accuracy = rows.filter(([, c], i) => c === labels[i]).length / rows.length;
    const logLoss = -rows.reduce((s, [p], i) => s + (labels[i] === 1 ? Math.log(p as number) : Math.log(1 - (p as number))), 0) / rows.length;
    const evaluate = await runCli(['evaluate', '--model', out, '--data', 'data/breast_cancer.csv', '--json']);
    expect(evaluate.code, evaluate.stderr).toBe(0);
    const metrics = JSON.parse(evaluate.stdout) as Record<string, number>;
    expect(metrics.rows).toBe(569);
    expect(metrics.accuracy).toBeCloseTo(accuracy, 12);
    expect(metrics.logLoss).toBeCloseTo(logLoss, 6);
    expect(metrics.accuracy).toBeGreaterThan(0.95);
    expect(metrics.rocAuc).toBeGreaterThan(0.98);
    const human = await runCli(['evaluate', '--model', out, '--data', 'data/breast_cancer.csv']);
    expect(human.stdout).toMatch(/ROC AUC\s+0\.99/);
  });

  it('evaluates a .dpt file to the same metrics as its CSV', async () => {
    const out = join(directory.path, 'model-dpt.json');
    const binary = join(directory.path, 'breast.dpt');
    expect((await runCli(['data', 'convert', 'data/breast_cancer.csv', binary])).code).toBe(0);
    expect((await runCli(['train', '--data', binary, '--workers', '1', '--epochs', '3', '--out', out])).code).toBe(0);
    const fromCsv = await runCli(['evaluate', '--model', out, '--data', 'data/breast_cancer.csv', '--json']);
    const fromBinary = await runCli(['evaluate', '--model', out, '--data', binary, '--json']);
    expect(fromBinary.code, fromBinary.stderr).toBe(0);
    expect(JSON.parse(fromBinary.stdout)).toEqual(JSON.parse(fromCsv.stdout));
  });

  it('refuses a malformed model file and a data file without the model features, exit code 2', async () => {
    const bad = file(
      'bad-model.json',
      '{"format":"dpt-model","version":1,"kind":"logistic-regression","weights":[1],"bias":"x","features":["a"],"standardization":null}',
    );
    const result = await runCli(['predict', '--model', bad, '--data', 'data/breast_cancer.csv']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/field 'bias' must be a finite number/);
    const model = file(
      'model-a.json',
      '{"format":"dpt-model","version":1,"kind":"logistic-regression","weights":[1],"bias":0,"features":["zzz"],"standardization":null}',
    );
    const missing = await runCli(['predict', '--model', model, '--data', 'data/breast_cancer.csv']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/feature column 'zzz' is missing/);
  });
});

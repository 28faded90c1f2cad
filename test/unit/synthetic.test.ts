import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBinaryDataset } from '../../shared/binary-dataset.js';
import { readDataset } from '../../shared/dataset.js';
import { formatFloat32, generateDataset, generateDatasetInterruptibly, generateRows, trueModel } from '../../shared/synthetic.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());

describe('synthetic data', () => {
  it('writes the same bytes for the same seed and other bytes for another seed', () => {
    const spec = { rows: 3000, features: 9, seed: 42 };
    const a = generateDataset(spec, join(directory.path, 'a.dpt'), 'dpt');
    const b = generateDataset(spec, join(directory.path, 'b.dpt'), 'dpt');
    const c = generateDataset({ ...spec, seed: 43 }, join(directory.path, 'c.dpt'), 'dpt');
    expect(readFileSync(a.path).equals(readFileSync(b.path))).toBe(true);
    expect(readFileSync(a.path).equals(readFileSync(c.path))).toBe(false);
    const saved = JSON.parse(readFileSync(a.weightsPath, 'utf8')) as { weights: number[]; bias: number; seed: number };
    expect(saved.seed).toBe(42);
    expect(saved.weights).toEqual(Array.from(trueModel(9, 42).weights));
    expect(saved.bias).toBe(trueModel(9, 42).bias);
  });

  it('writes a CSV that reads back as the same float32 bits and labels as the .dpt file', () => {
    const spec = { rows: 500, features: 4, seed: 7 };
    const binary = loadBinaryDataset(generateDataset(spec, join(directory.path, 'd.dpt'), 'dpt').path);
    const csv = readDataset(generateDataset(spec, join(directory.path, 'd.csv'), 'csv').path);
    expect(csv.featureNames).toEqual(['f0', 'f1', 'f2', 'f3']);
    expect(new Uint32Array(csv.x.buffer, csv.x.byteOffset, csv.x.length)).toEqual(new Uint32Array(binary.x.buffer));
    expect(csv.y).toEqual(binary.y);
  });

  it('draws labels from σ(w·x + b) of the true model: their rate, and a fit that recovers w and b', () => {
    const D = 4;
    const rows = 20_000;
    const spec = { rows, features: D, seed: 5 };
    const model = trueModel(D, 5);
    const X: Float64Array[] = [];
    const Y: number[] = [];
    generateRows(spec, model, (x, y, count) => {
      for (let i = 0; i < count; i++) {
        X.push(Float64Array.from(x.subarray(i * D, (i + 1) * D)));
        Y.push(y[i] as number);
      }
    });
    // The label rate equals the mean of σ(z) within 4 standard errors.
    const p = X.map((x) => 1 / (1 + Math.exp(-x.reduce((z, v, j) => z + v * (model.weights[j] as number), model.bias))));
    const rate = Y.reduce((s, v) => s + v, 0) / rows;
    const expectedRate = p.reduce((s, v) => s + v, 0) / rows;
    const standardError = Math.sqrt(p.reduce((s, v) => s + v * (1 - v), 0)) / rows;
    expect(Math.abs(rate - expectedRate)).toBeLessThan(4 * standardError);
    // Full-batch gradient descent on the log-loss recovers the true weights.
    const w = new Float64Array(D);
    let b = 0;
    for (let iteration = 0; iteration < 300; iteration++) {
      const g = new Float64Array(D + 1);
      X.forEach((x, i) => {
        const z = x.reduce((s, v, j) => s + v * (w[j] as number), b);
        const r = 1 / (1 + Math.exp(-z)) - (Y[i] as number);
        for (let j = 0; j < D; j++) g[j] = (g[j] as number) + r * (x[j] as number);
        g[D] = (g[D] as number) + r;
      });
      for (let j = 0; j < D; j++) w[j] = (w[j] as number) - (2 * (g[j] as number)) / rows;
      b -= (2 * (g[D] as number)) / rows;
    }
    for (let j = 0; j < D; j++) expect(Math.abs((w[j] as number) - (model.weights[j] as number))).toBeLessThan(0.1);
    expect(Math.abs(b - model.bias)).toBeLessThan(0.1);
  });

  it('formats float32 values in their shortest exact form', () => {
    for (const value of [0, 1, -2.5, Math.fround(0.1), Math.fround(-1.2345678e-20), Math.fround(3.4e38), Math.fround(1 / 3)]) {
      expect(Math.fround(Number(formatFloat32(value)))).toBe(value);
    }
    expect(formatFloat32(Math.fround(0.1))).toBe('0.1');
    expect(formatFloat32(-2.5)).toBe('-2.5');
  });

  it('writes the same bytes when generating interruptibly (pausing for the event loop) as in one go', async () => {
    const spec = { rows: 300_000, features: 3, seed: 11 };
    for (const format of ['dpt', 'csv'] as const) {
      const whole = generateDataset(spec, join(directory.path, `whole.${format}`), format);
      const paused = await generateDatasetInterruptibly(spec, join(directory.path, `paused.${format}`), format);
      expect(readFileSync(paused.path).equals(readFileSync(whole.path))).toBe(true);
      expect(readFileSync(paused.weightsPath, 'utf8')).toBe(readFileSync(whole.weightsPath, 'utf8'));
    }
  });
});

// The ONNX graph of small model files written here (cli/onnx-model.ts), run by onnxruntime-node
// in this process: probabilities and labels against closed forms computed in this test, the
// folded standardization against the unfolded formula, ties, class label types and precisions.

import { InferenceSession, Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { foldStandardization, onnxModelOf } from '../../cli/onnx-model.js';
import { encodeOnnxModel } from '../../cli/onnx-proto.js';
import type { LogisticModelFile, ModelFile, SoftmaxModelFile } from '../../shared/model-file.js';

const COMMON = { format: 'dpt-model', version: 1, label: 'y', trainedOn: {}, metrics: {} } as const;

function logistic(weights: number[], bias: number, standardization: LogisticModelFile['standardization']): LogisticModelFile {
  return { ...COMMON, kind: 'logistic-regression', weights, bias, features: weights.map((_, j) => `f${j}`), standardization };
}

function softmax(classes: number[] | string[], weights: number[][], bias: number[], standardization: SoftmaxModelFile['standardization']): SoftmaxModelFile {
  return { ...COMMON, kind: 'softmax-regression', classes, weights, bias, features: weights[0]!.map((_, j) => `f${j}`), standardization };
}

/** Runs the exported graph of `model` on `rows` (raw feature values). */
async function run(model: ModelFile, rows: number[][], precision: 'float32' | 'float64' = 'float32'): Promise<{ label: unknown[]; p: number[][] }> {
  const session = await InferenceSession.create(encodeOnnxModel(onnxModelOf(model, precision, 'test')));
  const D = model.features.length;
  const flat = rows.flat();
  const X =
    precision === 'float32'
      ? new Tensor('float32', Float32Array.from(flat), [rows.length, D])
      : new Tensor('float64', Float64Array.from(flat), [rows.length, D]);
  const out = await session.run({ X });
  const label = out.label!;
  const probabilities = out.probabilities!;
  const K = probabilities.dims[1]!;
  expect(probabilities.dims).toEqual([rows.length, K]);
  expect(probabilities.type).toBe(precision);
  const values = Array.from(probabilities.data as Float32Array | Float64Array);
  return { label: Array.from(label.data as ArrayLike<unknown>), p: rows.map((_, i) => values.slice(i * K, (i + 1) * K)) };
}

const sigma = (z: number): number => 1 / (1 + Math.exp(-z));
const F32 = 2 ** -24;

describe('foldStandardization', () => {
  it('gives raw-input scores equal to the standardized model’s, w·(x − mean)/std + b', () => {
    const weights = [
      [0.5, -1.25, 3],
      [-2, 0.125, 0.75],
    ];
    const bias = [0.3, -0.7];
    const mean = [10, -3, 0.5];
    const std = [4, 0.25, 2];
    const folded = foldStandardization(softmax([1, 2], weights, bias, { mean, std }));
    expect([folded.rows, folded.D]).toEqual([2, 3]);
    for (const x of [
      [12, -2.5, 1],
      [0, 0, 0],
      [-7.5, 4, 100],
    ]) {
      for (let k = 0; k < 2; k++) {
        const unfolded = weights[k]!.reduce((z, w, j) => z + (w * (x[j]! - mean[j]!)) / std[j]!, bias[k]!);
        const raw = x.reduce((z, v, j) => z + folded.w[k * 3 + j]! * v, folded.b[k]!);
        expect(Math.abs(raw - unfolded)).toBeLessThan(1e-12);
      }
    }
  });

  it('copies the weights of a model without standardization', () => {
    const folded = foldStandardization(logistic([1.5, -2], 0.25, null));
    expect([Array.from(folded.w), Array.from(folded.b)]).toEqual([[1.5, -2], [0.25]]);
  });
});

describe('the exported logistic graph', () => {
  const model = logistic([2, -1], 0.5, { mean: [1, 4], std: [2, 0.5] });
  /** z of the model file on raw x, in float64: w·(x − mean)/std + b. */
  const z = (x: number[]): number => 2 * ((x[0]! - 1) / 2) - (x[1]! - 4) / 0.5 + 0.5;

  it('outputs [P(0), P(1)] = [σ(−z), σ(z)] and label 1 iff z > 0, on raw inputs', async () => {
    const rows = [
      [3, 4],
      [1, 6],
      [-20, 4],
      [5, 1],
    ];
    const { label, p } = await run(model, rows);
    rows.forEach((x, i) => {
      expect(p[i]![1]!).toBeCloseTo(sigma(z(x)), 6);
      expect(p[i]![0]!).toBeCloseTo(sigma(-z(x)), 6);
    });
    expect(label).toEqual(rows.map((x) => BigInt(z(x) > 0 ? 1 : 0)));
  });

  it('keeps small probabilities to a few float32 ulps of their own size, in both tails', async () => {
    // z = −20.5 and z = 39.5: P(1) ≈ 1.3e-9 and P(0) ≈ 7e-18, which 1 − p or a clamped σ would make 0.
    const { p } = await run(model, [
      [-20, 4],
      [40, 4],
    ]);
    expect(Math.abs(p[0]![1]! - sigma(-20.5)) / sigma(-20.5)).toBeLessThan(16 * F32);
    expect(Math.abs(p[1]![0]! - sigma(-39.5)) / sigma(-39.5)).toBeLessThan(16 * F32);
  });

  it('labels z = 0 as class 0 and the smallest positive float32 score as class 1', async () => {
    // 2^−148 halves to the smallest subnormal float32, still positive.
    const { label } = await run(logistic([1], 0, null), [[0], [2 ** -148], [-(2 ** -148)]]);
    expect(label).toEqual([0n, 1n, 0n]);
  });

  it('computes in float64 when exported with that precision', async () => {
    const rows = [
      [3.1, 4.7],
      [0.3, 2.9],
    ];
    const { p } = await run(model, rows, 'float64');
    rows.forEach((x, i) => {
      expect(Math.abs(p[i]![1]! - sigma(z(x)))).toBeLessThan(1e-15);
    });
  });
});

describe('the exported softmax graph', () => {
  const weights = [
    [1, -0.5],
    [0.25, 2],
    [-1.5, 0.75],
  ];
  const bias = [0.1, -0.2, 0.3];
  const mean = [2, -1];
  const std = [0.5, 3];
  /** softmax(W·(x − mean)/std + b), in float64. */
  function reference(x: number[]): { p: number[]; k: number } {
    const scores = weights.map((row, k) => row.reduce((s, w, j) => s + (w * (x[j]! - mean[j]!)) / std[j]!, bias[k]!));
    const m = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - m));
    const total = e.reduce((a, b) => a + b, 0);
    return { p: e.map((v) => v / total), k: scores.indexOf(m) };
  }
  const rows = [
    [2, -1],
    [3, 5],
    [0.5, -10],
    [4.25, 2],
  ];

  it('outputs softmax(z) and the class label of argmax z, labels as int64 for integer classes', async () => {
    const classes = [3, 7, 11];
    const { label, p } = await run(softmax(classes, weights, bias, { mean, std }), rows);
    rows.forEach((x, i) => {
      const expected = reference(x);
      expected.p.forEach((pk, k) => {
        expect(Math.abs(p[i]![k]! - pk)).toBeLessThan(16 * F32);
      });
    });
    expect(label).toEqual(rows.map((x) => BigInt(classes[reference(x).k]!)));
  });

  it('gathers string class labels, and float64 labels for classes that are not integers', async () => {
    const names = ['setosa', 'versicolor "v"', 'virginica, dark'];
    expect((await run(softmax(names, weights, bias, { mean, std }), rows)).label).toEqual(rows.map((x) => names[reference(x).k]));
    const halves = [0.5, 1.5, -2.25];
    expect((await run(softmax(halves, weights, bias, { mean, std }), rows)).label).toEqual(rows.map((x) => halves[reference(x).k]));
  });

  it('picks the lowest class index among tied scores, as dpt predict does', async () => {
    const tied = softmax(
      [0, 1, 2],
      [
        [0, 0],
        [1, 0],
        [1, 0],
      ],
      [0, 0, 0],
      null,
    );
    const { label } = await run(tied, [
      [1, 0],
      [0, 0],
      [-1, 0],
    ]);
    expect(label).toEqual([1n, 0n, 0n]);
  });
});

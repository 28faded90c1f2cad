// `dpt export --format onnx` end to end (issue #14 item 9): models trained by `dpt train` on the
// bundled data, exported, run by onnxruntime-node on the raw rows of the CSV, and compared with
// `dpt predict` on the same file, row by row, within a bound on float32 rounding derived below.
// Bad inputs: an unknown format or precision, a malformed or missing model file, OUT = MODEL.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

/** The unit roundoff of float32 and float64. */
const U32 = 2 ** -24;
const U64 = 2 ** -53;

/** The fields of a model file this test reads (its own view, not shared/model-file.ts's types). */
interface ModelJson {
  kind: 'logistic-regression' | 'softmax-regression';
  features: string[];
  classes?: (number | string)[];
  weights: number[] | number[][];
  bias: number | number[];
  standardization: { mean: number[]; std: number[] } | null;
}

/** The model's feature columns of a plain numeric CSV (the bundled files), as float32 values like dpt reads them. */
function readRows(csvPath: string, features: string[]): number[][] {
  const [header, ...lines] = readFileSync(csvPath, 'utf8').trimEnd().split('\n');
  const names = header!.split(',');
  const columns = features.map((name) => names.indexOf(name));
  expect(columns.every((c) => c >= 0)).toBe(true);
  return lines.map((line) => {
    const cells = line.split(',');
    return columns.map((c) => Math.fround(Number(cells[c])));
  });
}

/** dpt predict's probability columns, one array per row (logistic: [1 − p, p] from its `probability` column). */
function readPredictions(text: string, kind: ModelJson['kind']): { p: number[][]; label: string[] } {
  const [header, ...lines] = text.trimEnd().split('\n');
  const columns = header!.split(',');
  if (kind === 'logistic-regression') {
    expect(columns).toEqual(['probability', 'prediction']);
    const rows = lines.map((line) => line.split(','));
    return { p: rows.map(([p]) => [1 - Number(p), Number(p)]), label: rows.map(([, label]) => label!) };
  }
  expect(columns[0]).toBe('prediction');
  const rows = lines.map((line) => line.split(','));
  return { p: rows.map((cells) => cells.slice(1).map(Number)), label: rows.map(([label]) => label!) };
}

/**
 * How far the exported model's scores may be from dpt predict's, for one row, per score row k.
 * dpt predict computes z_k = b_k + Σ_j w_kj·s_j in float64 on s_j = float32((x_j − mean_j)/std_j):
 * the float32 rounding of s_j moves z_k by at most u32·T_k, T_k = Σ_j |w_kj·s_j|. The graph computes
 * z_k = b'_k + Σ_j w'_kj·x_j (the folded weights, w' = w/std, b' = b − Σ w·mean/std, computed here in
 * float64) in its precision u: rounding w' and b' moves it by at most u·S_k, S_k = |b'_k| + Σ_j |w'_kj·x_j|,
 * and any order of float sums of D products and a bias by at most (D + 1)·u·S_k (the classic γ_n
 * bound; FMA only lowers it). So |Δz_k| ≤ E_k = u32·T_k + (D + 2)·u·S_k. Returns the z_k of dpt
 * predict (recomputed here) and E = max_k E_k.
 */
function scoreBounds(model: ModelJson, x: number[], u: number): { z: number[]; E: number } {
  const D = model.features.length;
  const rows = model.kind === 'logistic-regression' ? [model.weights as number[]] : (model.weights as number[][]);
  const biases = model.kind === 'logistic-regression' ? [model.bias as number] : (model.bias as number[]);
  const mean = model.standardization?.mean ?? Array<number>(D).fill(0);
  const std = model.standardization?.std ?? Array<number>(D).fill(1);
  const s = x.map((v, j) => Math.fround((v - mean[j]!) / std[j]!));
  const z: number[] = [];
  let E = 0;
  rows.forEach((w, k) => {
    let zk = biases[k]!;
    let T = 0;
    let folded = biases[k]!;
    let S = 0;
    for (let j = 0; j < D; j++) {
      zk += w[j]! * s[j]!;
      T += Math.abs(w[j]! * s[j]!);
      folded -= (w[j]! * mean[j]!) / std[j]!;
      S += Math.abs((w[j]! / std[j]!) * x[j]!);
    }
    S += Math.abs(folded);
    z.push(zk);
    E = Math.max(E, U32 * T + (D + 2) * u * S);
  });
  return { z, E };
}

/**
 * The tolerance on probability p_k of a softmax over scores whose errors are at most e each:
 * p_k changes by a relative p_k·(Δs_k − Σ_i p_i·Δs_i), at most 2e (first order). The runtime's
 * own exp and division add a relative error of about u·(m − s_k) (an error in its argument,
 * m = max s, grows with |m − s_k|; measured 36 u at m − s_k = 36 in float32) plus a few ulps: 16 u.
 * Logistic is exported as softmax of [−z/2, z/2]: e = E/2 and m − s_k is 0 or |z|.
 */
function tolerance(p: number, e: number, gap: number, u: number): number {
  return p * (2 * e + (gap + 16) * u);
}

interface Comparison {
  rows: number;
  /** Largest |p_onnx − p_predict| over every row and class. */
  maxDifference: number;
  /** Largest |p_onnx − p_predict| / tolerance: at most 1. */
  maxRatio: number;
  /** Rows whose label is checked: those whose winning score leads by more than 2·E. */
  labelsChecked: number;
}

/** Runs the exported model on the raw rows and compares it with dpt predict's output. */
async function compare(model: ModelJson, onnxPath: string, rows: number[][], predictText: string, precision: 'float32' | 'float64'): Promise<Comparison> {
  const u = precision === 'float32' ? U32 : U64;
  const session = await InferenceSession.create(onnxPath);
  expect([session.inputNames, session.outputNames]).toEqual([['X'], ['label', 'probabilities']]);
  const D = model.features.length;
  const flat = rows.flat();
  const X =
    precision === 'float32'
      ? new Tensor('float32', Float32Array.from(flat), [rows.length, D])
      : new Tensor('float64', Float64Array.from(flat), [rows.length, D]);
  const out = await session.run({ X });
  const probabilities = out.probabilities!;
  const K = model.kind === 'logistic-regression' ? 2 : model.classes!.length;
  expect(probabilities.dims).toEqual([rows.length, K]);
  const onnxP = probabilities.data as Float32Array | Float64Array;
  const onnxLabels = Array.from(out.label!.data as BigInt64Array | string[], String);
  const predicted = readPredictions(predictText, model.kind);
  expect(predicted.p).toHaveLength(rows.length);
  const result: Comparison = { rows: rows.length, maxDifference: 0, maxRatio: 0, labelsChecked: 0 };
  rows.forEach((x, row) => {
    const { z, E } = scoreBounds(model, x, u);
    // Scores as the graph computes them: [−z/2, z/2] for logistic (error E/2 each), z for softmax.
    const scores = model.kind === 'logistic-regression' ? [-z[0]! / 2, z[0]! / 2] : z;
    const e = model.kind === 'logistic-regression' ? E / 2 : E;
    const m = Math.max(...scores);
    for (let k = 0; k < K; k++) {
      const difference = Math.abs(onnxP[row * K + k]! - predicted.p[row]![k]!);
      result.maxDifference = Math.max(result.maxDifference, difference);
      // dpt predict's own p_k is float64 (1 − p for logistic class 0: one more u64 of 1).
      const allowed = tolerance(predicted.p[row]![k]!, e, m - scores[k]!, u) + 4 * U64;
      result.maxRatio = Math.max(result.maxRatio, difference / allowed);
    }
    const sorted = [...scores].sort((a, b) => b - a);
    if (sorted[0]! - sorted[1]! > 2 * e) {
      expect(onnxLabels[row], `row ${row}`).toBe(predicted.label[row]);
      result.labelsChecked++;
    }
  });
  return result;
}

/** Trains a short run on a bundled file, exports it in both precisions, predicts with dpt. */
async function trainExportPredict(dataFile: string, name: string, flags: string[]): Promise<{ model: ModelJson; rows: number[][]; predictText: string }> {
  const data = join(REPO, 'data', dataFile);
  const modelPath = join(directory.path, `${name}.json`);
  const trained = await runCli(['train', '--data', data, '--workers', '1', '--out', modelPath, ...flags], {}, 180_000);
  expect(trained.code, trained.stderr).toBe(0);
  for (const precision of ['float32', 'float64']) {
    const exported = await runCli(['export', '--format', 'onnx', '--precision', precision, modelPath, join(directory.path, `${name}-${precision}.onnx`)]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toMatch(new RegExp(`written to .*${name}-${precision}\\.onnx as ONNX \\(\\d+ bytes, ${precision}\\)`));
  }
  const predictPath = join(directory.path, `${name}-predictions.csv`);
  const predicted = await runCli(['predict', '--model', modelPath, '--data', data, '--out', predictPath], {}, 120_000);
  expect(predicted.code, predicted.stderr).toBe(0);
  const model = JSON.parse(readFileSync(modelPath, 'utf8')) as ModelJson;
  return { model, rows: readRows(data, model.features), predictText: readFileSync(predictPath, 'utf8') };
}

describe('dpt export --format onnx, run by onnxruntime-node', () => {
  let logistic: Awaited<ReturnType<typeof trainExportPredict>>;
  let softmax: Awaited<ReturnType<typeof trainExportPredict>>;
  beforeAll(async () => {
    logistic = await trainExportPredict('breast_cancer.csv', 'breast-cancer', ['--epochs', '3', '--batch-size', '32', '--lr', '0.1']);
    softmax = await trainExportPredict('digits.csv', 'digits', ['--epochs', '3', '--batch-size', '64', '--lr', '0.1']);
  }, 400_000);

  it('gives the probabilities and labels of dpt predict on the raw breast cancer rows (logistic, standardized)', async () => {
    expect(logistic.model.kind).toBe('logistic-regression');
    expect(logistic.model.standardization).not.toBeNull();
    for (const precision of ['float32', 'float64'] as const) {
      const result = await compare(logistic.model, join(directory.path, `breast-cancer-${precision}.onnx`), logistic.rows, logistic.predictText, precision);
      expect(result.rows).toBe(569);
      expect(result.maxRatio, precision).toBeLessThanOrEqual(1);
      expect(result.labelsChecked).toBeGreaterThan(0.95 * result.rows);
      // The bound is a worst case; the float32 graph is in fact within a few float32 ulps of 1.
      expect(result.maxDifference).toBeLessThan(precision === 'float32' ? 1e-5 : 1e-6);
    }
  });

  it('gives the probabilities and labels of dpt predict on the raw digits rows (softmax, 10 classes)', async () => {
    expect(softmax.model.kind).toBe('softmax-regression');
    expect(softmax.model.classes).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const precision of ['float32', 'float64'] as const) {
      const result = await compare(softmax.model, join(directory.path, `digits-${precision}.onnx`), softmax.rows, softmax.predictText, precision);
      expect(result.rows).toBe(1797);
      expect(result.maxRatio, precision).toBeLessThanOrEqual(1);
      expect(result.labelsChecked).toBeGreaterThan(0.95 * result.rows);
      expect(result.maxDifference).toBeLessThan(precision === 'float32' ? 1e-5 : 1e-6);
    }
  });

  it('writes the feature order, classes and folding into the model metadata', async () => {
    const session = await InferenceSession.create(join(directory.path, 'digits-float32.onnx'));
    // onnxruntime-node 1.17 does not expose metadata_props: read the strings from the file's bytes.
    const bytes = readFileSync(join(directory.path, 'digits-float32.onnx')).toString('latin1');
    expect(bytes).toContain('dpt.features');
    expect(bytes).toContain(JSON.stringify(softmax.model.features));
    expect(bytes).toContain('dpt.standardization\x12\x06folded');
    expect(session.inputNames).toEqual(['X']);
  });
});

describe('dpt export with bad input', () => {
  const good = join(directory.path, 'good.json');
  beforeAll(() => {
    writeFileSync(
      good,
      JSON.stringify({ format: 'dpt-model', version: 1, kind: 'logistic-regression', weights: [1, 2], bias: 0, features: ['a', 'b'], standardization: null }),
    );
  });

  it('refuses an unknown --format or --precision with exit 2, naming the flag, and writes nothing', async () => {
    const out = join(directory.path, 'never.onnx');
    const format = await runCli(['export', '--format', 'pmml', good, out]);
    expect([format.code, format.stderr]).toEqual([2, 'dpt: --format pmml is not an export format; known: onnx (DPT_CONFIG)\n']);
    const precision = await runCli(['export', '--precision', 'float16', good, out]);
    expect([precision.code, precision.stderr]).toEqual([2, 'dpt: --precision float16 is not one of float32, float64 (DPT_CONFIG)\n']);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a malformed, foreign or missing model file with exit 2, naming the file and field, and keeps OUT', async () => {
    const out = join(directory.path, 'kept.onnx');
    writeFileSync(out, 'previous');
    const cases: [string, string, RegExp][] = [
      [
        'truncated.json',
        '{"format": "dpt-model", "version": 1, "kind": "logis',
        /truncated\.json: cannot read the model file \(.*JSON.*\) \(DPT_MODEL_FILE\)$/,
      ],
      [
        'short.json',
        JSON.stringify({ format: 'dpt-model', version: 1, kind: 'logistic-regression', weights: [1], bias: 0, features: ['a', 'b'], standardization: null }),
        /short\.json: field 'weights' must be an array of 2 finite numbers \(DPT_MODEL_FILE\)$/,
      ],
      [
        'classes.json',
        JSON.stringify({
          format: 'dpt-model',
          version: 1,
          kind: 'softmax-regression',
          classes: [1],
          weights: [[1]],
          bias: [0],
          features: ['a'],
          standardization: null,
        }),
        /classes\.json: field 'classes' must be an array of at least 2 class labels \(DPT_MODEL_FILE\)$/,
      ],
      ['foreign.json', JSON.stringify({ format: 'sklearn', coef: [1] }), /foreign\.json: field 'format' must be 'dpt-model' \(DPT_MODEL_FILE\)$/],
    ];
    for (const [name, text, message] of cases) {
      const path = join(directory.path, name);
      writeFileSync(path, text);
      const result = await runCli(['export', '--format', 'onnx', path, out]);
      expect(result.code, name).toBe(2);
      expect(result.stderr.trimEnd().split('\n'), name).toHaveLength(1);
      expect(result.stderr.trimEnd(), name).toMatch(message);
    }
    const missing = await runCli(['export', join(directory.path, 'none.json'), out]);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/none\.json: cannot read the model file .*\(DPT_MODEL_FILE\)\n$/)]);
    expect(readFileSync(out, 'utf8')).toBe('previous');
  });

  it('refuses to write OUT over the model file (exit 2) and leaves the model intact', async () => {
    const before = readFileSync(good, 'utf8');
    const result = await runCli(['export', good, good]);
    expect([result.code, result.stderr]).toEqual([
      2,
      expect.stringMatching(/<out> .*good\.json and <model> .*good\.json are the same file.*\(DPT_CONFIG\)\n$/),
    ]);
    expect(readFileSync(good, 'utf8')).toBe(before);
  });
});

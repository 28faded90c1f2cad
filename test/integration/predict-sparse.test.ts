// `dpt predict`, `dpt evaluate` and the library's predict with models over sparse inputs (issue
// #13), model files written here with every number chosen: a hashed model applies the hashing its
// file records to CSV (and .csv.gz) rows, a LIBSVM model reads LIBSVM lines. Probabilities and
// metrics are compared with a float64 computation of this file, whose murmur3 and hashing are
// written here from the spec (not imported), and whose AUC counts pairs.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, predict } from '../../api/index.js';
import { convertCsvToSparse } from '../../shared/sparse-convert.js';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

function file(name: string, content: string | Buffer): string {
  const path = join(directory.path, name);
  writeFileSync(path, content);
  return path;
}

/** MurmurHash3 x86_32 (Appleby's reference, little-endian blocks), for this file's reference only. */
function murmur3(text: string, seed = 0): number {
  const bytes = Buffer.from(text, 'utf8');
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const blocks = bytes.length >> 2;
  for (let i = 0; i < blocks; i++) {
    let k = bytes.readUInt32LE(4 * i);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = 4 * blocks;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    for (let i = rest - 1; i >= 0; i--) k = (k << 8) | bytes[tail + i]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
const softplus = (z: number): number => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/** AUC by counting pairs (ties 1/2): an independent check of the rank statistic. */
function pairAuc(scores: readonly number[], y: readonly number[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((sp, i) => {
    if (y[i] !== 1) return;
    scores.forEach((sn, j) => {
      if (y[j] !== 0) return;
      pairs++;
      wins += sp > sn ? 1 : sp === sn ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

/** Seeded draws in [0, 1). */
let state = 1301;
function next(): number {
  state = (state * 48_271) % 2_147_483_647;
  return state / 2_147_483_647;
}

// ---- a hashed logistic model: categorical dow, origin; numeric dist; the cross dow × origin ----
const BITS = 10;
const D = 2 ** BITS;
const HASHING = {
  function: 'murmur3_x86_32',
  seed: 0,
  bits: BITS,
  columns: ['dow', 'dist', 'origin'],
  categorical: ['dow', 'origin'],
  numeric: ['dist'],
  crosses: [['dow', 'origin']],
  labelColumn: 'late',
};
const DOWS = ['mon', 'tue', 'wed'];
const ORIGINS = ['SFO', 'LAX', 'JFK', 'ORD'];
/** Dense weights: w_j = a seeded value in (−1, 1), 0 for a quarter of the buckets. */
const W = Array.from({ length: D }, () => {
  const u = next();
  return u < 0.25 ? 0 : 2 * next() - 1;
});
const BIAS = -0.3;

/** The spec by hand: bucket h(...) mod 2^B of each feature, values summed per bucket, then z = b + Σ w·x. */
function hashedScore(w: readonly number[] | Map<number, number>, bias: number, dow: string, dist: string, origin: string): number {
  const entries = new Map<number, number>();
  const add = (key: string, value: number): void => {
    const bucket = murmur3(key) % D;
    entries.set(bucket, (entries.get(bucket) ?? 0) + value);
  };
  add(`dow=${dow}`, 1);
  if (Number(dist) !== 0) add('dist', Math.fround(Number(dist)));
  add(`origin=${origin}`, 1);
  add(`dow=${dow}^origin=${origin}`, 1);
  let z = bias;
  for (const [j, x] of [...entries].sort((a, b) => a[0] - b[0])) z += (w instanceof Map ? (w.get(j) ?? 0) : w[j]!) * Math.fround(x);
  return z;
}

const ROWS = Array.from({ length: 40 }, (_, i) => ({
  dow: DOWS[i % 3]!,
  dist: i % 7 === 0 ? '0' : (next() * 3).toFixed(3),
  origin: ORIGINS[Math.floor(next() * 4)]!,
  late: i % 4 === 0 || next() < 0.3 ? 1 : 0,
}));
// Column order differs from the hashing's columns (cells are found by header name), and an unused column.
const CSV = `origin,late,unused,dow,dist\n${ROWS.map((r) => `${r.origin},${r.late},x,${r.dow},${r.dist}`).join('\n')}\n`;

function hashedModel(weights: unknown, bits = BITS): string {
  return JSON.stringify({
    format: 'dpt-model',
    version: 1,
    kind: 'logistic-regression',
    input: 'hashed-csv',
    hashing: { ...HASHING, bits },
    weights,
    bias: BIAS,
    label: 'late',
    standardization: null,
  });
}

function referenceMetrics(z: readonly number[], y: readonly number[]): { logLoss: number; accuracy: number; rocAuc: number } {
  const logLoss = z.reduce((sum, zi, i) => sum + softplus(zi) - y[i]! * zi, 0) / z.length;
  const accuracy = z.filter((zi, i) => (zi > 0 ? 1 : 0) === y[i]).length / z.length;
  return { logLoss, accuracy, rocAuc: pairAuc(z, y) };
}

describe('a hashed logistic model', () => {
  const expected = ROWS.map((r) => hashedScore(W, BIAS, r.dow, r.dist, r.origin));

  it('predicts σ(z) of the hashed rows, z computed here from the spec', async () => {
    const model = file('hashed.json', hashedModel(W));
    const result = await runCli(['predict', '--model', model, '--data', file('rows.csv', CSV)]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe('probability,prediction');
    expect(lines).toHaveLength(ROWS.length + 1);
    lines.slice(1).forEach((line, i) => {
      const [p, predicted] = line.split(',').map(Number);
      expect(p).toBeCloseTo(sigmoid(expected[i]!), 14);
      expect(predicted).toBe(expected[i]! > 0 ? 1 : 0);
    });
  });

  it('evaluates log-loss, accuracy and AUC equal to the reference, from a .csv.gz file', async () => {
    const model = file('hashed-eval.json', hashedModel(W));
    const data = file('rows.csv.gz', gzipSync(CSV));
    const result = await runCli(['evaluate', '--model', model, '--data', data, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const metrics = JSON.parse(result.stdout) as { rows: number; logLoss: number; accuracy: number; rocAuc: number };
    const reference = referenceMetrics(
      expected,
      ROWS.map((r) => r.late),
    );
    expect(metrics.rows).toBe(ROWS.length);
    expect(metrics.logLoss).toBeCloseTo(reference.logLoss, 13);
    expect(metrics.accuracy).toBe(reference.accuracy);
    expect(metrics.rocAuc).toBeCloseTo(reference.rocAuc, 14);
  });

  it('reads the sparse form {dims, indices, values} with 2^25 buckets (weights found by bisection) and gives the same probabilities', async () => {
    const bits = 25;
    const stored = new Map<number, number>();
    // The buckets of every feature of the rows, each with a seeded weight; every other bucket is 0.
    for (const r of ROWS) {
      for (const key of [`dow=${r.dow}`, 'dist', `origin=${r.origin}`, `dow=${r.dow}^origin=${r.origin}`]) stored.set(murmur3(key) % 2 ** bits, 2 * next() - 1);
    }
    const indices = [...stored.keys()].sort((a, b) => a - b);
    const model = file('hashed-25.json', hashedModel({ dims: 2 ** bits, indices, values: indices.map((j) => stored.get(j)) }, bits));
    const result = await runCli(['predict', '--model', model, '--data', file('rows25.csv', CSV)]);
    expect(result.code, result.stderr).toBe(0);
    const probabilities = result.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => Number(line.split(',')[0]));
    const scoreOf = (r: (typeof ROWS)[number]): number => {
      const entries = new Map<number, number>();
      const add = (key: string, value: number): void => {
        const bucket = murmur3(key) % 2 ** bits;
        entries.set(bucket, (entries.get(bucket) ?? 0) + value);
      };
      add(`dow=${r.dow}`, 1);
      if (Number(r.dist) !== 0) add('dist', Math.fround(Number(r.dist)));
      add(`origin=${r.origin}`, 1);
      add(`dow=${r.dow}^origin=${r.origin}`, 1);
      let z = BIAS;
      for (const [j, x] of [...entries].sort((a, b) => a[0] - b[0])) z += stored.get(j)! * Math.fround(x);
      return z;
    };
    probabilities.forEach((p, i) => {
      expect(p).toBeCloseTo(sigmoid(scoreOf(ROWS[i]!)), 14);
    });
  });

  it('the library predict hashes records keyed by column name to the same probabilities', () => {
    const model = loadModel(file('hashed-api.json', hashedModel(W)));
    const predictions = predict(
      model,
      ROWS.slice(0, 5).map((r) => ({ dow: r.dow, dist: Number(r.dist), origin: r.origin })),
    );
    predictions.forEach((prediction, i) => {
      expect(prediction.probabilities[1]).toBeCloseTo(sigmoid(expected[i]!), 14);
      expect(prediction.label).toBe(expected[i]! > 0 ? 1 : 0);
    });
    expect(() => predict(model, [{ dow: 'mon', origin: 'SFO' }])).toThrow(/row 0, column 'dist' is missing/);
  });

  it('refuses LIBSVM input, a file without the hashed columns and labels outside 0/1, each with exit 2 naming it', async () => {
    const model = file('hashed-bad.json', hashedModel(W));
    const libsvm = await runCli(['predict', '--model', model, '--data', file('x.svm', '1 3:1\n')]);
    expect(libsvm.code).toBe(2);
    expect(libsvm.stderr).toMatch(/x\.svm: the model hashes CSV columns \(dow, dist, origin\); give a CSV file or its sparse \.dpt/);
    const missing = await runCli(['predict', '--model', model, '--data', file('missing.csv', 'dow,late\nmon,1\n')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing\.csv.*line 1.*'dist' is missing from the header/);
    const label = await runCli(['evaluate', '--model', model, '--data', file('label.csv', 'dow,dist,origin,late\nmon,1,SFO,1\ntue,2,LAX,yes\n')]);
    expect(label.code).toBe(2);
    expect(label.stderr).toMatch(/label\.csv, line 3: label "yes" is not one of the model's classes/);
    const noLabel = await runCli(['evaluate', '--model', model, '--data', file('nolabel.csv', 'dow,dist,origin\nmon,1,SFO\n')]);
    expect(noLabel.code).toBe(2);
    expect(noLabel.stderr).toMatch(/nolabel\.csv, line 1: no label column 'late'/);
  });

  it('reads the rows of a sparse .dpt converted with the same hashing to the same metrics, and refuses another hashing', async () => {
    const model = file('hashed-dpt.json', hashedModel(W));
    const csv = file('ordered.csv', `dow,dist,origin,late\n${ROWS.map((r) => `${r.dow},${r.dist},${r.origin},${r.late}`).join('\n')}\n`);
    const options = { bits: BITS, categorical: ['dow', 'origin'], crosses: ['dow:origin'], labelColumn: 'late' };
    await convertCsvToSparse(csv, join(directory.path, 'rows.dpt'), options);
    const fromCsv = await runCli(['evaluate', '--model', model, '--data', csv, '--json']);
    const fromDpt = await runCli(['evaluate', '--model', model, '--data', join(directory.path, 'rows.dpt'), '--json']);
    expect(fromDpt.code, fromDpt.stderr).toBe(0);
    expect(fromDpt.stdout).toBe(fromCsv.stdout);
    await convertCsvToSparse(csv, join(directory.path, 'other.dpt'), { ...options, bits: BITS - 1 });
    const other = await runCli(['evaluate', '--model', model, '--data', join(directory.path, 'other.dpt')]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/other\.dpt: its features \(hashed into 2\^9 buckets\) were not made as the model's/);
  });

  it('dpt export refuses a model over sparse inputs with exit 2', async () => {
    const model = file('hashed-export.json', hashedModel(W));
    const result = await runCli(['export', '--format', 'onnx', model, join(directory.path, 'out.onnx')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/cannot be exported to ONNX \(ONNX has no murmur3 feature hashing\)/);
  });
});

// ---- LIBSVM models ----
describe('LIBSVM models', () => {
  const LW = [0.5, -1.25, 0, 2, 0.125, -0.75];
  const LB = 0.2;
  // Labels −1/+1; an index (9) beyond the model's D = 6 adds nothing; a comment; a blank line.
  const SVM = '+1 1:0.5 3:2 # first\n-1 2:1.5 9:4\n\n+1 4:0.25 5:1 6:-2\n-1 1:1 2:1 4:1\n+1 6:0.5\n';
  const rows: [number, number][][] = [
    [
      [1, 0.5],
      [3, 2],
    ],
    [
      [2, 1.5],
      [9, 4],
    ],
    [
      [4, 0.25],
      [5, 1],
      [6, -2],
    ],
    [
      [1, 1],
      [2, 1],
      [4, 1],
    ],
    [[6, 0.5]],
  ];
  const labels = [1, 0, 1, 0, 1];
  const scoreOf = (entries: [number, number][], w: readonly number[], b: number): number =>
    entries.reduce((z, [j, x]) => (j <= w.length ? z + w[j - 1]! * x : z), b);

  it('predicts and evaluates a LIBSVM logistic model (labels −1/+1, indices beyond D ignored)', async () => {
    const model = file(
      'libsvm.json',
      JSON.stringify({
        format: 'dpt-model',
        version: 1,
        kind: 'logistic-regression',
        input: 'libsvm',
        weights: LW,
        bias: LB,
        label: null,
        standardization: null,
      }),
    );
    const data = file('test.svm', SVM);
    const z = rows.map((entries) => scoreOf(entries, LW, LB));
    const predicted = await runCli(['predict', '--model', model, '--data', data]);
    expect(predicted.code, predicted.stderr).toBe(0);
    predicted.stdout
      .trim()
      .split('\n')
      .slice(1)
      .forEach((line, i) => {
        expect(Number(line.split(',')[0])).toBeCloseTo(sigmoid(z[i]!), 14);
      });
    const evaluated = await runCli(['evaluate', '--model', model, '--data', data, '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const metrics = JSON.parse(evaluated.stdout) as { logLoss: number; accuracy: number; rocAuc: number };
    const reference = referenceMetrics(z, labels);
    expect(metrics.logLoss).toBeCloseTo(reference.logLoss, 14);
    expect(metrics.accuracy).toBe(reference.accuracy);
    expect(metrics.rocAuc).toBeCloseTo(reference.rocAuc, 14);
    // The same file under another name, read as LIBSVM by --format; CSV input is refused.
    const named = await runCli(['evaluate', '--model', model, '--data', file('test.txt', SVM), '--format', 'libsvm', '--json']);
    expect(JSON.parse(named.stdout)).toEqual(metrics);
    const csv = await runCli(['evaluate', '--model', model, '--data', file('test.csv', 'a,b\n1,0\n')]);
    expect(csv.code).toBe(2);
    expect(csv.stderr).toMatch(/the model was trained on LIBSVM input; give a \.svm\/\.libsvm file, --format libsvm or its sparse \.dpt/);
  });

  it('predicts a LIBSVM softmax model in the sparse form (K values per index) equal to the reference', async () => {
    // K = 3 classes 1, 2, 3; stored indices 0, 3, 5 (features 1, 4, 6); the others are 0.
    const K = 3;
    const stored: Record<number, number[]> = { 0: [0.5, -0.5, 0.25], 3: [-1, 2, 0.5], 5: [0.75, 0, -1.5] };
    const bias = [0.1, -0.2, 0.3];
    const model = file(
      'softmax.json',
      JSON.stringify({
        format: 'dpt-model',
        version: 1,
        kind: 'softmax-regression',
        input: 'libsvm',
        classes: [1, 2, 3],
        weights: { dims: 6, indices: [0, 3, 5], values: [...stored[0]!, ...stored[3]!, ...stored[5]!] },
        bias,
        label: null,
        standardization: null,
      }),
    );
    const data = file('softmax.svm', '1 1:1 4:0.5\n3 6:2\n2 4:1 5:3\n2 2:7\n');
    const entries: [number, number][][] = [
      [
        [1, 1],
        [4, 0.5],
      ],
      [[6, 2]],
      [
        [4, 1],
        [5, 3],
      ],
      [[2, 7]],
    ];
    const result = await runCli(['predict', '--model', model, '--data', data]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe('prediction,p_1,p_2,p_3');
    const truth = [1, 3, 2, 2];
    let lossSum = 0;
    lines.slice(1).forEach((line, i) => {
      const z = Array.from({ length: K }, (_, k) => entries[i]!.reduce((sum, [j, x]) => sum + (stored[j - 1]?.[k] ?? 0) * x, bias[k]!));
      const m = Math.max(...z);
      const S = z.reduce((sum, zk) => sum + Math.exp(zk - m), 0);
      const p = z.map((zk) => Math.exp(zk - m) / S);
      const cells = line.split(',').map(Number);
      expect(cells[0]).toBe(z.indexOf(m) + 1);
      p.forEach((pk, k) => {
        expect(cells[k + 1]).toBeCloseTo(pk, 14);
      });
      lossSum += Math.log(S) + m - z[truth[i]! - 1]!;
    });
    const evaluated = await runCli(['evaluate', '--model', model, '--data', data, '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect((JSON.parse(evaluated.stdout) as { logLoss: number }).logLoss).toBeCloseTo(lossSum / 4, 14);
    const unknown = await runCli(['evaluate', '--model', model, '--data', file('unknown.svm', '1 1:1\n7 2:1\n')]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown\.svm, line 2: label "7" is not one of the model's classes \(1, 2, 3\)/);
  });
});

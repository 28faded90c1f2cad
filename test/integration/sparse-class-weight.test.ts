// --class-weight balanced on sparse data (issue #13 with issue #12's rule), through the real CLI:
// the coordinator counts the classes of the training rows from the sparse .dpt's label section and
// sends the weights in the welcome; the sparse kernels weigh each row's loss and gradient by c_y.
// Imbalanced LIBSVM files train to an independent float64 reference with the weights (its own
// parsing, its own counts, dense math over every coordinate) to 1e-9 — logistic with sgd and L2,
// logistic with adagrad, softmax over three classes — and to the same bits over 1, 2 and 3 workers
// with a seeded validation split, whose held-out rows the weights do not count.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitRows } from '../../shared/schedule.js';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';
import { trainOnCluster } from '../helpers/cluster-runs.js';
import { libsvmText, parseLibsvmReference, type ReferenceRows } from '../helpers/libsvm-text.js';
import { lcg } from '../helpers/sparse-random.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

/** sklearn's balanced weights over the rows `rows` of y: c_k = n / (K·n_k), 0 for a class without rows. */
function balanced(y: readonly number[], K: number, rows: readonly number[]): number[] {
  const counts = new Array<number>(K).fill(0);
  for (const i of rows) counts[y[i]!]! += 1;
  return counts.map((count) => (count === 0 ? 0 : rows.length / (K * count)));
}

/**
 * Plain float64 mini-batch training over the rows in file order with class weights c, K = 2 a
 * logistic model (one weight vector), K > 2 softmax (K of them): per row r = c_y·(p − onehot(y)),
 * loss c_y·(−log p_y); g = (1/n)Σ r·x (n the batch's rows, not Σ c_y), g_b = (1/n)Σ r.
 * sgd: w ← w − η(g + λw), b ← b − η g_b; adagrad: G ← G + g², w ← w − η g/(√G + 1e-10) (no L2).
 */
function referenceTrain(
  rows: ReferenceRows,
  c: readonly number[],
  options: { epochs: number; batchSize: number; lr: number; l2: number; optimizer: 'sgd' | 'adagrad' },
) {
  const { D, x, y, K } = rows;
  const O = K === 2 ? 1 : K;
  const W = Array.from({ length: O }, () => new Array<number>(D).fill(0));
  const b = new Array<number>(O).fill(0);
  const G = Array.from({ length: O }, () => new Array<number>(D + 1).fill(0));
  const losses: number[] = [];
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    for (let start = 0; start < x.length; start += options.batchSize) {
      const end = Math.min(start + options.batchSize, x.length);
      const n = end - start;
      const g = Array.from({ length: O }, () => new Array<number>(D).fill(0));
      const gb = new Array<number>(O).fill(0);
      let loss = 0;
      for (let i = start; i < end; i++) {
        const z = b.map((bk, k) => x[i]!.reduce((sum, [j, v]) => sum + W[k]![j]! * v, bk));
        const weight = c[y[i]!]!;
        let r: number[];
        if (O === 1) {
          const a = 1 / (1 + Math.exp(-z[0]!));
          loss += weight * -(y[i]! * Math.log(a) + (1 - y[i]!) * Math.log(1 - a));
          r = [weight * (a - y[i]!)];
        } else {
          const m = Math.max(...z);
          const e = z.map((zk) => Math.exp(zk - m));
          const S = e.reduce((sum, ek) => sum + ek, 0);
          loss += weight * -(z[y[i]!]! - m - Math.log(S));
          r = e.map((ek, k) => weight * (ek / S - (k === y[i] ? 1 : 0)));
        }
        for (let k = 0; k < O; k++) {
          for (const [j, v] of x[i]!) g[k]![j]! += r[k]! * v;
          gb[k]! += r[k]!;
        }
      }
      for (let k = 0; k < O; k++) {
        for (let j = 0; j <= D; j++) {
          const gj = j === D ? gb[k]! / n : g[k]![j]! / n;
          const current = j === D ? b[k]! : W[k]![j]!;
          let next: number;
          if (options.optimizer === 'sgd') next = current - options.lr * (gj + (j === D ? 0 : options.l2 * current));
          else {
            G[k]![j]! += gj * gj;
            next = current - (options.lr * gj) / (Math.sqrt(G[k]![j]!) + 1e-10);
          }
          if (j === D) b[k] = next;
          else W[k]![j] = next;
        }
      }
      losses.push(loss / n);
    }
  }
  return { W, b, losses };
}

interface ModelFile {
  weights: number[] | number[][] | { dims: number; indices: number[]; values: number[] };
  bias: number | number[];
  trainedOn: { classWeight?: string; classWeights?: number[] };
}

/** The weights of a model file as O dense rows of D, whichever form it holds them in. */
function denseWeights(model: ModelFile, O: number, D: number): number[][] {
  const { weights } = model;
  if (Array.isArray(weights)) return O === 1 ? [weights as number[]] : (weights as number[][]);
  const W = Array.from({ length: O }, () => new Array<number>(D).fill(0));
  // The sparse form lists O values per index, output o of index k at k·O + o.
  weights.indices.forEach((j, k) => {
    for (let o = 0; o < O; o++) W[o]![j] = weights.values[k * O + o]!;
  });
  return W;
}

function stepLosses(metrics: string): number[] {
  return readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; loss: number })
    .filter((event) => event.type === 'step')
    .map((event) => event.loss);
}

/** Three seeded classes (labels 0, 1, 2), the last one rare. */
function threeClassText(rows: number, maxIndex: number, seed: number): string {
  const next = lcg(seed);
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    const indices = new Set<number>();
    const count = 1 + Math.floor(next() * 8);
    while (indices.size < count) indices.add(1 + Math.floor(next() * maxIndex));
    const entries = [...indices].sort((a, b) => a - b).map((j) => [j, (Math.floor(next() * 32) - 16 || 1) / 8] as const);
    const score = entries.reduce((sum, [j, v]) => sum + (j % 3 === 0 ? v : -v / 2), 0);
    const label = next() < 0.12 ? 2 : score > 0 ? 1 : 0;
    lines.push(`${label} ${entries.map(([j, v]) => `${j}:${v}`).join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

let binary = '';
let binaryRows: ReferenceRows;
beforeAll(() => {
  // A negative bias makes the positive class rare.
  const text = libsvmText({ rows: 400, maxIndex: 3000, seed: 43, bias: -1.5 });
  binary = join(directory.path, 'imbalanced.svm');
  writeFileSync(binary, text);
  binaryRows = parseLibsvmReference(text);
});

describe('--class-weight balanced on sparse data matches an independent float64 reference', () => {
  it.each([
    ['logistic, sgd with L2', 2, 'sgd', ['--l2', '0.05'], 0.05],
    ['logistic, adagrad', 3, 'adagrad', [], 0],
    ['softmax over three classes, sgd with L2', 2, 'sgd', ['--l2', '0.01'], 0.01],
  ] as const)(
    '%s, over %d workers',
    async (name, workers, optimizer, flags, l2) => {
      const isSoftmax = name.startsWith('softmax');
      let data = binary;
      let rows = binaryRows;
      if (isSoftmax) {
        const text = threeClassText(300, 500, 9);
        data = join(directory.path, 'three.svm');
        writeFileSync(data, text);
        rows = parseLibsvmReference(text);
      }
      const all = rows.y.map((_, i) => i);
      const c = balanced(rows.y, rows.K, all);
      // Imbalanced enough that the weights matter: the rarest class at most a quarter of the rows.
      expect(Math.max(...c)).toBeGreaterThan(1.5);
      const id = name.replace(/[^a-z]+/g, '-');
      const out = join(directory.path, `${id}.json`);
      const metrics = join(directory.path, `${id}.jsonl`);
      const args = ['--data', data, '--epochs', '3', '--batch-size', '40', '--chunks', '4', '--lr', '0.5', '--no-shuffle', '--optimizer', optimizer, ...flags];
      const result = await runCli(
        ['train', ...args, '--class-weight', 'balanced', '--workers', String(workers), '--out', out, '--metrics', metrics],
        {},
        240_000,
      );
      expect(result.code, result.stderr).toBe(0);
      const reference = referenceTrain(rows, c, { epochs: 3, batchSize: 40, lr: 0.5, l2, optimizer });
      const model = JSON.parse(readFileSync(out, 'utf8')) as ModelFile;
      expect(model.trainedOn.classWeight).toBe('balanced');
      expect(model.trainedOn.classWeights).toEqual(c);
      const O = reference.W.length;
      const W = denseWeights(model, O, rows.D);
      expect(Math.max(...reference.W.flat().map(Math.abs))).toBeGreaterThan(0.1);
      let maxDiff = 0;
      for (let k = 0; k < O; k++) for (let j = 0; j < rows.D; j++) maxDiff = Math.max(maxDiff, Math.abs(W[k]![j]! - reference.W[k]![j]!));
      const bias = [model.bias].flat();
      for (let k = 0; k < O; k++) maxDiff = Math.max(maxDiff, Math.abs(bias[k]! - reference.b[k]!));
      expect(maxDiff, `${name}: largest difference of a weight or bias`).toBeLessThanOrEqual(1e-9);
      const losses = stepLosses(metrics);
      expect(losses).toHaveLength(reference.losses.length);
      for (let t = 0; t < losses.length; t++) expect(Math.abs(losses[t]! - reference.losses[t]!), `loss of step ${t}`).toBeLessThanOrEqual(1e-9);
      // Without the weights it is another model: the weights did something.
      const unweighted = referenceTrain(rows, new Array<number>(rows.K).fill(1), { epochs: 3, batchSize: 40, lr: 0.5, l2, optimizer });
      expect(Math.abs(unweighted.b[0]! - reference.b[0]!)).toBeGreaterThan(1e-3);
    },
    300_000,
  );
});

describe('--class-weight balanced on a corrupt sparse .dpt', () => {
  it('refuses a label section that fails its CRC-32 before any worker is asked for, naming the file and block (exit 2)', async () => {
    const dpt = join(directory.path, 'labels.dpt');
    const converted = await runCli(['data', 'convert', binary, dpt], {}, 120_000);
    expect(converted.code, converted.stderr).toBe(0);
    const bytes = readFileSync(dpt);
    const labelsOffset = Number(bytes.readBigUInt64LE(64)); // the header's labelsOffset field
    bytes[labelsOffset + 3] = bytes[labelsOffset + 3]! ^ 0x01; // a 0/1 class index stays a valid class: only the CRC tells
    const corrupt = join(directory.path, 'labels-corrupt.dpt');
    writeFileSync(corrupt, bytes);
    const result = await runCli(['train', '--data', corrupt, '--class-weight', 'balanced', '--workers', '1', '--epochs', '1'], {}, 120_000);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/labels-corrupt\.dpt: content block 0 \(bytes \d+ on\) fails its CRC-32 check: the file is corrupt/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr).not.toMatch(/worker \d+ joined/);
  }, 240_000);
});

describe('--class-weight balanced on sparse data gives the same bits on any cluster', () => {
  it('1, 2 and 3 workers with a seeded validation split; the weights count the training rows only', async () => {
    const flags = [
      '--data',
      binary,
      '--epochs',
      '3',
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
      '--l2',
      '0.02',
      '--class-weight',
      'balanced',
    ];
    const [one, two, three] = await Promise.all([
      trainOnCluster(directory.path, 'cw-w1', flags, 1),
      trainOnCluster(directory.path, 'cw-w2', flags, 2),
      trainOnCluster(directory.path, 'cw-w3', flags, 3),
    ]);
    for (const [cluster, run] of [
      ['1 worker', one],
      ['3 workers', three],
    ] as const) {
      expect(run.digest, `${cluster}: model file`).toBe(two.digest);
      expect(run.params, `${cluster}: parameters`).toBe(two.params);
      expect(run.losses, `${cluster}: loss stream`).toEqual(two.losses);
    }
    const { train } = splitRows(binaryRows.y.length, 0.1, 7);
    const expected = balanced(binaryRows.y, 2, Array.from(train));
    const model = JSON.parse(readFileSync(two.out, 'utf8')) as ModelFile;
    expect(model.trainedOn.classWeights).toEqual(expected);
    // The held-out rows change the counts: weights over every row would differ.
    expect(
      balanced(
        binaryRows.y,
        2,
        binaryRows.y.map((_, i) => i),
      ),
    ).not.toEqual(expected);
  }, 400_000);
});

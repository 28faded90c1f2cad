// Sparse training (issue #13) end to end with real processes: a LIBSVM file trains over 2 and 3
// workers to the model of an independent float64 reference written here (its own parsing of the
// text, its own batching, dense math over every coordinate); the same bits with 1, 2, 3 and 5
// workers, a worker SIGKILLed mid-run, the coordinator SIGKILLed mid-epoch and resumed, and a
// worker joining mid-run (it gets the parameters in full, then deltas); dense runs are untouched
// (their own bits tests stay as they were); bad combinations fail with one clear line.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { murmur3_x86_32 } from '../../shared/murmur3.js';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { modelFileDigest, trainOnCluster, trainWithCoordinatorKilled, trainWithWorkerKilled } from '../helpers/cluster-runs.js';
import { startHonestWorker } from '../helpers/fake-worker.js';
import { libsvmText, parseLibsvmReference, type ReferenceRows } from '../helpers/libsvm-text.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

const ROWS = 400;
/** The largest index any row may use (D is the largest one present). */
const MAX_INDEX = 3000;

/**
 * Plain float64 mini-batch training over rows in file order, every coordinate updated every step
 * as the dense formulas say: sgd w ← w − η·((1/n)Σ(σ(z)−y)·x + λ·w), b ← b − η·(1/n)Σ(σ(z)−y);
 * adagrad G ← G + g², w ← w − η·g/(√G + ε) (no L2). Returns the weights, the bias and each step's mean loss.
 */
function referenceTrain(rows: ReferenceRows, options: { epochs: number; batchSize: number; lr: number; l2: number; optimizer: 'sgd' | 'adagrad' }) {
  const { D, x, y } = rows;
  const w = new Array<number>(D).fill(0);
  let b = 0;
  const G = new Array<number>(D + 1).fill(0);
  const losses: number[] = [];
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    for (let start = 0; start < x.length; start += options.batchSize) {
      const end = Math.min(start + options.batchSize, x.length);
      const n = end - start;
      const g = new Array<number>(D).fill(0);
      let gb = 0;
      let loss = 0;
      for (let i = start; i < end; i++) {
        let z = b;
        for (const [j, v] of x[i]!) z += w[j]! * v;
        const a = 1 / (1 + Math.exp(-z));
        loss += -(y[i]! * Math.log(a) + (1 - y[i]!) * Math.log(1 - a));
        for (const [j, v] of x[i]!) g[j]! += (a - y[i]!) * v;
        gb += a - y[i]!;
      }
      for (let j = 0; j < D; j++) {
        const gj = g[j]! / n;
        if (options.optimizer === 'sgd') w[j] = w[j]! - options.lr * (gj + options.l2 * w[j]!);
        else {
          G[j]! += gj * gj;
          w[j] = w[j]! - (options.lr * gj) / (Math.sqrt(G[j]!) + 1e-10);
        }
      }
      if (options.optimizer === 'sgd') b -= options.lr * (gb / n);
      else {
        G[D]! += (gb / n) ** 2;
        b -= (options.lr * (gb / n)) / (Math.sqrt(G[D]!) + 1e-10);
      }
      losses.push(loss / n);
    }
  }
  return { w, b, losses };
}

/** The weights of a model file, dense (D numbers) whichever form it holds them in. */
/** Prints the largest differences from the reference (the README and the closing note quote them). */
function reportDifference(label: string, model: { w: number[]; b: number }, reference: { w: number[]; b: number; losses: number[] }, losses: number[]): void {
  const weights = Math.max(Math.abs(model.b - reference.b), ...model.w.map((value, j) => Math.abs(value - reference.w[j]!)));
  const stepLoss = Math.max(...losses.map((value, t) => Math.abs(value - reference.losses[t]!)));
  console.log(`${label}: max |diff| ${weights.toExponential(1)} on the weights and bias, ${stepLoss.toExponential(1)} on the step losses`);
}

function denseWeights(path: string, D: number): { w: number[]; b: number; input: string } {
  const model = JSON.parse(readFileSync(path, 'utf8')) as {
    input: string;
    weights: number[] | { dims: number; indices: number[]; values: number[] };
    bias: number;
  };
  const { weights } = model;
  if (Array.isArray(weights)) return { w: weights, b: model.bias, input: model.input };
  const w = new Array<number>(D).fill(0);
  weights.indices.forEach((j, k) => {
    w[j] = weights.values[k]!;
  });
  return { w, b: model.bias, input: model.input };
}

let svm = '';
let rows: ReferenceRows;
beforeAll(() => {
  const text = libsvmText({ rows: ROWS, maxIndex: MAX_INDEX, seed: 41 });
  svm = join(directory.path, 'rows.svm');
  writeFileSync(svm, text);
  rows = parseLibsvmReference(text);
});

describe('sparse training matches an independent float64 reference', () => {
  it.each([
    ['sgd with L2 (the scale form)', 2, 'sgd', ['--l2', '0.05'], 0.05],
    ['adagrad', 3, 'adagrad', [], 0],
  ] as const)(
    'LIBSVM, %s, over %d workers',
    async (_name, workers, optimizer, flags, l2) => {
      const out = join(directory.path, `reference-${optimizer}.json`);
      const metrics = join(directory.path, `reference-${optimizer}.jsonl`);
      const args = ['--data', svm, '--epochs', '3', '--batch-size', '40', '--chunks', '4', '--lr', '0.5', '--no-shuffle', '--optimizer', optimizer, ...flags];
      const result = await runCli(['train', ...args, '--workers', String(workers), '--out', out, '--metrics', metrics], {}, 180_000);
      expect(result.code, result.stderr).toBe(0);
      const reference = referenceTrain(rows, { epochs: 3, batchSize: 40, lr: 0.5, l2, optimizer });
      const model = denseWeights(out, rows.D);
      expect(model.input).toBe('libsvm');
      expect(model.w).toHaveLength(rows.D);
      // It learned something (a model left near zero would match anything loosely).
      expect(Math.max(...reference.w.map(Math.abs))).toBeGreaterThan(0.1);
      for (let j = 0; j < rows.D; j++) expect(Math.abs(model.w[j]! - reference.w[j]!), `w[${j}]`).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(model.b - reference.b)).toBeLessThanOrEqual(1e-9);
      const losses = stepLosses(metrics);
      expect(losses).toHaveLength(reference.losses.length);
      for (let t = 0; t < losses.length; t++) expect(Math.abs(losses[t]! - reference.losses[t]!), `loss of step ${t}`).toBeLessThanOrEqual(1e-9);
      reportDifference(`LIBSVM ${optimizer} over ${workers} workers`, model, reference, losses);
      // Traffic: a step message plus a params delta, far below the 8·D bytes of a dense θ.
      const perStep = [...result.stderr.matchAll(/received \d+ bytes of step messages \((\d+) bytes per step\)/g)].map((match) => Number(match[1]));
      expect(perStep).toHaveLength(workers);
      for (const bytes of perStep) expect(bytes).toBeLessThan(8 * rows.D);
    },
    240_000,
  );
});

/** A seeded CSV of categorical columns (strings and numbers), a numeric one and 0/1 labels. */
function categoricalCsv(seed: number, rowCount: number): string {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
  const colors = ['red', 'green', 'blue', 'ochre', 'teal'];
  const shapes = ['circle', 'square', 'star'];
  const lines = ['color,size,shape,city,label'];
  for (let i = 0; i < rowCount; i++) {
    const color = colors[Math.floor(next() * colors.length)]!;
    const shape = shapes[Math.floor(next() * shapes.length)]!;
    const city = String(100 + Math.floor(next() * 40)); // a category written as a number
    const size = (Math.floor(next() * 33) - 16) / 8;
    const z = (color === 'red' ? 1.5 : -0.3) + (shape === 'star' && color === 'blue' ? 2 : 0) + 0.7 * size + (Number(city) % 3) - 1;
    lines.push(`${color},${size},${shape},${city},${next() < 1 / (1 + Math.exp(-z)) ? 1 : 0}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The reference's own features of that CSV under the hashing spec: h(s) = murmur3_x86_32(utf8(s), 0) mod 2^B;
 * categorical c, cell v → h("c=v") with 1; numeric c, cell x → h("c") with x (none for 0); cross a:b → h("a=v^b=u") with 1;
 * collisions add.
 */
function hashedRows(csv: string, bits: number, categorical: readonly string[], crosses: readonly (readonly [string, string])[]): ReferenceRows {
  const [header, ...records] = csv.trim().split('\n');
  const names = header!.split(',');
  const h = (text: string): number => {
    const bytes = new TextEncoder().encode(text);
    return murmur3_x86_32(bytes, 0) % 2 ** bits;
  };
  const x: (readonly [number, number])[][] = [];
  const y: number[] = [];
  for (const record of records) {
    const cells = record.split(',').map((cell) => cell.trim());
    const row = new Map<number, number>();
    const add = (bucket: number, value: number): void => {
      row.set(bucket, (row.get(bucket) ?? 0) + value);
    };
    names.forEach((name, c) => {
      if (name === 'label') return;
      if (categorical.includes(name)) add(h(`${name}=${cells[c]}`), 1);
      else if (Number(cells[c]) !== 0) add(h(name), Number(cells[c]));
    });
    for (const [a, b] of crosses) add(h(`${a}=${cells[names.indexOf(a)]}^${b}=${cells[names.indexOf(b)]}`), 1);
    x.push([...row.entries()]);
    y.push(Number(cells[names.indexOf('label')]));
  }
  return { D: 2 ** bits, x, y, K: 2 };
}

describe('sparse training of a hashed CSV matches an independent float64 reference', () => {
  it('categorical columns (strings and numbers), a numeric column and a cross, --hash-bits 8, sgd with L2, over 3 workers', async () => {
    const csv = categoricalCsv(5, 300);
    const path = join(directory.path, 'shapes.csv');
    writeFileSync(path, csv);
    const out = join(directory.path, 'hashed.json');
    const metrics = join(directory.path, 'hashed.jsonl');
    const flags = ['--hash-bits', '8', '--categorical', 'color,shape,city', '--cross', 'color:shape'];
    const args = ['--data', path, ...flags, '--epochs', '4', '--batch-size', '32', '--chunks', '4', '--lr', '0.5', '--l2', '0.01', '--no-shuffle'];
    const result = await runCli(['train', ...args, '--workers', '3', '--out', out, '--metrics', metrics], {}, 180_000);
    expect(result.code, result.stderr).toBe(0);
    const features = hashedRows(csv, 8, ['color', 'shape', 'city'], [['color', 'shape']]);
    const reference = referenceTrain(features, { epochs: 4, batchSize: 32, lr: 0.5, l2: 0.01, optimizer: 'sgd' });
    const model = denseWeights(out, 256);
    expect(model.input).toBe('hashed-csv');
    expect(Math.max(...reference.w.map(Math.abs))).toBeGreaterThan(0.1);
    for (let j = 0; j < 256; j++) expect(Math.abs(model.w[j]! - reference.w[j]!), `w[${j}]`).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(model.b - reference.b)).toBeLessThanOrEqual(1e-9);
    const losses = stepLosses(metrics);
    expect(losses).toHaveLength(reference.losses.length);
    for (let t = 0; t < losses.length; t++) expect(Math.abs(losses[t]! - reference.losses[t]!), `loss of step ${t}`).toBeLessThanOrEqual(1e-9);
    reportDifference('hashed CSV sgd over 3 workers', model, reference, losses);
    const file = JSON.parse(readFileSync(out, 'utf8')) as {
      hashing: { bits: number; categorical: string[]; crosses: string[][] };
      trainedOn: Record<string, unknown>;
    };
    expect([file.hashing.bits, file.hashing.categorical, file.hashing.crosses]).toEqual([8, ['color', 'shape', 'city'], [['color', 'shape']]]);
    expect([file.trainedOn.hashBits, file.trainedOn.categorical, file.trainedOn.crosses]).toEqual([8, 'color,shape,city', 'color:shape']);
  }, 240_000);
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

describe('sparse training gives the same bits on any cluster and across faults', () => {
  it.each([
    ['sgd with L2', ['--optimizer', 'sgd', '--l2', '0.02'], []],
    ['adagrad', ['--optimizer', 'adagrad'], ['sum']],
  ] as const)(
    '%s: 1, 2, 3 and 5 workers, a worker killed, the coordinator killed and resumed, a worker joining late',
    async (name, flags, buffers) => {
      const all = [...BITS_FLAGS(), ...flags];
      const id = name.replace(/[^a-z]+/g, '-');
      const [one, two, three, five, workerKilled, coordinatorKilled, late] = await Promise.all([
        trainOnCluster(directory.path, `${id}-w1`, all, 1),
        trainOnCluster(directory.path, `${id}-w2`, all, 2),
        trainOnCluster(directory.path, `${id}-w3`, all, 3),
        trainOnCluster(directory.path, `${id}-w5`, all, 5),
        trainWithWorkerKilled(directory.path, `${id}-worker-killed`, all, 9),
        trainWithCoordinatorKilled(directory.path, `${id}-coordinator-killed`, all, 13, 4),
        trainWithLateWorker(`${id}-late`, all, 5),
      ]);
      expect(two.losses).toHaveLength(EPOCHS * STEPS_PER_EPOCH);
      const trained = JSON.parse(readFileSync(two.out, 'utf8')) as { trainedOn: Record<string, unknown> };
      expect([trained.trainedOn.sparse, trained.trainedOn.standardize, trained.trainedOn.optimizer]).toEqual([true, false, flags[1]]);

      expect(workerKilled.killedAt).toBeGreaterThanOrEqual(9);
      expect(workerKilled.leftLine).toMatch(/left: disconnected/);
      expect(Math.max(...workerKilled.contributors.slice(workerKilled.killedAt + 1))).toBe(2);

      const { killedAt, checkpointStep, resumedAt, savedOptimizer } = coordinatorKilled;
      expect(killedAt).toBeGreaterThanOrEqual(13);
      expect(checkpointStep % STEPS_PER_EPOCH).not.toBe(0);
      expect(resumedAt).toBe(checkpointStep);
      expect(Object.keys(savedOptimizer.buffers)).toEqual(buffers);

      // The late worker took part after it joined.
      expect(late.joinedAt).toBeGreaterThanOrEqual(5);
      expect(Math.max(...late.contributors.slice(0, 5))).toBe(1);
      expect(late.contributors.at(-1)).toBe(2);

      for (const [cluster, run] of [
        ['1 worker', one],
        ['3 workers', three],
        ['5 workers', five],
        ['a worker killed', workerKilled],
        ['the coordinator killed and resumed', coordinatorKilled],
        ['a worker joining late', late],
      ] as const) {
        expect(run.digest, `${name}, ${cluster}: model file`).toBe(two.digest);
        expect(run.params, `${name}, ${cluster}: parameters`).toBe(two.params);
        expect(run.losses, `${name}, ${cluster}: loss stream`).toEqual(two.losses);
      }
    },
    400_000,
  );
});

/**
 * `dpt coordinator` with one in-test worker; when it is sent step `joinAt` it holds it, a real
 * worker is started and the step released once the coordinator has said that worker joined: from
 * then on it computes with parameters it received in full, then as deltas.
 */
async function trainWithLateWorker(name: string, flags: readonly string[], joinAt: number) {
  const out = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const token = `${name}-token`;
  const coordinator = startCli([
    'coordinator',
    ...flags,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--workers',
    '1',
    '--token',
    token,
    '--backup-factor',
    '0',
    '--out',
    out,
    '--metrics',
    metrics,
  ]);
  const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/, 120_000);
  const url = `ws://127.0.0.1:${port}`;
  const gate = startHonestWorker(url, token);
  const joinedAt = await gate.holdAt(joinAt);
  startCli(['worker', '--connect', url, '--token', token]);
  await coordinator.waitForCount(/worker \d+(?: \([^)]*\))? joined/g, 2, 120_000);
  gate.release();
  const { code } = await coordinator.exited(180_000);
  if (code !== 0) throw new Error(`the coordinator (${name}) exited ${code}\n${coordinator.stderr()}`);
  const contributors = readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; workers?: number })
    .filter((event) => event.type === 'step')
    .map((event) => event.workers as number);
  return { out, digest: modelFileDigest(out), params: modelHash(out), losses: stepLosses(metrics), contributors, joinedAt };
}

describe('traffic follows the non-zeros, not D', () => {
  it('sends about the same bytes per step and worker at D = 3,000 and D = 2^20 (the same rows, one far index added)', async () => {
    const far = join(directory.path, 'far.svm');
    // The same rows; the last one also touches index 2^20, so D grows 350-fold and nnz by one.
    writeFileSync(far, `${readFileSync(svm, 'utf8').trimEnd()} ${2 ** 20}:1\n`);
    const traffic = async (data: string): Promise<{ down: number[]; up: number[] }> => {
      const result = await runCli(
        ['train', '--data', data, '--workers', '2', '--epochs', '2', '--batch-size', '40', '--chunks', '4', '--l2', '0.01'],
        {},
        180_000,
      );
      expect(result.code, result.stderr).toBe(0);
      const lines = [...result.stderr.matchAll(/\((\d+) bytes per step\); received \d+ bytes of step messages \((\d+) bytes per step\)/g)];
      expect(lines).toHaveLength(2);
      return { up: lines.map((match) => Number(match[1])), down: lines.map((match) => Number(match[2])) };
    };
    const small = await traffic(svm);
    const large = await traffic(far);
    for (const [name, a, b] of [
      ['step and params messages', small.down, large.down],
      ['parts', small.up, large.up],
    ] as const) {
      const ratio = (b[0]! + b[1]!) / (a[0]! + a[1]!);
      expect(ratio, `${name}: ${a} bytes per step at D = 3,000, ${b} at D = 2^20`).toBeLessThan(1.2);
    }
    // A dense θ alone would be 8 MB per step at D = 2^20.
    expect(Math.max(...large.down)).toBeLessThan(8 * 3000);
  }, 400_000);
});

describe('bad sparse inputs fail with one clear line', () => {
  it.each([
    ['--standardize on sparse data', ['--standardize'], /--standardize: .* is sparse data, which is never standardized/],
    [
      'an optimizer that moves every coordinate',
      ['--optimizer', 'adam'],
      /--optimizer adam updates every coordinate every step.*use --optimizer sgd, adagrad, ftrl/,
    ],
    ['L2 with adagrad', ['--optimizer', 'adagrad', '--l2', '0.1'], /--l2 with --optimizer adagrad/],
    ['--categorical without --hash-bits', ['--categorical', 'a'], /--categorical needs --hash-bits/],
  ])(
    '%s',
    async (_name, flags, message) => {
      const result = await runCli(['train', '--data', svm, '--workers', '1', '--epochs', '1', ...flags], {}, 120_000);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    },
    150_000,
  );

  it('refuses a sparse flag on dense data: --format libsvm or --hash-bits on a .dpt file, --hash-bits on LIBSVM', async () => {
    const csv = join(directory.path, 'dense.csv');
    writeFileSync(csv, 'a,b,label\n1,2,0\n3,4,1\n');
    const dpt = join(directory.path, 'dense.dpt');
    const converted = await runCli(['data', 'convert', csv, dpt], {}, 60_000);
    expect(converted.code, converted.stderr).toBe(0);
    for (const [data, flags, message] of [
      [dpt, ['--format', 'libsvm'], /--format libsvm: .*dense\.dpt is a \.dpt file, not LIBSVM text/],
      [dpt, ['--hash-bits', '10'], /--hash-bits hashes the columns of a CSV file; .*dense\.dpt is a \.dpt file/],
      [svm, ['--hash-bits', '10'], /--hash-bits hashes the columns of a CSV file; .*rows\.svm is LIBSVM text/],
    ] as const) {
      const result = await runCli(['train', '--data', data, ...flags, '--workers', '1', '--epochs', '1'], {}, 120_000);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  }, 150_000);
});

// Every optimizer and the rate schedules (issue #12), trained by `dpt train` over 2 real worker
// processes on real data (the bundled breast-cancer set, standardized here), equal an independent
// plain-loop float64 reference to 1e-9; adam gives the same bits with 1, 2 and 3 workers; and an
// adam run whose coordinator is killed mid-run (SIGKILL, at a step an in-test worker holds) and
// resumed from its checkpoint ends with the uninterrupted run's bits.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, REPO, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startHonestWorker } from '../helpers/fake-worker.js';
import { modelHash } from '../helpers/model-hash.js';
import { type ReferenceOptimizer, referenceTrainWithOptimizer } from '../helpers/optimizer-reference.js';
import { maxAbsDifference } from '../helpers/reference.js';

const directory = temporaryDirectory();
const dataPath = join(directory.path, 'breast-cancer-standardized.csv');
const EPOCHS = 3;
const BATCH = 50; // 569 rows: 11 batches of 50 and one of 19 per epoch, 36 steps
const L2 = 0.01;

/**
 * The bundled data standardized here (z-scores, population std), each value rounded to float32 as
 * the .dpt format stores it, so that dpt (with --no-standardize) and the reference see the same numbers.
 */
function standardizedData(): { X: number[][]; Y: number[]; csv: string } {
  const [header, ...lines] = readFileSync(join(REPO, 'data', 'breast_cancer.csv'), 'utf8')
    .trim()
    .split('\n');
  const rows = lines.map((line) => line.split(',').map(Number));
  const D = (rows[0]?.length ?? 1) - 1;
  const mean = new Array<number>(D).fill(0);
  const std = new Array<number>(D).fill(0);
  for (const row of rows) for (let j = 0; j < D; j++) mean[j] = (mean[j] as number) + (row[j] as number) / rows.length;
  for (const row of rows) for (let j = 0; j < D; j++) std[j] = (std[j] as number) + ((row[j] as number) - (mean[j] as number)) ** 2 / rows.length;
  const X = rows.map((row) => Array.from({ length: D }, (_, j) => Math.fround(((row[j] as number) - (mean[j] as number)) / Math.sqrt(std[j] as number))));
  const Y = rows.map((row) => row[D] as number);
  const csv = `${header}\n${X.map((x, i) => [...x, Y[i]].join(',')).join('\n')}\n`;
  return { X, Y, csv };
}

const data = standardizedData();

beforeAll(() => writeFileSync(dataPath, data.csv));
afterAll(() => {
  killAll();
  directory.remove();
});

/** The result-changing flags of a run with `options` (file order, the data as given). */
function flagsOf(options: ReferenceOptimizer): string[] {
  const flags = [
    '--data',
    dataPath,
    '--no-shuffle',
    '--no-standardize',
    '--epochs',
    String(EPOCHS),
    '--batch-size',
    String(BATCH),
    // 8 chunks a batch so that every worker takes part (the default for B = 50 is one chunk).
    '--chunks',
    '8',
    '--lr',
    String(options.lr),
    '--l2',
    String(options.l2),
    '--optimizer',
    options.name,
  ];
  if (options.momentum !== undefined) flags.push('--momentum', String(options.momentum));
  if (options.beta1 !== undefined) flags.push('--beta1', String(options.beta1));
  if (options.beta2 !== undefined) flags.push('--beta2', String(options.beta2));
  if (options.eps !== undefined) flags.push('--eps', String(options.eps));
  if (options.schedule !== undefined) flags.push('--lr-schedule', options.schedule);
  if (options.warmupSteps !== undefined) flags.push('--warmup-steps', String(options.warmupSteps));
  if (options.decayEpochs !== undefined) flags.push('--lr-decay-epochs', String(options.decayEpochs));
  if (options.gamma !== undefined) flags.push('--lr-gamma', String(options.gamma));
  return flags;
}

async function train(name: string, options: ReferenceOptimizer, workers: number, extra: string[] = []): Promise<{ w: number[]; b: number; path: string }> {
  const out = join(directory.path, `${name}.json`);
  const result = await runCli(['train', ...flagsOf(options), '--workers', String(workers), '--out', out, ...extra], {}, 180_000);
  expect(result.code, result.stderr).toBe(0);
  const model = JSON.parse(readFileSync(out, 'utf8')) as { weights: number[]; bias: number; trainedOn: Record<string, unknown> };
  expect(model.trainedOn.optimizer).toBe(options.name);
  return { w: model.weights, b: model.bias, path: out };
}

const ADAM: ReferenceOptimizer = { name: 'adam', lr: 0.01, l2: L2 };
const CASES: readonly (readonly [string, ReferenceOptimizer])[] = [
  ['sgd', { name: 'sgd', lr: 0.5, l2: L2 }],
  ['momentum', { name: 'momentum', lr: 0.1, l2: L2, momentum: 0.9 }],
  ['nesterov', { name: 'nesterov', lr: 0.1, l2: L2, momentum: 0.8 }],
  ['adagrad', { name: 'adagrad', lr: 0.1, l2: L2 }],
  ['adam', ADAM],
  ['adamw', { name: 'adamw', lr: 0.01, l2: L2, beta1: 0.8, beta2: 0.99 }],
  ['adam, cosine with warm-up', { name: 'adam', lr: 0.02, l2: L2, schedule: 'cosine', warmupSteps: 5 }],
  ['momentum, cosine with warm-up and step decay', { name: 'momentum', lr: 0.2, l2: L2, schedule: 'cosine', warmupSteps: 7, decayEpochs: 1, gamma: 0.5 }],
];

const hashes = new Map<string, string>();

describe('dpt train --optimizer over 2 workers', () => {
  it.each(CASES)('%s equals the float64 reference to 1e-9', async (name, options) => {
    const model = await train(name.replace(/[^a-z]+/g, '-'), options, 2);
    const reference = referenceTrainWithOptimizer(data.X, data.Y, EPOCHS, BATCH, options);
    // A model that stayed at zero would prove nothing: the run moved.
    expect(Math.max(...model.w.map(Math.abs))).toBeGreaterThan(0.05);
    expect(maxAbsDifference(model.w, reference.w)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(model.b - reference.b)).toBeLessThanOrEqual(1e-9);
    hashes.set(name, modelHash(model.path));
  });

  it('gives distinct models for distinct optimizers (the flag is not ignored)', () => {
    const names = ['sgd', 'momentum', 'nesterov', 'adagrad', 'adam', 'adamw'];
    expect(names.every((name) => hashes.has(name))).toBe(true);
    expect(new Set(names.map((name) => hashes.get(name))).size).toBe(names.length);
  });
});

describe('a bad optimizer or schedule flag', () => {
  it('is refused before training, naming the flag (exit 2)', async () => {
    for (const [extra, message] of [
      [['--optimizer', 'rmsprop'], /--optimizer <name>.*'rmsprop' is invalid/],
      [['--momentum', '1'], /--momentum must be a number in \(0, 1\), got 1/],
      [['--warmup-steps', '37'], /--warmup-steps 37 is longer than the run \(36 steps\)/],
    ] as const) {
      const result = await runCli(['train', ...flagsOf(ADAM), ...extra, '--workers', '1']);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });
});

describe('adam', () => {
  it('gives the same bits with 1, 2 and 3 workers', async () => {
    const one = await train('adam-w1', ADAM, 1);
    const three = await train('adam-w3', ADAM, 3);
    const two = hashes.get('adam') ?? modelHash((await train('adam-w2', ADAM, 2)).path);
    expect(modelHash(one.path)).toBe(two);
    expect(modelHash(three.path)).toBe(two);
  });

  it('resumed from a checkpoint after its coordinator was killed mid-run ends with the uninterrupted bits', async () => {
    const uninterrupted = hashes.get('adam') ?? modelHash((await train('adam-again', ADAM, 2)).path);
    const checkpoint = join(directory.path, 'adam.ckpt');
    const token = 'optimizers-token';
    const coordinator = startCli([
      'coordinator',
      ...flagsOf(ADAM),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '2',
      '--token',
      token,
      '--checkpoint',
      checkpoint,
      '--checkpoint-every',
      '4',
      // A held step stays held: no backup copies, no step deadline.
      '--backup-factor',
      '0',
      '--step-timeout',
      '600000',
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    const gate = startHonestWorker(url, token);
    startCli(['worker', '--connect', url, '--token', token]);
    const ended = coordinator.exited(120_000).then(({ code }): never => {
      throw new Error(`the coordinator ended (${code}) before step 21\n${coordinator.stderr()}`);
    });
    // Step 21 of 36 (mid-epoch 1): the run cannot pass it while held, so the kill lands mid-run.
    const heldAt = await Promise.race([gate.holdAt(21), ended]);
    process.kill(coordinator.pid, 'SIGKILL');
    expect((await coordinator.exited()).signal).toBe('SIGKILL');
    gate.release();
    const saved = JSON.parse(readFileSync(checkpoint, 'utf8')) as {
      version: number;
      state: { step: number; optimizer: { optimizer: string; step: number; buffers: Record<string, number[]> } };
    };
    expect(saved.version).toBe(3);
    expect(saved.state.step).toBeGreaterThan(0);
    expect(saved.state.step).toBeLessThanOrEqual(heldAt);
    expect(saved.state.optimizer.optimizer).toBe('adam');
    expect(saved.state.optimizer.step).toBe(saved.state.step);
    expect(Object.keys(saved.state.optimizer.buffers).sort()).toEqual(['expAvg', 'expAvgSq']);

    const resumed = await train('adam-resumed', ADAM, 2, ['--resume', checkpoint]);
    expect(modelHash(resumed.path)).toBe(uninterrupted);
  });

  it('refuses to resume a checkpoint with another optimizer or schedule, naming the field (exit 2)', async () => {
    const checkpoint = join(directory.path, 'adam.ckpt');
    for (const [options, field] of [
      [{ ...ADAM, name: 'adamw' }, /optimizer \(checkpoint: adam, now: adamw\) differs/],
      [{ ...ADAM, beta2: 0.99 }, /beta2 \(checkpoint: 0\.999, now: 0\.99\) differs/],
      [{ ...ADAM, schedule: 'cosine' }, /lrSchedule \(checkpoint: constant, now: cosine\) differs/],
    ] as const) {
      const result = await runCli(['train', ...flagsOf(options), '--workers', '1', '--resume', checkpoint]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(field);
      expect(result.stderr).toMatch(/DPT_CHECKPOINT/);
    }
  });
});

describe('a version 1 checkpoint (before the optimizers)', () => {
  it('resumes mid-run as plain sgd to the uninterrupted bits, and is refused clearly with another optimizer', async () => {
    const sgd: ReferenceOptimizer = { name: 'sgd', lr: 0.5, l2: L2 };
    const checkpoint = join(directory.path, 'sgd.ckpt');
    const midRun = join(directory.path, 'sgd-mid-run.ckpt');
    const token = 'optimizers-v1-token';
    const out = join(directory.path, 'sgd-uninterrupted.json');
    // An uninterrupted run whose checkpoint is copied while an in-test worker holds step 17.
    const coordinator = startCli([
      'coordinator',
      ...flagsOf(sgd),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '2',
      '--token',
      token,
      '--checkpoint',
      checkpoint,
      '--checkpoint-every',
      '5',
      '--backup-factor',
      '0',
      '--step-timeout',
      '600000',
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    const gate = startHonestWorker(url, token);
    startCli(['worker', '--connect', url, '--token', token]);
    const ended = coordinator.exited(120_000).then(({ code }): never => {
      throw new Error(`the coordinator ended (${code}) before step 17\n${coordinator.stderr()}`);
    });
    await Promise.race([gate.holdAt(17), ended]);
    writeFileSync(midRun, readFileSync(checkpoint));
    gate.release();
    expect((await coordinator.exited(120_000)).code, coordinator.stderr()).toBe(0);

    // The copy rewritten as version 1 wrote it: no optimizer state, no optimizer in the fingerprint.
    const file = JSON.parse(readFileSync(midRun, 'utf8')) as { state: Record<string, unknown> & { step: number; fingerprint: Record<string, unknown> } };
    expect(file.state.step).toBeGreaterThan(0);
    expect(file.state.step).toBeLessThan(EPOCHS * 12);
    const { optimizer: _optimizer, ...stateV1 } = file.state;
    const fingerprint = { ...stateV1.fingerprint };
    for (const key of ['optimizer', 'momentum', 'beta1', 'beta2', 'eps', 'lrSchedule', 'warmupSteps', 'lrDecayEpochs', 'lrGamma']) delete fingerprint[key];
    const body = { ...stateV1, fingerprint };
    const v1 = { format: 'dpt-checkpoint', version: 1, sha256: createHash('sha256').update(JSON.stringify(body)).digest('hex'), state: body };
    const v1Path = join(directory.path, 'v1.ckpt');
    writeFileSync(v1Path, JSON.stringify(v1));

    const resumed = await train('sgd-from-v1', sgd, 1, ['--resume', v1Path]);
    expect(modelHash(resumed.path)).toBe(modelHash(out));
    const refused = await runCli(['train', ...flagsOf({ ...sgd, name: 'adam' }), '--workers', '1', '--resume', v1Path]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/optimizer \(checkpoint: sgd, now: adam\) differs \(a version 1 checkpoint resumes only with --optimizer sgd/);
  });
});

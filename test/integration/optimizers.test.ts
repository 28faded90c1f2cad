// Every optimizer, each at a constant rate, with cosine annealing and linear warm-up, and with a
// step decay (and two with all three at once), trained by `dpt train` over 2 real worker processes
// on real data (the bundled breast-cancer set, standardized here), equals an independent plain-loop
// float64 reference to 1e-9 (issue #12); the measured differences are printed. Bad optimizer and
// schedule flags, and checkpoints of another optimizer or version 1, are refused or resumed as the
// README says. The same bits on any cluster and across faults: optimizer-bits.test.ts.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';
import { startGatedCluster } from '../helpers/cluster-runs.js';
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
const OPTIMIZERS: readonly ReferenceOptimizer[] = [
  { name: 'sgd', lr: 0.5, l2: L2 },
  { name: 'momentum', lr: 0.1, l2: L2, momentum: 0.9 },
  { name: 'nesterov', lr: 0.1, l2: L2, momentum: 0.8 },
  { name: 'adagrad', lr: 0.1, l2: L2 },
  ADAM,
  { name: 'adamw', lr: 0.01, l2: L2, beta1: 0.8, beta2: 0.99 },
];
type Schedule = Pick<ReferenceOptimizer, 'schedule' | 'warmupSteps' | 'decayEpochs' | 'gamma'>;
/** Every optimizer runs under each of these; the combined schedule only under `combinedFor`. */
const SCHEDULES: readonly (readonly [string, Schedule])[] = [
  ['constant', {}],
  ['cosine with warm-up', { schedule: 'cosine', warmupSteps: 5 }],
  ['step decay', { decayEpochs: 1, gamma: 0.5 }],
];
const COMBINED: readonly [string, Schedule] = ['cosine, warm-up and step decay', { schedule: 'cosine', warmupSteps: 7, decayEpochs: 1, gamma: 0.5 }];
const combinedFor = new Set(['momentum', 'adamw']);

const hashes = new Map<string, string>();
/** max |dpt − reference| on the weights and on the bias, per optimizer and schedule (printed after the runs). */
const differences: { optimizer: string; schedule: string; weights: number; bias: number }[] = [];

describe('dpt train --optimizer over 2 workers', () => {
  afterAll(() => {
    const lines = differences.map(
      ({ optimizer, schedule, weights, bias }) => `${`${optimizer}, ${schedule}`.padEnd(42)} ${weights.toExponential(1)}  ${bias.toExponential(1)}`,
    );
    console.info(`max |dpt − reference| (weights, bias):\n${lines.join('\n')}`);
  });

  it.each(OPTIMIZERS.map((options) => [options.name, options] as const))(
    '%s at a constant rate, cosine with warm-up and a step decay equals the float64 reference to 1e-9',
    async (name, optimizer) => {
      const schedules = combinedFor.has(name) ? [...SCHEDULES, COMBINED] : SCHEDULES;
      // The schedules of one optimizer train concurrently: each run is mostly waiting on its processes.
      const runs = await Promise.all(
        schedules.map(async ([schedule, flags]) => {
          const options = { ...optimizer, ...flags };
          return { schedule, options, model: await train(`${name}-${schedule.replace(/[^a-z]+/g, '-')}`, options, 2) };
        }),
      );
      for (const { schedule, options, model } of runs) {
        const reference = referenceTrainWithOptimizer(data.X, data.Y, EPOCHS, BATCH, options);
        // A model that stayed at zero would prove nothing: the run moved.
        expect(Math.max(...model.w.map(Math.abs)), schedule).toBeGreaterThan(0.05);
        const weights = maxAbsDifference(model.w, reference.w);
        const bias = Math.abs(model.b - reference.b);
        differences.push({ optimizer: name, schedule, weights, bias });
        expect(weights, `${name}, ${schedule}: weights`).toBeLessThanOrEqual(1e-9);
        expect(bias, `${name}, ${schedule}: bias`).toBeLessThanOrEqual(1e-9);
        hashes.set(`${name}, ${schedule}`, modelHash(model.path));
      }
    },
    180_000,
  );

  it('gives distinct models for distinct optimizers and schedules (no flag is ignored)', () => {
    expect(hashes.size).toBe(OPTIMIZERS.length * SCHEDULES.length + combinedFor.size);
    expect(new Set(hashes.values()).size).toBe(hashes.size);
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

// Same bits on 1, 2, 3, 5 workers and across faults, for every optimizer: optimizer-bits.test.ts.
describe('an adam checkpoint', () => {
  it('refuses to resume with another optimizer or schedule, naming the field (exit 2)', async () => {
    const checkpoint = join(directory.path, 'adam.ckpt');
    await train('adam-checkpointed', ADAM, 1, ['--checkpoint', checkpoint]);
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
    const out = join(directory.path, 'sgd-uninterrupted.json');
    // An uninterrupted run whose checkpoint is copied while an in-test worker holds step 17.
    const { coordinator, gate, beforeExit } = await startGatedCluster(flagsOf(sgd), 'optimizers-v1-token', 1, [
      '--checkpoint',
      checkpoint,
      '--checkpoint-every',
      '5',
      '--out',
      out,
    ]);
    await beforeExit(gate.holdAt(17), 'step 17');
    writeFileSync(midRun, readFileSync(checkpoint));
    gate.release();
    expect((await coordinator.exited(120_000)).code, coordinator.stderr()).toBe(0);

    // The copy rewritten as version 1 wrote it: no optimizer state, no optimizer nor model in the
    // fingerprint, the model as w and b (θ = [w, b]).
    const file = JSON.parse(readFileSync(midRun, 'utf8')) as {
      state: Record<string, unknown> & { step: number; params: number[]; fingerprint: Record<string, unknown> };
    };
    expect(file.state.step).toBeGreaterThan(0);
    expect(file.state.step).toBeLessThan(EPOCHS * 12);
    const { optimizer: _optimizer, params, ...stateV1 } = file.state;
    const fingerprint = { ...stateV1.fingerprint };
    for (const key of ['model', 'optimizer', 'momentum', 'beta1', 'beta2', 'eps', 'lrSchedule', 'warmupSteps', 'lrDecayEpochs', 'lrGamma'])
      delete fingerprint[key];
    const body = { ...stateV1, fingerprint, w: params.slice(0, -1), b: params.at(-1) };
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

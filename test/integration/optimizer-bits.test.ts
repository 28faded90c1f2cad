// Every optimizer is bit-reproducible on any cluster and across faults (issue #12, DESIGN.md
// invariant 6): on the bundled breast-cancer data, shuffled, standardized, with a validation split,
// L2 and (on most) a non-trivial rate schedule, each optimizer writes the same model file bytes and
// the same loss stream with 1, 2, 3 and 5 workers, with a worker SIGKILLed mid-run, and after its
// coordinator is SIGKILLed mid-epoch and the run resumed from its checkpoint (optimizer state
// included). The clusters of one optimizer run concurrently; each fault is injected at a step an
// in-test worker holds, and asserted to have happened there.

import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, temporaryDirectory } from '../helpers/cli.js';
import { trainOnCluster, trainWithCoordinatorKilled, trainWithWorkerKilled } from '../helpers/cluster-runs.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

const EPOCHS = 3;
// 569 rows, 57 held out: 512 training rows, 10 batches of 50 and one of 12 per epoch, 33 steps.
const STEPS_PER_EPOCH = 11;
const STEPS = EPOCHS * STEPS_PER_EPOCH;
// Shuffle (rows, seeded) and standardization are on by default. --chunks 8: every worker of these
// clusters takes part in every step (the default for B = 50 is one chunk).
const DATA_FLAGS = [
  '--data',
  'data/breast_cancer.csv',
  '--epochs',
  String(EPOCHS),
  '--batch-size',
  '50',
  '--chunks',
  '8',
  '--l2',
  '0.01',
  '--val-split',
  '0.1',
  '--seed',
  '7',
];
/** The worker is killed while step 8 (epoch 0) is held. */
const WORKER_KILL_AT = 8;
/** The coordinator is killed while step 17 is held (epoch 1); its last checkpoint is then step 16's, mid-epoch. */
const COORDINATOR_KILL_AT = 17;
const CHECKPOINT_EVERY = 4;

interface Case {
  readonly optimizer: 'sgd' | 'momentum' | 'nesterov' | 'adagrad' | 'adam' | 'adamw';
  /** How trainedOn names the schedule: [lrSchedule, warmupSteps, lrDecayEpochs]. */
  readonly schedule: readonly [string, number, number];
  readonly flags: readonly string[];
  /** The buffers its checkpoint holds. */
  readonly buffers: readonly string[];
}

const STEP_DECAY = ['--lr-decay-epochs', '1', '--lr-gamma', '0.5'];
const COSINE_WARMUP = ['--lr-schedule', 'cosine', '--warmup-steps', '5'];
const CASES: readonly (readonly [string, Case])[] = [
  ['sgd', { optimizer: 'sgd', schedule: ['constant', 0, 0], flags: ['--lr', '0.5'], buffers: [] }],
  ['momentum, step decay', { optimizer: 'momentum', schedule: ['constant', 0, 1], flags: ['--lr', '0.1', ...STEP_DECAY], buffers: ['momentumBuffer'] }],
  [
    'nesterov, cosine with warm-up',
    { optimizer: 'nesterov', schedule: ['cosine', 5, 0], flags: ['--lr', '0.1', '--momentum', '0.8', ...COSINE_WARMUP], buffers: ['momentumBuffer'] },
  ],
  ['adagrad, step decay', { optimizer: 'adagrad', schedule: ['constant', 0, 1], flags: ['--lr', '0.1', ...STEP_DECAY], buffers: ['sum'] }],
  ['adam, cosine with warm-up', { optimizer: 'adam', schedule: ['cosine', 5, 0], flags: ['--lr', '0.02', ...COSINE_WARMUP], buffers: ['expAvg', 'expAvgSq'] }],
  [
    'adamw, cosine with warm-up and step decay',
    {
      optimizer: 'adamw',
      schedule: ['cosine', 5, 1],
      flags: ['--lr', '0.02', '--beta1', '0.8', '--beta2', '0.99', ...COSINE_WARMUP, ...STEP_DECAY],
      buffers: ['expAvg', 'expAvgSq'],
    },
  ],
];

const digests = new Map<string, string>();

describe('every optimizer gives the same model file bytes and loss stream', () => {
  it.each(CASES)(
    '%s: with 1, 2, 3 and 5 workers, a worker killed mid-run, and its coordinator killed mid-epoch and resumed',
    async (name, { optimizer, schedule, flags, buffers }) => {
      const all = [...DATA_FLAGS, '--optimizer', optimizer, ...flags];
      const id = name.replace(/[^a-z]+/g, '-');
      const [one, two, three, five, workerKilled, coordinatorKilled] = await Promise.all([
        trainOnCluster(directory.path, `${id}-w1`, all, 1),
        trainOnCluster(directory.path, `${id}-w2`, all, 2),
        trainOnCluster(directory.path, `${id}-w3`, all, 3),
        trainOnCluster(directory.path, `${id}-w5`, all, 5),
        trainWithWorkerKilled(directory.path, `${id}-worker-killed`, all, WORKER_KILL_AT),
        trainWithCoordinatorKilled(directory.path, `${id}-coordinator-killed`, all, COORDINATOR_KILL_AT, CHECKPOINT_EVERY),
      ]);

      // The run is the one meant, and it moved (a model left at zero would prove nothing).
      const model = JSON.parse(readFileSync(two.out, 'utf8')) as { weights: number[]; trainedOn: Record<string, unknown> };
      const { trainedOn } = model;
      expect([trainedOn.optimizer, trainedOn.lrSchedule, trainedOn.warmupSteps, trainedOn.lrDecayEpochs]).toEqual([optimizer, ...schedule]);
      expect([trainedOn.shuffle, trainedOn.standardize, trainedOn.valFraction, trainedOn.l2, trainedOn.steps]).toEqual([true, true, 0.1, 0.01, STEPS]);
      expect(Math.max(...model.weights.map(Math.abs))).toBeGreaterThan(0.05);
      expect(two.losses).toHaveLength(STEPS);

      // The worker was killed while step ≥ 8 was held, and the run finished without it.
      expect(workerKilled.killedAt).toBeGreaterThanOrEqual(WORKER_KILL_AT);
      expect(workerKilled.leftLine).toMatch(/left: disconnected/);
      expect(Math.max(...workerKilled.contributors.slice(0, workerKilled.killedAt))).toBe(3);
      expect(Math.max(...workerKilled.contributors.slice(workerKilled.killedAt + 1))).toBe(2);

      // The coordinator was killed mid-epoch; the checkpoint on disk was mid-epoch too, held the
      // optimizer's state (not all zero but for sgd), and the resumed run started there.
      const { killedAt, checkpointStep, resumedAt, savedOptimizer } = coordinatorKilled;
      expect(killedAt).toBeGreaterThanOrEqual(COORDINATOR_KILL_AT);
      expect(killedAt % STEPS_PER_EPOCH).not.toBe(0);
      expect(checkpointStep).toBeGreaterThan(STEPS_PER_EPOCH);
      expect(checkpointStep).toBeLessThanOrEqual(killedAt);
      expect(checkpointStep % STEPS_PER_EPOCH).not.toBe(0);
      expect(resumedAt).toBe(checkpointStep);
      expect(savedOptimizer.optimizer).toBe(optimizer);
      expect(savedOptimizer.step).toBe(checkpointStep);
      expect(Object.keys(savedOptimizer.buffers).sort()).toEqual([...buffers].sort());
      for (const buffer of Object.values(savedOptimizer.buffers)) expect(buffer.some((value) => value !== 0)).toBe(true);

      for (const [cluster, run] of [
        ['1 worker', one],
        ['3 workers', three],
        ['5 workers', five],
        ['a worker killed', workerKilled],
        ['the coordinator killed and resumed', coordinatorKilled],
      ] as const) {
        expect(run.digest, `${name}, ${cluster}: model file`).toBe(two.digest);
        expect(run.params, `${name}, ${cluster}: parameters`).toBe(two.params);
        expect(run.losses, `${name}, ${cluster}: loss stream`).toEqual(two.losses); // toEqual on numbers is exact
      }
      digests.set(name, two.digest);
    },
    300_000,
  );

  it('differs between optimizers and schedules (the digest is not blind)', () => {
    expect(digests.size).toBe(CASES.length);
    expect(new Set(digests.values()).size).toBe(CASES.length);
  });
});

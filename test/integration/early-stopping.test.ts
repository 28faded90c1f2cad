// --early-stopping P (issue #12) with real processes: on seeded noisy data trained at a large
// rate the validation loss goes up and down, so a run stops before its last epoch; the rule is
// checked against the eval events it wrote, the model file holds the best evaluation's model
// (the bits of an uninterrupted run that ends at that epoch, not the model at the stop), P counts
// evaluations (--eval-every 2), the flag is refused without --val-split, and a coordinator killed
// mid-run and resumed from its checkpoint ends with the same bits and the same best epoch.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalEvent } from '../../shared/events.js';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startHonestWorker } from '../helpers/fake-worker.js';
import { modelHash } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
const dataPath = join(directory.path, 'noisy.csv');
const PATIENCE = 3;
const EPOCHS = 30;
const BATCH = 8;
// A rate far too large for this data and no L2: the validation loss jumps around rather than settling.
// 4 chunks a batch so that both workers take part in every step.
const FLAGS = ['--data', dataPath, '--val-split', '0.5', '--batch-size', String(BATCH), '--chunks', '4', '--lr', '2', '--l2', '0', '--eval-every', '1'];

/** 120 rows of 8 features uniform in [−1, 1); the label is x_0 plus uniform noise of ±0.8, thresholded (seeded LCG). */
function noisyCsv(): string {
  let state = 12_345;
  const uniform = (): number => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  const D = 8;
  const lines = [`${Array.from({ length: D }, (_, j) => `f${j}`).join(',')},label`];
  for (let i = 0; i < 120; i++) {
    const x = Array.from({ length: D }, () => (uniform() * 2 - 1).toFixed(3));
    const y = Number(x[0]) + 0.8 * (uniform() * 2 - 1) > 0 ? 1 : 0;
    lines.push(`${x.join(',')},${y}`);
  }
  return `${lines.join('\n')}\n`;
}

interface ModelFileJson {
  weights: number[];
  bias: number;
  trainedOn: Record<string, unknown>;
  metrics: Record<string, unknown>;
  earlyStopping?: { patience: number; bestEpoch: number; stoppedAfterEpoch: number | null };
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function events(path: string): { type: string; step?: number; epoch: number }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { type: string; step?: number; epoch: number });
}

async function train(name: string, extra: string[], workers = 2): Promise<{ model: ModelFileJson; path: string; output: string; metrics: string }> {
  const path = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const result = await runCli(['train', ...FLAGS, '--workers', String(workers), '--out', path, '--metrics', metrics, ...extra], {}, 180_000);
  expect(result.code, result.stderr).toBe(0);
  return { model: readJson<ModelFileJson>(path), path, output: result.stdout + result.stderr, metrics };
}

/** The early-stopped run every test compares with, and the rule's outcome computed here from its eval events. */
let reference: { path: string; model: ModelFileJson; bestEpoch: number; bestValLoss: number; stoppedAfterEpoch: number; stepsPerEpoch: number } | null = null;

beforeAll(() => writeFileSync(dataPath, noisyCsv()));
afterAll(() => {
  killAll();
  directory.remove();
});

function requireReference(): NonNullable<typeof reference> {
  if (reference === null) throw new Error('the early-stopped run did not complete (see the first test)');
  return reference;
}

describe('dpt train --early-stopping', () => {
  it('stops after P evaluations in a row without a lower validation loss, and says so', async () => {
    const run = await train('early', ['--epochs', String(EPOCHS), '--early-stopping', String(PATIENCE)]);
    const evals = events(run.metrics).filter((event) => event.type === 'eval') as unknown as EvalEvent[];
    // The rule, applied here to the validation losses the run reported.
    let best: EvalEvent | null = null;
    let since = 0;
    let stoppedAfterEpoch: number | null = null;
    for (const evaluation of evals) {
      expect(stoppedAfterEpoch, 'an evaluation after the stop').toBeNull();
      if (best === null || (evaluation.valLoss as number) < (best.valLoss as number)) {
        best = evaluation;
        since = 0;
      } else if (++since === PATIENCE) {
        stoppedAfterEpoch = evaluation.epoch;
      }
      expect(evaluation.earlyStopping).toEqual({ bestEpoch: best.epoch, bestValLoss: best.valLoss, evalsSinceBest: since, stop: stoppedAfterEpoch !== null });
    }
    if (best === null || stoppedAfterEpoch === null) throw new Error(`the run did not stop early:\n${run.output}`);
    // It did stop early, after at least P evaluations not below the best one.
    expect(stoppedAfterEpoch).toBeLessThan(EPOCHS - 1);
    const afterBest = evals.filter((evaluation) => evaluation.epoch > (best as EvalEvent).epoch);
    expect(afterBest.length).toBeGreaterThanOrEqual(PATIENCE);
    for (const evaluation of afterBest) expect(evaluation.valLoss as number).toBeGreaterThanOrEqual(best.valLoss as number);
    // The data make the rule do more than stop: some evaluations do not improve and a later one does.
    expect(evals.some((evaluation) => evaluation.earlyStopping?.evalsSinceBest === 1 && evaluation.epoch < (best as EvalEvent).epoch)).toBe(true);

    // No step after the stopping epoch's last one.
    const trainRows = run.model.trainedOn.trainRows as number;
    const stepsPerEpoch = Math.ceil(trainRows / BATCH);
    const steps = events(run.metrics).filter((event) => event.type === 'step');
    expect(steps.at(-1)?.step).toBe((stoppedAfterEpoch + 1) * stepsPerEpoch - 1);
    expect(steps.length).toBe((stoppedAfterEpoch + 1) * stepsPerEpoch);

    expect(run.model.earlyStopping).toEqual({ patience: PATIENCE, bestEpoch: best.epoch, stoppedAfterEpoch });
    expect(run.model.trainedOn.earlyStopping).toBe(PATIENCE);
    expect(run.model.metrics).toEqual({ trainLoss: best.trainLoss, trainAccuracy: best.trainAccuracy, valLoss: best.valLoss, valAccuracy: best.valAccuracy });
    expect(run.output).toContain(
      `early stopping: validation loss not improved for ${PATIENCE} evaluation(s), stopped after epoch ${stoppedAfterEpoch} ` +
        `(step ${(stoppedAfterEpoch + 1) * stepsPerEpoch} of ${EPOCHS * stepsPerEpoch}); the model is epoch ${best.epoch}'s`,
    );
    reference = { path: run.path, model: run.model, bestEpoch: best.epoch, bestValLoss: best.valLoss as number, stoppedAfterEpoch, stepsPerEpoch };
  });

  it("holds the best evaluation's model: the bits of a run of bestEpoch + 1 epochs, not the model at the stop", async () => {
    const { path, bestEpoch, bestValLoss, stoppedAfterEpoch } = requireReference();
    const untilBest = await train('until-best', ['--epochs', String(bestEpoch + 1)], 1);
    expect(modelHash(untilBest.path)).toBe(modelHash(path));
    expect(untilBest.model.metrics.valLoss).toBe(bestValLoss);
    expect(untilBest.model.earlyStopping).toBeUndefined();
    // The model at the stop is another one: the run did not just keep its last model.
    const untilStop = await train('until-stop', ['--epochs', String(stoppedAfterEpoch + 1)], 1);
    expect(modelHash(untilStop.path)).not.toBe(modelHash(path));
  });

  it('counts evaluations, not epochs, with --eval-every 2', async () => {
    const run = await train('every-2', ['--epochs', String(EPOCHS), '--eval-every', '2', '--early-stopping', '2']);
    const evals = events(run.metrics).filter((event) => event.type === 'eval') as unknown as EvalEvent[];
    expect(evals.every((evaluation) => evaluation.epoch % 2 === 1)).toBe(true);
    const last = evals.at(-1);
    const stoppedAfterEpoch = run.model.earlyStopping?.stoppedAfterEpoch;
    if (last?.earlyStopping === undefined || stoppedAfterEpoch == null) throw new Error(`the run did not stop early:\n${run.output}`);
    expect(last.earlyStopping.stop).toBe(true);
    expect(last.epoch).toBe(stoppedAfterEpoch);
    // The two evaluations since the best are 4 epochs apart from it, not 2.
    const bestEpoch = last.earlyStopping.bestEpoch;
    expect(stoppedAfterEpoch - bestEpoch).toBe(4);
    expect(evals.filter((evaluation) => evaluation.epoch > bestEpoch).map((evaluation) => evaluation.earlyStopping?.evalsSinceBest)).toEqual([1, 2]);
    const untilBest = await train('every-2-until-best', ['--epochs', String(bestEpoch + 1), '--eval-every', '2'], 1);
    expect(modelHash(untilBest.path)).toBe(modelHash(run.path));
  });

  it('is refused without --val-split, or with a patience that is not a positive integer, naming the flag (exit 2)', async () => {
    for (const [args, message] of [
      [['--data', dataPath, '--early-stopping', '3'], /--early-stopping needs --val-split > 0/],
      [['--data', dataPath, '--val-split', '0.5', '--early-stopping', '0'], /--early-stopping <evals>.*'0' is invalid/],
      [['--data', dataPath, '--val-split', '0.5', '--early-stopping', 'x'], /--early-stopping <evals>.*'x' is invalid/],
    ] as const) {
      const result = await runCli(['train', ...args, '--workers', '1']);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('resumed after its coordinator was killed mid-run ends with the uninterrupted bits and best epoch', async () => {
    const { path, model, stoppedAfterEpoch, stepsPerEpoch } = requireReference();
    const checkpoint = join(directory.path, 'early.ckpt');
    const token = 'early-stopping-token';
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--epochs',
      String(EPOCHS),
      '--early-stopping',
      String(PATIENCE),
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
      '3',
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
    // Mid-way through the stopping epoch (after the best evaluation and P − 1 that did not improve
    // on it), past a checkpoint of --checkpoint-every 3 inside that epoch (8 steps an epoch).
    const holdStep = stoppedAfterEpoch * stepsPerEpoch + 4;
    const ended = coordinator.exited(120_000).then(({ code }): never => {
      throw new Error(`the coordinator ended (${code}) before step ${holdStep}\n${coordinator.stderr()}`);
    });
    const heldAt = await Promise.race([gate.holdAt(holdStep), ended]);
    process.kill(coordinator.pid, 'SIGKILL');
    expect((await coordinator.exited()).signal).toBe('SIGKILL');
    gate.release();

    const saved = readJson<{
      state: { step: number; earlyStopping?: { bestEval: EvalEvent; bestParams: number[]; evalsSinceBest: number; stoppedAfterEpoch: null } };
    }>(checkpoint);
    expect(saved.state.step).toBeGreaterThan(stoppedAfterEpoch * stepsPerEpoch);
    expect(saved.state.step).toBeLessThanOrEqual(heldAt);
    // The checkpoint holds a state the resumed run must use: the best model and a count under way.
    expect(saved.state.earlyStopping?.bestEval.epoch).toBe(model.earlyStopping?.bestEpoch);
    expect(saved.state.earlyStopping?.evalsSinceBest).toBe(PATIENCE - 1);
    expect(saved.state.earlyStopping?.stoppedAfterEpoch).toBeNull();
    expect(saved.state.earlyStopping?.bestParams.length).toBe(model.weights.length + 1);

    const resumed = await train('early-resumed', [
      '--epochs',
      String(EPOCHS),
      '--early-stopping',
      String(PATIENCE),
      '--resume',
      checkpoint,
      '--checkpoint',
      checkpoint,
    ]);
    expect(resumed.output).toContain(`resuming from ${checkpoint} at step ${saved.state.step}`);
    expect(modelHash(resumed.path)).toBe(modelHash(path));
    expect(resumed.model.earlyStopping).toEqual(model.earlyStopping);
    expect(resumed.model.metrics).toEqual(model.metrics);

    // Its last checkpoint is the stopped run's: resumed, it runs no step and writes the same model.
    const stopped = readJson<{ state: { step: number; earlyStopping: { stoppedAfterEpoch: number } } }>(checkpoint);
    expect(stopped.state.step).toBe((stoppedAfterEpoch + 1) * stepsPerEpoch);
    expect(stopped.state.earlyStopping.stoppedAfterEpoch).toBe(stoppedAfterEpoch);
    const again = await train('early-resumed-again', ['--epochs', String(EPOCHS), '--early-stopping', String(PATIENCE), '--resume', checkpoint]);
    expect(events(again.metrics).filter((event) => event.type === 'step' && (event.step as number) >= stopped.state.step)).toEqual([]);
    expect(modelHash(again.path)).toBe(modelHash(path));
    expect(again.model.earlyStopping).toEqual(model.earlyStopping);

    // A run without the flag cannot continue it: the rule's state would be dropped.
    const refused = await runCli(['train', ...FLAGS, '--epochs', String(EPOCHS), '--workers', '1', '--resume', checkpoint]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/earlyStopping \(checkpoint: 3, now: undefined\) differs/);
  });
});

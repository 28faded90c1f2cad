// dpt train, with 1, 2 and 3 real worker processes, gives the weights of an independent
// plain-loop float64 trainer, including with a worker killed (SIGKILL) or frozen (SIGSTOP) at a
// step an in-test worker observes (never racing the run's end), each fault asserted to happen.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startHonestWorker } from '../helpers/fake-worker.js';
import { generateData, maxAbsDifference, referenceTrain } from '../helpers/reference.js';

const ROWS = 203; // not divisible by the batch size
const BATCH = 20; // not divisible by 3 workers; the last batch of an epoch has 3 rows
const OPTIONS = { epochs: 4, batchSize: BATCH, lr: 0.5, l2: 0.01 };

const directory = temporaryDirectory();
const data = generateData(ROWS, 6, 42);
const dataPath = join(directory.path, 'data.csv');
const reference = referenceTrain(data.X, data.Y, OPTIONS);

function trainFlags(out: string, epochs = OPTIONS.epochs): string[] {
  return [
    '--data',
    dataPath,
    '--no-shuffle',
    '--no-standardize',
    '--epochs',
    String(epochs),
    '--batch-size',
    String(BATCH),
    // 8 chunks a batch so that every worker takes part (the default for B = 20 is one chunk).
    '--chunks',
    '8',
    '--lr',
    '0.5',
    '--l2',
    '0.01',
    '--out',
    out,
  ];
}

function readModel(path: string): { weights: number[]; bias: number } {
  return JSON.parse(readFileSync(path, 'utf8')) as { weights: number[]; bias: number };
}

beforeAll(() => writeFileSync(dataPath, data.csv));
afterAll(() => {
  killAll();
  directory.remove();
});

describe('dpt train', () => {
  it.each([1, 2, 3])('matches the reference trainer with %i worker process(es)', async (workers) => {
    const out = join(directory.path, `model-${workers}.json`);
    const metrics = join(directory.path, `metrics-${workers}.jsonl`);
    const result = await runCli(['train', ...trainFlags(out), '--workers', String(workers), '--metrics', metrics]);
    expect(result.code, result.stderr).toBe(0);
    const model = readModel(out);
    expect(maxAbsDifference(model.weights, reference.w)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(model.bias - reference.b)).toBeLessThanOrEqual(1e-9);
    // The loss stream: one step event per batch, with the batch's mean loss before the update.
    const events = readFileSync(metrics, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const steps = events.filter((event) => event.type === 'step');
    expect(steps.map((event) => event.rows)).toEqual(Array.from({ length: steps.length }, (_, i) => (i % 11 === 10 ? 3 : BATCH)));
    expect(
      maxAbsDifference(
        steps.map((event) => event.loss as number),
        reference.losses,
      ),
    ).toBeLessThanOrEqual(1e-9);
    expect(events.filter((event) => event.type === 'eval')).toHaveLength(OPTIONS.epochs);
    for (const step of steps) {
      expect(Object.keys(step).sort()).toEqual(['epoch', 'loss', 'rows', 'rowsPerSec', 'step', 'stepMs', 'time', 'type', 'workers']);
      expect(step.workers).toBeGreaterThanOrEqual(1);
      expect(step.workers).toBeLessThanOrEqual(workers);
    }
    // Every worker took part: some step was shared by all of them.
    expect(Math.max(...steps.map((step) => step.workers as number))).toBe(workers);
  });
});

describe('dpt train --eval-every', () => {
  it('evaluates every k epochs and after the last, prints every epoch, and trains the same model', async () => {
    const out = join(directory.path, 'model-eval-every.json');
    const metrics = join(directory.path, 'metrics-eval-every.jsonl');
    const result = await runCli(['train', ...trainFlags(out), '--workers', '2', '--eval-every', '3', '--metrics', metrics]);
    expect(result.code, result.stderr).toBe(0);
    const model = readModel(out);
    expect(maxAbsDifference(model.weights, reference.w)).toBeLessThanOrEqual(1e-9);
    const events = readFileSync(metrics, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    // Epochs 0..3: evaluated at epoch 2 (the third) and at epoch 3 (the last).
    expect(events.filter((event) => event.type === 'eval').map((event) => event.epoch)).toEqual([2, 3]);
    const epochLines = result.stdout.split('\n').filter((line) => /^epoch \d+\/4 /.test(line));
    expect(epochLines.map((line) => /train acc/.test(line))).toEqual([false, false, true, true]);
  });

  it('refuses a negative or fractional --eval-every, naming the flag (0 is never: test/integration/max-steps.test.ts)', async () => {
    for (const value of ['-1', '1.5']) {
      const result = await runCli(['train', ...trainFlags(join(directory.path, 'never.json')), '--eval-every', value]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/--eval-every.*expected a non-negative integer/);
    }
  });
});

describe('a coordinator with remote workers', () => {
  const longRun = referenceTrain(data.X, data.Y, { ...OPTIONS, epochs: 150 });

  /**
   * A run of 150 epochs (1,650 steps) with three real workers and an honest in-test one, which
   * holds step 200 while `fault` hits a real worker: the fault lands mid-run by construction.
   * `happened` is the coordinator's line that proves the fault took effect.
   */
  async function runWithFault(fault: 'SIGKILL' | 'SIGSTOP', extraFlags: string[], happened: RegExp): Promise<void> {
    const out = join(directory.path, `model-${fault}-${extraFlags.join('')}.json`);
    const token = 'fault-test-token';
    const coordinator = startCli([
      'coordinator',
      ...trainFlags(out, 150),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '4',
      '--token',
      token,
      '--step-timeout',
      '1000',
      ...extraFlags,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    const gate = startHonestWorker(url, token);
    const workers = [0, 1, 2].map(() => startCli(['worker', '--connect', url, '--token', token]));
    const ended = coordinator.exited(120_000).then(({ code }): never => {
      throw new Error(`the run ended (${code}) before the fault took effect\n${coordinator.stderr()}`);
    });
    await Promise.race([gate.holdAt(200), ended]);
    const victim = workers[1];
    if (victim === undefined) throw new Error('no worker to fault');
    process.kill(victim.pid, fault);
    gate.release();
    await Promise.race([coordinator.waitForLine(happened, 60_000), ended]);
    const { code } = await coordinator.exited();
    expect(code, coordinator.stderr()).toBe(0);
    const model = readModel(out);
    expect(maxAbsDifference(model.weights, longRun.w)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(model.bias - longRun.b)).toBeLessThanOrEqual(1e-9);
  }

  it('finishes with the reference model when a worker is killed mid-training', () =>
    runWithFault('SIGKILL', [], /worker \d+(?: \([^)]*\))? left: disconnected/));
  // No step deadline here: the frozen worker's chunks can only be covered by backups.
  it('gives a frozen worker’s chunks to idle workers (backup tasks) and still matches the reference', () =>
    runWithFault('SIGSTOP', ['--step-timeout', '600000', '--verbose'], /step \d+: \d+ straggling chunk\(s\) also given to \d+ idle worker/));
  it('without backups, drops a frozen worker after --step-timeout and still matches the reference', () =>
    runWithFault('SIGSTOP', ['--backup-factor', '0'], /worker \d+(?: \([^)]*\))? left: no part for step \d+ within 1000 ms[\s\S]*recomputing \d+ chunk\(s\)/));
});

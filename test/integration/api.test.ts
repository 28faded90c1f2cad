// The library API (issue #14 item 8): the README's example compiled with tsc against the built
// package (imported by its name) and run with node, its output checked against the model it
// trained; startCoordinator + startWorker in this process against `dpt train`'s bits; an abort
// that leaves no worker process; predict() against a float64 computation and `dpt predict`.

import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  DptError,
  isSparseModel,
  loadModel,
  type ModelFile,
  ModelFileError,
  modelLabels,
  type PassProgress,
  predict,
  startCoordinator,
  startWorker,
  type TrainingEvent,
  train,
} from '../../api/index.js';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
/** Processes this file starts itself (tsc, the example), killed by PID in cleanup. */
const children = new Set<number>();
afterAll(() => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already exited.
    }
  }
  killAll();
  directory.remove();
});

const DATA = join(REPO, 'data', 'breast_cancer.csv');

/** Runs a command to its end (bounded), with its PID recorded for cleanup. */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) children.add(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} still running after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (child.pid !== undefined) children.delete(child.pid);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The first ```ts block of the README's "Library API" section, as the README shows it. */
function readmeExample(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Library API\n'));
  const match = /```ts\n([\s\S]*?)```/.exec(section.slice(0, section.indexOf('\n## ', 5)));
  if (match === null) throw new Error('README.md: no ```ts block in the "Library API" section');
  return match[1]!; // the group always matches
}

/** σ(z) in float64 of the CSV row's values as training stores them (float32, standardized in float32). */
function referenceProbability(model: ModelFile & { kind: 'logistic-regression' }, values: readonly number[]): number {
  const s = values.map((value, j) =>
    model.standardization === null ? Math.fround(value) : Math.fround((Math.fround(value) - model.standardization.mean[j]!) / model.standardization.std[j]!),
  );
  const z = s.reduce((sum, x, j) => sum + model.weights[j]! * x, model.bias);
  return 1 / (1 + Math.exp(-z));
}

/** PIDs of this process's children whose command line runs `dpt worker`. */
function localWorkerPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (parent === process.pid && command.includes('worker')) pids.push(Number(entry));
    } catch {
      // The process ended while being read: not a leftover.
    }
  }
  return pids;
}

describe("the README's Library API example", () => {
  it('compiles with tsc against the built package, imported by its name, and prints what the model it trained predicts', async () => {
    const { name } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string };
    const example = readmeExample();
    expect(example, `the README example must import the package by its name '${name}'`).toContain(`from '${name}';`);
    // A project beside the checkout that depends on the package: node_modules/<name> is the repository.
    const project = join(directory.path, 'project');
    mkdirSync(join(project, 'node_modules', dirname(name)), { recursive: true });
    symlinkSync(REPO, join(project, 'node_modules', name), 'dir');
    mkdirSync(join(project, 'data'));
    copyFileSync(DATA, join(project, 'data', 'breast_cancer.csv'));
    writeFileSync(join(project, 'example.mts'), example);
    // Strict, and the package's .d.ts checked too (no skipLibCheck): they must compile for a user.
    const tsc = await run(
      process.execPath,
      [
        join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--strict',
        '--exactOptionalPropertyTypes',
        '--noUncheckedIndexedAccess',
        '--types',
        'node',
        '--typeRoots',
        join(REPO, 'node_modules', '@types'),
        'example.mts',
      ],
      project,
      120_000,
    );
    expect(tsc.code, tsc.stdout + tsc.stderr).toBe(0);
    const result = await run(process.execPath, ['example.mjs'], project, 180_000);
    expect(result.code, result.stderr).toBe(0);
    const model = loadModel(join(project, 'model.json'));
    if (model.kind !== 'logistic-regression' || isSparseModel(model)) throw new Error(`expected a logistic model over CSV columns, got ${model.kind}`);

    const epochs = [...result.stdout.matchAll(/^epoch (\d+): validation accuracy (\S+)$/gm)];
    expect(epochs.map((m) => Number(m[1]))).toEqual([0, 1, 2, 3, 4]);
    // The last evaluation printed is the model file's.
    expect(Number(epochs.at(-1)?.[2])).toBe(model.metrics.valAccuracy);
    expect(model.metrics.valAccuracy).toBeGreaterThan(0.9);
    const steps = /^trained (\d+) steps$/m.exec(result.stdout);
    expect(Number(steps?.[1])).toBe(model.trainedOn.steps);
    // 5 epochs of ⌈455 training rows / 32⌉ = 15 steps (569 rows, 20 % held out).
    expect(model.trainedOn.steps).toBe(5 * 15);

    // The three rows' predictions against σ(w·s + b) of the model file, computed here.
    const rows = readFileSync(DATA, 'utf8')
      .split('\n')
      .slice(1, 4)
      .map((line) => line.split(',').map(Number));
    const printed = [...result.stdout.matchAll(/^class (\d); p\(1\) = (\S+)$/gm)];
    expect(printed).toHaveLength(3);
    rows.forEach((row, i) => {
      const p = referenceProbability(model, row.slice(0, -1));
      expect(Number(printed[i]![2])).toBeCloseTo(p, 12);
      expect(Number(printed[i]![1])).toBe(p > 0.5 ? 1 : 0);
      // The file's labels: a trained model gets these three right.
      expect(Number(printed[i]![1])).toBe(row.at(-1));
    });
    // And the same bits as `dpt predict` on those rows.
    const three = join(directory.path, 'three.csv');
    writeFileSync(three, `${readFileSync(DATA, 'utf8').split('\n').slice(0, 4).join('\n')}\n`);
    const cli = await runCli(['predict', '--model', join(project, 'model.json'), '--data', three], {}, 60_000);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout.trim().split('\n').slice(1)).toEqual(printed.map((m) => `${m[2]},${m[1]}`));
  }, 360_000);
});

describe('startCoordinator and startWorker', () => {
  it('train with workers in this process, stream every step and evaluation, and give the bits of dpt train', async () => {
    const events: TrainingEvent[] = [];
    let totalSteps = 0;
    const passes: PassProgress[] = [];
    const checkpoints: number[] = [];
    const coordinator = await startCoordinator({
      dataPath: DATA,
      workers: 2,
      epochs: 2,
      batchSize: 64,
      seed: 7,
      checkpointPath: join(directory.path, 'api.ckpt'),
      checkpointEvery: 5,
      log: () => undefined,
      onEvent: (event) => events.push(event),
      onStart: (steps) => {
        totalSteps = steps;
      },
      onPass: (pass) => passes.push(pass),
      onCheckpoint: (step) => checkpoints.push(step),
    });
    expect(coordinator.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(coordinator.port).toBeGreaterThan(0);
    const workers = [1, 2].map(() => startWorker({ url: coordinator.url, token: coordinator.token, connectTimeoutMs: 60_000 }));
    const result = await coordinator.result;
    await Promise.all(workers); // each resolves when the coordinator says stop
    expect(events.filter((e) => e.type === 'worker' && e.event === 'joined')).toHaveLength(2);
    const steps = events.filter((e) => e.type === 'step');
    expect(steps.map((e) => e.step)).toEqual(Array.from({ length: totalSteps }, (_, t) => t));
    expect(totalSteps).toBe(2 * Math.ceil(569 / 64));
    expect(events.filter((e) => e.type === 'eval').map((e) => e.epoch)).toEqual([0, 1]);
    expect(result.steps).toBe(totalSteps);
    // The progress hooks `dpt coordinator` draws its line from: the statistics pass over all 569
    // rows (no validation split), then one evaluation pass per epoch, each from 0 rows to all;
    // a checkpoint every 5 steps and at each epoch's end.
    const started = passes.filter((p) => p.rowsDone === 0).map((p) => `${p.purpose}:${p.set}:${p.rows}`);
    expect(started).toEqual(['stats:train:569', 'eval:train:569', 'eval:train:569']);
    expect(passes.filter((p) => p.rowsDone === p.rows)).toHaveLength(3);
    const perEpoch = Math.ceil(569 / 64);
    const expectedCheckpoints = Array.from({ length: totalSteps }, (_, t) => t + 1).filter((n) => n % 5 === 0 || n % perEpoch === 0);
    expect(checkpoints).toEqual(expectedCheckpoints);

    // The same data, flags and seed through the CLI with one local worker: the same model, bit for bit.
    const out = join(directory.path, 'cli-model.json');
    const cli = await runCli(['train', '--data', DATA, '--workers', '1', '--epochs', '2', '--batch-size', '64', '--seed', '7', '--out', out], {}, 120_000);
    expect(cli.code, cli.stderr).toBe(0);
    const fromCli = loadModel(out);
    expect(result.model.weights).toEqual(fromCli.weights);
    expect(result.model.bias).toEqual(fromCli.bias);
  }, 240_000);

  it('startCoordinator rejects bad options with ConfigError before listening', async () => {
    await expect(startCoordinator({ dataPath: DATA, batchSize: 0 })).rejects.toThrow(ConfigError);
    await expect(startCoordinator({ dataPath: DATA, workers: 2, minWorkers: 3 })).rejects.toThrow(/minWorkers must be an integer in \[1, workers = 2\]/);
  });
});

describe('train', () => {
  it('stops its worker processes and rejects with the reason when its signal aborts mid-run, keeping the steps committed in outPath', async () => {
    const stop = new AbortController();
    const out = join(directory.path, 'aborted.json');
    let stepsSeen = 0;
    let workersDuringRun: number[] = [];
    const reason = new Error('stopped by the test');
    const run = train({
      dataPath: DATA,
      workers: 2,
      epochs: 100_000,
      batchSize: 8,
      outPath: out,
      log: () => undefined,
      onWorkerStderr: () => undefined,
      signal: stop.signal,
      onEvent: (event) => {
        if (event.type !== 'step') return;
        stepsSeen++;
        if (stepsSeen === 3) {
          workersDuringRun = localWorkerPids();
          stop.abort(reason);
        }
      },
    });
    await expect(run).rejects.toBe(reason);
    // The fault happened mid-run: its workers were running, and are gone now.
    expect(workersDuringRun).toHaveLength(2);
    expect(localWorkerPids()).toEqual([]);
    const model = loadModel(out);
    expect(model.trainedOn.steps).toBeGreaterThanOrEqual(3);
  }, 180_000);

  it('with a signal aborted before it starts, rejects with its reason and starts no worker', async () => {
    const reason = new Error('aborted before the start');
    await expect(train({ dataPath: DATA, log: () => undefined, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(localWorkerPids()).toEqual([]);
  }, 60_000);

  it('rejects a bad data path with the DatasetError the CLI reports, starting no worker', async () => {
    const error = await train({ dataPath: join(directory.path, 'missing.csv'), log: () => undefined }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DptError);
    expect((error as DptError).code).toBe('DPT_DATASET');
    expect((error as DptError).exitCode).toBe(2);
    expect(localWorkerPids()).toEqual([]);
  }, 60_000);
});

describe('predict', () => {
  const FEATURES = ['f1', 'f2', 'f3'];
  const softmax = {
    format: 'dpt-model',
    version: 1,
    kind: 'softmax-regression',
    classes: ['a', 'b', 'c'],
    weights: [
      [1.5, -0.25, 0.75],
      [-0.5, 1.25, 0.1],
      [0.2, -1, -1.5],
    ],
    bias: [0.1, -0.3, 0.05],
    features: FEATURES,
    label: 'y',
    standardization: { mean: [1, -2, 0.5], std: [2, 0.5, 3] },
    trainedOn: {},
    metrics: {},
  };
  const ROWS = [
    [0.5, -1.75, 2.25],
    [3.1, -2.2, -0.4],
    [-1, -2.5, 0.9],
  ];

  it('gives a softmax model the probabilities of a float64 computation and the bits of dpt predict', async () => {
    const path = join(directory.path, 'softmax.json');
    writeFileSync(path, JSON.stringify(softmax));
    const model = loadModel(path);
    expect(modelLabels(model)).toEqual(['a', 'b', 'c']);
    const byArray = predict(model, ROWS);
    // Rows by feature name give the same predictions.
    expect(
      predict(
        model,
        ROWS.map((row) => Object.fromEntries(FEATURES.map((name, j) => [name, row[j]!]))),
      ),
    ).toEqual(byArray);
    ROWS.forEach((row, i) => {
      const s = row.map((x, j) => Math.fround((Math.fround(x) - softmax.standardization.mean[j]!) / softmax.standardization.std[j]!));
      const z = softmax.weights.map((w, k) => w.reduce((sum, wj, j) => sum + wj * s[j]!, softmax.bias[k]!));
      const e = z.map((zk) => Math.exp(zk - Math.max(...z)));
      const total = e.reduce((sum, ek) => sum + ek, 0);
      byArray[i]!.probabilities.forEach((p, k) => {
        expect(p).toBeCloseTo(e[k]! / total, 14);
      });
      expect(byArray[i]!.label).toBe(softmax.classes[z.indexOf(Math.max(...z))]);
    });
    const csv = join(directory.path, 'softmax-rows.csv');
    writeFileSync(csv, `${FEATURES.join(',')}\n${ROWS.map((row) => row.join(',')).join('\n')}\n`);
    const cli = await runCli(['predict', '--model', path, '--data', csv], {}, 60_000);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout.trim().split('\n').slice(1)).toEqual(byArray.map(({ label, probabilities }) => `${label},${probabilities.join(',')}`));
  }, 60_000);

  it('refuses a row of the wrong length or with a missing or non-finite feature, naming row and feature', () => {
    const path = join(directory.path, 'softmax-2.json');
    writeFileSync(path, JSON.stringify(softmax));
    const model = loadModel(path);
    expect(() =>
      predict(model, [
        [1, 2, 3],
        [1, 2],
      ]),
    ).toThrow(/^predict: row 1 has 2 values; the model has 3 features \(f1, f2, f3\)$/);
    expect(() => predict(model, [{ f1: 1, f3: 2 }])).toThrow(/^predict: row 0, feature 'f2' is missing$/);
    expect(() => predict(model, [[1, Number.NaN, 3]])).toThrow(ConfigError);
  });

  it('loadModel refuses a file that is not a model with ModelFileError naming it', () => {
    const path = join(directory.path, 'not-a-model.json');
    writeFileSync(path, '{"format":"other"}');
    expect(() => loadModel(path)).toThrow(ModelFileError);
    expect(() => loadModel(path)).toThrow(/not-a-model\.json: field 'format'/);
  });
});

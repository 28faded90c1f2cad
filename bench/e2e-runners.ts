// The runs of the end-to-end bench (issue #15 item 4, bench/end-to-end.ts): one whole process
// tree per run of dpt (`dpt train`, the real CLI, its phases from the time its lines arrive), the
// Python peers (bench/peers/) and liblinear, each timed from spawn to exit (the model written),
// each model scored by the one evaluator of bench/e2e-data.ts. Benchmarks only.

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { StepEvent } from '../shared/events.js';
import { batchesPerEpoch } from '../shared/schedule.js';
import { type EvaluationData, evaluateModel, type LinearModel, type Losses, type Prepared, preparedFiles } from './e2e-data.js';
import { median, REPO } from './harness.js';
import { readLiblinearModel } from './liblinear-model.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
export const PYTHON = '/usr/bin/python3';
export const TORCH_PEER = join(REPO, 'bench', 'peers', 'torch_ddp_flights.py');
export const SKLEARN_PEER = join(REPO, 'bench', 'peers', 'sklearn_sgd_flights.py');
const RUN_TIMEOUT_MS = 600_000;

/** The settings every run shares (the bench's flags). */
export interface RunSettings {
  /** The prepared split's directory (bench/e2e-data.ts). */
  readonly cache: string;
  readonly batchSize: number;
  readonly lr: number;
  readonly lambda: number;
  readonly seed: number;
  /** liblinear's -e. */
  readonly eps: number;
}

/** One whole run of one tool: wall time from process start to model written, and its model's losses. */
export interface ToolRun {
  readonly tool: string;
  /** The budget, in epochs: below 1 a share of an epoch (dpt and torch stop with --max-steps, sklearn trains on that share of the rows). */
  readonly epochs: number;
  readonly trial: number;
  readonly wallSeconds: number;
  readonly losses: Losses;
  /** Where the time went, as the tool's own clocks (or dpt's --metrics events) say. */
  readonly phases: Record<string, number | string | null>;
}

function spawnTimed(command: string, argv: readonly string[], what: string, env?: NodeJS.ProcessEnv): { stdout: string; stderr: string; seconds: number } {
  const started = performance.now();
  const result = spawnSync(command, argv, { encoding: 'utf8', timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20, env: env ?? process.env });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) {
    const tail = `${result.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${what} failed (${result.status ?? result.signal ?? result.error?.message}): ${tail}`);
  }
  return { stdout: result.stdout, stderr: result.stderr, seconds };
}

/** The events of a --metrics file. */
function readEvents(path: string): { type: string; event?: string; time: number }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { type: string; event?: string; time: number });
}

/** A line a child printed (stdout or stderr), with the wall time it arrived (ms since the Unix epoch). */
interface TimedLine {
  readonly atMs: number;
  readonly text: string;
}

/** Runs a child to its exit, timing each line it prints: the phases of a run without touching its code. */
function spawnLines(
  command: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  what: string,
): Promise<{ lines: TimedLine[]; startMs: number; endMs: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const startMs = Date.now();
    const started = performance.now();
    const child = spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: TimedLine[] = [];
    const collect = (stream: NodeJS.ReadableStream): void => {
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (text) => lines.push({ atMs: Date.now(), text }));
    };
    collect(child.stdout);
    collect(child.stderr);
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0)
        reject(
          new Error(
            `${what} failed (${code ?? signal}): ${lines
              .slice(-3)
              .map((line) => line.text)
              .join(' | ')}`,
          ),
        );
      else resolve({ lines, startMs, endMs: Date.now(), seconds });
    });
  });
}

/**
 * dpt's phases, from the time its lines arrived and its --metrics step events (ms since the Unix
 * epoch): to the coordinator listening (start-up, and the CSV's conversion on a cold cache), to
 * the last worker joined (worker start-up and loading its rows), to the first step's start (the
 * statistics pass), the first step, the other steps, and the end (the model written, the workers
 * stopped; the bench runs dpt with --eval-every 0, so no evaluation pass).
 */
function dptPhases(metricsPath: string, run: { lines: TimedLine[]; startMs: number; endMs: number }): Record<string, number | string | null> {
  const steps = readEvents(metricsPath).filter((event): event is StepEvent => event.type === 'step');
  const at = (pattern: RegExp): number | undefined => run.lines.filter((line) => pattern.test(line.text)).at(-1)?.atMs;
  const first = steps[0];
  const last = steps.at(-1);
  const firstStepStart = first === undefined ? undefined : first.time - first.stepMs;
  const listening = at(/listening on port/);
  const joined = at(/ joined from /);
  const written = at(/^model written to /);
  const converted = run.lines.map((line) => /converted .*? in ([\d.]+) s/.exec(line.text)).find((match) => match !== null);
  const s = (from: number | undefined, to: number | undefined): number | null => (from === undefined || to === undefined ? null : (to - from) / 1000);
  return {
    startToListeningS: s(run.startMs, listening),
    conversionS: converted == null ? null : Number(converted[1]),
    workersJoinS: s(listening, joined),
    statisticsPassS: s(joined, firstStepStart),
    firstStepS: first === undefined ? null : first.stepMs / 1000,
    otherStepsS: s(first?.time, last?.time),
    steps: steps.length,
    stepMsMedian: steps.length === 0 ? null : median(steps.map((step) => step.stepMs)),
    lastStepToWrittenS: s(last?.time, written),
    toExitS: s(written, run.endMs),
  };
}

function dptModel(path: string): LinearModel {
  const file = JSON.parse(readFileSync(path, 'utf8')) as { weights: number[]; bias: number; standardization: { mean: number[]; std: number[] } | null };
  const D = file.weights.length;
  return {
    w: file.weights,
    b: file.bias,
    mean: file.standardization?.mean ?? new Array<number>(D).fill(0),
    std: file.standardization?.std ?? new Array<number>(D).fill(1),
  };
}

export interface Context {
  readonly args: RunSettings;
  readonly prepared: Prepared;
  readonly data: EvaluationData;
  readonly work: string;
}

/** A budget of `epochs` as whole epochs to schedule and, below a whole number, the steps to stop after (B rows a step). */
export function budgetSteps(epochs: number, trainRows: number, batchSize: number): { epochs: number; maxSteps: number | null } {
  const whole = Math.ceil(epochs);
  return whole === epochs ? { epochs, maxSteps: null } : { epochs: whole, maxSteps: Math.max(1, Math.round(epochs * batchesPerEpoch(trainRows, batchSize))) };
}

export async function runDpt(context: Context, epochs: number, trial: number, cacheDir: string, tool: string): Promise<ToolRun> {
  const { args, data, work, prepared } = context;
  const budget = budgetSteps(epochs, prepared.trainRows, args.batchSize);
  const files = preparedFiles(args.cache);
  const model = join(work, `dpt-${epochs}.json`);
  const metrics = join(work, `dpt-${epochs}.jsonl`);
  rmSync(metrics, { force: true });
  const argv = [
    CLI,
    'train',
    '--data',
    files.trainCsv,
    '--workers',
    '2',
    '--epochs',
    String(budget.epochs),
    // No evaluation, like every other tool: the bench scores every model with one evaluator.
    '--eval-every',
    '0',
    ...(budget.maxSteps === null ? [] : ['--max-steps', String(budget.maxSteps)]),
    '--batch-size',
    String(args.batchSize),
    '--lr',
    String(args.lr),
    '--l2',
    String(args.lambda),
    '--seed',
    String(args.seed),
    '--metrics',
    metrics,
    '--out',
    model,
  ];
  const run = await spawnLines(process.execPath, argv, { ...process.env, DPT_CACHE_DIR: cacheDir }, `dpt train (${epochs} epochs)`);
  return {
    tool,
    epochs,
    trial,
    wallSeconds: run.seconds,
    losses: evaluateModel(dptModel(model), data, args.lambda),
    phases: dptPhases(metrics, run),
  };
}

/** A budget as a peer's flags: torch stops mid-epoch with --max-steps; sklearn trains one epoch on that share of the rows (--fraction). */
function peerBudget(script: string, epochs: number, trainRows: number, batchSize: number): string[] {
  const budget = budgetSteps(epochs, trainRows, batchSize);
  if (budget.maxSteps === null) return ['--epochs', String(epochs)];
  return script === SKLEARN_PEER ? ['--fraction', String(epochs)] : ['--epochs', String(budget.epochs), '--max-steps', String(budget.maxSteps)];
}

export function runPythonPeer(context: Context, tool: string, script: string, extra: readonly string[], epochs: number, trial: number): ToolRun {
  const { args, prepared, data, work } = context;
  const files = preparedFiles(args.cache);
  const model = join(work, `${tool.replace(/\W+/g, '-')}-${epochs}.json`);
  const argv = [
    script,
    '--x',
    files.trainStandardized,
    '--y',
    files.labels,
    '--D',
    String(prepared.features.length),
    '--lr',
    String(args.lr),
    '--l2',
    String(args.lambda),
    ...peerBudget(script, epochs, prepared.trainRows, args.batchSize),
    '--seed',
    String(args.seed),
    '--out',
    model,
    ...extra,
  ];
  const run = spawnTimed(PYTHON, argv, `${tool} (${epochs} epochs)`);
  const file = JSON.parse(readFileSync(model, 'utf8')) as { w: number[]; b: number; phases: Record<string, number> };
  // The peer's own clocks start inside its (rank 0) process: Python's start, the imports that
  // torch's spawn does before the peer's code runs, spawning and teardown are the rest.
  const measured = ['import_s', 'init_s', 'load_s', 'train_s'].reduce((sum, key) => sum + (file.phases[key] ?? 0), 0);
  return {
    tool,
    epochs,
    trial,
    wallSeconds: run.seconds,
    losses: evaluateModel({ w: file.w, b: file.b, mean: prepared.mean, std: prepared.std }, data, args.lambda),
    phases: { ...file.phases, outsideS: run.seconds - measured },
  };
}

/** liblinear -s 0 on the standardized LIBSVM rows; -B 10 so that its bias penalty, λ/2·(b/10)², is negligible. */
export function runLiblinear(context: Context, trial: number): ToolRun {
  const { args, prepared, data, work } = context;
  const files = preparedFiles(args.cache);
  const model = join(work, 'liblinear.model');
  const C = 1 / (args.lambda * prepared.trainRows);
  const biasValue = 10;
  const run = spawnTimed(
    'liblinear-train',
    ['-s', '0', '-c', String(C), '-e', String(args.eps), '-B', String(biasValue), files.trainSvm, model],
    'liblinear-train',
  );
  const read = readLiblinearModel(model);
  const w = Array.from(read.w, (value) => read.sign * value);
  const b = read.sign * read.biasWeight * read.biasValue;
  const iterations = /iter\s+(\d+)/g;
  let newton = 0;
  for (const _ of run.stdout.matchAll(iterations)) newton++;
  return {
    tool: 'liblinear -s 0',
    epochs: 0,
    trial,
    wallSeconds: run.seconds,
    losses: evaluateModel({ w, b, mean: prepared.mean, std: prepared.std }, data, args.lambda),
    phases: { C, eps: args.eps, newtonIterations: newton, biasPenalty: (args.lambda / 2) * (b / biasValue) ** 2 },
  };
}

/** Whether the peers' programs exist here; the reason when not. */
export function probe(command: string, argv: readonly string[]): string | null {
  const result = spawnSync(command, argv, { encoding: 'utf8' });
  if (result.error !== undefined) return `${command}: ${(result.error as NodeJS.ErrnoException).code ?? result.error.message}`;
  return result.status === 0 ? null : `${command} ${argv.join(' ')} exited ${result.status}`;
}

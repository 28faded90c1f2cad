// `npm run bench:e2e` (and `npm run bench` unless --no-e2e): issue #15 item 4, dpt end to end
// against what users would pick instead, on flights_3m (3 M rows, 15 features). Every tool
// minimizes the same objective, mean log-loss + λ/2·‖w‖² (bias not penalized), on the same
// training rows (the first 80 % of the file) with the same standardization (bench/e2e-data.ts):
// dpt (`dpt train --workers 2`, the real CLI), the PyTorch DDP peer (W = 2, gloo on 127.0.0.1;
// bench/peers/torch_ddp_flights.py), scikit-learn's SGDClassifier(loss="log_loss") in one process
// (bench/peers/sklearn_sgd_flights.py) with the same B (dpt, torch), lr, λ and epochs where the
// tool has them, and liblinear (`liblinear-train -s 0`, C = 1/(λ·n)) as the optimum of the
// objective. Each run is timed from process start to model written; one evaluator (here, float64,
// over each model's weights) gives the training and held-out log-loss of every model.
//
// Time to target: the target is liblinear's held-out log-loss + 1 % (and + 0.1 %). Each SGD tool
// trains k = 1, 2, … E epochs as separate whole runs (the k-epoch run is the first k epochs of any
// longer one: same seed, constant rate); its time to target is the wall time of the shortest run
// whose model reaches the target. Nobody evaluates during training (dpt's own evaluation after
// the last epoch is part of its run, as the CLI always does it), so evaluation costs the same (0)
// for all. dpt's CSV → .dpt conversion is cached per host ($DPT_CACHE_DIR, a fresh one here):
// its first run is reported cold, every other run cached.
//
// Flags: --data PATH (../shared/datasets/flights_3m.csv.gz), --cache DIR (prepared files; default
// $TMPDIR/dpt-bench-e2e), --out PATH (bench/results/end-to-end.json), --epochs E (2),
// --batch-size B (256), --lr η (0.1), --lambda λ (1e-4), --seed (1), --trials N (2, interleaved:
// every tool once, then again), --eps (liblinear -e, 1e-4), --no-torch, --no-sklearn, --no-liblinear.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { StepEvent } from '../shared/events.js';
import {
  type EvaluationData,
  evaluateModel,
  type LinearModel,
  type Losses,
  loadEvaluationData,
  type Prepared,
  preparedFiles,
  prepareSplit,
} from './e2e-data.js';
import { formatNumber, formatTable, median, REPO, RESULTS_DIR, writeJson } from './harness.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
const PYTHON = '/usr/bin/python3';
const TORCH_PEER = join(REPO, 'bench', 'peers', 'torch_ddp_flights.py');
const SKLEARN_PEER = join(REPO, 'bench', 'peers', 'sklearn_sgd_flights.py');
const RUN_TIMEOUT_MS = 600_000;
/** Targets: liblinear's held-out log-loss × (1 + margin). */
const TARGET_MARGINS = [0.01, 0.001] as const;

interface Args {
  data: string;
  cache: string;
  out: string;
  epochs: number;
  batchSize: number;
  lr: number;
  lambda: number;
  seed: number;
  trials: number;
  eps: number;
  isTorch: boolean;
  isSklearn: boolean;
  isLiblinear: boolean;
}

export function parseEndToEndArgs(argv: readonly string[]): Args {
  const args: Args = {
    data: join(REPO, '..', 'shared', 'datasets', 'flights_3m.csv.gz'),
    cache: join(tmpdir(), 'dpt-bench-e2e'),
    out: join(RESULTS_DIR, 'end-to-end.json'),
    epochs: 2,
    batchSize: 256,
    lr: 0.1,
    lambda: 1e-4,
    seed: 1,
    trials: 2,
    eps: 1e-4,
    isTorch: true,
    isSklearn: true,
    isLiblinear: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const number = (): number => {
      const text = value();
      const parsed = Number(text);
      if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${flag} ${text}: expected a positive number`);
      return parsed;
    };
    if (flag === '--data') args.data = value();
    else if (flag === '--cache') args.cache = value();
    else if (flag === '--out') args.out = value();
    else if (flag === '--epochs') args.epochs = number();
    else if (flag === '--batch-size') args.batchSize = number();
    else if (flag === '--lr') args.lr = number();
    else if (flag === '--lambda') args.lambda = number();
    else if (flag === '--seed') args.seed = number();
    else if (flag === '--trials') args.trials = number();
    else if (flag === '--eps') args.eps = number();
    else if (flag === '--no-torch') args.isTorch = false;
    else if (flag === '--no-sklearn') args.isSklearn = false;
    else if (flag === '--no-liblinear') args.isLiblinear = false;
    else throw new Error(`unknown flag ${flag}`);
  }
  for (const [name, v] of [
    ['--epochs', args.epochs],
    ['--batch-size', args.batchSize],
    ['--trials', args.trials],
  ] as const) {
    if (!Number.isInteger(v)) throw new Error(`${name} ${v}: expected a positive integer`);
  }
  return args;
}

/** One whole run of one tool: wall time from process start to model written, and its model's losses. */
export interface ToolRun {
  readonly tool: string;
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
 * statistics pass), the first step, the other steps, and the end (the evaluation after the last
 * epoch, the model written, the workers stopped).
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
    evaluationAndWriteS: s(last?.time, written),
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

interface Context {
  readonly args: Args;
  readonly prepared: Prepared;
  readonly data: EvaluationData;
  readonly work: string;
}

async function runDpt(context: Context, epochs: number, trial: number, cacheDir: string, tool: string): Promise<ToolRun> {
  const { args, data, work } = context;
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
    String(epochs),
    '--eval-every',
    String(epochs),
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

function runPythonPeer(context: Context, tool: string, script: string, extra: readonly string[], epochs: number, trial: number): ToolRun {
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
    '--epochs',
    String(epochs),
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
function runLiblinear(context: Context, trial: number): ToolRun {
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
  const lines = readFileSync(model, 'utf8').split('\n');
  const field = (name: string): string[] =>
    lines
      .find((line) => line.startsWith(`${name} `))
      ?.split(' ')
      .slice(1) ?? [];
  const D = Number(field('nr_feature')[0]);
  const sign = field('label')[0] === '1' ? 1 : -1;
  const start = lines.indexOf('w') + 1;
  const w = Array.from({ length: D }, (_, j) => sign * Number(lines[start + j]!.trim()));
  const b = sign * Number(lines[start + D]!.trim()) * biasValue;
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
function probe(command: string, argv: readonly string[]): string | null {
  const result = spawnSync(command, argv, { encoding: 'utf8' });
  if (result.error !== undefined) return `${command}: ${(result.error as NodeJS.ErrnoException).code ?? result.error.message}`;
  return result.status === 0 ? null : `${command} ${argv.join(' ')} exited ${result.status}`;
}

interface ToolSummary {
  readonly tool: string;
  readonly runs: readonly ToolRun[];
}

/** Seconds of the shortest run (fewest epochs) reaching `target`, per trial; null when none did. */
function timeToTarget(runs: readonly ToolRun[], trial: number, target: number): { seconds: number; epochs: number } | null {
  const reached = runs.filter((run) => run.trial === trial && run.losses.heldOutLoss <= target).sort((a, b) => a.epochs - b.epochs);
  const first = reached[0];
  return first === undefined ? null : { seconds: first.wallSeconds, epochs: first.epochs };
}

const range = (values: readonly number[]): string =>
  values.length === 0 ? '–' : values.length === 1 ? formatNumber(values[0]!) : `${formatNumber(Math.min(...values))}–${formatNumber(Math.max(...values))}`;

/** The values, each once (the trials of a deterministic tool give one). */
const distinct = (values: readonly string[]): string => [...new Set(values)].join(', ');

export async function runEndToEnd(argv: readonly string[]): Promise<void> {
  const args = parseEndToEndArgs(argv);
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const started = performance.now();
  if (!existsSync(args.data)) throw new Error(`--data ${args.data}: no such file (the shared datasets, ../shared/datasets/)`);
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build`);
  const prepared = await prepareSplit(args.data, args.cache, log);
  const data = loadEvaluationData(prepared, preparedFiles(args.cache));
  const work = mkdtempSync(join(tmpdir(), 'dpt-bench-e2e-run-'));
  const context: Context = { args, prepared, data, work };
  const torchProblem = args.isTorch ? probe(PYTHON, ['-c', 'import torch, numpy']) : '--no-torch';
  const sklearnProblem = args.isSklearn ? probe(PYTHON, ['-c', 'import sklearn, numpy']) : '--no-sklearn';
  const liblinearProblem = args.isLiblinear ? probe('sh', ['-c', 'command -v liblinear-train']) : '--no-liblinear';
  const uptimes: string[] = [];
  const loads = (): string =>
    loadavg()
      .map((value) => value.toFixed(2))
      .join(', ');
  log(
    `end to end on flights_3m: ${prepared.trainRows.toLocaleString('en-US')} training rows, ${(prepared.rows - prepared.trainRows).toLocaleString('en-US')} held out (the last 20 %), ` +
      `D = ${prepared.features.length}, standardized (training rows' mean, population std), λ = ${args.lambda}, B = ${args.batchSize}, lr = ${args.lr}, up to ${args.epochs} epochs; ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${loads()}`,
  );
  for (const [name, problem] of [
    ['PyTorch DDP', torchProblem],
    ['scikit-learn', sklearnProblem],
    ['liblinear', liblinearProblem],
  ] as const) {
    if (problem !== null) log(`${name} skipped: ${problem}`);
  }
  const runs: ToolRun[] = [];
  const record = (run: ToolRun): void => {
    runs.push(run);
    log(
      `  ${run.tool}, ${run.epochs} epoch(s), trial ${run.trial + 1}: ${run.wallSeconds.toFixed(2)} s, training ${run.losses.trainLoss.toFixed(6)}, held-out ${run.losses.heldOutLoss.toFixed(6)}` +
        `  ${JSON.stringify(run.phases)}`,
    );
  };
  const attempt = async (what: string, fn: () => ToolRun | Promise<ToolRun>): Promise<void> => {
    try {
      record(await fn());
    } catch (error) {
      log(`  ${what}: ${(error as Error).message}`);
    }
  };
  try {
    for (let trial = 0; trial < args.trials; trial++) {
      uptimes.push(loads());
      log(`\n-- trial ${trial + 1} of ${args.trials} (load average ${loads()})`);
      if (liblinearProblem === null) await attempt('liblinear', () => runLiblinear(context, trial));
      // dpt cold: a fresh conversion cache, the whole E-epoch run; then cached, k = 1 … E.
      const cacheDir = mkdtempSync(join(tmpdir(), 'dpt-bench-e2e-cache-'));
      try {
        await attempt('dpt cold', () => runDpt(context, args.epochs, trial, cacheDir, 'dpt, first run (conversion)'));
        for (let k = 1; k <= args.epochs; k++) {
          await attempt(`dpt ${k}`, () => runDpt(context, k, trial, cacheDir, 'dpt W=2'));
          if (torchProblem === null)
            await attempt(`torch ${k}`, () => runPythonPeer(context, 'PyTorch DDP W=2', TORCH_PEER, ['--W', '2', '--B', String(args.batchSize)], k, trial));
          if (sklearnProblem === null) {
            await attempt(`sklearn ${k}`, () => runPythonPeer(context, 'sklearn SGD constant', SKLEARN_PEER, ['--schedule', 'constant'], k, trial));
            await attempt(`sklearn optimal ${k}`, () => runPythonPeer(context, 'sklearn SGD optimal', SKLEARN_PEER, ['--schedule', 'optimal'], k, trial));
          }
        }
      } finally {
        rmSync(cacheDir, { recursive: true, force: true });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const reference = runs.filter((run) => run.tool.startsWith('liblinear'));
  const referenceLoss = reference.length === 0 ? null : median(reference.map((run) => run.losses.heldOutLoss));
  const tools = [...new Set(runs.map((run) => run.tool))];
  const summaries: ToolSummary[] = tools.map((tool) => ({ tool, runs: runs.filter((run) => run.tool === tool) }));
  log(
    `\n== end to end, flights_3m: ${args.epochs} epoch(s) (liblinear: to its -e ${args.eps}); wall s = process start to model written; losses by this bench's evaluator; ${args.trials} trial(s), ranges ==`,
  );
  log(
    formatTable(
      ['tool', 'epochs', 'wall s', 'training log-loss', 'objective (+λ/2‖w‖²)', 'held-out log-loss', 'held-out accuracy'],
      summaries.map(({ tool, runs: own }) => {
        const final = own.filter((run) => run.epochs === Math.max(...own.map((r) => r.epochs)));
        return [
          tool,
          final[0] === undefined || final[0].epochs === 0 ? '–' : String(final[0].epochs),
          range(final.map((run) => run.wallSeconds)),
          distinct(final.map((run) => run.losses.trainLoss.toFixed(6))),
          distinct(final.map((run) => run.losses.objective.toFixed(6))),
          distinct(final.map((run) => run.losses.heldOutLoss.toFixed(6))),
          distinct(final.map((run) => run.losses.heldOutAccuracy.toFixed(4))),
        ];
      }),
    ),
  );
  const targets = referenceLoss === null ? [] : TARGET_MARGINS.map((margin) => ({ margin, loss: referenceLoss * (1 + margin) }));
  const toTarget = targets.map(({ margin, loss }) => ({
    margin,
    loss,
    tools: summaries
      .filter(({ tool }) => !tool.startsWith('liblinear') && !tool.includes('first run'))
      .map(({ tool, runs: own }) => ({
        tool,
        trials: Array.from({ length: args.trials }, (_, trial) => timeToTarget(own, trial, loss)),
      })),
  }));
  for (const { margin, loss, tools: rows } of toTarget) {
    log(
      `\n== time to a held-out log-loss ≤ ${loss.toFixed(6)} (liblinear's ${referenceLoss?.toFixed(6)} + ${margin * 100} %): the shortest whole run that reaches it ==`,
    );
    log(
      formatTable(
        ['tool', 'epochs needed', 'seconds (per trial)'],
        rows.map(({ tool, trials }) => [
          tool,
          trials.map((t) => (t === null ? `> ${args.epochs}` : String(t.epochs))).join(', '),
          trials.map((t) => (t === null ? 'not reached' : t.seconds.toFixed(2))).join(', '),
        ]),
      ),
    );
    const dpt = rows.find((row) => row.tool === 'dpt W=2');
    if (dpt !== undefined) {
      const worst = (trials: readonly ({ seconds: number } | null)[]): number =>
        Math.max(...trials.map((t) => (t === null ? Number.POSITIVE_INFINITY : t.seconds)));
      const best = (trials: readonly ({ seconds: number } | null)[]): number =>
        Math.min(...trials.map((t) => (t === null ? Number.POSITIVE_INFINITY : t.seconds)));
      const beaten = rows.filter((row) => row !== dpt && best(row.trials) <= worst(dpt.trials)).map((row) => row.tool);
      log(
        beaten.length === 0
          ? `claim "dpt reaches it sooner than every peer": holds in every trial (dpt's slowest ${formatNumber(worst(dpt.trials))} s against each peer's fastest)`
          : `claim "dpt reaches it sooner than every peer": NOT shown (dpt's slowest trial is not ahead of ${beaten.join(', ')})`,
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;
  writeJson(args.out, {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? null,
    loadAverages: uptimes,
    settings: {
      epochs: args.epochs,
      batchSize: args.batchSize,
      lr: args.lr,
      lambda: args.lambda,
      seed: args.seed,
      trials: args.trials,
      liblinearEps: args.eps,
    },
    split: { rows: prepared.rows, trainRows: prepared.trainRows, features: prepared.features, mean: prepared.mean, std: prepared.std },
    referenceHeldOutLoss: referenceLoss,
    toTarget,
    runs,
    seconds,
  });
  log(`\nwrote ${args.out} (${seconds.toFixed(0)} s)`);
}

if (process.argv[1]?.endsWith('end-to-end.js')) {
  runEndToEnd(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`bench:e2e: ${(error as Error).message}\n`);
    process.exitCode = 1;
  });
}

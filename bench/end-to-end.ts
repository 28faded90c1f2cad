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
// trains a ladder of budgets, in epochs (default 1/32, 1/16, 1/4, 1/2, 3/4, then 1 … E), as separate
// whole runs (a budget's run is the start of any longer one: same seed, constant rate): below one
// epoch dpt stops with --max-steps, the torch peer with its --max-steps, and sklearn (which cannot
// stop mid-epoch) trains one epoch over that share of the rows (bench/peers/sklearn_sgd_flights.py);
// a tool's time to target is the wall time of its fastest run whose model reaches the target (its
// smallest such budget, unless the load made a larger one faster).
// Nobody evaluates during training (dpt runs with --eval-every 0), so evaluation costs the same
// (0) for all. dpt's CSV → .dpt conversion is cached per host ($DPT_CACHE_DIR, a fresh one here):
// its first run is reported cold, every other run cached. The runs themselves: bench/e2e-runners.ts.
//
// Flags: --data PATH (../shared/datasets/flights_3m.csv.gz), --cache DIR (prepared files; default
// $TMPDIR/dpt-bench-e2e), --out PATH (bench/results/end-to-end.json), --epochs E (2: the largest
// budget), --budgets LIST (comma-separated epochs, fractions below 1 as 1/32 or 0.25, integers
// above; default 1/32,1/16,1/4,1/2,3/4,1,…,E),
// --batch-size B (256), --lr η (0.1), --lambda λ (1e-4), --seed (1), --trials N (2, interleaved:
// every tool once, then again), --eps (liblinear -e, 1e-4), --no-torch, --no-sklearn, --no-liblinear.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEvaluationData, preparedFiles, prepareSplit } from './e2e-data.js';
import { type Context, PYTHON, probe, runDpt, runLiblinear, runPythonPeer, SKLEARN_PEER, TORCH_PEER, type ToolRun } from './e2e-runners.js';
import { formatNumber, formatTable, median, REPO, RESULTS_DIR, writeJson } from './harness.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
/** Targets: liblinear's held-out log-loss × (1 + margin). */
const TARGET_MARGINS = [0.01, 0.001] as const;
/** The budgets below one epoch that the ladder starts with (then 1 … E epochs). */
const FRACTIONS = [1 / 32, 1 / 16, 1 / 4, 1 / 2, 3 / 4] as const;

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
  /** Budgets in epochs, ascending: fractions below 1, whole epochs above; null: FRACTIONS then 1 … epochs. */
  budgets: number[] | null;
}

/** A budget as text: 1/32, 3/4, 2. */
export function formatBudget(budget: number): string {
  if (Number.isInteger(budget)) return String(budget);
  for (let d = 2; d <= 1024; d *= 2) if (Number.isInteger(budget * d)) return `${budget * d}/${d}`;
  return String(budget);
}

/** Parses a --budgets list: each a fraction in (0, 1) (as a/b or a decimal) or a whole number of epochs. */
export function parseBudgets(text: string): number[] {
  const budgets = text.split(',').map((item) => {
    const parts = item.trim().split('/');
    const value = parts.length === 2 ? Number(parts[0]) / Number(parts[1]) : parts.length === 1 ? Number(parts[0]) : Number.NaN;
    if (!(value > 0 && Number.isFinite(value)) || (value > 1 && !Number.isInteger(value))) {
      throw new Error(`--budgets ${text}: '${item}' is not a fraction of an epoch in (0, 1] or a whole number of epochs`);
    }
    return value;
  });
  return [...new Set(budgets)].sort((a, b) => a - b);
}

/** The ladder of budgets the runs take (epochs, ascending). */
export function budgetsOf(args: Pick<Args, 'budgets' | 'epochs'>): number[] {
  return args.budgets ?? [...FRACTIONS, ...Array.from({ length: args.epochs }, (_, k) => k + 1)];
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
    budgets: null,
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
    else if (flag === '--budgets') args.budgets = parseBudgets(value());
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

interface ToolSummary {
  readonly tool: string;
  readonly runs: readonly ToolRun[];
}

/**
 * The fastest of a trial's runs that reach `target` (seconds, and its budget); null when none did.
 * Usually the smallest budget that reaches it; when the load made a larger budget's run faster,
 * that one, so no tool is charged for the noise of one run.
 */
export function timeToTarget(runs: readonly ToolRun[], trial: number, target: number): { seconds: number; epochs: number } | null {
  const reached = runs.filter((run) => run.trial === trial && run.losses.heldOutLoss <= target).sort((a, b) => a.wallSeconds - b.wallSeconds);
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
  const budgets = budgetsOf(args);
  const uptimes: string[] = [];
  const loads = (): string =>
    loadavg()
      .map((value) => value.toFixed(2))
      .join(', ');
  log(
    `end to end on flights_3m: ${prepared.trainRows.toLocaleString('en-US')} training rows, ${(prepared.rows - prepared.trainRows).toLocaleString('en-US')} held out (the last 20 %), ` +
      `D = ${prepared.features.length}, standardized (training rows' mean, population std), λ = ${args.lambda}, B = ${args.batchSize}, lr = ${args.lr}, budgets ${budgets.map(formatBudget).join(', ')} epochs; ` +
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
      `  ${run.tool}, ${formatBudget(run.epochs)} epoch(s), trial ${run.trial + 1}: ${run.wallSeconds.toFixed(2)} s, training ${run.losses.trainLoss.toFixed(6)}, held-out ${run.losses.heldOutLoss.toFixed(6)}` +
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
      // dpt cold: a fresh conversion cache, the largest budget's run; then cached, every budget.
      const cacheDir = mkdtempSync(join(tmpdir(), 'dpt-bench-e2e-cache-'));
      try {
        await attempt('dpt cold', () => runDpt(context, budgets[budgets.length - 1]!, trial, cacheDir, 'dpt, first run (conversion)'));
        for (const k of budgets) {
          await attempt(`dpt ${formatBudget(k)}`, () => runDpt(context, k, trial, cacheDir, 'dpt W=2'));
          if (torchProblem === null)
            await attempt(`torch ${formatBudget(k)}`, () =>
              runPythonPeer(context, 'PyTorch DDP W=2', TORCH_PEER, ['--W', '2', '--B', String(args.batchSize)], k, trial),
            );
          if (sklearnProblem === null) {
            await attempt(`sklearn ${formatBudget(k)}`, () =>
              runPythonPeer(context, 'sklearn SGD constant', SKLEARN_PEER, ['--schedule', 'constant'], k, trial),
            );
            await attempt(`sklearn optimal ${formatBudget(k)}`, () =>
              runPythonPeer(context, 'sklearn SGD optimal', SKLEARN_PEER, ['--schedule', 'optimal'], k, trial),
            );
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
    `\n== end to end, flights_3m: ${formatBudget(budgets[budgets.length - 1]!)} epoch(s) (liblinear: to its -e ${args.eps}); wall s = process start to model written; losses by this bench's evaluator; ${args.trials} trial(s), ranges ==`,
  );
  log(
    formatTable(
      ['tool', 'epochs', 'wall s', 'training log-loss', 'objective (+λ/2‖w‖²)', 'held-out log-loss', 'held-out accuracy'],
      summaries.map(({ tool, runs: own }) => {
        const final = own.filter((run) => run.epochs === Math.max(...own.map((r) => r.epochs)));
        return [
          tool,
          final[0] === undefined || final[0].epochs === 0 ? '–' : formatBudget(final[0].epochs),
          range(final.map((run) => run.wallSeconds)),
          distinct(final.map((run) => run.losses.trainLoss.toFixed(6))),
          distinct(final.map((run) => run.losses.objective.toFixed(6))),
          distinct(final.map((run) => run.losses.heldOutLoss.toFixed(6))),
          distinct(final.map((run) => run.losses.heldOutAccuracy.toFixed(4))),
        ];
      }),
    ),
  );
  if (referenceLoss === null) log('\nno liblinear run: no target, so no time to target');
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
      `\n== time to a held-out log-loss ≤ ${loss.toFixed(6)} (liblinear's ${referenceLoss?.toFixed(6)} + ${margin * 100} %): the fastest whole run that reaches it ==`,
    );
    log(
      formatTable(
        ['tool', 'budget of that run (epochs)', 'seconds (per trial)'],
        rows.map(({ tool, trials }) => [
          tool,
          trials.map((t) => (t === null ? `> ${formatBudget(budgets[budgets.length - 1]!)}` : formatBudget(t.epochs))).join(', '),
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
      budgets,
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

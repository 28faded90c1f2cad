// The warm-up of a whole `dpt train` run (issue #15 item 1): the issue's run (64,000 generated
// rows, D = 10, B = 64, W = 2, 5 epochs = 5,000 steps, the CLI's defaults otherwise: shuffled,
// standardized, evaluated each epoch), timed from process start to model written, with the step
// rate per 500 steps from its own --metrics step times. The warm-up ratio is the rate of steps
// 0–1,000 over that of steps 4,000–5,000 (target ≥ 70 %).
//
// `node dist/bench/warmup.js [--trials N] [--budgets v8,8192,...]`, or from `npm run bench`
// (bench/run.ts). --budgets runs each trial once per DPT_TIER_UP_BUDGET value (cli/tier-up.ts),
// interleaved (A, B, A, B: the machine's load drifts), so V8's own tier-up threshold ('v8') can
// be compared with dpt's; each line carries the 1-minute load average at its end. On Linux each
// run also goes through bench/cpu-sampler.ts: the CPU per step of the three processes in steps
// 0–1,000 and 4,000–5,000, which the load hardly moves (the wall rates move ±50 % on a shared VM).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StepEvent } from '../shared/events.js';
import { generateDataset } from '../shared/synthetic.js';
import { type CpuSample, cpuBetween, type SamplerRecord } from './cpu-sampler.js';
import { formatNumber, median, REPO } from './harness.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
const SAMPLER = join(REPO, 'dist', 'bench', 'cpu-sampler.js');
const ROWS = 64_000;
const FEATURES = 10;
const BATCH = 64;
const EPOCHS = 5;
/** Steps per bucket of the rate curve. */
const BUCKET_STEPS = 500;
const RUN_TIMEOUT_MS = 240_000;

export interface WarmupResult {
  readonly steps: number;
  /** Steps per second of each BUCKET_STEPS steps: bucket size / Σ stepMs. */
  readonly bucketRates: number[];
  /** Rate of steps 0–1,000 over the rate of steps 4,000–5,000. */
  readonly ratio: number;
  /** Steps / (process start to exit, the model written). */
  readonly wholeRunStepsPerSec: number;
  /** Steps / (first step event to last), the start-up and the statistics pass left out. */
  readonly trainingStepsPerSec: number;
  /**
   * CPU µs per step of the three processes (main threads + V8's helper threads) in steps 0–1,000
   * and 4,000–5,000, from /proc (Linux; null elsewhere): hardly moved by the machine's load.
   */
  readonly cpu: { readonly first: CpuWindow; readonly last: CpuWindow } | null;
  /** DPT_TIER_UP_BUDGET of the run ('' for dpt's default). */
  readonly budget: string;
  /** 1-minute load average when the run ended. */
  readonly load: number;
}

export interface CpuWindow {
  readonly mainUsPerStep: number;
  readonly helperUsPerStep: number;
}

/** CPU per step of events [from, to), from the sample before the first one's start to the sample before the last one's end. */
function cpuOf(samples: readonly CpuSample[], events: readonly StepEvent[], from: number, to: number): CpuWindow {
  const startMs = from === 0 ? events[0]!.time - events[0]!.stepMs : events[from - 1]!.time;
  const { mainMs, otherMs } = cpuBetween(samples, startMs, events[to - 1]!.time);
  return { mainUsPerStep: (mainMs * 1000) / (to - from), helperUsPerStep: (otherMs * 1000) / (to - from) };
}

/** Steps per second of events [from, to): count / Σ stepMs. */
function rateOf(events: readonly StepEvent[], from: number, to: number): number {
  const slice = events.slice(from, to);
  return (slice.length * 1000) / slice.reduce((sum, event) => sum + event.stepMs, 0);
}

/** One run of the issue's `dpt train` on `dataPath` with DPT_TIER_UP_BUDGET=`budget` ('' for dpt's default); null (with a message) on failure. */
export function runWarmup(dataPath: string, directory: string, budget = ''): WarmupResult | null {
  const metrics = join(directory, `warmup-metrics-${Date.now()}.jsonl`);
  const out = join(directory, `warmup-model-${Date.now()}.json`);
  const args = [
    CLI,
    'train',
    '--data',
    dataPath,
    '--workers',
    '2',
    '--epochs',
    String(EPOCHS),
    '--batch-size',
    String(BATCH),
    '--metrics',
    metrics,
    '--out',
    out,
  ];
  const started = performance.now();
  const env = { ...process.env, DPT_TIER_UP_BUDGET: budget };
  // On Linux through the CPU sampler, which also times dpt from its spawn to its exit.
  const samplesPath = process.platform === 'linux' ? join(directory, `warmup-cpu-${Date.now()}.json`) : null;
  const command = samplesPath === null ? args : [SAMPLER, samplesPath, process.execPath, ...args];
  const result = spawnSync(process.execPath, command, { encoding: 'utf8', timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20, env });
  const wallMs = performance.now() - started;
  if (result.status !== 0) {
    process.stdout.write(`  dpt train failed (exit ${result.status ?? result.signal}): ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}\n`);
    return null;
  }
  const events = readFileSync(metrics, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { type: string })
    .filter((event): event is StepEvent => event.type === 'step');
  rmSync(metrics, { force: true });
  rmSync(out, { force: true });
  const record = samplesPath === null ? null : (JSON.parse(readFileSync(samplesPath, 'utf8')) as SamplerRecord);
  if (samplesPath !== null) rmSync(samplesPath, { force: true });
  const samples = record?.samples ?? null;
  const dptWallMs = record === null ? wallMs : record.exitedMs - record.spawnedMs;
  if (events.length < 5000) return null;
  const bucketRates: number[] = [];
  for (let from = 0; from < events.length; from += BUCKET_STEPS) bucketRates.push(rateOf(events, from, from + BUCKET_STEPS));
  const trainingMs = events.at(-1)!.time - events[0]!.time;
  return {
    steps: events.length,
    bucketRates,
    ratio: rateOf(events, 0, 1000) / rateOf(events, 4000, 5000),
    wholeRunStepsPerSec: (events.length * 1000) / dptWallMs,
    trainingStepsPerSec: trainingMs > 0 ? ((events.length - 1) * 1000) / trainingMs : Number.NaN,
    cpu: samples === null || samples.length === 0 ? null : { first: cpuOf(samples, events, 0, 1000), last: cpuOf(samples, events, 4000, 5000) },
    budget,
    load: loadavg()[0]!,
  };
}

/** "2,650 µs (main threads 1,700 + V8 helper threads 950)" */
function describeCpu(window: CpuWindow): string {
  return `${formatNumber(window.mainUsPerStep + window.helperUsPerStep)} µs (main threads ${formatNumber(window.mainUsPerStep)} + V8 helper threads ${formatNumber(window.helperUsPerStep)})`;
}

function cpuTotal(window: CpuWindow): number {
  return window.mainUsPerStep + window.helperUsPerStep;
}

function describeRun(run: WarmupResult): string {
  const cpu =
    run.cpu === null
      ? ''
      : `; CPU per step of the 3 processes ${describeCpu(run.cpu.first)} in steps 0–1,000, ${describeCpu(run.cpu.last)} in 4,000–5,000 ` +
        `(ratio ${Math.round((100 * cpuTotal(run.cpu.last)) / cpuTotal(run.cpu.first))} %)`;
  return (
    `steps/s per ${BUCKET_STEPS} steps ${run.bucketRates.map((rate) => formatNumber(rate)).join(' ')}; ` +
    `warm-up ratio ${Math.round(100 * run.ratio)} % (target ≥ 70 %); whole run ${formatNumber(run.wholeRunStepsPerSec)} steps/s ` +
    `(process start to model written), first to last step ${formatNumber(run.trainingStepsPerSec)} steps/s${cpu}; load ${run.load.toFixed(1)}`
  );
}

/** The name of a DPT_TIER_UP_BUDGET value in the lines. */
function budgetLabel(budget: string): string {
  return budget === '' ? "dpt's tier-up budget" : budget === 'v8' ? "V8's tier-up budget" : `tier-up budget ${budget}`;
}

/**
 * Runs the warm-up `trials` times on data generated in `directory`, each trial once per value of
 * `budgets` (DPT_TIER_UP_BUDGET, interleaved); returns the lines to print and the run of median
 * ratio among the runs of the first budget.
 */
export function measureWarmup(directory: string, trials: number, budgets: readonly string[] = ['']): { lines: string[]; median: WarmupResult | null } {
  const dataPath = generateDataset({ rows: ROWS, features: FEATURES, seed: 1 }, join(directory, 'warmup-data.dpt'), 'dpt').path;
  const runs: WarmupResult[] = [];
  const lines: string[] = [];
  for (let trial = 1; trial <= trials; trial++) {
    for (const budget of budgets) {
      const run = runWarmup(dataPath, directory, budget);
      if (run === null) continue;
      runs.push(run);
      lines.push(`run ${trial}${budgets.length > 1 ? `, ${budgetLabel(budget)}` : ''}: ${describeRun(run)}`);
    }
  }
  let middle: WarmupResult | null = null;
  for (const budget of budgets) {
    const mine = runs.filter((run) => run.budget === budget);
    if (mine.length === 0) continue;
    const sorted = [...mine].sort((a, b) => a.ratio - b.ratio);
    middle ??= sorted[Math.floor((sorted.length - 1) / 2)]!;
    const ratios = mine.map((run) => Math.round(100 * run.ratio));
    const whole = mine.map((run) => run.wholeRunStepsPerSec);
    const cpus = mine.flatMap((run) => (run.cpu === null ? [] : [run.cpu]));
    const cpu =
      cpus.length === 0
        ? ''
        : `; CPU per step ${formatNumber(median(cpus.map((c) => cpuTotal(c.first))))} µs in steps 0–1,000, ` +
          `${formatNumber(median(cpus.map((c) => cpuTotal(c.last))))} µs in 4,000–5,000 (medians)`;
    lines.push(
      `median of ${mine.length}${budgets.length > 1 ? `, ${budgetLabel(budget)}` : ''}: warm-up ratio ${Math.round(100 * median(mine.map((run) => run.ratio)))} % ` +
        `(${Math.min(...ratios)}–${Math.max(...ratios)} %), whole run ${formatNumber(median(whole))} steps/s (${formatNumber(Math.min(...whole))}–${formatNumber(Math.max(...whole))})${cpu}`,
    );
  }
  return { lines, median: middle };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--trials');
  const trials = at < 0 ? 3 : Number(process.argv[at + 1]);
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials: expected a positive integer, got ${process.argv[at + 1]}`);
  const budgetsAt = process.argv.indexOf('--budgets');
  const budgets = budgetsAt < 0 ? [''] : (process.argv[budgetsAt + 1] ?? '').split(',').map((budget) => (budget === 'dpt' ? '' : budget));
  const directory = mkdtempSync(join(tmpdir(), 'dpt-warmup-'));
  try {
    process.stdout.write(
      `== warm-up: dpt train of ${ROWS.toLocaleString('en-US')} rows, D=${FEATURES}, B=${BATCH}, W=2, ${EPOCHS} epochs (${(EPOCHS * ROWS) / BATCH} steps) ==\n`,
    );
    for (const line of measureWarmup(directory, trials, budgets).lines) process.stdout.write(`${line}\n`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

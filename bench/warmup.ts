// The warm-up of a whole `dpt train` run (issue #15 item 1): the run (64,000 generated
// rows, D = 10, B = 64, W = 2, 5 epochs = 5,000 steps, the CLI's defaults otherwise: shuffled,
// standardized, evaluated each epoch), timed from process start to model written, with the step
// rate per 500 steps from its own --metrics step times. The warm-up ratio is the rate of steps
// 0–1,000 over that of steps 4,000–5,000 (target ≥ 70 %).
//
// `node dist/bench/warmup.js [--trials N]`, or from `npm run bench` (bench/run.ts).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StepEvent } from '../shared/events.js';
import { generateDataset } from '../shared/synthetic.js';
import { formatNumber, median, REPO } from './harness.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
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
}

/** Steps per second of events [from, to): count / Σ stepMs. */
function rateOf(events: readonly StepEvent[], from: number, to: number): number {
  const slice = events.slice(from, to);
  return (slice.length * 1000) / slice.reduce((sum, event) => sum + event.stepMs, 0);
}

/** One run of the issue's `dpt train` on `dataPath`; null (with a message) on failure. */
export function runWarmup(dataPath: string, directory: string): WarmupResult | null {
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
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20 });
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
  if (events.length < 5000) return null;
  const bucketRates: number[] = [];
  for (let from = 0; from < events.length; from += BUCKET_STEPS) bucketRates.push(rateOf(events, from, from + BUCKET_STEPS));
  const trainingMs = events.at(-1)!.time - events[0]!.time;
  return {
    steps: events.length,
    bucketRates,
    ratio: rateOf(events, 0, 1000) / rateOf(events, 4000, 5000),
    wholeRunStepsPerSec: (events.length * 1000) / wallMs,
    trainingStepsPerSec: trainingMs > 0 ? ((events.length - 1) * 1000) / trainingMs : Number.NaN,
  };
}

/** Runs the warm-up `trials` times on data generated in `directory`; returns the lines to print and the run of median ratio. */
export function measureWarmup(directory: string, trials: number): { lines: string[]; median: WarmupResult | null } {
  const dataPath = generateDataset({ rows: ROWS, features: FEATURES, seed: 1 }, join(directory, 'warmup-data.dpt'), 'dpt').path;
  const runs = Array.from({ length: trials }, () => runWarmup(dataPath, directory)).filter((run): run is WarmupResult => run !== null);
  const lines = runs.map(
    (run, i) =>
      `run ${i + 1}: steps/s per ${BUCKET_STEPS} steps ${run.bucketRates.map((rate) => formatNumber(rate)).join(' ')}; ` +
      `warm-up ratio ${Math.round(100 * run.ratio)} % (target ≥ 70 %); whole run ${formatNumber(run.wholeRunStepsPerSec)} steps/s ` +
      `(process start to model written), first to last step ${formatNumber(run.trainingStepsPerSec)} steps/s`,
  );
  const sorted = [...runs].sort((a, b) => a.ratio - b.ratio);
  const middle = sorted[Math.floor((sorted.length - 1) / 2)] ?? null;
  if (middle !== null) {
    lines.push(
      `median of ${runs.length}: warm-up ratio ${Math.round(100 * median(runs.map((run) => run.ratio)))} %, whole run ${formatNumber(median(runs.map((run) => run.wholeRunStepsPerSec)))} steps/s`,
    );
  }
  return { lines, median: middle };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--trials');
  const trials = at < 0 ? 3 : Number(process.argv[at + 1]);
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials: expected a positive integer, got ${process.argv[at + 1]}`);
  const directory = mkdtempSync(join(tmpdir(), 'dpt-warmup-'));
  try {
    process.stdout.write(
      `== warm-up: dpt train of ${ROWS.toLocaleString('en-US')} rows, D=${FEATURES}, B=${BATCH}, W=2, ${EPOCHS} epochs (${(EPOCHS * ROWS) / BATCH} steps) ==\n`,
    );
    for (const line of measureWarmup(directory, trials).lines) process.stdout.write(`${line}\n`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

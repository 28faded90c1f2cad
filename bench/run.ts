// `npm run bench`: the performance grid of issue 5. For D × B × W it trains for real (`dpt train`
// with W local worker processes on generated data), reads steps/s and rows/s from the --metrics
// step events (warm-up excluded), and splits a step into compute, encode/decode, reduce, update
// and the rest (network wait) with focused micro-benchmarks. Beside it: the kernel alone against
// C, and the PyTorch DDP peer on the same grid when python3-torch is installed.
//
// Flags: --quick (fewer steps and trials), --d 10,100 --b 64 --w 2 (filters), --trials N (runs of
// each training cell, dpt and DDP alike; the run of median steps/s is kept), --no-torch, --no-c,
// --no-train, --profile (CPU profiles of coordinator and workers at the first cell with the largest W),
// --out PATH (default bench/results/latest.json). Numbers from a shared machine are noisy.
// --scale runs the scaling curve of issue #11 instead (bench/scale.ts, its own flags there);
// --sparse the sparse step times and traffic of issue #13 (bench/sparse-steps.ts). The warm-up of
// issue #15 (bench/warmup.ts: a whole 5,000-step run, its first 1,000 steps against its last 1,000,
// and its wall rate from process start to model written) runs first unless --no-warmup or --no-train.
// The end-to-end table of issue #15 item 4 (bench/end-to-end.ts: dpt against PyTorch DDP,
// scikit-learn and liblinear on flights_3m, ~10 min) runs last unless --no-e2e (--quick: 1 trial;
// --no-torch passes on);
// `npm run bench:e2e` runs it alone, with its own flags.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultThreads } from '../cli/cpu-pinning.js';
import { allowedCpus } from '../shared/cpus.js';
import type { StepEvent } from '../shared/events.js';
import { nativeKernelAddon } from '../shared/kernel-native.js';
import { decodeCoordinatorMessage, decodeWorkerMessage, encodeMessage, type Limits } from '../shared/protocol.js';
import { sumChunksInOrder } from '../shared/reduce.js';
import { generateDataset } from '../shared/synthetic.js';
import { runEndToEnd } from './end-to-end.js';
import { benchRows, buildCKernel, C_FLAGS, formatNumber, formatTable, median, parseGridArgs, REPO, RESULTS_DIR, writeJson } from './harness.js';
import { formatKernelTable, measureCKernel, measureKernel, runKernelGrid } from './kernel.js';
import { measureRawStar } from './raw-star.js';
import { runScale } from './scale.js';
import { runSparseSteps } from './sparse-steps.js';
import { measureWarmup, type WarmupResult } from './warmup.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
const PYTHON = '/usr/bin/python3';
const TORCH_PEER = process.env.DPT_TORCH_PEER ?? join(REPO, '..', 'shared', 'peers', 'torch_ddp_lr.py');
/** Chunks per batch in training (the CLI default), which sets the size of step and part messages. */
const CHUNKS = 16;
const RUN_TIMEOUT_MS = 240_000;

interface TrainResult {
  readonly timedSteps: number;
  /** Timed steps / Σ stepMs: the step itself, as the trainer measures it. */
  readonly stepsPerSec: number;
  readonly rowsPerSec: number;
  /** Over the wall time from the first timed step to the last, including epoch-end evaluation. */
  readonly wallStepsPerSec: number;
  readonly medianStepMs: number;
  readonly p90StepMs: number;
  /** All steps of the run / (process start to model written): start-up, warm-up and evaluation included. */
  readonly wholeRunStepsPerSec: number;
}

interface TorchResult {
  readonly stepsPerSec: number;
  readonly rowsPerSec: number;
  readonly medianStepMs: number;
}

/** Per-step milliseconds of each piece, on the critical path of one step. */
interface Breakdown {
  readonly computeJsMs: number;
  readonly computeWasmMs: number;
  readonly codecMs: number;
  readonly reduceMs: number;
  readonly updateMs: number;
  /** Measured median step − the pieces above (with the JS kernel): network wait, ws framing, event loop. */
  readonly networkAndOtherMs: number | null;
}

interface Cell {
  readonly D: number;
  readonly B: number;
  readonly W: number;
  readonly N: number;
  readonly steps: number;
  /** dpt as installed: the native kernel where it was built. */
  readonly dpt: TrainResult | null;
  /**
   * The floor cell (D=1000, B=8192) again with DPT_NATIVE=off (the WebAssembly kernel), its trials
   * interleaved with dpt's; null elsewhere or without the native addon.
   */
  readonly dptWasm: TrainResult | null;
  /** Every trial's median step, ms, in run order (native and wasm interleaved at the floor cell). */
  readonly dptTrialMs: number[];
  readonly dptWasmTrialMs: number[];
  readonly torch: TorchResult | null;
  readonly breakdown: Breakdown;
  /** Compute threads per worker that dpt train chose (CPUs ÷ W). */
  readonly threads: number;
  /** Median raw star round (bench/raw-star.ts) with W workers and D + 1 float64 each way, µs. */
  readonly rawRoundUs: number | null;
  /** The floor of a step: C kernel time for one worker's B/W rows + the raw round, ms; null without C. */
  readonly floorMs: number | null;
  /**
   * The floor cell only: floor / step of each native trial, with the C kernel timed just before
   * that trial (PAIRED_C_SECONDS), so that both see the same load; the verdict takes their median.
   * On this shared VM the load moves between the kernel table and the training trials, and an
   * unpaired ratio moved from 53 % to 120 % with it.
   */
  readonly pairedShares: number[];
}

/** How long the C kernel runs before each native trial at the floor cell (the paired floor). */
const PAIRED_C_SECONDS = 1;

/** Steps per dpt run: a few seconds of steady state per cell after the JIT has warmed up. */
function stepsFor(D: number, B: number, quick: boolean): number {
  const base = B <= 64 ? 30_000 : B <= 1024 ? (D <= 100 ? 15_000 : 4000) : D <= 10 ? 8000 : D <= 100 ? 3000 : 1000;
  return quick ? Math.max(40, Math.round(base / 5)) : base;
}

/** Steps per PyTorch run: its loop warms up within its own first tenth (the peer's rule). */
function torchStepsFor(D: number, B: number, quick: boolean): number {
  const base = B <= 64 ? 3000 : B <= 1024 ? 1000 : D <= 10 ? 400 : D <= 100 ? 150 : 40;
  return quick ? Math.max(20, Math.round(base / 5)) : base;
}

/**
 * Steps left out of the timing: those of the first WARMUP_MS (the processes reach speed only
 * after ~4,000 small steps, about a second; docs/performance.md), at least a tenth, at most half.
 */
const WARMUP_MS = 1500;

/** Milliseconds per call of `fn`: the median of 5 rounds of about `roundMs`, after a warm-up of 20 ms. */
function timePerCall(fn: () => void, roundMs = 8): number {
  const round = (budgetMs: number): number => {
    let calls = 0;
    const started = performance.now();
    let elapsed = 0;
    do {
      for (let i = 0; i < 10; i++) fn();
      calls += 10;
      elapsed = performance.now() - started;
    } while (elapsed < budgetMs);
    return elapsed / calls;
  };
  round(20);
  return median(Array.from({ length: 5 }, () => round(roundMs)));
}

/** The pieces of a step that are not the network, each measured alone. */
function measureBreakdown(D: number, B: number, W: number, medianStepMs: number | null): Breakdown {
  const chunks = Math.min(CHUNKS, B);
  const share = Math.ceil(chunks / W);
  const limits: Limits = { features: D, parameters: D + 1, maxChunks: CHUNKS };
  const theta = Float64Array.from({ length: D + 1 }, (_, j) => Math.sin(j));
  // One step message for all W workers (its assignment table), one subtree part per worker.
  const entries = Math.ceil(chunks / share);
  const assign = Uint32Array.from({ length: 3 * entries }, (_, i) => (i % 3 === 0 ? i / 3 : Math.min(chunks, (Math.floor(i / 3) + (i % 3) - 1) * share)));
  const stepBytes = encodeMessage({ kind: 'step', step: 123_456, assign, theta });
  const part = {
    kind: 'part',
    step: 123_456,
    subtrees: Uint32Array.of(0, 0),
    sums: Float64Array.from({ length: D + 2 }, (_, i) => Math.cos(i)),
    rows: Uint32Array.of(share * Math.floor(B / chunks)),
  } as const;
  const partBytes = encodeMessage(part);
  const encodeStep = timePerCall(() => encodeMessage({ kind: 'step', step: 123_456, assign, theta }));
  const decodeStep = timePerCall(() => decodeCoordinatorMessage(stepBytes, limits));
  const encodePart = timePerCall(() => encodeMessage(part));
  const decodePart = timePerCall(() => decodeWorkerMessage(partBytes, limits));
  // The coordinator encodes one step for all and decodes W parts; each worker decodes one and encodes one.
  const codecMs = encodeStep + W * decodePart + decodeStep + encodePart;
  const parts = Float64Array.from({ length: chunks * (D + 2) }, (_, i) => Math.sin(i));
  const sum = new Float64Array(D + 2);
  const reduceMs = timePerCall(() => sumChunksInOrder(parts, chunks, D + 2, sum));
  // The update as coordinator/trainer.ts commits it: a new w, and the bound on |w·x + b|.
  const featureMaxAbs = new Float64Array(D).fill(3);
  let model = new Float64Array(D);
  const updateMs = timePerCall(() => {
    const next = new Float64Array(D);
    let bound = 0;
    for (let j = 0; j < D; j++) {
      const value = model[j]! - 0.1 * (sum[j]! / B + 0 * model[j]!);
      next[j] = value;
      bound += Math.abs(value) * featureMaxAbs[j]!;
    }
    if (bound > 1e290) throw new Error('unreachable');
    model = next;
  });
  // The kernels on one worker's share of the batch, timed here so that the machine's load
  // (shared, noisy) is the same as in the training run next to it.
  const rowsPerWorker = Math.ceil(B / W);
  const computeJsMs = (rowsPerWorker / measureKernel('js', D, rowsPerWorker, rowsPerWorker, 0.05)) * 1000;
  const computeWasmMs = (rowsPerWorker / measureKernel('wasm-simd', D, rowsPerWorker, rowsPerWorker, 0.05)) * 1000;
  const known = computeJsMs + codecMs + reduceMs + updateMs;
  return {
    computeJsMs,
    computeWasmMs,
    codecMs,
    reduceMs,
    updateMs,
    networkAndOtherMs: medianStepMs === null || !Number.isFinite(known) ? null : Math.max(0, medianStepMs - known),
  };
}

function trainArgs(dataPath: string, B: number, N: number, steps: number, metrics: string): string[] {
  const epochs = Math.ceil(steps / (N / B));
  // One evaluation, after the last step: the peer evaluates nothing, and a pass between two
  // steps reads every row (the next step then finds less of its data in cache).
  return [
    '--data',
    dataPath,
    '--epochs',
    String(epochs),
    '--eval-every',
    String(epochs),
    '--batch-size',
    String(B),
    '--lr',
    '0.1',
    '--no-shuffle',
    '--no-standardize',
    '--metrics',
    metrics,
  ];
}

/**
 * Trains with `dpt train` (a coordinator and W local worker processes); null (with a message) on
 * failure. `native`: DPT_NATIVE for the run (off: the workers run the WebAssembly kernel).
 */
function runDpt(dataPath: string, directory: string, B: number, W: number, N: number, steps: number, native: 'auto' | 'off' = 'auto'): TrainResult | null {
  const metrics = join(directory, `metrics-${Date.now()}.jsonl`);
  const args = [CLI, 'train', '--workers', String(W), ...trainArgs(dataPath, B, N, steps, metrics)];
  const started = performance.now();
  const env = { ...process.env, DPT_NATIVE: native };
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20, env });
  const wallMs = performance.now() - started;
  if (result.status !== 0) {
    process.stdout.write(`  dpt train failed (exit ${result.status ?? result.signal}): ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}\n`);
    return null;
  }
  return readStepEvents(metrics, wallMs);
}

/**
 * The same run as `dpt coordinator` plus W `dpt worker` processes, each under --cpu-prof (which
 * NODE_OPTIONS does not allow, so `dpt train` cannot pass it on). Returns the coordinator's pid.
 * Unlike `dpt train` these talk over loopback TCP, unpinned and without busy polling: a profile of
 * the code, not of `dpt train`'s placement.
 */
async function runDptProfiled(
  dataPath: string,
  directory: string,
  B: number,
  W: number,
  N: number,
  steps: number,
  profileDir: string,
): Promise<number | undefined> {
  const metrics = join(directory, `metrics-profiled-${Date.now()}.jsonl`);
  const node = (args: string[]): ChildProcess =>
    spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const coordinator = node([
    'coordinator',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--workers',
    String(W),
    '--token',
    'bench',
    ...trainArgs(dataPath, B, N, steps, metrics),
  ]);
  const workers: ChildProcess[] = [];
  const exited = (child: ChildProcess): Promise<void> => new Promise((resolve) => child.once('exit', () => resolve()));
  const timer = setTimeout(() => {
    for (const child of [coordinator, ...workers]) child.kill('SIGKILL');
  }, RUN_TIMEOUT_MS);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      coordinator.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /listening on (ws:\/\/\S+)/.exec(output);
        if (match !== null) resolve(match[1]!);
      });
      coordinator.once('exit', (code) => reject(new Error(`the coordinator exited (${code}) before listening`)));
    });
    for (let i = 0; i < W; i++) workers.push(node(['worker', '--connect', url, '--token', 'bench', '--quiet']));
    await Promise.all([coordinator, ...workers].map(exited));
  } finally {
    clearTimeout(timer);
  }
  rmSync(metrics, { force: true });
  return coordinator.pid;
}

/** steps/s, rows/s and step times from a --metrics file, warm-up excluded. */
function readStepEvents(metrics: string, wholeRunMs: number): TrainResult | null {
  const events = readFileSync(metrics, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { type: string })
    .filter((event): event is StepEvent => event.type === 'step');
  rmSync(metrics, { force: true });
  const firstTime = events[0]?.time ?? 0;
  const warm = events.findIndex((event) => event.time - firstTime >= WARMUP_MS);
  const skip = Math.min(Math.floor(events.length / 2), Math.max(Math.ceil(events.length / 10), warm < 0 ? events.length : warm));
  const timed = events.slice(skip);
  if (timed.length < 2) return null;
  const stepMs = timed.map((event) => event.stepMs);
  const totalMs = stepMs.reduce((a, b) => a + b, 0);
  const rows = timed.reduce((a, event) => a + event.rows, 0);
  const sorted = [...stepMs].sort((a, b) => a - b);
  const wallMs = timed.at(-1)!.time - timed[0]!.time;
  return {
    timedSteps: timed.length,
    stepsPerSec: (timed.length * 1000) / totalMs,
    rowsPerSec: (rows * 1000) / totalMs,
    wallStepsPerSec: wallMs > 0 ? ((timed.length - 1) * 1000) / wallMs : Number.NaN,
    medianStepMs: median(stepMs),
    p90StepMs: sorted[Math.floor(sorted.length * 0.9)]!,
    wholeRunStepsPerSec: (events.length * 1000) / wholeRunMs,
  };
}

/** Why the PyTorch peer cannot run here, or null when it can. */
function torchUnavailable(): string | null {
  if (!existsSync(TORCH_PEER)) return `no peer script at ${TORCH_PEER} (set DPT_TORCH_PEER)`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return `${PYTHON} cannot import torch (apt-get install -y python3-torch python3-numpy)`;
  return null;
}

function runTorch(D: number, B: number, W: number, N: number, steps: number): TorchResult | null {
  const args = [TORCH_PEER, '--W', String(W), '--D', String(D), '--B', String(B), '--N', String(N), '--steps', String(steps), '--no-full-loss'];
  const result = spawnSync(PYTHON, args, { encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
  const line = (result.stdout ?? '').trim().split('\n').at(-1) ?? '';
  if (result.status !== 0 || !line.startsWith('{')) {
    process.stdout.write(`  torch peer failed (exit ${result.status ?? result.signal}): ${(result.stderr ?? '').trim().split('\n').at(-1) ?? ''}\n`);
    return null;
  }
  const out = JSON.parse(line) as { steps_per_s: number; samples_per_s: number; median_step_ms: number };
  return { stepsPerSec: out.steps_per_s, rowsPerSec: out.samples_per_s, medianStepMs: out.median_step_ms };
}

interface ProfileSummary {
  readonly process: string;
  readonly totalMs: number;
  readonly top: { readonly name: string; readonly selfMs: number; readonly percent: number }[];
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Self time per function of every profile in `directory`; the process `coordinatorPid` is named. */
function summarizeProfiles(directory: string, coordinatorPid: number | undefined): ProfileSummary[] {
  return readdirSync(directory)
    .filter((file) => file.endsWith('.cpuprofile'))
    .map((file) => {
      const profile = JSON.parse(readFileSync(join(directory, file), 'utf8')) as CpuProfile;
      const byId = new Map(profile.nodes.map((node) => [node.id, node]));
      const self = new Map<string, number>();
      profile.samples.forEach((id, i) => {
        const frame = byId.get(id)!.callFrame; // every sample names a node of the same profile
        if (frame.functionName === '(idle)') return; // waiting for the network: the rest is CPU time
        const where = frame.url === '' ? '' : ` ${frame.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^node:/, '')}:${frame.lineNumber + 1}`;
        const name = `${frame.functionName === '' ? '(anonymous)' : frame.functionName}${where}`;
        self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
      });
      const totalMs = [...self.values()].reduce((a, b) => a + b, 0);
      const pid = Number(file.split('.')[3]); // CPU.<date>.<time>.<pid>.<thread>.<sequence>.cpuprofile
      return {
        process: pid === coordinatorPid ? `coordinator (pid ${pid})` : `worker (pid ${pid})`,
        totalMs,
        top: [...self]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 14)
          .map(([name, selfMs]) => ({ name, selfMs, percent: (100 * selfMs) / totalMs })),
      };
    });
}

/** The run of median steps/s among `results` (failed runs left out). */
function medianOf<T extends { readonly stepsPerSec: number }>(results: readonly (T | null)[]): T | null {
  const kept = results.filter((result): result is T => result !== null).sort((a, b) => a.stepsPerSec - b.stepsPerSec);
  return kept[Math.floor((kept.length - 1) / 2)] ?? null;
}

/** Runs `run` `trials` times and keeps the run of median steps/s (failed runs are left out). */
function medianRun<T extends { readonly stepsPerSec: number }>(trials: number, run: () => T | null): T | null {
  const results = Array.from({ length: trials }, run)
    .filter((result): result is T => result !== null)
    .sort((a, b) => a.stepsPerSec - b.stepsPerSec);
  return results[Math.floor((results.length - 1) / 2)] ?? null;
}

/** The issue's three speed targets, each with its measured value and whether it is met. */
function targetLines(cells: readonly Cell[]): string[] {
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const lines: string[] = [];
  const small = cells.find((cell) => cell.D === 10 && cell.B === 64 && cell.W === 2);
  if (small?.dpt != null) {
    const steps = small.dpt.stepsPerSec;
    const ratio = small.torch === null ? null : steps / small.torch.stepsPerSec;
    lines.push(
      `D=10 B=64 W=2: ${formatNumber(steps)} steps/s (target ≥ 8,000: ${verdict(steps >= 8000)})` +
        (ratio === null ? '' : `; ${formatNumber(ratio)}× DDP's ${formatNumber(small.torch!.stepsPerSec)} (target ≥ 10×: ${verdict(ratio >= 10)})`),
    );
  }
  const big = cells.find((cell) => cell.D === 1000 && cell.B === 8192 && cell.W === 2);
  if (big?.dpt != null && big.floorMs !== null) {
    const share = big.floorMs / big.dpt.medianStepMs;
    const trials = big.dptTrialMs.length > 1 ? ` (trials ${big.dptTrialMs.map((ms) => formatNumber(ms)).join(', ')} ms)` : '';
    lines.push(
      `D=1000 B=8192 W=2: median step ${formatNumber(big.dpt.medianStepMs)} ms${trials}, floor ${formatNumber(big.floorMs)} ms: ${Math.round(100 * share)} %` +
        (big.pairedShares.length === 0 ? ` (target ≥ 70 %: ${verdict(share >= 0.7)})` : ''),
    );
    if (big.pairedShares.length > 0) {
      // The verdict: each trial against a C kernel timed just before it, under the same load.
      const paired = median(big.pairedShares);
      lines.push(
        `D=1000 B=8192 W=2, paired floor (C timed before each trial): ${big.pairedShares.map((s) => `${Math.round(100 * s)} %`).join(', ')}; median ${Math.round(100 * paired)} % (target ≥ 70 %: ${verdict(paired >= 0.7)})`,
      );
    }
    if (big.dptWasm !== null) {
      const wasmShare = big.floorMs / big.dptWasm.medianStepMs;
      const wasmTrials = big.dptWasmTrialMs.length > 1 ? ` (trials ${big.dptWasmTrialMs.map((ms) => formatNumber(ms)).join(', ')} ms)` : '';
      lines.push(
        `D=1000 B=8192 W=2 with DPT_NATIVE=off (WebAssembly kernel): median step ${formatNumber(big.dptWasm.medianStepMs)} ms${wasmTrials}: ${Math.round(100 * wasmShare)} % of the floor`,
      );
    }
  }
  const compared = cells.filter((cell) => cell.dpt !== null && cell.torch !== null);
  const behind = compared.filter((cell) => cell.dpt!.rowsPerSec < cell.torch!.rowsPerSec);
  if (compared.length > 0) {
    lines.push(
      `rows/s ≥ DDP's: ${compared.length - behind.length} of ${compared.length} cells (target: all: ${verdict(behind.length === 0)})` +
        behind.map((cell) => `; behind at D=${cell.D} B=${cell.B} W=${cell.W} (${formatNumber(cell.dpt!.rowsPerSec / cell.torch!.rowsPerSec)}×)`).join(''),
    );
  }
  return lines;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--sparse')) return runSparseSteps(argv.filter((arg) => arg !== '--sparse'));
  if (argv.includes('--scale')) {
    // The scaling curve of issue #11 (bench/scale.ts); --quick also thins the grid.
    const rest = argv.filter((arg) => arg !== '--scale');
    const isQuick = rest.includes('--quick');
    return runScale(parseGridArgs(rest, { D: isQuick ? [10, 1000] : [10, 1000, 100_000], B: [2048], W: isQuick ? [1, 4, 16, 64] : [1, 2, 4, 8, 16, 32, 64] }));
  }
  const args = parseGridArgs(argv, { D: [10, 100, 1000], B: [64, 1024, 8192], W: [1, 2] });
  const outPath = args.values.get('out') ?? join(RESULTS_DIR, 'latest.json');
  const trials = Number(args.values.get('trials') ?? 1);
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials: expected a positive integer, got ${args.values.get('trials')}`);
  const directory = mkdtempSync(join(tmpdir(), 'dpt-bench-'));
  const started = performance.now();
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  try {
    log(`dpt bench on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node.js ${process.version}; a shared machine: numbers are noisy`);
    const c = args.flags.has('no-c') ? { skipped: '--no-c' } : buildCKernel(directory);
    if ('skipped' in c) log(`C reference skipped: ${c.skipped}`);
    const cBinary = 'path' in c ? c.path : null;
    const torchProblem = args.flags.has('no-torch') ? '--no-torch' : torchUnavailable();
    if (torchProblem !== null) log(`PyTorch DDP peer skipped: ${torchProblem}`);

    let warmup: WarmupResult | null = null;
    if (!args.flags.has('no-warmup') && !args.flags.has('no-train')) {
      log('\n== warm-up: a whole dpt train of 64,000 rows, D=10, B=64, W=2, 5 epochs (bench/warmup.ts) ==');
      const measured = measureWarmup(directory, args.quick ? 1 : trials);
      for (const line of measured.lines) log(line);
      warmup = measured.median;
    }

    log('\n== gradient kernel alone (one core) ==');
    const kernels = runKernelGrid(args.D, args.B, args.quick ? 0.15 : 0.3, args.quick ? 1 : 3, 'path' in c ? c.path : null);
    log(formatKernelTable(kernels));

    measureBreakdown(100, 1024, 2, null); // JIT warm-up of the codec paths, so the first cell is not slower
    const cells: Cell[] = [];
    let profiles: ProfileSummary[] = [];
    const dataFiles = new Map<string, string>();
    const rawRounds = new Map<string, number>();
    for (const D of args.D) {
      for (const B of args.B) {
        const N = benchRows(D, B);
        const steps = stepsFor(D, B, args.quick);
        const key = `${D}x${N}`;
        if (!args.flags.has('no-train') && !dataFiles.has(key)) {
          dataFiles.set(key, generateDataset({ rows: N, features: D, seed: 1 }, join(directory, `data-${key}.dpt`), 'dpt').path);
        }
        for (const W of args.W) {
          if (B % W !== 0) continue;
          log(`\n-- D=${D} B=${B} W=${W}: N=${N} rows, ${steps} steps`);
          // At the floor cell, each trial runs dpt with its native kernel and then with DPT_NATIVE=off (A, B, A, B).
          const compareWasm = !args.flags.has('no-train') && D === 1000 && B === 8192 && nativeKernelAddon('auto') !== undefined;
          const nativeRuns: (TrainResult | null)[] = [];
          const wasmRuns: (TrainResult | null)[] = [];
          /** C rows/s measured just before each native trial at the floor cell (its paired floor). */
          const pairedC: (number | null)[] = [];
          for (let trial = 0; trial < (args.flags.has('no-train') ? 0 : trials); trial++) {
            if (compareWasm && cBinary !== null) pairedC.push(measureCKernel(cBinary, D, B, N, PAIRED_C_SECONDS));
            nativeRuns.push(runDpt(dataFiles.get(key)!, directory, B, W, N, steps));
            if (compareWasm) wasmRuns.push(runDpt(dataFiles.get(key)!, directory, B, W, N, steps, 'off'));
          }
          const dpt = medianOf(nativeRuns);
          const dptWasm = compareWasm ? medianOf(wasmRuns) : null;
          const trialMs = (runs: readonly (TrainResult | null)[]): number[] => runs.filter((run) => run !== null).map((run) => run.medianStepMs);
          if (args.flags.has('profile') && !args.flags.has('no-train') && profiles.length === 0 && W === Math.max(...args.W)) {
            const profileDir = join(directory, 'profiles');
            mkdirSync(profileDir);
            const coordinatorPid = await runDptProfiled(dataFiles.get(key)!, directory, B, W, N, steps, profileDir);
            profiles = summarizeProfiles(profileDir, coordinatorPid);
          }
          const torch = torchProblem === null ? medianRun(trials, () => runTorch(D, B, W, N, torchStepsFor(D, B, args.quick))) : null;
          const breakdown = measureBreakdown(D, B, W, dpt?.medianStepMs ?? null);
          const rawKey = `${D}/${W}`;
          if (!rawRounds.has(rawKey)) rawRounds.set(rawKey, (await measureRawStar(W, D, args.quick ? 0.5 : 1.5, 0.5)).medianUs);
          const rawRoundUs = rawRounds.get(rawKey) ?? null;
          const cRowsPerSec = kernels.find((k) => k.D === D && k.B === B)?.c ?? null;
          /** C's time for one worker's B/W rows at `rowsPerSec`, plus the raw round, ms. */
          const floorAt = (rowsPerSec: number | null | undefined): number | null =>
            rowsPerSec == null || rawRoundUs === null ? null : (B / W / rowsPerSec) * 1000 + rawRoundUs / 1000;
          const floorMs = floorAt(cRowsPerSec);
          const pairedShares: number[] = [];
          nativeRuns.forEach((run, i) => {
            const paired = floorAt(pairedC[i]);
            if (run !== null && paired !== null) pairedShares.push(paired / run.medianStepMs);
          });
          const threads = defaultThreads(allowedCpus()?.length ?? availableParallelism(), W);
          cells.push({
            D,
            B,
            W,
            N,
            steps,
            dpt,
            dptWasm,
            dptTrialMs: trialMs(nativeRuns),
            dptWasmTrialMs: trialMs(wasmRuns),
            torch,
            breakdown,
            threads,
            rawRoundUs,
            floorMs,
            pairedShares,
          });
          log(
            `   dpt ${formatNumber(dpt?.stepsPerSec ?? null)} steps/s (median ${formatNumber(dpt?.medianStepMs ?? null)} ms)` +
              (dptWasm === null
                ? ''
                : `   dpt with DPT_NATIVE=off ${formatNumber(dptWasm.stepsPerSec)} steps/s (median ${formatNumber(dptWasm.medianStepMs)} ms)`) +
              `   torch DDP ${formatNumber(torch?.stepsPerSec ?? null)} steps/s (median ${formatNumber(torch?.medianStepMs ?? null)} ms)`,
          );
        }
      }
    }

    log('\n== training: steps/s and rows/s (warm-up excluded; dpt steps/s = steps / Σ stepMs) ==');
    log(
      formatTable(
        [
          'D',
          'B',
          'W',
          'threads',
          'dpt steps/s',
          'dpt wall steps/s',
          'dpt whole-run steps/s',
          'dpt rows/s',
          'dpt median ms',
          'dpt p90 ms',
          'DDP steps/s',
          'DDP rows/s',
          'DDP median ms',
          'dpt/DDP',
        ],
        cells.map((cell) => [
          String(cell.D),
          String(cell.B),
          String(cell.W),
          String(cell.threads),
          formatNumber(cell.dpt?.stepsPerSec ?? null),
          formatNumber(cell.dpt?.wallStepsPerSec ?? null),
          formatNumber(cell.dpt?.wholeRunStepsPerSec ?? null),
          formatNumber(cell.dpt?.rowsPerSec ?? null),
          formatNumber(cell.dpt?.medianStepMs ?? null),
          formatNumber(cell.dpt?.p90StepMs ?? null),
          formatNumber(cell.torch?.stepsPerSec ?? null),
          formatNumber(cell.torch?.rowsPerSec ?? null),
          formatNumber(cell.torch?.medianStepMs ?? null),
          cell.dpt !== null && cell.torch !== null ? formatNumber(cell.dpt.stepsPerSec / cell.torch.stepsPerSec) : '–',
        ]),
      ),
    );
    log(
      "\n== the floor: C kernel on one worker's B/W rows (one core) + a raw WebSocket star round (bench/raw-star.ts); with more than one compute thread per worker it is not a bound ==",
    );
    log(
      formatTable(
        ['D', 'B', 'W', 'raw round µs', 'C ms', 'floor ms', 'dpt median ms', 'floor / dpt', 'dpt wasm median ms', 'floor / dpt wasm'],
        cells.map((cell) => [
          String(cell.D),
          String(cell.B),
          String(cell.W),
          formatNumber(cell.rawRoundUs),
          formatNumber(cell.floorMs === null || cell.rawRoundUs === null ? null : cell.floorMs - cell.rawRoundUs / 1000),
          formatNumber(cell.floorMs),
          formatNumber(cell.dpt?.medianStepMs ?? null),
          cell.floorMs === null || cell.dpt === null ? '–' : `${Math.round((100 * cell.floorMs) / cell.dpt.medianStepMs)} %`,
          formatNumber(cell.dptWasm?.medianStepMs ?? null),
          cell.floorMs === null || cell.dptWasm === null ? '–' : `${Math.round((100 * cell.floorMs) / cell.dptWasm.medianStepMs)} %`,
        ]),
      ),
    );
    log('\n== the targets of issue 5 ==');
    for (const line of targetLines(cells)) log(line);
    log('\n== where a step goes, ms on the critical path (micro-benchmarks; network+other = median step − the rest) ==');
    log(
      formatTable(
        ['D', 'B', 'W', 'median step', 'compute js', '(compute wasm)', 'encode+decode', 'reduce', 'update', 'network+other'],
        cells.map(({ D, B, W, dpt, breakdown: b }) => [
          String(D),
          String(B),
          String(W),
          formatNumber(dpt?.medianStepMs ?? null),
          formatNumber(b.computeJsMs),
          formatNumber(b.computeWasmMs),
          formatNumber(b.codecMs),
          formatNumber(b.reduceMs),
          formatNumber(b.updateMs),
          formatNumber(b.networkAndOtherMs),
        ]),
      ),
    );
    for (const profile of profiles) {
      log(`\n== CPU profile, ${profile.process}: ${formatNumber(profile.totalMs)} ms busy; top self time (idle excluded) ==`);
      for (const entry of profile.top) log(`  ${entry.percent.toFixed(1).padStart(5)} %  ${formatNumber(entry.selfMs).padStart(7)} ms  ${entry.name}`);
    }
    const seconds = (performance.now() - started) / 1000;
    writeJson(outPath, {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? null,
      quick: args.quick,
      trials,
      cFlags: 'path' in c ? C_FLAGS : null,
      torch: torchProblem === null ? TORCH_PEER : null,
      seconds,
      warmup,
      kernels,
      cells,
      profiles,
    });
    log(`\nwrote ${outPath} (${seconds.toFixed(0)} s)`);
    if (!args.flags.has('no-e2e')) {
      log('\n== end to end on flights_3m against PyTorch DDP, scikit-learn and liblinear (bench/end-to-end.ts; --no-e2e skips) ==');
      await runEndToEnd([...(args.quick ? ['--trials', '1'] : []), ...(args.flags.has('no-torch') ? ['--no-torch'] : [])]);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

await main();

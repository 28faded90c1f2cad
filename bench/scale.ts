// `npm run bench -- --scale` (issue #11 item 6): the scaling curve of one coordinator. For
// W = 1 … 64 worker processes on this machine and D = 10, 1000, 100,000 it runs a real
// `dpt coordinator` and W `dpt worker` processes, as a star (workers connect to the coordinator)
// and behind relays (`dpt relay`, fan-in --fan-in, when the command exists), and reports what
// oversubscribing 2 CPUs distorts least: the coordinator's CPU per step (its /status cpuUs
// sampled at two steps), bytes per step per child (up and down) and at the coordinator (its
// /status counters), contributors per step (the `workers` field of the --metrics step events) and
// start-up (coordinator spawned → first step scattered). Steps/s is printed too, but on 2 CPUs
// shared by W + 1 processes it is the machine's, not the design's. (CPU time is inflated too, by
// cold caches after each wake-up: docs/scaling.md compares it with bench/message-costs.ts.)
//
// Flags: --quick (W 1, 4, 16, 64; D 10, 1000; one trial; shorter windows), --d, --w (filters),
// --trials N (default 3: each cell's figures are medians over N interleaved runs), --seconds S
// (measured window per run), --pin (the coordinator alone on the first CPU, the rest on the
// others; off by default: on this shared 2-vCPU machine it made the coordinator's CPU per step
// noisier, not lower), --fan-in F (workers per relay, default 16), --no-relays,
// --out PATH (default bench/results/scale.json). Every process is killed by PID; every wait is bounded.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { allowedCpus, hasTaskset, pinProcess } from '../shared/cpus.js';
import { generateDataset } from '../shared/synthetic.js';
import { formatNumber, formatTable, type GridArgs, REPO, RESULTS_DIR, writeJson } from './harness.js';
import {
  medianContributors,
  medianFields,
  parseStepEvents,
  relayCount,
  relayOfWorker,
  type StatusSample,
  startupMs,
  toStatusSample,
  type WindowRates,
  windowRates,
} from './scale-stats.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
const TOKEN = 'dpt-scale-bench';
interface Shape {
  /** Batch size B. */
  readonly batch: number;
  /** Batches per epoch (rows = batch × this). */
  readonly batches: number;
  /** --chunks, or null for the default (64 chunks from B = 2048 on: all of W ≤ 64 can contribute). */
  readonly chunks: number | null;
  /** --heartbeat of coordinator and workers and the coordinator's --step-timeout, or null for the defaults (5 s, 30 s). */
  readonly patienceMs: number | null;
}

/**
 * Per D. The coordinator's traffic and work per step depend on D, W and the chunks, not on B.
 * D = 100,000 holds 400 KB a row: B = 2048 would be 819 MB a batch, held by each of 64 workers
 * (and paged workers miss heartbeats in the statistics pass at that size: see docs/scaling.md),
 * so there B = 128 is cut explicitly into the same 64 chunks. Its statistics pass still moves
 * O(blocks·D) bytes (410 MB here) and holds a worker, and the coordinator, for longer than the
 * default heartbeat and step timeout allow (15 s to minutes at W = 1 on this loaded machine): long
 * ones let it through.
 */
const SHAPES: Record<number, Shape> = {
  10: { batch: 2048, batches: 8, chunks: null, patienceMs: null },
  1000: { batch: 2048, batches: 4, chunks: null, patienceMs: null },
  100000: { batch: 128, batches: 1, chunks: 64, patienceMs: 600_000 },
};
const POLL_MS = 200;
/** Deadlines: all W joined and the first step taken; the whole run. */
const STARTUP_TIMEOUT_MS = 240_000;
const RUN_TIMEOUT_MS = 360_000;
/** A window needs at least this many steps (D = 100,000 steps are slow), and ends after this long at most. */
const MIN_WINDOW_STEPS = 5;
const MAX_WINDOW_MS = 30_000;

type Topology = 'star' | 'relays';

interface RunFigures extends Record<string, number | null> {
  startupS: number | null;
  contributors: number | null;
  cpuUsPerStep: number | null;
  upMaxBytesPerStep: number | null;
  upMeanBytesPerStep: number | null;
  downMeanBytesPerStep: number | null;
  coordinatorBytesPerStep: number | null;
  children: number | null;
  stepsPerSec: number | null;
  windowSteps: number | null;
}

const FIGURES: readonly (keyof RunFigures & string)[] = [
  'startupS',
  'contributors',
  'cpuUsPerStep',
  'upMaxBytesPerStep',
  'upMeanBytesPerStep',
  'downMeanBytesPerStep',
  'coordinatorBytesPerStep',
  'children',
  'stepsPerSec',
  'windowSteps',
];

interface ScaleCell {
  readonly topology: Topology;
  readonly D: number;
  readonly B: number;
  readonly chunks: number;
  readonly W: number;
  readonly relays: number;
  /** Medians over the trials that succeeded. */
  readonly median: Record<string, number | null>;
  readonly trials: readonly (RunFigures | { readonly failed: string })[];
}

interface CellPlan {
  readonly topology: Topology;
  readonly D: number;
  readonly W: number;
  readonly relays: number;
}

/** A child process the bench started, with its output so far. */
interface Started {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<void>;
}

/** Where the processes run: the coordinator on a CPU of its own, the rest on the others; null: unpinned. */
interface Placement {
  readonly coordinator: readonly number[];
  readonly others: readonly number[];
}

/** Every process the bench has started and not yet seen exit, for the SIGINT/SIGTERM cleanup. */
const live = new Set<ChildProcess>();

function startCli(args: readonly string[], children: ChildProcess[], cpuList: readonly number[] | null): Started {
  const argv = [CLI, ...args];
  // taskset execs node: the child's pid is node's.
  const child =
    cpuList === null
      ? spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('taskset', ['--cpu-list', cpuList.join(','), process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  live.add(child);
  child.once('exit', () => live.delete(child));
  let output = '';
  // Kept short: the coordinator's progress lines would otherwise grow this without bound.
  const append = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, output: () => output, exited };
}

/** Resolves with the first match of `pattern` in the process's output; rejects at the deadline or at its exit. */
function waitForOutput(started: Started, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
  return waitFor(started, (output) => pattern.exec(output), timeoutMs, what);
}

/** Resolves once `find` finds something in the process's output; rejects at the deadline or at its exit. */
function waitFor<T>(started: Started, find: (output: string) => T | null, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const match = find(started.output());
      if (match === null) return false;
      finish();
      resolve(match);
      return true;
    };
    const onData = (): void => {
      check();
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`${what}: nothing within ${timeoutMs} ms (output: ${started.output().slice(-300)})`));
    }, timeoutMs);
    const onExit = (): void => {
      if (check()) return;
      finish();
      reject(new Error(`${what}: the process exited (${started.output().trim().split('\n').slice(-2).join(' | ')})`));
    };
    const finish = (): void => {
      clearTimeout(timer);
      started.child.stdout?.off('data', onData);
      started.child.stderr?.off('data', onData);
      started.child.off('exit', onExit);
    };
    started.child.stdout?.on('data', onData);
    started.child.stderr?.on('data', onData);
    started.child.once('exit', onExit);
    check();
  });
}

/** Generous: while 64 workers start, the coordinator gets a sliver of 2 CPUs. */
const STATUS_TIMEOUT_MS = 30_000;

async function readStatus(port: number, coordinator: Started): Promise<StatusSample> {
  const response = await fetch(`http://127.0.0.1:${port}/status`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
  }).catch((error: Error) => {
    throw new Error(`GET /status: ${error.message} (the coordinator's last words: ${lastLines(coordinator)})`);
  });
  if (!response.ok) throw new Error(`GET /status: HTTP ${response.status}`);
  return toStatusSample(await response.json(), performance.now());
}

/**
 * Whether this build has `dpt relay` (another helper's item of issue #11). Its help must name it:
 * commander answers `dpt <unknown> --help` with the main help and exit code 0.
 */
export function hasRelayCommand(): boolean {
  const probe = spawnSync(process.execPath, [CLI, 'relay', '--help'], { encoding: 'utf8', timeout: 30_000 });
  return probe.status === 0 && /Usage: dpt relay\b/.test(probe.stdout);
}

/** One run of a cell: start everything, measure a window of steady steps, kill everything by PID. */
async function runOnce(
  plan: CellPlan,
  dataPath: string,
  directory: string,
  warmupMs: number,
  windowMs: number,
  placement: Placement | null,
): Promise<RunFigures> {
  const { D, W } = plan;
  const metrics = join(directory, `metrics-${plan.topology}-${D}-${W}-${Date.now()}.jsonl`);
  const children: ChildProcess[] = [];
  const deadline = setTimeout(() => {
    for (const child of children) if (child.pid !== undefined) child.kill('SIGKILL');
  }, RUN_TIMEOUT_MS);
  try {
    // Far more steps than a run lasts: the bench ends it once its window is measured.
    const shape = SHAPES[D]!;
    const epochs = Math.ceil(1_000_000 / shape.batches);
    const heartbeat = shape.patienceMs === null ? [] : ['--heartbeat', String(shape.patienceMs)];
    const stepTimeout = shape.patienceMs === null ? [] : ['--step-timeout', String(shape.patienceMs)];
    const spawnedAtMs = Date.now();
    const coordinator = startCli(
      [
        'coordinator',
        '--data',
        dataPath,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--workers',
        String(W),
        '--token',
        TOKEN,
        '--epochs',
        String(epochs),
        '--eval-every',
        String(epochs),
        '--batch-size',
        String(shape.batch),
        ...(shape.chunks === null ? [] : ['--chunks', String(shape.chunks)]),
        ...heartbeat,
        ...stepTimeout,
        '--lr',
        '0.01',
        '--no-shuffle',
        '--no-standardize',
        // A backup copy of a straggler's share measures the machine's oversubscription, not the design.
        '--backup-factor',
        '0',
        // 64 workers starting on a loaded 2-vCPU machine can take longer than the default minute.
        '--join-timeout',
        String(STARTUP_TIMEOUT_MS),
        '--metrics',
        metrics,
      ],
      children,
      placement?.coordinator ?? null,
    );
    const [, url, portText] = await waitForOutput(coordinator, /listening on (ws:\/\/127\.0\.0\.1:(\d+))/, 60_000, 'the coordinator');
    const port = Number(portText);
    const targets: string[] = [];
    if (plan.topology === 'relays') {
      for (let r = 0; r < plan.relays; r++) {
        const relay = startCli(
          ['relay', '--connect', url!, '--host', '127.0.0.1', '--port', '0', '--token', TOKEN, '--quiet', ...heartbeat, ...stepTimeout],
          children,
          placement?.others ?? null,
        );
        const [, relayUrl] = await waitForOutput(relay, /relay listening on (ws:\/\/\S+)/, 60_000, `relay ${r}`);
        targets.push(relayUrl!);
      }
    } else targets.push(url!);
    for (let i = 0; i < W; i++) {
      const target = plan.topology === 'relays' ? targets[relayOfWorker(i, W, targets.length)]! : targets[0]!;
      startCli(['worker', '--connect', target, '--token', TOKEN, '--quiet', ...heartbeat], children, placement?.others ?? null);
    }
    // Wait for every worker to join (the coordinator says so; star only: behind relays the
    // coordinator sees relays), then poll until the first step, through the warm-up and the window.
    if (plan.topology === 'star') {
      const allJoined = (output: string): true | null => ([...output.matchAll(/worker \d+(?: \([^)]*\))? joined from/g)].length >= W ? true : null);
      await waitFor(coordinator, allJoined, STARTUP_TIMEOUT_MS, `${W} workers joining`);
    }
    const startupDeadline = performance.now() + STARTUP_TIMEOUT_MS;
    let state = 'unknown';
    for (;;) {
      if (performance.now() > startupDeadline) throw new Error(`no step within ${STARTUP_TIMEOUT_MS} ms (state ${state})`);
      if (coordinator.child.exitCode !== null) throw new Error(`the coordinator exited: ${lastLines(coordinator)}`);
      try {
        const early = await readStatus(port, coordinator);
        state = early.state;
        if (early.step >= 1) break;
      } catch {
        // At D = 100,000 the statistics pass holds the coordinator's event loop for tens of
        // seconds: /status times out. The deadline above still bounds the wait.
        state = 'not answering /status';
      }
      await sleep(POLL_MS / 2);
    }
    // No polling inside the window but at its ends (then once a second while too few steps came):
    // each answer costs the coordinator CPU that would be charged to the steps.
    await sleep(warmupMs);
    const first = await readStatus(port, coordinator);
    await sleep(windowMs);
    let sample = await readStatus(port, coordinator);
    for (let polls = 0; polls < MAX_WINDOW_MS / 1000 && sample.step - first.step < MIN_WINDOW_STEPS; polls++) {
      await sleep(1000);
      sample = await readStatus(port, coordinator);
    }
    const rates: WindowRates | null = windowRates(first, sample);
    if (rates === null) throw new Error(`no step committed in ${MAX_WINDOW_MS} ms of window`);
    // The metrics file is flushed every 200 ms: let the window's last steps reach it.
    await sleep(2 * POLL_MS);
    const steps = parseStepEvents(readFileSync(metrics, 'utf8'));
    const startup = startupMs(spawnedAtMs, steps);
    return {
      startupS: Number.isFinite(startup) ? startup / 1000 : null,
      contributors: medianContributors(steps, first.step, sample.step),
      cpuUsPerStep: rates.cpuUsPerStep,
      upMaxBytesPerStep: rates.upMaxBytesPerStep,
      upMeanBytesPerStep: rates.upMeanBytesPerStep,
      downMeanBytesPerStep: rates.downMeanBytesPerStep,
      coordinatorBytesPerStep: rates.coordinatorBytesPerStep,
      children: rates.children,
      stepsPerSec: rates.steps / rates.seconds,
      windowSteps: rates.steps,
    };
  } finally {
    clearTimeout(deadline);
    for (const child of children) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.race([
      Promise.all(
        children.map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)))),
      ),
      sleep(10_000),
    ]);
    rmSync(metrics, { force: true });
  }
}

function lastLines(started: Started): string {
  return started.output().trim().split('\n').slice(-3).join(' | ');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function formatCells(cells: readonly ScaleCell[]): string {
  const bytes = (value: number | null): string => (value === null ? '–' : formatNumber(value));
  return formatTable(
    [
      'topology',
      'D',
      'W',
      'relays',
      'start-up s',
      'contributors',
      'coord CPU µs/step',
      'up B/step/child (max)',
      'down B/step/child',
      'coord B/step',
      'steps/s (2 CPUs)',
    ],
    cells.map((cell) => [
      cell.topology,
      String(cell.D),
      String(cell.W),
      cell.topology === 'relays' ? String(cell.relays) : '–',
      formatNumber(cell.median.startupS ?? null),
      formatNumber(cell.median.contributors ?? null),
      formatNumber(cell.median.cpuUsPerStep ?? null),
      bytes(cell.median.upMaxBytesPerStep ?? null),
      bytes(cell.median.downMeanBytesPerStep ?? null),
      bytes(cell.median.coordinatorBytesPerStep ?? null),
      formatNumber(cell.median.stepsPerSec ?? null),
    ]),
  );
}

/** The scale bench: `args` are run.ts's parsed flags (--scale itself removed). */
export async function runScale(args: GridArgs): Promise<void> {
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const quick = args.quick;
  const dims = args.D;
  const counts = args.W;
  const trials = Number(args.values.get('trials') ?? (quick ? 1 : 3));
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials: expected a positive integer, got ${args.values.get('trials')}`);
  const windowMs = 1000 * Number(args.values.get('seconds') ?? (quick ? 1 : 2));
  if (!(windowMs > 0)) throw new Error(`--seconds: expected a positive number, got ${args.values.get('seconds')}`);
  const fanIn = Number(args.values.get('fan-in') ?? 16);
  if (!Number.isInteger(fanIn) || fanIn < 1) throw new Error(`--fan-in: expected a positive integer, got ${args.values.get('fan-in')}`);
  for (const D of dims) if (SHAPES[D] === undefined) throw new Error(`--d: the scale bench knows D = ${Object.keys(SHAPES).join(', ')}, not ${D}`);
  const warmupMs = quick ? 500 : 1000;
  const outPath = args.values.get('out') ?? join(RESULTS_DIR, 'scale.json');
  const started = performance.now();
  log(
    `dpt scale bench on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node.js ${process.version}: up to ${Math.max(...counts) + 1} processes share these CPUs`,
  );
  log('(bytes and contributors do not depend on that, CPU per step little; steps/s and start-up do. A shared machine: figures are medians of trials.)');
  const cpuSet = allowedCpus();
  const placement: Placement | null =
    !args.flags.has('pin') || cpuSet === null || cpuSet.length < 2 || !hasTaskset() ? null : { coordinator: cpuSet.slice(0, 1), others: cpuSet.slice(1) };
  log(
    placement === null
      ? 'placement: unpinned (no --pin, one CPU, or no taskset): the coordinator shares the CPUs with the workers'
      : `placement: the coordinator on CPU ${placement.coordinator.join(',')}, workers, relays and this bench on CPU ${placement.others.join(',')} (taskset); other tenants of the machine still run anywhere`,
  );
  if (placement !== null) pinProcess(process.pid, placement.others);
  const directory = mkdtempSync(join(tmpdir(), 'dpt-scale-'));
  // Interrupted: every child by PID, the data files, then the signal's default action.
  const stop = (signal: NodeJS.Signals): void => {
    for (const child of live) child.kill('SIGKILL');
    rmSync(directory, { recursive: true, force: true });
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let relaysProblem: string | null = args.flags.has('no-relays') ? '--no-relays' : hasRelayCommand() ? null : 'no `dpt relay` command';
  if (relaysProblem !== null) log(`relays: not available (${relaysProblem})`);

  try {
    const dataFiles = new Map<number, string>();
    for (const D of dims) {
      const rows = SHAPES[D]!.batch * SHAPES[D]!.batches;
      log(`generating D = ${D}: ${rows} rows (${formatNumber((rows * (4 * D + 1)) / 1e6)} MB)`);
      dataFiles.set(D, generateDataset({ rows, features: D, seed: 1 }, join(directory, `scale-${D}.dpt`), 'dpt').path);
    }
    const plans: CellPlan[] = [];
    for (const D of dims) {
      for (const W of counts) {
        plans.push({ topology: 'star', D, W, relays: 0 });
        plans.push({ topology: 'relays', D, W, relays: relayCount(W, fanIn) });
      }
    }
    const results = new Map<CellPlan, (RunFigures | { failed: string })[]>(plans.map((plan) => [plan, []]));
    let relayRuns = 0;
    // Trials outermost: a burst of load from the machine's other tenants hits one trial of many cells, not every trial of one.
    for (let trial = 0; trial < trials; trial++) {
      for (const plan of plans) {
        if (plan.topology === 'relays' && relaysProblem !== null) continue;
        if (plan.topology === 'relays') relayRuns++;
        const label = `${plan.topology} D=${plan.D} W=${plan.W}${plan.topology === 'relays' ? ` relays=${plan.relays}` : ''} (trial ${trial + 1}/${trials})`;
        try {
          const figures = await runOnce(plan, dataFiles.get(plan.D)!, directory, warmupMs, windowMs, placement);
          results.get(plan)!.push(figures);
          log(
            `  ${label}: start-up ${formatNumber(figures.startupS)} s, contributors ${formatNumber(figures.contributors)}, coordinator CPU ${formatNumber(figures.cpuUsPerStep)} µs/step, ` +
              `up ${formatNumber(figures.upMaxBytesPerStep)} B/step/child (max), down ${formatNumber(figures.downMeanBytesPerStep)}, ${formatNumber(figures.windowSteps)} steps measured`,
          );
        } catch (error) {
          const reason = (error as Error).message;
          results.get(plan)!.push({ failed: reason });
          log(`  ${label}: FAILED: ${reason}`);
          // A relay that does not speak the interface this bench assumes fails every cell: say so once.
          if (plan.topology === 'relays' && relayRuns === 1) {
            relaysProblem = `the first relay cell failed: ${reason}`;
            log(`relays: skipped from here (${relaysProblem})`);
          }
        }
      }
    }
    const cells: ScaleCell[] = plans
      .filter((plan) => results.get(plan)!.length > 0)
      .map((plan) => {
        const runs = results.get(plan)!;
        const good = runs.filter((run): run is RunFigures => !('failed' in run));
        return {
          topology: plan.topology,
          D: plan.D,
          B: SHAPES[plan.D]!.batch,
          chunks: SHAPES[plan.D]!.chunks ?? 64,
          W: plan.W,
          relays: plan.relays,
          median: medianFields(good, FIGURES),
          trials: runs,
        };
      });
    log(
      `\n== scale: medians of ${trials} trial(s); 64 chunks a step (B = 2048, default chunks; D = 100,000: B = 128, --chunks 64), --backup-factor 0; per child = per worker in a star, per relay behind relays ==`,
    );
    log(formatCells(cells));
    if (relaysProblem !== null) log(`relays: not available (${relaysProblem})`);
    const seconds = (performance.now() - started) / 1000;
    writeJson(outPath, {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? null,
      quick,
      trials,
      windowSeconds: windowMs / 1000,
      warmupSeconds: warmupMs / 1000,
      shapes: SHAPES,
      fanIn,
      relays: relaysProblem ?? 'available',
      seconds,
      cells,
    });
    log(`\nwrote ${outPath} (${seconds.toFixed(0)} s)`);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (placement !== null && cpuSet !== null) pinProcess(process.pid, cpuSet);
    rmSync(directory, { recursive: true, force: true });
  }
}

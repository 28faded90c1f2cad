// `dpt train` and `dpt coordinator`: run a coordinator, and for train also N local worker
// processes, which are stopped by PID on success, failure and Ctrl-C.

import { availableParallelism } from 'node:os';
import { CLI_PATH, trainWithLocalWorkers, type WorkerCommand } from '../api/local-training.js';
import { type RunHooks, startCoordinator } from '../api/runs.js';
import { DEFAULTS } from '../coordinator/config.js';
import { ProgressPrinter } from '../coordinator/progress.js';
import type { CoordinatorResult } from '../coordinator/run.js';
import { describeBackups } from '../coordinator/scatter.js';
import { lineSplitter, TerminalPrinter } from '../coordinator/terminal.js';
import { allowedCpus, hasTaskset, pinnedCommand, pinProcess } from '../shared/cpus.js';
import { ConfigError } from '../shared/errors.js';
import type { TrainingEvent } from '../shared/events.js';
import { coordinatorOptions, type TrainingFlags } from './coordinator-flags.js';
import { type CpuPlan, defaultThreads, hasOwnCpu, planCpus } from './cpu-pinning.js';
import { RunProgress } from './interruption.js';
import { checkTrainingPaths } from './output-paths.js';

/** `dpt coordinator`'s own flags: --min-workers (default: all of --workers). */
export type RemoteWorkerFlags = TrainingFlags & { minWorkers?: number };

/**
 * Runs a coordinator that waits for `flags.workers` remote workers: the first step starts as soon
 * as all joined, or at --join-timeout with at least --min-workers of them (issue #11 item 5); the
 * others may join mid-run like any late worker.
 */
export async function coordinatorCommand(flags: RemoteWorkerFlags): Promise<void> {
  const minWorkers = flags.minWorkers ?? flags.workers;
  if (minWorkers > flags.workers) throw new ConfigError(`--min-workers ${minWorkers} is more than --workers ${flags.workers}`);
  checkTrainingPaths(flags);
  const { workers: _all, ...settings } = coordinatorOptions(flags); // workers and minWorkers are given below
  const terminal = new TerminalPrinter(process.stdout, process.stderr);
  // Ctrl-C (or SIGTERM) loses the run: say what was lost and what would have kept it, then exit
  // as the signal would have (130, 143).
  const progress = new RunProgress();
  const onSignal = (signal: NodeJS.Signals): void => {
    terminal.keepLive();
    terminal.log(progress.describe(signal, settings.checkpointPath ?? null));
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The library's own coordinator (api/runs.ts), with the terminal's progress line on its hooks.
  const view = new ProgressView(terminal, settings.epochs ?? DEFAULTS.epochs, settings.evalEvery ?? DEFAULTS.evalEvery, flags.verbose === true, progress);
  let result: CoordinatorResult;
  try {
    const coordinator = await startCoordinator({
      ...settings,
      workers: flags.workers,
      minWorkers,
      ...view.hooks,
      // A generated token is said once, by the coordinator's log line that says why it was generated.
      onListening: ({ url }) => terminal.print(`listening on ${url}`),
    });
    result = await coordinator.result;
  } finally {
    view.finish();
  }
  printSummary(terminal, result, settings.outPath ?? null);
}

/** `dpt train`'s own flags besides the training flags it shares with `dpt coordinator`. */
export type LocalWorkerFlags = TrainingFlags & { pin: boolean; threads?: number; poll: number; minWorkers: number; memoryBudget?: number };

/**
 * Runs a coordinator on this machine plus `flags.workers` local worker processes, through the
 * library's own trainWithLocalWorkers (api/local-training.ts); this adds the CPU pinning, the
 * progress line and Ctrl-C.
 */
export async function trainCommand(flags: LocalWorkerFlags): Promise<void> {
  checkTrainingPaths(flags);
  const options = coordinatorOptions(flags);
  const workerCount = flags.workers;
  // Every line of this process, and its workers' stderr, goes through it (issue #14 item 1).
  const terminal = new TerminalPrinter(process.stdout, process.stderr);
  // SIGINT/SIGTERM at any time, start-up included: stop the workers started so far, wait for
  // them (bounded), exit. A second signal exits at once.
  const stop = new AbortController();
  let signalled = false;
  // What a signal loses, said in one line (issue #14 item 4).
  const progress = new RunProgress();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(130);
    signalled = true;
    terminal.keepLive();
    terminal.log(progress.describe(signal, options.checkpointPath ?? null));
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  /** Set at the first worker's spawn (after the coordinator listens): CPU pinning, the worker's threads. */
  let launch: { plan: CpuPlan | null; threads: number } | null = null;
  const workerCommand = (i: number, url: string): WorkerCommand => {
    if (launch === null) {
      const cpus = allowedCpus();
      const threads = flags.threads ?? defaultThreads(cpus?.length ?? availableParallelism(), workerCount);
      launch = { plan: flags.pin ? pinCoordinator(terminal, cpus, workerCount, threads) : null, threads };
    }
    const { plan, threads } = launch;
    const helperCpus = plan === null || threads === 1 ? [] : ['--thread-cpus', plan.helpers[i]!.join(',')];
    // A worker with a CPU of its own polls between steps; beside another process it would take that one's CPU.
    const poll = plan !== null && hasOwnCpu(plan, i) ? flags.poll : 0;
    const budget = flags.memoryBudget === undefined ? [] : ['--memory-budget', String(flags.memoryBudget)];
    const workerArgs = [CLI_PATH, 'worker', '--connect', url, '--quiet', '--threads', String(threads), '--poll', String(poll), ...helperCpus, ...budget];
    return plan === null ? { command: process.execPath, args: workerArgs } : pinnedCommand(plan.workers[i]!, process.execPath, workerArgs);
  };
  const view = new ProgressView(terminal, options.epochs ?? DEFAULTS.epochs, options.evalEvery ?? DEFAULTS.evalEvery, flags.verbose === true, progress);
  // The workers' stderr, line by line through the terminal (their chunks may cut lines anywhere).
  const workerLines = lineSplitter((line) => terminal.log(line));
  try {
    const result = await trainWithLocalWorkers({
      coordinator: options,
      workers: workerCount,
      minWorkers: flags.minWorkers,
      workerCommand,
      hooks: {
        ...view.hooks,
        onListening: (_url, port) => terminal.print(`coordinator listening on port ${port}; starting ${workerCount} local worker(s)`),
      },
      onWorkerStderr: (chunk) => workerLines(chunk),
      signal: stop.signal,
      // Ctrl-C ends the process once the workers are gone (the model is not written: --checkpoint keeps a run).
      onWorkersStopped: () => process.exit(130),
    });
    view.finish();
    printSummary(terminal, result, options.outPath ?? null);
  } catch (error) {
    view.finish();
    if (stop.signal.aborted) process.exit(130);
    throw error;
  }
}

function pinCoordinator(terminal: TerminalPrinter, cpus: number[] | null, workers: number, threads: number): CpuPlan | null {
  if (cpus === null || !hasTaskset()) {
    terminal.print('processes not pinned to CPUs (needs Linux and taskset from util-linux)');
    return null;
  }
  const plan = planCpus(cpus, workers, threads);
  const problem = pinProcess(process.pid, plan.coordinator);
  if (problem !== null) {
    terminal.print(`processes not pinned to CPUs: ${problem}`);
    return null;
  }
  const helpers = threads === 1 ? '' : `, their other compute threads on CPUs ${plan.helpers.map((list) => list.join('+')).join(', ')}`;
  terminal.print(`pinned: coordinator on CPU ${plan.coordinator}, workers on CPUs ${plan.workers.join(', ')}${helpers} (--no-pin to let the OS place them)`);
  return plan;
}

/**
 * The terminal's view of a run, as hooks of the library API: its log lines through `terminal`,
 * and a progress line from the first step on. Backup tasks are counted per epoch; with
 * `isVerbose` each is also logged.
 */
class ProgressView {
  /** Made at the first step (the schedule is known then). */
  private printer: ProgressPrinter | null = null;
  readonly hooks: Required<Pick<RunHooks, 'log' | 'onStart' | 'onEvent' | 'onCheckpoint' | 'onPass' | 'onBackups'>>;

  constructor(terminal: TerminalPrinter, epochs: number, evalEvery: number, isVerbose: boolean, run: RunProgress) {
    this.hooks = {
      log: (line) => terminal.log(line),
      onStart: (totalSteps, stepsPerEpoch) => {
        run.started(totalSteps);
        this.printer = new ProgressPrinter(terminal, totalSteps, epochs, evalEvery, stepsPerEpoch);
      },
      onEvent: (event: TrainingEvent) => {
        run.handle(event);
        this.printer?.handle(event);
      },
      onCheckpoint: (step) => run.checkpointed(step),
      onPass: (pass) => this.printer?.pass(pass),
      onBackups: (label, chunks, workers) => {
        if (isVerbose) terminal.log(describeBackups(label, chunks, workers));
        this.printer?.backups(label, chunks);
      },
    };
    this.terminal = terminal;
  }

  private readonly terminal: TerminalPrinter;

  /** Ends the progress line, keeping what it last showed. */
  finish(): void {
    this.printer?.finish();
    this.printer = null;
    this.terminal.keepLive();
  }
}

function printSummary(terminal: TerminalPrinter, result: CoordinatorResult, outPath: string | null): void {
  const seconds = result.wallMs / 1000;
  const stepsPerSec = result.steps / seconds;
  const rowsPerSec = result.rowsProcessed / seconds;
  // The model's own evaluation: with --early-stopping, the best one (the model file's), not the last.
  const evaluation = result.earlyStopping?.bestEval ?? result.lastEval;
  const accuracy = evaluation === null ? '' : `; train accuracy ${evaluation.trainAccuracy.toFixed(4)}`;
  const validation = evaluation?.valAccuracy == null ? '' : `, validation accuracy ${evaluation.valAccuracy.toFixed(4)}`;
  terminal.print(
    `trained ${result.steps} steps in ${seconds.toFixed(2)} s (${Math.round(stepsPerSec).toLocaleString('en-US')} steps/s, ${Math.round(rowsPerSec).toLocaleString('en-US')} rows/s)${accuracy}${validation}`,
  );
  if (outPath !== null) terminal.print(`model written to ${outPath}`);
  terminal.print(`coordinator peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
}

// `dpt train` and `dpt coordinator`: run a coordinator, and for train also N local worker
// processes, which are stopped by PID on success, failure and Ctrl-C.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveCoordinatorConfig } from '../coordinator/config.js';
import { JoinGoal } from '../coordinator/join-goal.js';
import { ProgressPrinter } from '../coordinator/progress.js';
import { type CoordinatorResult, runCoordinator } from '../coordinator/run.js';
import { allowedCpus, hasTaskset, pinnedCommand, pinProcess } from '../shared/cpus.js';
import { ConfigError, NoWorkersError } from '../shared/errors.js';
import type { TrainingEvent } from '../shared/events.js';
import { cgroupMemoryLimit } from '../worker/memory-limits.js';
import { coordinatorOptions, type TrainingFlags } from './coordinator-flags.js';
import { type CpuPlan, defaultThreads, hasOwnCpu, planCpus } from './cpu-pinning.js';
import { RunProgress } from './interruption.js';
import { checkTrainingPaths } from './output-paths.js';
import { checkCoordinatorConfig } from './preflight.js';

const CLI_PATH = fileURLToPath(new URL('./main.js', import.meta.url));

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
  const config = resolveCoordinatorConfig(coordinatorOptions(flags));
  await checkCoordinatorConfig(config); // a bad --host/--port/--tls-* fails before the data is read
  // Ctrl-C (or SIGTERM) loses the run: say what was lost and what would have kept it, then exit
  // as the signal would have (130, 143). stderr is synchronous on a pipe, a file and a terminal.
  const progress = new RunProgress();
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`${progress.describe(signal, config.checkpointPath)}\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const result = await runWithProgress(
    config,
    null,
    // A generated token is said once, by the coordinator's log line that says why it was generated.
    (url) => process.stdout.write(`listening on ${url}\n`),
    new JoinGoal(config.workers, minWorkers),
    undefined,
    progress,
  );
  printSummary(result, config.outPath);
}

/** `dpt train`'s own flags besides the training flags it shares with `dpt coordinator`. */
export type LocalWorkerFlags = TrainingFlags & { pin: boolean; threads?: number; poll: number; minWorkers: number; memoryBudget?: number };

/** A local worker process needs at least this much memory (Node.js alone takes ~50 MB). */
const LOCAL_WORKER_BYTES = 64 * 1024 * 1024;
/** Local workers per CPU, at most: more only queue for the CPUs. */
const LOCAL_WORKERS_PER_CPU = 4;
const MAX_LOCAL_WORKERS = 256;
/** After SIGTERM, local workers get this long to exit before SIGKILL. */
const STOP_GRACE_MS = 3000;

/**
 * The most local workers `dpt train` starts (issue #10 item 15): 4 per CPU, one per 64 MB of
 * memory, 256 in all. `memoryBytes` is the host's RAM or the cgroup limit, whichever is smaller.
 */
export function maxLocalWorkers(cpus: number, memoryBytes: number): number {
  return Math.max(1, Math.min(MAX_LOCAL_WORKERS, LOCAL_WORKERS_PER_CPU * cpus, Math.floor(memoryBytes / LOCAL_WORKER_BYTES)));
}

/** Refuses --workers above what this machine can hold and --min-workers above --workers, before anything starts. */
function checkLocalWorkers(workers: number, minWorkers: number): void {
  const cpus = allowedCpus()?.length ?? availableParallelism();
  const memoryBytes = Math.min(totalmem(), cgroupMemoryLimit() ?? Number.POSITIVE_INFINITY);
  const max = maxLocalWorkers(cpus, memoryBytes);
  if (workers > max) {
    throw new ConfigError(
      `--workers ${workers}: at most ${max} local workers on this machine (${LOCAL_WORKERS_PER_CPU} per CPU on ${cpus} CPUs, one per ${LOCAL_WORKER_BYTES / 1024 / 1024} MB of ${Math.round(memoryBytes / 1024 / 1024)} MB, ${MAX_LOCAL_WORKERS} in all); for more, run dpt coordinator and dpt worker on several hosts`,
    );
  }
  if (minWorkers > workers) throw new ConfigError(`--min-workers ${minWorkers} is more than --workers ${workers}`);
}

/** One local worker process and the last line it wrote to stderr (forwarded as it comes). */
interface LocalWorker {
  readonly index: number;
  readonly child: ChildProcess;
  lastLine: string;
}

/** Runs a coordinator on this machine plus `flags.workers` local worker processes. */
export async function trainCommand(flags: LocalWorkerFlags): Promise<void> {
  checkTrainingPaths(flags);
  checkLocalWorkers(flags.workers, flags.minWorkers);
  const options = coordinatorOptions(flags);
  // Local workers authenticate with a random token and talk over a Unix socket (cheaper per
  // message than loopback TCP); remote workers and monitors still use the TCP port.
  const config = resolveCoordinatorConfig({
    ...options,
    token: options.token ?? randomBytes(18).toString('base64url'),
    unixSocketPath: join(tmpdir(), `dpt-${process.pid}-${randomBytes(4).toString('hex')}.sock`),
  });
  await checkCoordinatorConfig(config); // a bad --host/--port/--tls-* fails before workers start or the data is read
  const goal = new JoinGoal(config.workers, flags.minWorkers);
  const workers: LocalWorker[] = [];
  let isStarted = false;
  /** Set once this process stops its workers (done, failed or signalled): their exits are expected. */
  let isStopping = false;
  const isRunning = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;
  const signalChildren = (signal: NodeJS.Signals): void => {
    for (const { child } of workers) {
      if (isRunning(child) && child.pid !== undefined) {
        try {
          process.kill(child.pid, signal);
        } catch {
          // Already gone between the check and the kill: nothing left to stop.
        }
      }
    }
  };
  const stopChildren = (): void => {
    isStopping = true;
    signalChildren('SIGTERM');
  };
  /** SIGTERM to every local worker, SIGKILL to those still there after STOP_GRACE_MS; resolves when all are gone (bounded). */
  const stopChildrenAndWait = async (): Promise<void> => {
    stopChildren();
    const allGone = (): Promise<void> =>
      Promise.all(workers.map(({ child }) => (isRunning(child) ? new Promise<void>((resolve) => child.once('exit', () => resolve())) : undefined))).then(
        () => undefined,
      );
    const within = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
    await Promise.race([allGone(), within(STOP_GRACE_MS)]);
    signalChildren('SIGKILL');
    await Promise.race([allGone(), within(1000)]);
  };
  process.once('exit', () => {
    stopChildren();
    // An interrupted run exits without closing the server: remove its socket file here.
    if (config.unixSocketPath !== null) rmSync(config.unixSocketPath, { force: true });
  });
  // SIGINT/SIGTERM at any time, start-up included: stop the workers started so far, wait for
  // them (bounded), exit. A second signal exits at once.
  let signalled = false;
  const progress = new RunProgress();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(130);
    signalled = true;
    process.stderr.write(`${progress.describe(signal, config.checkpointPath)}\n`);
    void stopChildrenAndWait().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let rejectAllExited: (error: Error) => void = () => undefined;
  // The coordinator's own failure (e.g. bad data its workers reported before exiting) is the news, not their exits.
  let coordinatorFailure: Error | null = null;
  const noteFailure = (error: unknown): void => {
    if (error instanceof Error) coordinatorFailure = error;
  };
  const allExited = new Promise<never>((_, reject) => {
    rejectAllExited = reject;
  });
  const workerOnExit = (worker: LocalWorker, code: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
    if (isStopping) return;
    const how = error !== undefined ? `could not start (${error.message})` : code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
    const pid = worker.child.pid === undefined ? '' : ` (pid ${worker.child.pid})`;
    const last = worker.lastLine === '' ? 'it wrote nothing to stderr' : `its last line: ${worker.lastLine}`;
    process.stderr.write(`local worker ${worker.index + 1} of ${config.workers}${pid} ${how}${isStarted ? '' : ' before training started'}; ${last}\n`);
    // Before the first step the join wait stops waiting for it (and fails at once below
    // --min-workers); during training the coordinator recomputes its rows elsewhere.
    if (!isStarted) goal.lose();
    else if (workers.every(({ child }) => !isRunning(child)))
      rejectAllExited(coordinatorFailure ?? new NoWorkersError('every local worker process has exited'));
  };
  const spawnWorkers = async (url: string, token: string | null): Promise<void> => {
    const cpus = allowedCpus();
    const threads = flags.threads ?? defaultThreads(cpus?.length ?? availableParallelism(), config.workers);
    const plan = flags.pin ? pinCoordinator(cpus, config.workers, threads) : null;
    const localUrl = config.unixSocketPath === null ? url : `ws+unix://${config.unixSocketPath}:/`;
    const budget = flags.memoryBudget === undefined ? [] : ['--memory-budget', String(flags.memoryBudget)];
    for (let i = 0; i < config.workers; i++) {
      if (isStopping || signalled) return;
      const helperCpus = plan === null || threads === 1 ? [] : ['--thread-cpus', plan.helpers[i]!.join(',')];
      // A worker with a CPU of its own polls between steps; beside another process it would take that one's CPU.
      const poll = plan !== null && hasOwnCpu(plan, i) ? flags.poll : 0;
      const workerArgs = [CLI_PATH, 'worker', '--connect', localUrl, '--quiet', '--threads', String(threads), '--poll', String(poll), ...helperCpus, ...budget];
      const { command, args } = plan === null ? { command: process.execPath, args: workerArgs } : pinnedCommand(plan.workers[i]!, process.execPath, workerArgs);
      // taskset execs node in place: the child's PID is the worker's, and it is stopped by it.
      const child = spawn(command, args, {
        env: { ...process.env, DPT_TOKEN: token ?? '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const worker: LocalWorker = { index: i, child, lastLine: '' };
      workers.push(worker);
      forwardStderr(worker);
      let hasEnded = false;
      child.on('error', (error) => {
        if (hasEnded) return;
        hasEnded = true;
        workerOnExit(worker, null, null, error);
      });
      // 'close', not 'exit': by then its stderr is read to the end, so its last line is known.
      child.on('close', (code, signal) => {
        if (hasEnded) return;
        hasEnded = true;
        workerOnExit(worker, code, signal);
      });
      // Yield between spawns: a signal (or a worker dying) is handled during start-up too.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  try {
    const result = await Promise.race([
      runWithProgress(
        config,
        noteFailure,
        (url, port, token) => {
          process.stdout.write(`coordinator listening on port ${port}; starting ${config.workers} local worker(s)\n`);
          void spawnWorkers(url, token);
        },
        goal,
        () => {
          isStarted = true;
        },
        progress,
      ),
      allExited,
    ]);
    printSummary(result, config.outPath);
  } finally {
    allExited.catch(() => undefined);
    stopChildren();
  }
}

/** Copies a local worker's stderr to ours as it comes, remembering its last non-empty line. */
function forwardStderr(worker: LocalWorker): void {
  let partial = '';
  worker.child.stderr?.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') worker.lastLine = line.trim().slice(0, 500);
  });
  worker.child.stderr?.on('end', () => {
    if (partial.trim() !== '') worker.lastLine = partial.trim().slice(0, 500);
  });
}

/** Pins this process and plans the workers' CPUs; null (with a line saying why) when pinning is unavailable. */
function pinCoordinator(cpus: number[] | null, workers: number, threads: number): CpuPlan | null {
  if (cpus === null || !hasTaskset()) {
    process.stdout.write('processes not pinned to CPUs (needs Linux and taskset from util-linux)\n');
    return null;
  }
  const plan = planCpus(cpus, workers, threads);
  const problem = pinProcess(process.pid, plan.coordinator);
  if (problem !== null) {
    process.stdout.write(`processes not pinned to CPUs: ${problem}\n`);
    return null;
  }
  const helpers = threads === 1 ? '' : `, their other compute threads on CPUs ${plan.helpers.map((list) => list.join('+')).join(', ')}`;
  process.stdout.write(
    `pinned: coordinator on CPU ${plan.coordinator}, workers on CPUs ${plan.workers.join(', ')}${helpers} (--no-pin to let the OS place them)\n`,
  );
  return plan;
}

async function runWithProgress(
  config: ReturnType<typeof resolveCoordinatorConfig>,
  onFailure: ((error: unknown) => void) | null,
  onListening: (url: string, port: number, token: string | null) => void,
  joinGoal?: JoinGoal,
  onStart?: () => void,
  progress?: RunProgress,
): Promise<CoordinatorResult> {
  let printer: ProgressPrinter | null = null;
  return runCoordinator(config, {
    onListening,
    ...(onFailure === null ? {} : { onFailure }),
    ...(joinGoal === undefined ? {} : { joinGoal }),
    onStart: (totalSteps) => {
      onStart?.();
      progress?.started(totalSteps);
      printer = new ProgressPrinter(process.stdout, totalSteps, config.epochs, config.evalEvery);
    },
    onEvent: (event: TrainingEvent) => {
      progress?.handle(event);
      printer?.handle(event);
    },
    onCheckpoint: (step) => progress?.checkpointed(step),
  });
}

function printSummary(result: CoordinatorResult, outPath: string | null): void {
  const seconds = result.wallMs / 1000;
  const stepsPerSec = result.steps / seconds;
  const rowsPerSec = result.rowsProcessed / seconds;
  // The model's own evaluation: with --early-stopping, the best one (the model file's), not the last.
  const evaluation = result.earlyStopping?.bestEval ?? result.lastEval;
  const accuracy = evaluation === null ? '' : `; train accuracy ${evaluation.trainAccuracy.toFixed(4)}`;
  const validation = evaluation?.valAccuracy == null ? '' : `, validation accuracy ${evaluation.valAccuracy.toFixed(4)}`;
  process.stdout.write(
    `trained ${result.steps} steps in ${seconds.toFixed(2)} s (${Math.round(stepsPerSec).toLocaleString('en-US')} steps/s, ${Math.round(rowsPerSec).toLocaleString('en-US')} rows/s)${accuracy}${validation}\n`,
  );
  if (outPath !== null) process.stdout.write(`model written to ${outPath}\n`);
  process.stdout.write(`coordinator peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB\n`);
}

// The library's ways to run training (issue #14 item 8): train() with local worker processes,
// startCoordinator() for remote workers (startWorker(), in worker.ts, is the other side). Options are the CLI's
// flags as typed fields, merged with the same defaults; every failure is a DptError subclass.

import { checkCoordinatorConfig } from '../cli/preflight.js';
import { type CoordinatorOptions, resolveCoordinatorConfig } from '../coordinator/config.js';
import { JoinGoal } from '../coordinator/join-goal.js';
import { type CoordinatorResult, runCoordinator } from '../coordinator/run.js';
import type { PassProgress } from '../coordinator/trainer.js';
import { ConfigError } from '../shared/errors.js';
import type { TrainingEvent } from '../shared/events.js';
import { CLI_PATH, trainWithLocalWorkers } from './local-training.js';

/** What every run reports as it goes; each hook is optional. */
export interface RunHooks {
  /** Every training event: a step committed, an epoch evaluated, a worker joined or left (shared/events.ts). */
  readonly onEvent?: (event: TrainingEvent) => void;
  /** Once the port is bound: the URL workers connect to, the port, and the workers' token (null: none). */
  readonly onListening?: (info: ListeningInfo) => void;
  /** Once the workers have joined and the schedule is known, before the first step: the steps the run takes (fewer than the epochs' with maxSteps) and an epoch's. */
  readonly onStart?: (totalSteps: number, stepsPerEpoch: number) => void;
  /** The coordinator's log lines (default: written to stderr). */
  readonly log?: (line: string) => void;
  /** A data pass started or moved on: the feature statistics before the first step, each evaluation. */
  readonly onPass?: (progress: PassProgress) => void;
  /**
   * Straggling chunks of a step or pass were also given to idle workers (backup tasks): the job's
   * label, the chunks and the workers. Set, it replaces the log line each would get.
   */
  readonly onBackups?: (label: string, chunks: number, workers: number) => void;
  /** A checkpoint was written (checkpointPath), holding the steps up to this one. */
  readonly onCheckpoint?: (step: number) => void;
  /** Aborting it stops the run: it rejects with the signal's reason, and a model file (outPath) holds the steps committed. */
  readonly signal?: AbortSignal;
}

export interface ListeningInfo {
  readonly url: string;
  readonly port: number;
  readonly token: string | null;
}

/**
 * The training settings: the CLI's training flags as fields (dataPath is --data, outPath --out,
 * batchSize --batch-size, valFraction --val-split, …), each optional but dataPath, with the CLI's
 * defaults (README: the table of training flags under `dpt train`). See coordinator/config.ts for every field.
 */
export type TrainingSettings = Omit<CoordinatorOptions, 'workers' | 'unixSocketPath'>;

export type TrainOptions = TrainingSettings &
  RunHooks & {
    /** Local worker processes to start (default 2). */
    readonly workers?: number;
    /** Start once this many joined, if the others died or the join timeout passed (default 1). */
    readonly minWorkers?: number;
    /** Compute threads per local worker (default 1). */
    readonly threads?: number;
    /** Each local worker holds the data in memory up to this many MB, else reads rows from the file (default 1024). */
    readonly memoryBudgetMB?: number;
    /** Each local worker's stderr, as it comes (default: copied to this process's stderr). */
    readonly onWorkerStderr?: (chunk: Buffer) => void;
  };

/** The run's outcome: the model as written to outPath (also when outPath is unset), steps, rows, time, last evaluation. */
export type TrainResult = CoordinatorResult;

/**
 * Trains on this machine: a coordinator in this process and `workers` local `dpt worker`
 * processes (what `dpt train` runs), which are stopped by PID when the run ends, fails or is
 * aborted. Listens on 127.0.0.1 on a free port unless host/port say otherwise.
 * Rejects with ConfigError, DatasetError, NoWorkersError, DivergedError, … (exported here).
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { workers = 2, minWorkers = 1, threads = 1, memoryBudgetMB, onWorkerStderr, onListening, signal, ...rest } = options;
  const { hooks, settings } = splitHooks(rest);
  if (!Number.isSafeInteger(threads) || threads < 1) throw new ConfigError(`threads must be a positive integer, got ${threads}`);
  if (memoryBudgetMB !== undefined && !(Number.isSafeInteger(memoryBudgetMB) && memoryBudgetMB >= 0))
    throw new ConfigError(`memoryBudgetMB must be a non-negative integer, got ${memoryBudgetMB}`);
  const budget = memoryBudgetMB === undefined ? [] : ['--memory-budget', String(memoryBudgetMB)];
  return trainWithLocalWorkers({
    coordinator: { host: '127.0.0.1', port: 0, ...withoutUndefined(settings) },
    workers,
    minWorkers,
    workerCommand: (_index, url) => ({
      command: process.execPath,
      args: [CLI_PATH, 'worker', '--connect', url, '--quiet', '--threads', String(threads), ...budget],
    }),
    hooks: {
      ...hooks,
      ...(onListening === undefined ? {} : { onListening: (url: string, port: number, token: string | null) => onListening({ url, port, token }) }),
    },
    onWorkerStderr: onWorkerStderr ?? ((chunk) => process.stderr.write(chunk)),
    signal,
  });
}

export type CoordinatorStartOptions = TrainingSettings &
  RunHooks & {
    /** Workers to wait for before the first step (default 1). */
    readonly workers?: number;
    /** Start at the join timeout once this many joined (default: all of workers); later ones join mid-run. */
    readonly minWorkers?: number;
  };

/** A coordinator that listens: where workers connect, and the run's outcome. */
export interface RunningCoordinator extends ListeningInfo {
  /** Settles when the run ends: the result, or the run's error (a DptError subclass, or the abort reason). */
  readonly result: Promise<TrainResult>;
}

/**
 * Starts a coordinator for workers started elsewhere (startWorker, `dpt worker`): resolves once it
 * listens (127.0.0.1 on a free port unless host/port say otherwise; a non-loopback host without a
 * token gets a generated one, in `token`), or rejects when it cannot start (bad options or data).
 */
export async function startCoordinator(options: CoordinatorStartOptions): Promise<RunningCoordinator> {
  const { workers = 1, minWorkers, onListening, signal, ...rest } = options;
  const { hooks, settings } = splitHooks(rest);
  const config = resolveCoordinatorConfig({ host: '127.0.0.1', port: 0, ...withoutUndefined(settings), workers });
  const minimum = minWorkers ?? workers;
  if (!Number.isSafeInteger(minimum) || minimum < 1 || minimum > workers)
    throw new ConfigError(`minWorkers must be an integer in [1, workers = ${workers}], got ${minimum}`);
  await checkCoordinatorConfig(config);
  return new Promise<RunningCoordinator>((resolve, reject) => {
    let listening: ListeningInfo | null = null;
    const result = runCoordinator(config, {
      ...hooks,
      ...(signal === undefined ? {} : { signal }),
      joinGoal: new JoinGoal(workers, minimum),
      onListening: (url, port, token) => {
        listening = { url, port, token };
        onListening?.(listening);
        resolve({ ...listening, result });
      },
    });
    // Before it listens, a failure rejects startCoordinator itself; after, it is the caller's, through `result`.
    result.catch((error: unknown) => {
      if (listening === null) reject(error);
    });
  });
}

/** The hooks that are set, apart from the training settings they came with. */
function splitHooks(options: TrainingSettings & ProgressHooks): { hooks: ProgressHooks; settings: TrainingSettings } {
  const { onEvent, onStart, log, onPass, onBackups, onCheckpoint, ...settings } = options;
  const hooks = withoutUndefined({ onEvent, onStart, log, onPass, onBackups, onCheckpoint }) as ProgressHooks;
  return { hooks, settings };
}

/** The hooks that report a run's progress (all of RunHooks but where it listens and how it stops). */
type ProgressHooks = Omit<RunHooks, 'onListening' | 'signal'>;

/** The options that are set: an undefined field takes its default (exactOptionalPropertyTypes). */
function withoutUndefined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as T;
}

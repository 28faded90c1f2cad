// A coordinator in this process plus N local `dpt worker` processes: what `dpt train` runs and
// what the library's train() runs. Workers are spawned once the coordinator listens, talk to it
// over a Unix socket with a random token, and are stopped by PID (SIGTERM, then SIGKILL) when the
// run ends, fails or is aborted, and when this process exits.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkCoordinatorConfig } from '../cli/preflight.js';
import { type CoordinatorOptions, resolveCoordinatorConfig } from '../coordinator/config.js';
import { JoinGoal } from '../coordinator/join-goal.js';
import { type CoordinatorHooks, type CoordinatorResult, runCoordinator } from '../coordinator/run.js';
import { allowedCpus } from '../shared/cpus.js';
import { ConfigError, NoWorkersError } from '../shared/errors.js';
import { cgroupMemoryLimit } from '../worker/memory-limits.js';

/**
 * The CLI that local workers run (`node dist/cli/main.js worker …`): beside this module once built;
 * from the TypeScript sources (vitest imports them), the build's.
 */
export const CLI_PATH = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../dist/cli/main.js' : '../cli/main.js', import.meta.url));

/** After SIGTERM, local workers get this long to exit before SIGKILL. */
export const STOP_GRACE_MS = 3000;
/** A local worker process needs at least this much memory (Node.js alone takes ~50 MB). */
const LOCAL_WORKER_BYTES = 64 * 1024 * 1024;
/** Local workers per CPU, at most: more only queue for the CPUs. */
const LOCAL_WORKERS_PER_CPU = 4;
const MAX_LOCAL_WORKERS = 256;

/**
 * The most local workers a run starts (issue #10 item 15): 4 per CPU, one per 64 MB of
 * memory, 256 in all. `memoryBytes` is the host's RAM or the cgroup limit, whichever is smaller.
 */
export function maxLocalWorkers(cpus: number, memoryBytes: number): number {
  return Math.max(1, Math.min(MAX_LOCAL_WORKERS, LOCAL_WORKERS_PER_CPU * cpus, Math.floor(memoryBytes / LOCAL_WORKER_BYTES)));
}

/** Refuses more workers than this machine can hold and --min-workers above --workers, before anything starts. */
function checkLocalWorkers(workers: number, minWorkers: number): void {
  if (!Number.isSafeInteger(workers) || workers < 1) throw new ConfigError(`--workers must be a positive integer, got ${workers}`);
  if (!Number.isSafeInteger(minWorkers) || minWorkers < 1) throw new ConfigError(`--min-workers must be a positive integer, got ${minWorkers}`);
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

/** The process to start for one local worker. */
export interface WorkerCommand {
  readonly command: string;
  readonly args: readonly string[];
}

export interface LocalTrainingOptions {
  /** The coordinator's options; the token (when none is given) and the Unix socket are set here. */
  readonly coordinator: CoordinatorOptions;
  /** Local worker processes to start (coordinator.workers is set to it). */
  readonly workers: number;
  /** Start once this many joined, if the others died or the join timeout passed. */
  readonly minWorkers: number;
  /** The process of local worker `index` (0-based), connecting to `url` (the Unix socket's ws+unix:// URL). */
  readonly workerCommand: (index: number, url: string) => WorkerCommand;
  readonly hooks: Pick<CoordinatorHooks, 'onListening' | 'onEvent' | 'onStart' | 'log' | 'onPass' | 'onBackups' | 'onCheckpoint'>;
  /** Each local worker's stderr, as it comes (the CLI copies it to its own). */
  readonly onWorkerStderr: (chunk: Buffer) => void;
  /** Aborting stops the workers (waiting for them, bounded), then the coordinator; the run rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
  /** After an abort, called once every worker is gone and before the coordinator hears of it (`dpt train` exits 130 there). */
  readonly onWorkersStopped?: () => void;
}

/** One local worker process and the last line it wrote to stderr. */
interface LocalWorker {
  readonly index: number;
  readonly child: ChildProcess;
  lastLine: string;
}

/** Trains with a coordinator here and `options.workers` local worker processes; resolves with the coordinator's result. */
export async function trainWithLocalWorkers(options: LocalTrainingOptions): Promise<CoordinatorResult> {
  checkLocalWorkers(options.workers, options.minWorkers);
  const given = options.coordinator;
  const log = options.hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // Local workers authenticate with a random token and talk over a Unix socket (cheaper per
  // message than loopback TCP); remote workers and monitors still use the TCP port.
  const config = resolveCoordinatorConfig({
    ...given,
    workers: options.workers,
    token: given.token ?? randomBytes(18).toString('base64url'),
    unixSocketPath: join(tmpdir(), `dpt-${process.pid}-${randomBytes(4).toString('hex')}.sock`),
  });
  await checkCoordinatorConfig(config); // a bad host/port/TLS pair fails before workers start or the data is read
  const goal = new JoinGoal(config.workers, options.minWorkers);
  const workers: LocalWorker[] = [];
  let isStarted = false;
  /** Set once the workers are being stopped (done, failed or aborted): their exits are expected. */
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
  // An interrupted run (process.exit) ends without closing the server or stopping the workers.
  const onProcessExit = (): void => {
    stopChildren();
    if (config.unixSocketPath !== null) rmSync(config.unixSocketPath, { force: true });
  };
  process.once('exit', onProcessExit);
  // The coordinator hears of an abort only once the workers are gone, so that the run's promise
  // settles with no process of it left.
  const coordinatorAbort = new AbortController();
  const onAbort = (): void => {
    void stopChildrenAndWait().then(() => {
      options.onWorkersStopped?.();
      coordinatorAbort.abort(options.signal?.reason);
    });
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort(); // aborted before now: no event comes

  let rejectAllExited: (error: Error) => void = () => undefined;
  // The coordinator's own failure (e.g. bad data its workers reported before exiting) is the news, not their exits.
  let coordinatorFailure: Error | null = null;
  const allExited = new Promise<never>((_, reject) => {
    rejectAllExited = reject;
  });
  const workerOnExit = (worker: LocalWorker, code: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
    if (isStopping) return;
    const how = error !== undefined ? `could not start (${error.message})` : code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
    const pid = worker.child.pid === undefined ? '' : ` (pid ${worker.child.pid})`;
    const last = worker.lastLine === '' ? 'it wrote nothing to stderr' : `its last line: ${worker.lastLine}`;
    log(`local worker ${worker.index + 1} of ${config.workers}${pid} ${how}${isStarted ? '' : ' before training started'}; ${last}`);
    // Before the first step the join wait stops waiting for it (and fails at once below
    // --min-workers); during training the coordinator recomputes its rows elsewhere.
    if (!isStarted) goal.lose();
    else if (workers.every(({ child }) => !isRunning(child)))
      rejectAllExited(coordinatorFailure ?? new NoWorkersError('every local worker process has exited'));
  };
  const spawnWorkers = async (token: string | null): Promise<void> => {
    const localUrl = `ws+unix://${config.unixSocketPath}:/`;
    for (let i = 0; i < config.workers; i++) {
      if (isStopping) return;
      const { command, args } = options.workerCommand(i, localUrl);
      // taskset (CPU pinning) execs node in place: the child's PID is the worker's, and it is stopped by it.
      const child = spawn(command, args, { env: { ...process.env, DPT_TOKEN: token ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
      const worker: LocalWorker = { index: i, child, lastLine: '' };
      workers.push(worker);
      forwardStderr(worker, options.onWorkerStderr);
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
      // Yield between spawns: an abort (or a worker dying) is handled during start-up too.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  try {
    return await Promise.race([
      runCoordinator(config, {
        ...options.hooks,
        log,
        onFailure: (error) => {
          if (error instanceof Error) coordinatorFailure = error;
        },
        onListening: (url, port, token) => {
          options.hooks.onListening?.(url, port, token);
          void spawnWorkers(token);
        },
        joinGoal: goal,
        onStart: (totalSteps, stepsPerEpoch) => {
          isStarted = true;
          options.hooks.onStart?.(totalSteps, stepsPerEpoch);
        },
        signal: coordinatorAbort.signal,
      }),
      allExited,
    ]);
  } finally {
    allExited.catch(() => undefined);
    options.signal?.removeEventListener('abort', onAbort);
    stopChildren();
    process.removeListener('exit', onProcessExit);
  }
}

/** Copies a local worker's stderr to `sink` as it comes, remembering its last non-empty line. */
function forwardStderr(worker: LocalWorker, sink: (chunk: Buffer) => void): void {
  let partial = '';
  worker.child.stderr?.on('data', (chunk: Buffer) => {
    sink(chunk);
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') worker.lastLine = line.trim().slice(0, 500);
  });
  worker.child.stderr?.on('end', () => {
    if (partial.trim() !== '') worker.lastLine = partial.trim().slice(0, 500);
  });
}

// `dpt train` and `dpt coordinator`: run a coordinator, and for train also N local worker
// processes, which are stopped by PID on success, failure and Ctrl-C.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveCoordinatorConfig } from '../coordinator/config.js';
import { ProgressPrinter } from '../coordinator/progress.js';
import { type CoordinatorResult, runCoordinator } from '../coordinator/run.js';
import { allowedCpus, hasTaskset, pinnedCommand, pinProcess } from '../shared/cpus.js';
import { NoWorkersError } from '../shared/errors.js';
import type { TrainingEvent } from '../shared/events.js';
import { coordinatorOptions, type TrainingFlags } from './coordinator-flags.js';
import { type CpuPlan, defaultThreads, hasOwnCpu, planCpus } from './cpu-pinning.js';
import { checkTrainingPaths } from './output-paths.js';
import { checkCoordinatorConfig } from './preflight.js';

const CLI_PATH = fileURLToPath(new URL('./main.js', import.meta.url));

/** Runs a coordinator that waits for `flags.workers` remote workers. */
export async function coordinatorCommand(flags: TrainingFlags): Promise<void> {
  checkTrainingPaths(flags);
  const config = resolveCoordinatorConfig(coordinatorOptions(flags));
  await checkCoordinatorConfig(config); // a bad --host/--port/--tls-* fails before the data is read
  const result = await runWithProgress(config, null, (url, _port, token) => {
    process.stdout.write(`listening on ${url}\n`);
    if (token !== null && config.token === null) process.stdout.write(`token ${token}\n`);
  });
  printSummary(result, config.outPath);
}

/** Runs a coordinator on this machine plus `flags.workers` local worker processes. */
export async function trainCommand(flags: TrainingFlags & { pin: boolean; threads?: number; poll: number }): Promise<void> {
  checkTrainingPaths(flags);
  const options = coordinatorOptions(flags);
  // Local workers always authenticate; a random token keeps other local users out.
  // Local workers authenticate with a random token and talk over a Unix socket (cheaper per
  // message than loopback TCP); remote workers and monitors still use the TCP port.
  const config = resolveCoordinatorConfig({
    ...options,
    token: options.token ?? randomBytes(18).toString('base64url'),
    unixSocketPath: join(tmpdir(), `dpt-${process.pid}-${randomBytes(4).toString('hex')}.sock`),
  });
  await checkCoordinatorConfig(config); // a bad --host/--port/--tls-* fails before workers start or the data is read
  const children: ChildProcess[] = [];
  const stopChildren = (): void => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          // Already gone between the check and the kill: nothing left to stop.
        }
      }
    }
  };
  process.once('exit', () => {
    stopChildren();
    // An interrupted run exits without closing the server: remove its socket file here.
    if (config.unixSocketPath !== null) rmSync(config.unixSocketPath, { force: true });
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    stopChildren();
    process.stderr.write(`dpt: stopped by ${signal}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let rejectAllExited: (error: Error) => void = () => undefined;
  // The coordinator's own failure (e.g. bad data its workers reported before exiting) is the news, not their exits.
  let coordinatorFailure: Error | null = null;
  const noteFailure = (error: unknown): void => {
    if (error instanceof Error) coordinatorFailure = error;
  };
  const allExited = new Promise<never>((_, reject) => {
    rejectAllExited = reject;
  });
  try {
    const result = await Promise.race([
      runWithProgress(config, noteFailure, (url, port, token) => {
        process.stdout.write(`coordinator listening on port ${port}; starting ${config.workers} local worker(s)\n`);
        const cpus = allowedCpus();
        const threads = flags.threads ?? defaultThreads(cpus?.length ?? availableParallelism(), config.workers);
        const plan = flags.pin ? pinCoordinator(cpus, config.workers, threads) : null;
        for (let i = 0; i < config.workers; i++) {
          const localUrl = config.unixSocketPath === null ? url : `ws+unix://${config.unixSocketPath}:/`;
          const helperCpus = plan === null || threads === 1 ? [] : ['--thread-cpus', plan.helpers[i]!.join(',')];
          // A worker with a CPU of its own polls between steps; beside another process it would take that one's CPU.
          const poll = plan !== null && hasOwnCpu(plan, i) ? flags.poll : 0;
          const workerArgs = [CLI_PATH, 'worker', '--connect', localUrl, '--quiet', '--threads', String(threads), '--poll', String(poll), ...helperCpus];
          const { command, args } =
            plan === null ? { command: process.execPath, args: workerArgs } : pinnedCommand(plan.workers[i]!, process.execPath, workerArgs);
          // taskset execs node in place: the child's PID is the worker's, and it is stopped by it.
          const child = spawn(command, args, {
            env: { ...process.env, DPT_TOKEN: token ?? '' },
            stdio: ['ignore', 'ignore', 'inherit'],
          });
          children.push(child);
          child.on('exit', () => {
            if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) {
              rejectAllExited(coordinatorFailure ?? new NoWorkersError('every local worker process has exited'));
            }
          });
        }
      }),
      allExited,
    ]);
    printSummary(result, config.outPath);
  } finally {
    allExited.catch(() => undefined);
    stopChildren();
  }
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
): Promise<CoordinatorResult> {
  let printer: ProgressPrinter | null = null;
  return runCoordinator(config, {
    onListening,
    ...(onFailure === null ? {} : { onFailure }),
    onStart: (totalSteps) => {
      printer = new ProgressPrinter(process.stdout, totalSteps, config.epochs, config.evalEvery);
    },
    onEvent: (event: TrainingEvent) => printer?.handle(event),
  });
}

function printSummary(result: CoordinatorResult, outPath: string | null): void {
  const seconds = result.wallMs / 1000;
  const stepsPerSec = result.steps / seconds;
  const rowsPerSec = result.rowsProcessed / seconds;
  const accuracy = result.lastEval === null ? '' : `; train accuracy ${result.lastEval.trainAccuracy.toFixed(4)}`;
  const validation = result.lastEval?.valAccuracy == null ? '' : `, validation accuracy ${result.lastEval.valAccuracy.toFixed(4)}`;
  process.stdout.write(
    `trained ${result.steps} steps in ${seconds.toFixed(2)} s (${Math.round(stepsPerSec).toLocaleString('en-US')} steps/s, ${Math.round(rowsPerSec).toLocaleString('en-US')} rows/s)${accuracy}${validation}\n`,
  );
  if (outPath !== null) process.stdout.write(`model written to ${outPath}\n`);
  process.stdout.write(`coordinator peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB\n`);
}

// One training configuration run on real clusters, for the bit-reproducibility proofs (issue #12):
// to completion with W worker processes, with a worker SIGKILLed while an in-test worker holds an
// observed step, or with the coordinator SIGKILLed mid-epoch and the run resumed from its
// checkpoint. Each returns what a proof compares: the model file's digest (its bytes but the one
// time stamp), the parameters' float64 hash and the loss stream; each fault run also returns the
// evidence that its fault happened where it was meant to.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CliProcess, runCli, startCli } from './cli.js';
import { type HonestWorker, startHonestWorker } from './fake-worker.js';
import { modelHash, stepLosses } from './model-hash.js';

export interface ClusterRun {
  readonly out: string;
  readonly metrics: string;
  /** SHA-256 of the model file's bytes with trainedOn.finishedAt (the only field that varies) blanked. */
  readonly digest: string;
  /** SHA-256 of the weights and bias as float64 bytes. */
  readonly params: string;
  readonly losses: number[];
  /** `workers` (contributors) of every step event, in step order. */
  readonly contributors: number[];
}

const FINISHED_AT = /"finishedAt": "[^"]*"/g;
/** A held step stays held: nothing but the test releases it (no backup copies, no step deadline). */
const HOLDS = ['--backup-factor', '0', '--step-timeout', '600000'];
const RUN_TIMEOUT_MS = 180_000;

/** The SHA-256 of a model file's bytes, its one time stamp (trainedOn.finishedAt) blanked; throws unless there is exactly one. */
export function modelFileDigest(path: string): string {
  const text = readFileSync(path, 'utf8');
  const stamps = text.match(FINISHED_AT) ?? [];
  if (stamps.length !== 1) throw new Error(`${path}: ${stamps.length} finishedAt fields, expected 1`);
  return createHash('sha256').update(text.replace(FINISHED_AT, '"finishedAt": ""')).digest('hex');
}

function stepContributors(metrics: string): number[] {
  return readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; workers?: number })
    .filter((event) => event.type === 'step')
    .map((event) => event.workers as number);
}

function collect(out: string, metrics: string): ClusterRun {
  return { out, metrics, digest: modelFileDigest(out), params: modelHash(out), losses: stepLosses(metrics), contributors: stepContributors(metrics) };
}

function paths(directory: string, name: string): { out: string; metrics: string } {
  return { out: join(directory, `${name}.json`), metrics: join(directory, `${name}.jsonl`) };
}

/** `dpt train` with `flags` (data and every result-changing option) over `workers` local worker processes, to completion. */
export async function trainOnCluster(
  directory: string,
  name: string,
  flags: readonly string[],
  workers: number,
  extra: readonly string[] = [],
): Promise<ClusterRun> {
  const { out, metrics } = paths(directory, name);
  const result = await runCli(['train', ...flags, '--workers', String(workers), '--out', out, '--metrics', metrics, ...extra], {}, RUN_TIMEOUT_MS);
  if (result.code !== 0) throw new Error(`dpt train (${name}) exited ${result.code}\n${result.stderr}`);
  return collect(out, metrics);
}

export interface GatedCluster {
  readonly coordinator: CliProcess;
  readonly gate: HonestWorker;
  readonly workers: CliProcess[];
  /** Rejects if the coordinator exits before `promise` settles. */
  beforeExit<T>(promise: Promise<T>, what: string): Promise<T>;
}

/**
 * A `dpt coordinator` on port 0 running `flags` with 1 + `realWorkers` workers: an honest in-test
 * worker (the gate, whose holdAt stops the run at a step) and real worker processes. Backup copies
 * and step deadlines are off, so a held step stays held until the gate releases it.
 */
export async function startGatedCluster(flags: readonly string[], token: string, realWorkers: number, extra: readonly string[] = []): Promise<GatedCluster> {
  const coordinator = startCli([
    'coordinator',
    ...flags,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--workers',
    String(realWorkers + 1),
    '--token',
    token,
    ...HOLDS,
    ...extra,
  ]);
  const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/, 120_000);
  const url = `ws://127.0.0.1:${port}`;
  const gate = startHonestWorker(url, token);
  const workers = Array.from({ length: realWorkers }, () => startCli(['worker', '--connect', url, '--token', token]));
  const exited = coordinator.exited(RUN_TIMEOUT_MS);
  return {
    coordinator,
    gate,
    workers,
    beforeExit: <T>(promise: Promise<T>, what: string): Promise<T> =>
      Promise.race([
        promise,
        exited.then(({ code, signal }): never => {
          throw new Error(`the coordinator ended (${code ?? signal}) before ${what}\n${coordinator.stderr()}`);
        }),
      ]),
  };
}

export interface WorkerKilledRun extends ClusterRun {
  /** The step the cluster stood at (held by the gate) when the worker was killed. */
  readonly killedAt: number;
  /** The coordinator's line reporting the loss. */
  readonly leftLine: string;
}

/**
 * Runs `flags` on a coordinator with the gate and two real workers; when the gate is sent step
 * `killAt` (or a later one) it holds it, one real worker is SIGKILLed, and the step is released
 * only once the coordinator has reported that worker gone. The run must then finish with the rest.
 */
export async function trainWithWorkerKilled(directory: string, name: string, flags: readonly string[], killAt: number): Promise<WorkerKilledRun> {
  const { out, metrics } = paths(directory, name);
  const cluster = await startGatedCluster(flags, `${name}-token`, 2, ['--out', out, '--metrics', metrics]);
  const killedAt = await cluster.beforeExit(cluster.gate.holdAt(killAt), `step ${killAt}`);
  const victim = cluster.workers[0] as CliProcess;
  process.kill(victim.pid, 'SIGKILL');
  const [leftLine] = await cluster.beforeExit(
    cluster.coordinator.waitForLine(/worker \d+(?: \([^)]*\))? left: disconnected[^\n]*/, 60_000),
    'the killed worker was reported gone',
  );
  const killed = await victim.exited();
  if (killed.signal !== 'SIGKILL') throw new Error(`the victim ended with ${killed.code ?? killed.signal}, not SIGKILL`);
  cluster.gate.release();
  const { code } = await cluster.coordinator.exited(RUN_TIMEOUT_MS);
  if (code !== 0) throw new Error(`the coordinator (${name}) exited ${code}\n${cluster.coordinator.stderr()}`);
  return { ...collect(out, metrics), killedAt, leftLine };
}

export interface CoordinatorKilledRun extends ClusterRun {
  /** The step the cluster stood at (held by the gate) when the coordinator was killed. */
  readonly killedAt: number;
  /** The step of the checkpoint on disk at the kill (steps committed). */
  readonly checkpointStep: number;
  /** The step the resumed run said it resumed from. */
  readonly resumedAt: number;
  /** The checkpoint's optimizer state at the kill. */
  readonly savedOptimizer: { optimizer: string; step: number; buffers: Record<string, number[]> };
}

/**
 * Runs `flags` on a coordinator (the gate and one real worker) checkpointing every
 * `checkpointEvery` steps; when the gate is sent step `killAt` (or later) the coordinator is
 * SIGKILLed while that step is held, and `dpt train --resume` over 2 workers finishes the run
 * from the checkpoint on disk, into the same model and metrics files.
 */
export async function trainWithCoordinatorKilled(
  directory: string,
  name: string,
  flags: readonly string[],
  killAt: number,
  checkpointEvery: number,
): Promise<CoordinatorKilledRun> {
  const { out, metrics } = paths(directory, name);
  const checkpoint = join(directory, `${name}.ckpt`);
  const cluster = await startGatedCluster(flags, `${name}-token`, 1, [
    '--metrics',
    metrics,
    '--checkpoint',
    checkpoint,
    '--checkpoint-every',
    String(checkpointEvery),
  ]);
  const killedAt = await cluster.beforeExit(cluster.gate.holdAt(killAt), `step ${killAt}`);
  process.kill(cluster.coordinator.pid, 'SIGKILL');
  const killed = await cluster.coordinator.exited();
  if (killed.signal !== 'SIGKILL') throw new Error(`the coordinator ended with ${killed.code ?? killed.signal}, not SIGKILL`);
  cluster.gate.release();
  // Its worker would dial the dead port until it gave up: end it now, by PID.
  for (const worker of cluster.workers) if (worker.child.exitCode === null && worker.child.signalCode === null) process.kill(worker.pid, 'SIGKILL');
  const saved = JSON.parse(readFileSync(checkpoint, 'utf8')) as { state: { step: number; optimizer: CoordinatorKilledRun['savedOptimizer'] } };
  const resumed = await runCli(['train', ...flags, '--workers', '2', '--resume', checkpoint, '--out', out, '--metrics', metrics], {}, RUN_TIMEOUT_MS);
  if (resumed.code !== 0) throw new Error(`the resumed run (${name}) exited ${resumed.code}\n${resumed.stderr}`);
  const resumedAt = Number(/resuming from .* at step (\d+)/.exec(resumed.stderr)?.[1] ?? Number.NaN);
  return { ...collect(out, metrics), killedAt, checkpointStep: saved.state.step, resumedAt, savedOptimizer: saved.state.optimizer };
}

// Faults a run must survive (issue 4), each on real processes: a stalling worker, a connection
// cut mid-message, a graceful leave, elastic membership, NaN parts, a coordinator killed and
// resumed from its checkpoint, and all of them at once. Every run must end with the same bits
// as the fault-free run, and every row of every batch counted exactly once.
//
// No fault races the run's end (issue 10): an honest in-test worker (startHonestWorker) sees
// every step number it is sent, and each fault is injected when it sees a given step; where a
// fault must land while the run stands still, that worker holds a step (with backups off, the
// run cannot pass it). Each test asserts that its faults happened, and how many. Workers that
// must reconnect to a restarted coordinator dial a relay whose own port never changes; the
// coordinator behind it always binds port 0.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../shared/protocol.js';
import { type CliProcess, killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { assignedChunks, type HonestWorker, leafSubtrees, startFakeWorker, startHonestWorker } from '../helpers/fake-worker.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';
import { startRelay, type TcpRelay } from '../helpers/proxy.js';

const directory = temporaryDirectory();
const TOKEN = 'fault-token';
const TRAIN_ROWS = 512; // 569 rows, 57 held out
const BATCH = 50;
// --chunks 8: every worker of these runs shares each step (the default for B = 50 is one chunk).
const FLAGS = [
  '--data',
  'data/breast_cancer.csv',
  '--batch-size',
  String(BATCH),
  '--chunks',
  '8',
  '--lr',
  '0.3',
  '--l2',
  '0.001',
  '--val-split',
  '0.1',
  '--seed',
  '7',
];
/** A held step stays held: nothing but the test releases it (no backup copies, no step deadline). */
const HOLDS = ['--backup-factor', '0', '--step-timeout', '600000'];
const references = new Map<number, { hash: string; losses: number[] }>();
const relays: TcpRelay[] = [];

afterAll(async () => {
  killAll();
  for (const relay of relays) await relay.close();
  directory.remove();
});

/** The fault-free model for `epochs` epochs (computed once per epoch count). */
async function reference(epochs: number): Promise<{ hash: string; losses: number[] }> {
  const cached = references.get(epochs);
  if (cached !== undefined) return cached;
  const out = join(directory.path, `reference-${epochs}.json`);
  const metrics = join(directory.path, `reference-${epochs}.jsonl`);
  const result = await runCli(['train', ...FLAGS, '--epochs', String(epochs), '--workers', '2', '--out', out, '--metrics', metrics], {}, 120_000);
  expect(result.code, result.stderr).toBe(0);
  const value = { hash: modelHash(out), losses: stepLosses(metrics) };
  references.set(epochs, value);
  return value;
}

/** Expected rows of every step, from the schedule's definition (B rows, a smaller last batch). */
function expectedRows(epochs: number): number[] {
  const perEpoch = Math.ceil(TRAIN_ROWS / BATCH);
  return Array.from({ length: epochs * perEpoch }, (_, step) => (step % perEpoch === perEpoch - 1 ? TRAIN_ROWS - (perEpoch - 1) * BATCH : BATCH));
}

interface Run {
  readonly coordinator: CliProcess;
  readonly port: string;
  readonly url: string;
  readonly out: string;
  readonly metrics: string;
}

async function startCoordinator(name: string, epochs: number, extra: string[] = []): Promise<Run> {
  const out = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const coordinator = startCli([
    'coordinator',
    ...FLAGS,
    '--epochs',
    String(epochs),
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--token',
    TOKEN,
    '--out',
    out,
    '--metrics',
    metrics,
    ...extra,
  ]);
  const [, bound] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
  return { coordinator, port: bound as string, url: `ws://127.0.0.1:${bound}`, out, metrics };
}

async function relay(): Promise<TcpRelay> {
  const started = await startRelay();
  relays.push(started);
  return started;
}

function startWorker(url: string): CliProcess {
  return startCli(['worker', '--connect', url, '--token', TOKEN, '--heartbeat', '1000']);
}

/** `promise`, unless the coordinator exits first or the deadline passes: then a clear failure. */
async function beforeExit<T>(run: Run, promise: Promise<T>, what: string, timeoutMs = 60_000): Promise<T> {
  const exited = run.coordinator.exited(timeoutMs).then(({ code, signal }): never => {
    throw new Error(`the coordinator ended (${code ?? signal}) before ${what}\n${run.coordinator.stderr()}`);
  });
  return Promise.race([promise, exited]);
}

interface StepEvent {
  type: string;
  step: number;
  rows: number;
  workers: number;
}

function stepEvents(metrics: string): StepEvent[] {
  return readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as StepEvent)
    .filter((event) => event.type === 'step');
}

/** Step events of a metrics file: each step exactly once, in order, with the rows of its batch. */
function expectEveryRowOnce(metrics: string, epochs: number): void {
  const steps = stepEvents(metrics);
  expect(steps.map((event) => event.step)).toEqual(Array.from({ length: steps.length }, (_, i) => i));
  expect(steps.map((event) => event.rows)).toEqual(expectedRows(epochs));
}

async function finishesLikeReference(run: Run, epochs: number): Promise<void> {
  const { code } = await run.coordinator.exited(120_000);
  expect(code, run.coordinator.stderr()).toBe(0);
  const expected = await reference(epochs);
  expect(modelHash(run.out)).toBe(expected.hash);
  expect(stepLosses(run.metrics)).toEqual(expected.losses);
  expectEveryRowOnce(run.metrics, epochs);
}

beforeAll(async () => {
  await reference(100);
}, 120_000);

describe('a run survives', () => {
  it('a worker that stalls on steps (its chunks are backed up by idle workers, three times)', async () => {
    // Backups on, no step deadline: a stalled share is covered by a backup copy, never by a drop.
    // --verbose: each backup task is logged (by default only a count per epoch is).
    const run = await startCoordinator('slow', 100, ['--workers', '3', '--step-timeout', '600000', '--verbose']);
    const slow = startHonestWorker(run.url, TOKEN);
    for (let i = 0; i < 2; i++) startWorker(run.url);
    const stalled: number[] = [];
    for (const from of [100, 400, 700]) {
      const step = await beforeExit(run, slow.holdAt(from), `the stalling worker reached step ${from}`);
      // The others answer their shares; the stalled chunks go to them as backups and the step commits.
      await beforeExit(
        run,
        run.coordinator.waitForLine(new RegExp(`step ${step}: \\d+ straggling chunk\\(s\\) also given to \\d+ idle worker`)),
        `step ${step} was backed up`,
      );
      stalled.push(step);
      slow.release();
    }
    await finishesLikeReference(run, 100);
    expect(stalled).toHaveLength(3);
    expect(run.coordinator.stderr().match(/straggling chunk\(s\) also given/g)?.length ?? 0).toBeGreaterThanOrEqual(3);
  });

  it('a connection dropped in the middle of a message', async () => {
    const run = await startCoordinator('cut', 100, ['--workers', '2']);
    startWorker(run.url);
    let cuts = 0;
    const fake = startFakeWorker(run.url, TOKEN, (step, _welcome, socket) => {
      // Half of a masked binary frame header and payload, then the TCP connection is gone.
      const payload = encodeMessage({ kind: 'leave', reason: `x`.repeat(200 + step.step) });
      const raw = (socket as unknown as { _socket: { write(b: Buffer): void; destroy(): void } })._socket; // ws keeps the net.Socket here
      raw.write(Buffer.concat([Buffer.from([0x82, 0x80 | 126, payload.length >> 8, payload.length & 255, 1, 2, 3, 4]), payload.subarray(0, 50)]));
      raw.destroy();
      cuts++;
      return null;
    });
    await fake.closed;
    await finishesLikeReference(run, 100);
    expect(cuts).toBe(1);
    expect(run.coordinator.stderr()).toMatch(/worker \d+(?: \([^)]*\))? left: disconnected/);
  });

  it('a worker that leaves gracefully on SIGTERM (it answers, says goodbye, exits 0)', async () => {
    const run = await startCoordinator('sigterm', 100, ['--workers', '3', ...HOLDS]);
    const gate = startHonestWorker(run.url, TOKEN);
    const workers = [startWorker(run.url), startWorker(run.url)];
    const heldAt = await beforeExit(run, gate.holdAt(200), 'step 200');
    const leaving = workers[0] as CliProcess;
    process.kill(leaving.pid, 'SIGTERM');
    expect((await leaving.exited()).code).toBe(0);
    expect(leaving.stderr()).toMatch(/stopped by SIGTERM after answering its last step/);
    await beforeExit(run, run.coordinator.waitForLine(/worker \d+(?: \([^)]*\))? left: said goodbye \(SIGTERM\)/), 'the worker said goodbye');
    gate.release();
    await finishesLikeReference(run, 100);
    // The rest of the run had two workers; before the leave it had three.
    const workersPerStep = stepEvents(run.metrics).map((event) => event.workers);
    expect(Math.max(...workersPerStep.slice(0, heldAt))).toBe(3);
    expect(Math.max(...workersPerStep.slice(heldAt + 1))).toBe(2);
  });

  it('workers joining and leaving at any time, from 1 to 5 and back to 1', async () => {
    const run = await startCoordinator('elastic', 100, ['--workers', '1', ...HOLDS]);
    const first = startHonestWorker(run.url, TOKEN);
    // At step 100 the run stands still while four more workers join.
    const joinedAt = await beforeExit(run, first.holdAt(100), 'step 100');
    const more = [0, 1, 2, 3].map(() => startWorker(run.url));
    await beforeExit(run, run.coordinator.waitForCount(/^worker \d+(?: \([^)]*\))? joined from/m, 5), 'four more workers joined');
    first.release();
    // At step 300 it stands still again while they go: three leave gracefully, one is killed.
    const leftAt = await beforeExit(run, first.holdAt(300), 'step 300');
    for (const worker of more.slice(0, 3)) process.kill(worker.pid, 'SIGTERM');
    process.kill((more[3] as CliProcess).pid, 'SIGKILL');
    for (const worker of more) await worker.exited();
    // One 'left' line per lost worker: 'left: said goodbye (SIGTERM)' after a goodbye, 'left: disconnected' after the kill.
    await beforeExit(run, run.coordinator.waitForCount(/^worker \d+(?: \([^)]*\))? left: /m, 4), 'the four left');
    first.release();
    await finishesLikeReference(run, 100);
    expect(run.coordinator.stderr().match(/^worker \d+(?: \([^)]*\))? left: said goodbye \(SIGTERM\)$/gm)).toHaveLength(3);
    expect(run.coordinator.stderr().match(/^worker \d+(?: \([^)]*\))? left: disconnected$/gm)).toHaveLength(1);
    const workersPerStep = stepEvents(run.metrics).map((event) => event.workers);
    expect(workersPerStep.slice(0, joinedAt).every((count) => count === 1)).toBe(true);
    expect(Math.max(...workersPerStep.slice(joinedAt + 1, leftAt))).toBe(5);
    expect(workersPerStep.slice(leftAt + 1).every((count) => count === 1)).toBe(true);
  });

  it('a worker that sends NaN: its part is rejected and its rows recomputed elsewhere', async () => {
    const run = await startCoordinator('nan', 100, ['--workers', '2']);
    startWorker(run.url);
    let sent = 0;
    const fake = startFakeWorker(run.url, TOKEN, (step, welcome) => {
      sent++;
      const width = welcome.features + 2;
      const chunks = assignedChunks(step, welcome.workerId);
      const sums = new Float64Array(chunks.length * width).fill(Number.NaN);
      const rows = Uint32Array.from(chunks, () => 1);
      return encodeMessage({ kind: 'part', step: step.step, subtrees: leafSubtrees(chunks), sums, rows });
    });
    expect((await fake.closed).code).toBe(1008);
    expect(sent).toBe(1);
    await finishesLikeReference(run, 100);
    expect(run.coordinator.stderr()).toMatch(/field 'sums': value \d+ is not finite/);
  });

  it('the coordinator killed with SIGKILL and resumed from its checkpoint', async () => {
    const checkpoint = join(directory.path, 'resume.ckpt');
    const flags = ['--checkpoint', checkpoint, '--checkpoint-every', '25'];
    const address = await relay();
    const first = await startCoordinator('resume', 100, [...flags, '--workers', '3', ...HOLDS]);
    address.setTarget(Number(first.port));
    const gate = startHonestWorker(first.url, TOKEN);
    const workers = [startWorker(address.url), startWorker(address.url)];
    const killedAt = await beforeExit(first, gate.holdAt(440), 'step 440');
    address.setTarget(null); // reconnects are refused until the new coordinator is up
    process.kill(first.coordinator.pid, 'SIGKILL');
    expect((await first.coordinator.exited()).signal).toBe('SIGKILL');
    gate.release();
    const second = await startCoordinator('resume', 100, [...flags, '--workers', '2', '--resume', checkpoint]);
    address.setTarget(Number(second.port));
    await finishesLikeReference(second, 100);
    const resumedAt = Number(/resuming from .*resume\.ckpt at step (\d+)/.exec(second.coordinator.stderr())?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(killedAt);
    for (const worker of workers) expect((await worker.exited()).code).toBe(0);
    for (const worker of workers) expect(worker.stderr()).toMatch(/lost the coordinator .*; reconnecting/);
  });
});

describe('a checkpoint', () => {
  async function makeCheckpoint(): Promise<string> {
    const checkpoint = join(directory.path, 'small.ckpt');
    const result = await runCli(['train', ...FLAGS, '--epochs', '2', '--workers', '1', '--checkpoint', checkpoint]);
    expect(result.code, result.stderr).toBe(0);
    return checkpoint;
  }

  it('that is truncated, corrupted or from another run is refused whole (exit 2)', async () => {
    const checkpoint = await makeCheckpoint();
    const text = readFileSync(checkpoint, 'utf8');
    const truncated = join(directory.path, 'truncated.ckpt');
    writeFileSync(truncated, text.slice(0, text.length / 2));
    const corrupt = join(directory.path, 'corrupt.ckpt');
    writeFileSync(
      corrupt,
      // One digit of the first parameter changed: the checksum no longer matches.
      text.replace(/"params":\[(-?\d)/, (_, digit: string) => `"params":[${digit.replace(/\d/, (d) => (d === '9' ? '8' : '9'))}`),
    );
    expect(readFileSync(corrupt, 'utf8')).not.toBe(text);
    for (const [path, message] of [
      [truncated, /not valid JSON \(truncated or corrupt\)/],
      [corrupt, /checksum does not match its contents/],
    ] as const) {
      const result = await runCli(['train', ...FLAGS, '--epochs', '2', '--workers', '1', '--resume', path]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/DPT_CHECKPOINT/);
    }
    const other = await runCli(['train', ...FLAGS, '--epochs', '2', '--lr', '0.5', '--workers', '1', '--resume', checkpoint]);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/belongs to another run: lr \(checkpoint: 0\.3, now: 0\.5\) differs/);
  });

  it('of a finished run resumes to the same model with nothing left to do', async () => {
    const checkpoint = await makeCheckpoint();
    const out = join(directory.path, 'finished.json');
    const result = await runCli(['train', ...FLAGS, '--epochs', '2', '--workers', '1', '--resume', checkpoint, '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/trained 22 steps/);
  });
});

describe('chaos', () => {
  it('several hundred steps with workers killed and restarted, one frozen, the coordinator killed and resumed: same bits, every row once', async () => {
    const epochs = 150; // 1,650 steps
    const expected = await reference(epochs);
    const checkpoint = join(directory.path, 'chaos.ckpt');
    const flags = ['--checkpoint', checkpoint, '--checkpoint-every', '50', '--heartbeat', '1000', '--step-timeout', '3000'];
    const address = await relay();
    const first = await startCoordinator('chaos', epochs, [...flags, '--workers', '4']);
    address.setTarget(Number(first.port));
    // Real workers dial the relay (they follow the coordinator across its restart); the
    // observers, honest in-test workers, dial the coordinator itself and trigger every fault.
    const workers = [0, 1, 2].map(() => startWorker(address.url));
    let random = 99;
    const pick = (n: number): number => {
      random = (Math.imul(random, 1_103_515_245) + 12_345) >>> 0;
      return random % n;
    };
    const killedAtSteps: number[] = [];
    const killOne = (seen: number): void => {
      const index = pick(workers.length);
      process.kill((workers[index] as CliProcess).pid, 'SIGKILL'); // throws if it were gone: a kill that did not happen
      workers[index] = startWorker(address.url);
      killedAtSteps.push(seen);
    };
    const observe = (observer: HonestWorker, steps: number[]): void => {
      for (const step of steps) observer.at(step, killOne);
    };
    const observer = startHonestWorker(first.url, TOKEN);
    observe(observer, [100, 200, 300]);
    let frozen: CliProcess | null = null;
    observer.at(400, () => {
      frozen = workers[0] as CliProcess;
      process.kill(frozen.pid, 'SIGSTOP'); // frozen for good (until cleanup)
      workers[0] = startWorker(address.url);
    });
    const killedAt = await beforeExit(first, new Promise<number>((resolve) => observer.at(700, resolve)), 'step 700', 120_000);
    address.setTarget(null);
    process.kill(first.coordinator.pid, 'SIGKILL');
    expect((await first.coordinator.exited()).signal).toBe('SIGKILL');
    const run = await startCoordinator('chaos', epochs, [...flags, '--workers', '3', '--resume', checkpoint]);
    address.setTarget(Number(run.port));
    observe(startHonestWorker(run.url, TOKEN), [1000, 1200, 1400]);
    const { code } = await run.coordinator.exited(180_000);
    expect(code, run.coordinator.stderr()).toBe(0);
    // Every planned fault happened, each at or after the step that triggered it.
    expect(killedAtSteps).toHaveLength(6);
    for (const [i, step] of [100, 200, 300, 1000, 1200, 1400].entries()) expect(killedAtSteps[i]).toBeGreaterThanOrEqual(step);
    expect(frozen).not.toBeNull();
    expect(killedAt).toBeGreaterThanOrEqual(700);
    expect(Number(/resuming from .* at step (\d+)/.exec(run.coordinator.stderr())?.[1])).toBeGreaterThan(0);
    expect(modelHash(run.out)).toBe(expected.hash);
    expect(stepLosses(run.metrics)).toEqual(expected.losses);
    expectEveryRowOnce(run.metrics, epochs);
  }, 300_000);
});

// Faults a run must survive (issue 4), each on real processes: a slow worker, a connection cut
// mid-message, a graceful leave, elastic membership, NaN parts, a coordinator killed and
// resumed from its checkpoint, and all of them at once. Every run must end with the same bits
// as the fault-free run, and every row of every batch counted exactly once.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../shared/protocol.js';
import { type CliProcess, killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startFakeWorker } from '../helpers/fake-worker.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
const TOKEN = 'fault-token';
const TRAIN_ROWS = 512; // 569 rows, 57 held out
const BATCH = 50;
const FLAGS = ['--data', 'data/breast_cancer.csv', '--batch-size', String(BATCH), '--lr', '0.3', '--l2', '0.001', '--val-split', '0.1', '--seed', '7'];
const references = new Map<number, { hash: string; losses: number[] }>();

afterAll(() => {
  killAll();
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

async function startCoordinator(name: string, epochs: number, extra: string[] = [], port = '0'): Promise<Run> {
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
    port,
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

function startWorker(url: string): CliProcess {
  return startCli(['worker', '--connect', url, '--token', TOKEN, '--heartbeat', '1000']);
}

/** Step events of a metrics file: each step exactly once, in order, with the rows of its batch. */
function expectEveryRowOnce(metrics: string, epochs: number): void {
  const steps = readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; step: number; rows: number })
    .filter((event) => event.type === 'step');
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
  it('a worker 10× slower than the others (its chunks are backed up by idle workers)', async () => {
    const run = await startCoordinator('slow', 100, ['--workers', '3']);
    const workers = [0, 1, 2].map(() => startWorker(run.url));
    await run.coordinator.waitForLine(/epoch 5\/100/);
    // Throttle one worker from outside: stopped 90 % of every 20 ms.
    const slow = workers[2] as CliProcess;
    const throttle = setInterval(() => {
      try {
        process.kill(slow.pid, 'SIGSTOP');
        setTimeout(() => {
          try {
            process.kill(slow.pid, 'SIGCONT');
          } catch {
            // it exited while stopped
          }
        }, 18);
      } catch {
        clearInterval(throttle); // it exited
      }
    }, 20);
    try {
      await finishesLikeReference(run, 100);
    } finally {
      clearInterval(throttle);
    }
    expect(run.coordinator.stderr()).toMatch(/straggling chunk\(s\) also given to \d+ idle worker/);
  });

  it('a connection dropped in the middle of a message', async () => {
    const run = await startCoordinator('cut', 100, ['--workers', '2']);
    startWorker(run.url);
    const fake = startFakeWorker(run.url, TOKEN, (step, _welcome, socket) => {
      // Half of a masked binary frame header and payload, then the TCP connection is gone.
      const payload = encodeMessage({ kind: 'leave', reason: `x`.repeat(200 + step.step) });
      const raw = (socket as unknown as { _socket: { write(b: Buffer): void; destroy(): void } })._socket; // ws keeps the net.Socket here
      raw.write(Buffer.concat([Buffer.from([0x82, 0x80 | 126, payload.length >> 8, payload.length & 255, 1, 2, 3, 4]), payload.subarray(0, 50)]));
      raw.destroy();
      return null;
    });
    await fake.closed;
    await finishesLikeReference(run, 100);
    expect(run.coordinator.stderr()).toMatch(/worker \d+ left: disconnected/);
  });

  it('a worker that leaves gracefully on SIGTERM (it answers, says goodbye, exits 0)', async () => {
    const run = await startCoordinator('sigterm', 100, ['--workers', '2']);
    const workers = [startWorker(run.url), startWorker(run.url)];
    await run.coordinator.waitForLine(/epoch 10\/100/);
    const leaving = workers[0] as CliProcess;
    process.kill(leaving.pid, 'SIGTERM');
    expect((await leaving.exited()).code).toBe(0);
    expect(leaving.stderr()).toMatch(/stopped by SIGTERM after answering its last step/);
    await finishesLikeReference(run, 100);
    expect(run.coordinator.stderr()).toMatch(/worker \d+ is leaving: SIGTERM/);
  });

  it('workers joining and leaving at any time, from 1 to 5 and back to 1', async () => {
    const run = await startCoordinator('elastic', 100, ['--workers', '1']);
    const first = startWorker(run.url);
    await run.coordinator.waitForLine(/epoch 5\/100/);
    const more = [0, 1, 2, 3].map(() => startWorker(run.url));
    await run.coordinator.waitForLine(/worker 5 joined/);
    // Train a few epochs with all five before they leave (epoch 30 may already be past on a fast machine).
    const epochsSoFar = [...run.coordinator.stdout().matchAll(/epoch (\d+)\/100/g)].map((match) => Number(match[1]));
    const atJoin = Math.max(5, ...epochsSoFar);
    await run.coordinator.waitForLine(new RegExp(`epoch ${Math.min(atJoin + 5, 90)}/100`));
    for (const worker of more.slice(0, 3)) process.kill(worker.pid, 'SIGTERM');
    process.kill(first.pid, 'SIGKILL');
    await finishesLikeReference(run, 100);
    const stepWorkers = readFileSync(run.metrics, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; workers?: number })
      .filter((event) => event.type === 'step')
      .map((event) => event.workers as number);
    expect(Math.max(...stepWorkers)).toBeGreaterThanOrEqual(4);
    expect(stepWorkers.at(-1)).toBe(1);
  });

  it('a worker that sends NaN: its part is rejected and its rows recomputed elsewhere', async () => {
    const run = await startCoordinator('nan', 100, ['--workers', '2']);
    startWorker(run.url);
    let sent = 0;
    const fake = startFakeWorker(run.url, TOKEN, (step, welcome) => {
      sent++;
      const width = welcome.features + 2;
      const sums = new Float64Array(step.chunks.length * width).fill(Number.NaN);
      const rows = Uint32Array.from(step.chunks, () => 1);
      return encodeMessage({ kind: 'part', step: step.step, chunks: step.chunks, merged: false, sums, rows });
    });
    expect((await fake.closed).code).toBe(1008);
    expect(sent).toBeGreaterThan(0);
    await finishesLikeReference(run, 100);
    expect(run.coordinator.stderr()).toMatch(/field 'sums': value \d+ is not finite/);
  });

  it('the coordinator killed with SIGKILL and resumed from its checkpoint', async () => {
    const checkpoint = join(directory.path, 'resume.ckpt');
    const flags = ['--workers', '2', '--checkpoint', checkpoint, '--checkpoint-every', '25'];
    const first = await startCoordinator('resume', 100, flags);
    const workers = [startWorker(first.url), startWorker(first.url)];
    await first.coordinator.waitForLine(/epoch 40\/100/);
    process.kill(first.coordinator.pid, 'SIGKILL');
    await first.coordinator.exited();
    const second = await startCoordinator('resume', 100, [...flags, '--resume', checkpoint], first.port);
    await finishesLikeReference(second, 100);
    expect(second.coordinator.stderr()).toMatch(/resuming from .*resume\.ckpt at step (\d+)/);
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
      text.replace(/"b":(-?\d)/, (_, digit: string) => `"b":${digit === '9' ? '8' : '9'}`),
    );
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
    const flags = ['--workers', '3', '--checkpoint', checkpoint, '--checkpoint-every', '50', '--heartbeat', '1000', '--step-timeout', '3000'];
    let run = await startCoordinator('chaos', epochs, flags);
    const url = run.url;
    const workers = [0, 1, 2, 3].map(() => startWorker(url));
    let random = 99;
    const pick = (n: number): number => {
      random = (Math.imul(random, 1_103_515_245) + 12_345) >>> 0;
      return random % n;
    };
    let kills = 0;
    const chaos = setInterval(() => {
      const index = pick(workers.length);
      const victim = workers[index] as CliProcess;
      try {
        process.kill(victim.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      workers[index] = startWorker(url);
      kills++;
    }, 400);
    try {
      await run.coordinator.waitForLine(/epoch 20\/150/, 60_000);
      process.kill((workers[0] as CliProcess).pid, 'SIGSTOP'); // frozen for good (until cleanup)
      workers[0] = startWorker(url);
      await run.coordinator.waitForLine(/epoch 70\/150/, 60_000);
      process.kill(run.coordinator.pid, 'SIGKILL');
      await run.coordinator.exited();
      run = await startCoordinator('chaos', epochs, [...flags, '--resume', checkpoint], run.port);
      const { code } = await run.coordinator.exited(180_000);
      expect(code, run.coordinator.stderr()).toBe(0);
    } finally {
      clearInterval(chaos);
    }
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(modelHash(run.out)).toBe(expected.hash);
    expect(stepLosses(run.metrics)).toEqual(expected.losses);
    expectEveryRowOnce(run.metrics, epochs);
  }, 300_000);
});

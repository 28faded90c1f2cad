// Data that lies (issue #10 items 6-8), through the real CLI: a .dpt file with a flipped content
// byte, one crafted with Infinity and a valid CRC, a worker with a corrupt copy, predict and
// evaluate on corrupt data, a FIFO given as data, and a fault that follows the work from worker to
// worker. Each must end promptly with a clear line (exit 2 for bad data), never loop or hang.

import { execFileSync } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BinaryDatasetWriter } from '../../shared/binary-dataset.js';
import { encodeMessage } from '../../shared/protocol.js';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { blockCrcMatches, blockOf, craftFeature, dptLayout, featureOffset } from '../helpers/dpt-bytes.js';
import { assignedChunks, leafSubtrees, startFakeWorker } from '../helpers/fake-worker.js';
import { modelHash } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
const TOKEN = 'integrity-token';
// 20,000 rows × 20 features: two 1 MiB CRC blocks; row 15,000 lies wholly in block 1.
const ROWS = 20_000;
const D = 20;
const BAD_ROW = 15_000;
const TRAIN_FLAGS = ['--epochs', '2', '--batch-size', '2048', '--lr', '0.1', '--seed', '5'];
const good = join(directory.path, 'good.dpt');
const flipped = join(directory.path, 'flipped.dpt');
const infinite = join(directory.path, 'infinite.dpt');

afterEach(() => killAll());
afterAll(() => {
  killAll();
  directory.remove();
});

beforeAll(() => {
  // Seeded rows with a linear rule for the label (any data would do: only the bits are compared).
  let state = 12_345;
  const next = (): number => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const x = Float32Array.from({ length: ROWS * D }, () => next() * 4);
  const y = Uint8Array.from({ length: ROWS }, (_, r) => (x[r * D]! + 0.5 * x[r * D + 1]! - x[r * D + 2]! + next() > 0 ? 1 : 0));
  const writer = new BinaryDatasetWriter(good, { featureNames: Array.from({ length: D }, (_, j) => `f${j}`), labelName: 'y' });
  writer.append(x, y, ROWS);
  writer.finish();
  const bytes = readFileSync(good);
  const layout = dptLayout(bytes);
  const at = featureOffset(layout, BAD_ROW, 3);
  expect(blockOf(layout, at)).toBe(1);
  const bitFlip = Buffer.from(bytes);
  bitFlip.writeUInt8(bitFlip[at]! ^ 0x01, at); // one flipped bit: still a finite float, a plausible value
  writeFileSync(flipped, bitFlip);
  const crafted = Buffer.from(bytes);
  craftFeature(crafted, BAD_ROW, 3, Number.POSITIVE_INFINITY);
  expect(blockCrcMatches(crafted, 1)).toBe(true); // checksum-valid: only a check of the values finds it
  writeFileSync(infinite, crafted);
});

function lines(text: string, pattern: RegExp): number {
  return text.split('\n').filter((line) => pattern.test(line)).length;
}

describe('dpt train on a .dpt file whose content lies', () => {
  it.each([
    ['held in memory', {}],
    ['read by offset (paged)', { DPT_MEMORY_BUDGET: '0' }],
  ])(
    'refuses a flipped content byte with exit 2 naming file and block, without a reconnect loop (%s)',
    async (_mode, env) => {
      const result = await runCli(['train', '--data', flipped, '--workers', '2', ...TRAIN_FLAGS], env, 60_000);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(
        /dpt: .*flipped\.dpt: content block 1 of 2 \(file bytes \d+ to \d+: features of rows 13\d{3} to 19999, labels of rows 0 to \d+\) fails its CRC-32 check \(corrupt file\) \(DPT_DATASET\)/,
      );
      // Each local worker reported once; nobody was re-admitted to fail again.
      expect(lines(result.stderr, /closing .*worker failed/)).toBeLessThanOrEqual(2);
      expect(result.stdout).not.toMatch(/trained \d+ steps/);
    },
    90_000,
  );

  it.each([
    ['held in memory', {}],
    ['read by offset (paged)', { DPT_MEMORY_BUDGET: '0' }],
  ])(
    'refuses a crafted Infinity whose CRC is valid with exit 2 naming the row, instead of kicking workers forever (%s)',
    async (_mode, env) => {
      const result = await runCli(['train', '--data', infinite, '--workers', '2', ...TRAIN_FLAGS], env, 60_000);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(
        /dpt: .*infinite\.dpt: row 15000 \(counting from 0\), feature 3 'f3' is Infinity, not a finite number \(content block 1;.*\(DPT_DATASET\)/,
      );
      expect(lines(result.stderr, /closing .*(worker failed|not finite)/)).toBeLessThanOrEqual(2);
    },
    90_000,
  );
});

describe('a worker with a corrupt copy of the data', () => {
  it('is refused by the coordinator, whose intact copy trains the same bits as dpt train', async () => {
    const referenceOut = join(directory.path, 'reference.json');
    const reference = await runCli(['train', '--data', good, '--workers', '1', ...TRAIN_FLAGS, '--out', referenceOut], {}, 60_000);
    expect(reference.code, reference.stderr).toBe(0);

    const out = join(directory.path, 'cluster.json');
    const coordinator = startCli([
      'coordinator',
      '--data',
      good,
      ...TRAIN_FLAGS,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--workers',
      '1',
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    const bad = startCli(['worker', '--connect', url, '--token', TOKEN, '--data', flipped]);
    const badEnd = await bad.exited(30_000);
    expect(badEnd.code, bad.stderr()).toBe(2);
    expect(bad.stderr()).toMatch(/flipped\.dpt: content block 1 of 2 .*fails its CRC-32 check/);
    await coordinator.waitForLine(/copy of the data fails content block 1; the coordinator's copy passes: refusing that worker only/);
    expect(coordinator.stderr()).not.toMatch(/joined/); // never admitted
    const goodWorker = startCli(['worker', '--connect', url, '--token', TOKEN, '--data', good]);
    const { code } = await coordinator.exited(60_000);
    expect(code, coordinator.stderr()).toBe(0);
    expect((await goodWorker.exited(30_000)).code).toBe(0);
    expect(modelHash(out)).toBe(modelHash(referenceOut));
  }, 180_000);
});

describe('dpt predict, evaluate and data info on corrupt data', () => {
  it('refuse with exit 2 naming file and block (or row), never printing NaN', async () => {
    const model = join(directory.path, 'model.json');
    const trained = await runCli(['train', '--data', good, '--workers', '1', '--epochs', '1', '--batch-size', '4096', '--out', model], {}, 60_000);
    expect(trained.code, trained.stderr).toBe(0);
    for (const [args, message] of [
      [['predict', '--model', model, '--data', flipped], /flipped\.dpt: content block 1 of 2 .*fails its CRC-32 check/],
      [['evaluate', '--model', model, '--data', flipped], /flipped\.dpt: content block 1 of 2 .*fails its CRC-32 check/],
      [['predict', '--model', model, '--data', infinite], /infinite\.dpt: row 15000 \(counting from 0\), feature 3 'f3' is Infinity/],
      [['evaluate', '--model', model, '--data', infinite, '--json'], /infinite\.dpt: row 15000 \(counting from 0\), feature 3 'f3' is Infinity/],
      [['data', 'info', infinite, '--verify'], /infinite\.dpt: row 15000 \(counting from 0\), feature 3 'f3' is Infinity/],
    ] as const) {
      const result = await runCli([...args], {}, 30_000);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stdout).not.toMatch(/NaN/);
    }
    const fine = await runCli(['evaluate', '--model', model, '--data', good, '--json'], {}, 30_000);
    expect(fine.code, fine.stderr).toBe(0);
  }, 180_000);
});

describe('a FIFO (or a symlink to one) given as data', () => {
  const fifoDpt = join(directory.path, 'fifo.dpt');
  const fifoCsv = join(directory.path, 'fifo.csv');
  const link = join(directory.path, 'link.csv');
  const model = join(directory.path, 'any-model.json');
  beforeAll(() => {
    execFileSync('mkfifo', [fifoDpt, fifoCsv]);
    symlinkSync(fifoCsv, link);
    writeFileSync(model, '{}'); // a regular file: the data path is checked before the model is parsed
  });

  // Nothing ever writes to the FIFOs: a command that opens one for reading would block for good.
  // Each must exit 2 within the deadline; one that hangs is killed by PID in afterEach.
  it.each([
    ['train, .dpt', ['train', '--data', fifoDpt, '--workers', '1'], /fifo\.dpt: --data must name a regular file; this is a FIFO/],
    ['train, CSV through a symlink', ['train', '--data', link, '--workers', '1'], /link\.csv: --data must name a regular file; this is a FIFO/],
    ['coordinator', ['coordinator', '--data', fifoCsv, '--host', '127.0.0.1', '--port', '0'], /fifo\.csv: --data must name a regular file; this is a FIFO/],
    ['worker', ['worker', '--connect', 'ws://127.0.0.1:9', '--data', fifoDpt], /fifo\.dpt: --data must name a regular file; this is a FIFO/],
    ['predict', ['predict', '--model', model, '--data', fifoCsv], /fifo\.csv: --data must name a regular file; this is a FIFO/],
    ['evaluate', ['evaluate', '--model', model, '--data', fifoDpt], /fifo\.dpt: --data must name a regular file; this is a FIFO/],
    ['predict, FIFO model', ['predict', '--model', fifoCsv, '--data', good], /fifo\.csv: --model must name a regular file; this is a FIFO/],
    ['data convert', ['data', 'convert', fifoCsv, join(directory.path, 'out.dpt')], /fifo\.csv: <in> must name a regular file; this is a FIFO/],
    ['data info', ['data', 'info', fifoDpt], /fifo\.dpt: <file> must name a regular file; this is a FIFO/],
  ])(
    '%s: exits 2 naming the flag and the path, without blocking',
    async (_name, args, message) => {
      const result = await runCli(args, {}, 20_000);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    },
    30_000,
  );
});

describe('a fault that follows the work from worker to worker', () => {
  it('stops the run after the same fault recurs with no progress, instead of re-admitting workers forever', async () => {
    const coordinator = startCli([
      'coordinator',
      '--data',
      'data/breast_cancer.csv',
      '--epochs',
      '3',
      '--batch-size',
      '64',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--workers',
      '1',
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    let exit: { code: number | null } | null = null;
    const exited = coordinator.exited(120_000).then((end) => {
      exit = end;
      return end;
    });
    // Each peer computes the statistics pass honestly, then answers every step with NaN (as a
    // worker reading non-finite data would), is closed, and the next one comes in its place.
    let peers = 0;
    let nanParts = 0;
    for (; peers < 12 && exit === null && !/same fault/.test(coordinator.stderr()); peers++) {
      const fake = startFakeWorker(`ws://127.0.0.1:${port}`, TOKEN, (step, welcome) => {
        nanParts++;
        const chunks = assignedChunks(step, welcome.workerId);
        const sums = new Float64Array(chunks.length * (welcome.features + 2)).fill(Number.NaN);
        return encodeMessage({ kind: 'part', step: step.step, subtrees: leafSubtrees(chunks), sums, rows: Uint32Array.from(chunks, () => 1) });
      });
      await Promise.race([fake.closed, exited]);
    }
    const { code } = await exited;
    expect(code, coordinator.stderr()).toBe(1);
    expect(nanParts).toBeGreaterThanOrEqual(5); // the fault did happen
    // Five peers admitted and closed for it, then no more.
    expect(lines(coordinator.stderr(), /worker \d+(?: \([^)]*\))? joined/)).toBe(5);
    expect(lines(coordinator.stderr(), /closing worker \d+ .*field 'sums': value \d+ is not finite \(NaN\)/)).toBe(5);
    expect(coordinator.stderr()).toMatch(/5 workers were closed for the same fault with no progress in between.*field 'sums': value \d+ is not finite \(NaN\)/);
  }, 150_000);
});

// Durable atomic writes (issue #10, item 9): a short write, a failing write or a lying write
// never replaces the previous file; the failure is a WriteError naming the file and the cause.
// Faults are injected through the FileSystem seam over the real file system.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CheckpointState, readCheckpoint, writeCheckpoint } from '../../coordinator/checkpoint.js';
import { MetricsFile } from '../../coordinator/metrics-file.js';
import { AtomicFileWriter, type FileSystem, NODE_FS, writeFileAtomic } from '../../shared/atomic-file.js';
import { WriteError } from '../../shared/errors.js';
import type { TrainingEvent } from '../../shared/events.js';
import { writeModelFile } from '../../shared/model-file.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());

function enospc(): Error {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
}

/** The real file system, but the disk "fills up" after `capacityBytes` bytes: a short write, then ENOSPC. */
function fillingDisk(capacityBytes: number): FileSystem {
  let left = capacityBytes;
  return {
    ...NODE_FS,
    writeSync: (fd, buffer, offset, length, position) => {
      if (left === 0) throw enospc();
      const count = Math.min(length, left);
      left -= count;
      return NODE_FS.writeSync(fd, buffer, offset, count, position);
    },
  };
}

function state(step: number, D: number): CheckpointState {
  return {
    fingerprint: {
      dataSha256: 'a'.repeat(64),
      model: 'logistic',
      rows: 1000,
      features: D,
      labelColumn: 'label',
      epochs: 3,
      batchSize: 64,
      lr: 0.1,
      l2: 0,
      seed: 1,
      shuffle: true,
      shuffleBlockRows: 0,
      standardize: true,
      valFraction: 0,
      chunksPerBatch: 8,
      reduction: 'tree2-v1',
      kernel: 'js',
      optimizer: 'sgd',
      lrSchedule: 'constant',
      warmupSteps: 0,
      lrDecayEpochs: 0,
      lrGamma: 1,
    },
    step,
    params: [...Array.from({ length: D }, (_, j) => Math.sin(step + j) / 3), step / 7],
    lastEval: null,
    optimizer: { optimizer: 'sgd', step, buffers: {} },
  };
}

function temporaryFiles(): string[] {
  return readdirSync(directory.path).filter((name) => name.endsWith('.tmp'));
}

describe('writeCheckpoint on a filling disk', () => {
  it('keeps the previous checkpoint byte for byte when a write comes back short and the next fails with ENOSPC', () => {
    const path = join(directory.path, 'short.ckpt');
    writeCheckpoint(path, state(100, 50));
    const before = readFileSync(path);
    let thrown: unknown;
    try {
      writeCheckpoint(path, state(200, 50), fillingDisk(Math.floor(before.length / 2)));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(WriteError);
    expect((thrown as WriteError).code).toBe('DPT_WRITE');
    expect((thrown as WriteError).message).toMatch(/short\.ckpt: cannot write \(ENOSPC: no space left on device\); the previous file, if any, is unchanged/);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readCheckpoint(path).state.step).toBe(100);
    expect(temporaryFiles()).toEqual([]);
  });

  it('catches a write that reports every byte but stores fewer (size check before the rename)', () => {
    const path = join(directory.path, 'lying.ckpt');
    writeCheckpoint(path, state(1, 20));
    const before = readFileSync(path);
    const lying: FileSystem = {
      ...NODE_FS,
      writeSync: (fd, buffer, offset, length, position) => {
        NODE_FS.writeSync(fd, buffer, offset, Math.max(1, length - 10), position);
        return length;
      },
    };
    expect(() => writeCheckpoint(path, state(2, 20), lying)).toThrow(/lying\.ckpt: cannot write \(the written file holds \d+ bytes, expected \d+\)/);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(temporaryFiles()).toEqual([]);
  });

  it('catches bytes that read back different (checksum check before the rename)', () => {
    const path = join(directory.path, 'flipped.ckpt');
    writeCheckpoint(path, state(1, 20));
    const before = readFileSync(path);
    const flipping: FileSystem = {
      ...NODE_FS,
      writeSync: (fd, buffer, offset, length, position) => {
        const copy = Buffer.from(buffer.subarray(offset, offset + length));
        copy[copy.length >> 1] = (copy[copy.length >> 1] ?? 0) ^ 0x01;
        return NODE_FS.writeSync(fd, copy, 0, length, position);
      },
    };
    expect(() => writeCheckpoint(path, state(2, 20), flipping)).toThrow(/reads back with another checksum/);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(temporaryFiles()).toEqual([]);
  });

  it('continues after short writes and stores every byte', () => {
    const path = join(directory.path, 'trickle.ckpt');
    let calls = 0;
    const trickle: FileSystem = {
      ...NODE_FS,
      writeSync: (fd, buffer, offset, length, position) => {
        calls++;
        return NODE_FS.writeSync(fd, buffer, offset, Math.min(length, 97), position);
      },
    };
    writeCheckpoint(path, state(300, 40), trickle);
    expect(calls).toBeGreaterThan(5);
    expect(readCheckpoint(path)).toEqual({ version: 3, state: state(300, 40) });
  });

  it('stops on a write that stores nothing instead of looping', () => {
    const path = join(directory.path, 'zero.ckpt');
    const stuck: FileSystem = { ...NODE_FS, writeSync: () => 0 };
    expect(() => writeCheckpoint(path, state(1, 5), stuck)).toThrow(/a write stored no bytes after 0 of \d+ \(disk full\?\)/);
    expect(() => statSync(path)).toThrow();
    expect(temporaryFiles()).toEqual([]);
  });
});

describe('writeModelFile on a full disk', () => {
  it('keeps the previous model file and leaves no temporary file', () => {
    const path = join(directory.path, 'model.json');
    const model = {
      format: 'dpt-model',
      version: 1,
      kind: 'logistic-regression',
      weights: [0.5, -0.25],
      bias: 0.125,
      features: ['a', 'b'],
      label: 'y',
      standardization: null,
      trainedOn: {},
      metrics: {},
    } as const;
    writeModelFile(path, { ...model, weights: [...model.weights], features: [...model.features] });
    const before = readFileSync(path);
    expect(() => writeModelFile(path, { ...model, weights: [1, 2], features: [...model.features] }, fillingDisk(0))).toThrow(WriteError);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(temporaryFiles()).toEqual([]);
  });
});

describe('AtomicFileWriter', () => {
  it('refuses to replace a FIFO (or any target that is not a regular file)', () => {
    const fifo = join(directory.path, 'pipe');
    execFileSync('mkfifo', [fifo]);
    expect(() => writeFileAtomic(fifo, 'x')).toThrow(/pipe: not a regular file; refusing to replace it/);
    expect(statSync(fifo).isFIFO()).toBe(true);
  });

  it('writes through a symbolic link to its target and keeps the link', () => {
    const target = join(directory.path, 'target.txt');
    const link = join(directory.path, 'link.txt');
    writeFileSync(target, 'old');
    execFileSync('ln', ['-s', target, link]);
    writeFileAtomic(link, 'new');
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(readdirSync(directory.path)).toContain('link.txt');
    expect(readFileSync(link, 'utf8')).toBe('new');
  });

  it('names a missing directory in its error', () => {
    expect(() => new AtomicFileWriter(join(directory.path, 'missing', 'file'))).toThrow(/missing\/file: cannot create a file beside it \(ENOENT/);
  });
});

describe('MetricsFile on a filling disk', () => {
  it('cuts a torn line off, warns once and stops the stream, without throwing into training', () => {
    const path = join(directory.path, 'metrics.jsonl');
    const warnings: string[] = [];
    const metrics = new MetricsFile(path, null, (line) => warnings.push(line), fillingDisk(3000));
    const step = (n: number): TrainingEvent => ({ type: 'step', step: n, epoch: 0, loss: 0.5, rows: 64, workers: 1, stepMs: 1, rowsPerSec: 64_000, time: 1 });
    for (let n = 0; n < 40; n++) {
      metrics.write(step(n));
      if (n % 10 === 9) metrics.flush();
    }
    metrics.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^dpt: warning: --metrics .*metrics\.jsonl: cannot append \(ENOSPC: no space left on device\): the loss stream stops here; the file ends at its last complete line \(\d+ bytes\); training goes on$/,
    );
    const text = readFileSync(path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.map((line) => (JSON.parse(line) as { step: number }).step)).toEqual(lines.map((_, i) => i));
    expect(text.length).toBeLessThanOrEqual(3000);
  });

  it('on resume keeps the events the checkpoint covers, drops a torn line, and appends after them', () => {
    const path = join(directory.path, 'resumed.jsonl');
    const step = (n: number): TrainingEvent => ({ type: 'step', step: n, epoch: 0, loss: 0.5, rows: 64, workers: 1, stepMs: 1, rowsPerSec: 64_000, time: 1 });
    writeFileSync(path, `${[0, 1, 2, 3, 4, 5].map((n) => JSON.stringify(step(n))).join('\n')}\n{"type":"st`);
    const warnings: string[] = [];
    const metrics = new MetricsFile(
      path,
      (event) => event.type === 'step' && event.step < 3,
      (line) => warnings.push(line),
    );
    metrics.write(step(3));
    metrics.close();
    const steps = readFileSync(path, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => (JSON.parse(line) as { step: number }).step);
    expect(steps).toEqual([0, 1, 2, 3]);
    expect(warnings).toEqual([]);
    expect(temporaryFiles()).toEqual([]);
  });
});

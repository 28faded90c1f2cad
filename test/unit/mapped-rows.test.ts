// Paged rows through a memory map (issue #15 item 3; native/mapped-file.c, worker/mapped-rows.ts):
// a chunk's rows copied from the map equal the rows read one by one with positioned reads; every
// content block is checked before its first use and a corrupt one is refused naming file and
// block; a file cut short under the map is a DatasetError naming the file (a SIGBUS in this very
// process otherwise); and a paged worker computes the same parts, bit for bit, mapped, by reads
// and in memory. The addon is required here ('require'): these tests fail where it is not built.

import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BinaryDataset, BinaryDatasetWriter, BLOCK_BYTES } from '../../shared/binary-dataset.js';
import { ConfigError, DataBlockError, DatasetError } from '../../shared/errors.js';
import { createModelKernel, logisticModelKernel } from '../../shared/model-kernel.js';
import { softmaxShape } from '../../shared/model-shape.js';
import { createRandom, shuffleInPlace } from '../../shared/rng.js';
import type { ScheduleSpec } from '../../shared/schedule.js';
import { SOFTMAX_WASM_KERNEL_ID } from '../../shared/softmax-kernel-wasm.js';
import { PartComputer } from '../../worker/compute.js';
import { MappedRows, pagedReadsMode } from '../../worker/mapped-rows.js';
import { RowStore } from '../../worker/row-store.js';
import { writeSeededDpt } from '../helpers/seeded-dpt.js';
import { thetaOf } from '../helpers/theta.js';

const directory = mkdtempSync(join(tmpdir(), 'dpt-mapped-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

// 3,000 rows × 300 features: 1,200 bytes a row, 3.4 MiB, 4 content blocks; rows straddle block edges.
const WIDE_ROWS = 3000;
const WIDE_D = 300;
const wide = writeSeededDpt(directory, 'wide', WIDE_ROWS, WIDE_D, 17, (j) => (j % 7) - 3);
const narrow = writeSeededDpt(directory, 'narrow', 3001, 7, 99, (j) => j - 3);

/** A version-2 file: three classes, uint16 label indices. */
function writeClassesDpt(): string {
  const rows = 500;
  const D = 5;
  const path = join(directory, 'classes.dpt');
  const writer = new BinaryDatasetWriter(path, { featureNames: Array.from({ length: D }, (_, j) => `f${j}`), labelName: 'kind' });
  const x = Float32Array.from({ length: rows * D }, (_, i) => Math.sin(i) * 3);
  writer.appendCells(
    x,
    Array.from({ length: rows }, (_, r) => ['north', 'south', 'east'][(r * 7) % 3]!),
    rows,
  );
  writer.finish();
  return path;
}
const classes = writeClassesDpt();

/** Rows `order` read one positioned read per row (the reference), as features and labels of `labels`' type. */
function readOneByOne(path: string, order: Uint32Array, labels: 'uint8' | 'uint16'): { x: Float32Array; y: Uint8Array | Uint16Array } {
  const file = BinaryDataset.open(path);
  const D = file.features;
  const x = new Float32Array(order.length * D);
  const y = labels === 'uint8' ? new Uint8Array(order.length) : new Uint16Array(order.length);
  for (const [i, row] of order.entries()) {
    file.readRows(row, row + 1, x, i);
    file.readLabels(row, row + 1, y, i);
  }
  file.close();
  return { x, y };
}

/** Orders to try: random subsets, sorted runs, repeated rows, the first and last rows. */
function ordersFor(rows: number, seed: number): Uint32Array[] {
  const random = createRandom(seed, 0);
  const all = Uint32Array.from({ length: rows }, (_, r) => r);
  shuffleInPlace(all, random);
  const orders = [all.slice(0, 1), all.slice(0, 257), all.slice(100, 1100), Uint32Array.from([0, rows - 1, 0, rows - 1, 5])];
  const sorted = all.slice(0, 300).sort();
  orders.push(sorted);
  const repeated = all.slice(0, 40);
  repeated.fill(repeated[3]!, 10, 20);
  orders.push(repeated);
  return orders;
}

describe('MappedRows', () => {
  for (const [name, path, labels] of [
    ['uint8 labels, rows across block edges', wide, 'uint8'],
    ['uint8 labels widened to uint16', narrow, 'uint16'],
    ['uint16 class indices', classes, 'uint16'],
  ] as const) {
    it(`copies the rows of any order exactly as one positioned read per row gives them (${name})`, () => {
      const file = BinaryDataset.open(path);
      const mapped = MappedRows.open(file, 'require');
      expect(mapped).not.toBeNull();
      const D = file.features;
      for (const order of ordersFor(file.rows, 3)) {
        const expected = readOneByOne(path, order, labels);
        // A chunk that starts past 0 in the order: the rows land at [0, count) all the same.
        const padded = new Uint32Array(order.length + 9);
        padded.set(order, 9);
        const x = new Float32Array((order.length + 2) * D).fill(-7);
        const y = labels === 'uint8' ? new Uint8Array(order.length + 2).fill(77) : new Uint16Array(order.length + 2).fill(777);
        mapped!.gather(padded, 9, padded.length, x, y);
        expect(Array.from(x.subarray(0, order.length * D))).toEqual(Array.from(expected.x)); // exact: toEqual compares with Object.is
        expect(Array.from(y.subarray(0, order.length))).toEqual(Array.from(expected.y));
        expect(x[order.length * D]).toBe(-7); // nothing written past the chunk
        expect(y[order.length]).toBe(labels === 'uint8' ? 77 : 777);
      }
      mapped!.close();
      file.close();
    });
  }

  it('checks each content block once, on the first use of a row in it', () => {
    const file = BinaryDataset.open(wide);
    const mapped = MappedRows.open(file, 'require')!;
    const { dataOffset, labelsOffset } = file.sections;
    // The blocks a row's features and label lie in, from the layout.
    const blocksOf = (row: number): number[] => {
      const start = row * WIDE_D * 4;
      const blocks = new Set<number>();
      for (let at = start; at < start + WIDE_D * 4; at++) blocks.add(Math.floor(at / BLOCK_BYTES));
      blocks.add(Math.floor((labelsOffset - dataOffset + row) / BLOCK_BYTES));
      return [...blocks];
    };
    const x = new Float32Array(10 * WIDE_D);
    const y = new Uint8Array(10);
    const seen = new Set<number>();
    for (const rows of [[0, 1, 2], [1, 2], [873, 874], [2999, 0], [1500]]) {
      for (const row of rows) for (const block of blocksOf(row)) seen.add(block);
      mapped.gather(Uint32Array.from(rows), 0, rows.length, x, y);
      expect(mapped.blocksChecked).toBe(seen.size);
    }
    // Bytes 1,047,600 to 1,048,800 of the features: row 873 straddles blocks 0 and 1; its label lies in block 3.
    expect(blocksOf(873)).toEqual([0, 1, 3]);
    expect(blocksOf(874)).toEqual([1, 3]);
    // A row id past the file's rows (none of the schedule's) is refused, not read from the padding behind the features.
    expect(() => mapped.gather(Uint32Array.from([WIDE_ROWS]), 0, 1, x, y)).toThrow(/a row id past the file's rows/);
    mapped.close();
    file.close();
  });

  it('refuses a corrupt block with a DataBlockError naming file and block, and copies nothing of that chunk', () => {
    const copy = join(directory, 'corrupt-mapped.dpt');
    const bytes = readFileSync(wide);
    const file0 = BinaryDataset.open(wide);
    const at = file0.sections.dataOffset + BLOCK_BYTES + 5000; // features of a row in block 1
    file0.close();
    bytes[at] = bytes[at]! ^ 0x01;
    writeFileSync(copy, bytes);
    const file = BinaryDataset.open(copy);
    const mapped = MappedRows.open(file, 'require')!;
    const x = new Float32Array(3 * WIDE_D).fill(-1);
    const y = new Uint8Array(3).fill(9);
    mapped.gather(Uint32Array.from([3, 4]), 0, 2, x, y); // block 0 and the labels' block 3: fine
    x.fill(-1);
    let error: unknown;
    try {
      mapped.gather(Uint32Array.from([5, 1000, 6]), 0, 3, x, y); // row 1000 lies in block 1
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DataBlockError);
    expect((error as DataBlockError).block).toBe(1);
    expect((error as Error).message).toMatch(
      /corrupt-mapped\.dpt: content block 1 of 4 \(file bytes \d+ to \d+: features of rows 873 to 1747\) fails its CRC-32 check/,
    );
    expect(x.every((value) => value === -1)).toBe(true);
    // Still refused on the next try (never marked checked).
    expect(() => mapped.gather(Uint32Array.from([1000]), 0, 1, x, y)).toThrow(DataBlockError);
    mapped.close();
    file.close();
  });

  for (const [section, cutAt] of [
    ['features', (_file: BinaryDataset) => 4096],
    ['labels', (file: BinaryDataset) => file.sections.labelsOffset + 100],
  ] as const) {
    it(`turns a file cut short under the map into a DatasetError naming the file, not a SIGBUS (the ${section})`, () => {
      const copy = join(directory, `cut-${section}.dpt`);
      writeFileSync(copy, readFileSync(wide));
      const file = BinaryDataset.open(copy);
      const mapped = MappedRows.open(file, 'require')!;
      const all = Uint32Array.from({ length: WIDE_ROWS }, (_, r) => r);
      const x = new Float32Array(WIDE_ROWS * WIDE_D);
      const y = new Uint8Array(WIDE_ROWS);
      mapped.gather(all, 0, WIDE_ROWS, x, y); // every block checked: the next gather reads the map only
      expect(mapped.blocksChecked).toBe(file.blocks);
      const fileBytes = file.sections.fileBytes;
      const at = cutAt(file);
      truncateSync(copy, at);
      const order = Uint32Array.from([WIDE_ROWS - 1, 0]); // the last row's features and label lie past the cut
      let error: unknown;
      try {
        mapped.gather(order, 0, 2, x, y);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(DatasetError);
      expect((error as Error).message).toBe(
        `${copy}: the file ends inside the ${section} (truncated?): it is ${at} bytes now, ${fileBytes} when this worker mapped it`,
      );
      // The process is fine: WebAssembly (whose bounds traps V8 catches with SIGSEGV) still runs.
      const kernel = logisticModelKernel('wasm-simd', 3);
      const rows = kernel.allocateRows(2, 3);
      rows.x.set([1, 2, 3, 4, 5, 6]);
      rows.y.set([1, 0]);
      const sums = kernel.allocateVector(kernel.shape.partWidth);
      kernel.accumulate(rows.x, rows.y, null, 0, 2, kernel.allocateVector(4), sums, 0);
      expect(sums[0]).toBe((0.5 - 1) * 1 + (0.5 - 0) * 4); // σ(0) = 0.5: Σ (a − y)·x_0 over the two rows
      mapped.close();
      file.close();
    });
  }

  it('reads DPT_PAGED_READS: auto by default, reads on demand, anything else refused', () => {
    expect(pagedReadsMode({})).toBe('auto');
    expect(pagedReadsMode({ DPT_PAGED_READS: 'auto' })).toBe('auto');
    expect(pagedReadsMode({ DPT_PAGED_READS: 'reads' })).toBe('reads');
    expect(() => pagedReadsMode({ DPT_PAGED_READS: 'mmap' })).toThrow(ConfigError);
    expect(() => pagedReadsMode({ DPT_PAGED_READS: 'mmap' })).toThrow(/DPT_PAGED_READS must be auto or reads \(got "mmap"\)/);
  });

  it('is not used with DPT_NATIVE=off', () => {
    const file = BinaryDataset.open(narrow);
    expect(MappedRows.open(file, 'off')).toBeNull();
    file.close();
  });
});

const D = 7;
const ROWS = 3001;

function schedule(shuffleBlockRows: number): ScheduleSpec {
  return { rows: ROWS, valFraction: 0.1, seed: 5, shuffle: true, shuffleBlockRows, batchSize: 250, chunksPerBatch: 7 };
}

/** Every step's part of two epochs for worker 0 owning chunks [0, 4) and worker 1 the rest, with prefetches, as float64 values. */
function parts(
  budgetBytes: number,
  spec: ScheduleSpec,
  pagedReads: 'auto' | 'reads',
): { holding: string; sums: number[][]; mappedChunks: number; reads: number } {
  const kernel = logisticModelKernel('wasm-simd', D);
  const store = RowStore.open(narrow, budgetBytes, PartComputer.maxChunkRows(spec), kernel, undefined, pagedReads);
  const computer = new PartComputer(store, spec, kernel);
  computer.standardize({ mean: Float64Array.from({ length: D }, (_, j) => j / 10 - 0.2), std: Float64Array.from({ length: D }, (_, j) => 1 + j / 3) });
  const steps = 2 * Math.ceil((ROWS * 0.9) / spec.batchSize);
  const assign = Uint32Array.from([0, 0, 4, 1, 4, 7]);
  const sums: number[][] = [];
  for (let step = 0; step < steps; step++) {
    const theta = thetaOf(
      Array.from({ length: D }, (_, j) => Math.cos(step + j)),
      -0.1 * step,
    );
    for (const workerId of [0, 1]) {
      sums.push(Array.from(computer.compute({ kind: 'step', step, assign, theta }, workerId).sums));
      computer.prefetchAfter(step, assign, workerId);
    }
  }
  const holding = store.holding;
  const mappedChunks = store.mappedStats.chunks;
  const reads = store.gatherReads;
  computer.close();
  store.close();
  return { holding, sums, mappedChunks, reads };
}

describe('a paged worker with the map', () => {
  it('computes the same softmax parts bit for bit mapped, by positioned reads and in memory (uint16 class indices)', () => {
    const spec: ScheduleSpec = { rows: 500, valFraction: 0.1, seed: 4, shuffle: true, shuffleBlockRows: 0, batchSize: 64, chunksPerBatch: 4 };
    const run = (budgetBytes: number, pagedReads: 'auto' | 'reads'): { holding: string; sums: number[][] } => {
      const kernel = createModelKernel(SOFTMAX_WASM_KERNEL_ID, softmaxShape(3, 5))!;
      const store = RowStore.open(classes, budgetBytes, PartComputer.maxChunkRows(spec), kernel, undefined, pagedReads);
      const computer = new PartComputer(store, spec, kernel);
      const theta = Float64Array.from({ length: kernel.shape.parameterCount }, (_, i) => Math.sin(i) / 4);
      const sums: number[][] = [];
      // 450 training rows: batches 0–6 of each epoch are full (batch 7 holds 2 rows, 2 chunks).
      for (const step of [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14])
        sums.push(Array.from(computer.compute({ kind: 'step', step, assign: Uint32Array.from([0, 0, 4]), theta }, 0).sums));
      const holding = store.holding;
      store.close();
      return { holding, sums };
    };
    const memory = run(1 << 20, 'auto');
    const mapped = run(0, 'auto');
    const reads = run(0, 'reads');
    expect([memory.holding, mapped.holding, reads.holding]).toEqual(['memory', 'paged, mapped', 'paged, reads']);
    expect(mapped.sums).toEqual(memory.sums);
    expect(reads.sums).toEqual(memory.sums);
  });

  for (const [name, blockRows] of [
    ['row shuffle', 0],
    ['block shuffle', 40],
  ] as const) {
    it(`computes the same parts bit for bit mapped, by positioned reads and in memory (${name})`, () => {
      const memory = parts(1 << 20, schedule(blockRows), 'auto');
      const mapped = parts(0, schedule(blockRows), 'auto');
      const reads = parts(0, schedule(blockRows), 'reads');
      expect([memory.holding, mapped.holding, reads.holding]).toEqual(['memory', 'paged, mapped', 'paged, reads']);
      expect(mapped.sums).toEqual(memory.sums); // toEqual on numbers is exact (Object.is)
      expect(reads.sums).toEqual(memory.sums);
      // Scattered rows (row shuffle) are copied from the map; rows in runs of 40 (block shuffle) are read by runs.
      const steps = 2 * Math.ceil((ROWS * 0.9) / 250);
      if (blockRows === 0) {
        expect(mapped.mappedChunks).toBe(steps * 7); // the 7 chunks of every step, over both workers
        expect(mapped.reads).toBe(0);
      } else {
        expect(mapped.mappedChunks).toBe(0);
        expect(mapped.reads).toBeGreaterThan(0);
      }
    });
  }
});

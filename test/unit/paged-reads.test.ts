// Paged reads (issue #15 item 3): a chunk's rows are read in file order, merged into runs
// (worker/coalesced-reads.ts), and the kernel still sees the rows of the chunk's order: the same
// parts, bit for bit, as rows held in memory, under row shuffle and block shuffle; a short or
// corrupt file still fails with a DatasetError naming it. These tests pin the positioned-read path
// (DPT_PAGED_READS=reads); test/unit/mapped-rows.test.ts covers the memory map.

import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataBlockError, DatasetError } from '../../shared/errors.js';
import { logisticModelKernel } from '../../shared/model-kernel.js';
import { createRandom, shuffleInPlace } from '../../shared/rng.js';
import type { ScheduleSpec } from '../../shared/schedule.js';
import { CoalescedReader, type RowSource } from '../../worker/coalesced-reads.js';
import { PartComputer } from '../../worker/compute.js';
import { RowStore } from '../../worker/row-store.js';
import { writeSeededDpt } from '../helpers/seeded-dpt.js';
import { thetaOf } from '../helpers/theta.js';

const directory = mkdtempSync(join(tmpdir(), 'dpt-paged-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** Rows held in arrays, every read recorded as [section, from, to). */
class CountingSource implements RowSource {
  readonly rows: number;
  readonly features: number;
  readonly x: Float32Array;
  readonly y: Uint8Array;
  readonly reads: Array<['rows' | 'labels', number, number]> = [];
  constructor(rows: number, features: number) {
    this.rows = rows;
    this.features = features;
    this.x = Float32Array.from({ length: rows * features }, (_, i) => i + 0.5);
    this.y = Uint8Array.from({ length: rows }, (_, r) => (r * 7) % 2);
  }
  readRows(from: number, to: number, into: Float32Array, intoRow = 0): void {
    this.reads.push(['rows', from, to]);
    into.set(this.x.subarray(from * this.features, to * this.features), intoRow * this.features);
  }
  readLabels(from: number, to: number, into: Uint8Array | Uint16Array, intoRow = 0): void {
    this.reads.push(['labels', from, to]);
    into.set(this.y.subarray(from, to), intoRow);
  }
}

/** Reads `order` through a CoalescedReader and checks the chunk buffer holds exactly its rows, in order. */
function gatherAndCheck(source: CountingSource, order: Uint32Array, gapBytes?: number, spanBytes?: number): void {
  const D = source.features;
  const x = new Float32Array(order.length * D).fill(-1);
  const y = new Uint8Array(order.length).fill(9);
  const reader = new CoalescedReader(source, order.length, y, gapBytes, spanBytes);
  reader.gather(order, 0, order.length, x, y);
  for (let i = 0; i < order.length; i++) {
    const row = order[i]!;
    for (let d = 0; d < D; d++) expect(x[i * D + d]).toBe(source.x[row * D + d]);
    expect(y[i]).toBe(source.y[row]);
  }
  expect(reader.reads).toBe(source.reads.length);
  // Every row asked for lies in exactly one read of each section; reads never overlap.
  for (const section of ['rows', 'labels'] as const) {
    const ranges = source.reads.filter((read) => read[0] === section);
    for (const row of order) expect(ranges.filter(([, from, to]) => from <= row && row < to)).toHaveLength(1);
    const sorted = ranges.map(([, from, to]) => [from, to] as const).sort((a, b) => a[0] - b[0]);
    for (let k = 1; k < sorted.length; k++) expect(sorted[k]![0]).toBeGreaterThanOrEqual(sorted[k - 1]![1]);
  }
}

describe('CoalescedReader', () => {
  it('reads adjacent rows given out of order with one read per section', () => {
    const source = new CountingSource(100, 3);
    gatherAndCheck(source, Uint32Array.from([42, 40, 43, 41, 44]));
    expect(source.reads).toEqual([
      ['rows', 40, 45],
      ['labels', 40, 45],
    ]);
  });

  it('merges rows within the gap, splits rows beyond it, and cuts runs at the span size', () => {
    // D = 4: 16 bytes a row. A gap of 64 bytes merges rows with up to 4 rows (64 bytes) between them.
    const source = new CountingSource(1000, 4);
    gatherAndCheck(source, Uint32Array.from([10, 500, 14, 20, 25]), 64);
    expect(source.reads.filter((read) => read[0] === 'rows')).toEqual([
      ['rows', 10, 15],
      ['rows', 20, 26],
      ['rows', 500, 501],
    ]);
    // Labels are 1 byte a row: all of 10…25 within 64 bytes, 500 not.
    expect(source.reads.filter((read) => read[0] === 'labels')).toEqual([
      ['labels', 10, 26],
      ['labels', 500, 501],
    ]);
    const cut = new CountingSource(1000, 4);
    gatherAndCheck(
      cut,
      Uint32Array.from({ length: 10 }, (_, i) => 9 - i),
      64,
      64,
    ); // spans of 4 rows
    expect(cut.reads.filter((read) => read[0] === 'rows')).toEqual([
      ['rows', 0, 4],
      ['rows', 4, 8],
      ['rows', 8, 10],
    ]);
  });

  it('covers every row exactly once for random orders, repeated rows and in-place runs too', () => {
    const random = createRandom(11, 0);
    for (let trial = 0; trial < 30; trial++) {
      const rows = 50 + Math.floor(random() * 3000);
      const source = new CountingSource(rows, 1 + Math.floor(random() * 40));
      const all = Uint32Array.from({ length: rows }, (_, r) => r);
      shuffleInPlace(all, random);
      const count = 1 + Math.floor(random() * Math.min(rows, 300));
      const order = all.slice(0, count);
      if (trial % 3 === 0) order.sort(); // file order: runs read straight into the chunk buffer
      if (trial % 5 === 0 && count > 2) order[1] = order[0]!; // the same row twice
      gatherAndCheck(source, order, Math.floor(random() * 2048), 256 + Math.floor(random() * 4096));
    }
  });

  it('makes far fewer reads than rows under a row shuffle of a small file', () => {
    const source = new CountingSource(20_000, 10); // 40 bytes a row: 8 KiB spans ~200 rows
    const all = Uint32Array.from({ length: 20_000 }, (_, r) => r);
    shuffleInPlace(all, createRandom(3, 0));
    gatherAndCheck(source, all.slice(0, 2048));
    expect(source.reads.length).toBeLessThan((2 * 2048) / 10);
  });
});

const D = 7;
const ROWS = 3001;

function schedule(shuffleBlockRows: number): ScheduleSpec {
  return { rows: ROWS, valFraction: 0.1, seed: 5, shuffle: true, shuffleBlockRows, batchSize: 250, chunksPerBatch: 7 };
}

/** Every step's part of two epochs for worker 0 owning chunks [0, 4) and worker 1 the rest, as Float64 bits. */
function parts(path: string, budgetBytes: number, spec: ScheduleSpec): { mode: string; sums: number[][]; reads: number } {
  const kernel = logisticModelKernel('wasm-simd', D);
  const store = RowStore.open(path, budgetBytes, PartComputer.maxChunkRows(spec), kernel, undefined, 'reads');
  const computer = new PartComputer(store, spec, kernel);
  computer.standardize({ mean: Float64Array.from({ length: D }, (_, j) => j / 10 - 0.2), std: Float64Array.from({ length: D }, (_, j) => 1 + j / 3) });
  const steps = 2 * Math.ceil((ROWS * 0.9) / spec.batchSize);
  const sums: number[][] = [];
  for (let step = 0; step < steps; step++) {
    const theta = thetaOf(
      Array.from({ length: D }, (_, j) => Math.sin(step + j)),
      0.1 * step,
    );
    for (const workerId of [0, 1]) {
      const part = computer.compute({ kind: 'step', step, assign: Uint32Array.from([0, 0, 4, 1, 4, 7]), theta }, workerId);
      sums.push(Array.from(part.sums));
    }
  }
  const reads = store.gatherReads;
  computer.close();
  store.close();
  return { mode: store.mode, sums, reads };
}

describe('a paged worker', () => {
  const path = writeSeededDpt(directory, 'seeded', ROWS, D, 99, (j) => j - 3);

  for (const [name, blockRows] of [
    ['row shuffle', 0],
    ['block shuffle', 40],
  ] as const) {
    it(`computes the same parts bit for bit as rows in memory (${name}), with fewer reads than rows`, () => {
      const inMemory = parts(path, 1 << 20, schedule(blockRows));
      const paged = parts(path, 0, schedule(blockRows));
      expect(inMemory.mode).toBe('memory');
      expect(paged.mode).toBe('paged');
      expect(paged.sums).toEqual(inMemory.sums); // toEqual on numbers is exact (Object.is)
      // Two epochs of ~2,700 training rows, 28 bytes a row: rows read one by one would take 2 reads each.
      expect(paged.reads).toBeGreaterThan(0);
      expect(paged.reads).toBeLessThan(2 * 2 * 2700 * (blockRows === 0 ? 0.2 : 0.1));
    });
  }

  for (const [name, blockRows] of [
    ['row shuffle', 0],
    ['block shuffle', 40],
  ] as const) {
    it(`serves the next step's rows read ahead, the same bits, and drops a wrong guess (${name})`, async () => {
      const spec = { ...schedule(blockRows), chunksPerBatch: 5 };
      const theta = thetaOf(
        Array.from({ length: D }, (_, j) => j / 7 - 0.3),
        0.2,
      );
      const all = Uint32Array.from([0, 0, 5]);
      const run = (budgetBytes: number) => {
        const kernel = logisticModelKernel('wasm-simd', D);
        const store = RowStore.open(path, budgetBytes, PartComputer.maxChunkRows(spec), kernel, undefined, 'reads');
        return { store, computer: new PartComputer(store, spec, kernel) };
      };
      const memory = run(1 << 20);
      const paged = run(0);
      expect(paged.store.mode).toBe('paged');
      // Steps 0, 1, …, 11 with the guess right (chunks 0 to 5 for worker 0), then step 13 after a guess for step 12.
      const steps = [...Array.from({ length: 12 }, (_, s) => s), 13];
      for (const [k, step] of steps.entries()) {
        const expected = Array.from(memory.computer.compute({ kind: 'step', step, assign: all, theta }, 0).sums);
        const servedBefore = paged.store.prefetchStats.served;
        expect(Array.from(paged.computer.compute({ kind: 'step', step, assign: all, theta }, 0).sums)).toEqual(expected);
        const served = paged.store.prefetchStats.served - servedBefore;
        // Block shuffle: each step after the first was read ahead (all 5 chunks); step 13 came after a
        // guess for 12. Row shuffle: the ~225 rows lie over ~2,700, more runs than the read-ahead
        // buffer (2 × 250 rows) lets merge, so nothing is read ahead (MAX_ASYNC_READS).
        expect(served).toBe(blockRows === 0 || k === 0 || step === 13 ? 0 : 5);
        paged.computer.prefetchAfter(step, all, 0);
        await paged.store.prefetchSettled();
      }
      expect(paged.store.prefetchStats.started).toBe(blockRows === 0 ? 0 : steps.length);
      paged.computer.close();
      paged.store.close();
      memory.store.close();
    });
  }

  it('reads no rows ahead when they are scattered (more runs than MAX_ASYNC_READS), and still gives the same bits', () => {
    // 2,100 features: 8,400 bytes a row, more than the 8 KiB gap, so every shuffled row is its own run.
    const wide = writeSeededDpt(directory, 'wide', 400, 2100, 3, (j) => (j % 5) - 2);
    const spec: ScheduleSpec = { rows: 400, valFraction: 0, seed: 2, shuffle: true, shuffleBlockRows: 0, batchSize: 200, chunksPerBatch: 2 };
    const theta = thetaOf(
      Array.from({ length: 2100 }, (_, j) => ((j % 7) - 3) / 100),
      0.1,
    );
    const assign = Uint32Array.from([0, 0, 2]);
    const sums: number[][] = [];
    for (const budgetBytes of [1 << 30, 0]) {
      const kernel = logisticModelKernel('wasm-simd', 2100);
      const store = RowStore.open(wide, budgetBytes, PartComputer.maxChunkRows(spec), kernel, undefined, 'reads');
      const computer = new PartComputer(store, spec, kernel);
      for (let step = 0; step < 4; step++) {
        sums.push(Array.from(computer.compute({ kind: 'step', step, assign, theta }, 0).sums));
        computer.prefetchAfter(step, assign, 0);
      }
      expect(store.prefetchStats).toEqual({ started: 0, served: 0 });
      store.close();
    }
    expect(sums.slice(4)).toEqual(sums.slice(0, 4));
  });

  it('reports a file cut short after a prefetch found it short, and serves nothing from that prefetch', async () => {
    const copy = join(directory, 'short-ahead.dpt');
    writeFileSync(copy, readFileSync(path));
    const spec = schedule(40);
    const kernel = logisticModelKernel('wasm-simd', D);
    const store = RowStore.open(copy, 0, PartComputer.maxChunkRows(spec), kernel, undefined, 'reads');
    const computer = new PartComputer(store, spec, kernel);
    const assign = Uint32Array.from([0, 0, 7]);
    const theta = thetaOf(new Array(D).fill(0), 0);
    computer.compute({ kind: 'step', step: 0, assign, theta }, 0);
    truncateSync(copy, 4096);
    computer.prefetchAfter(0, assign, 0);
    await store.prefetchSettled();
    expect(store.prefetchStats.started).toBe(1); // block shuffle: a few runs, read ahead
    expect(() => computer.compute({ kind: 'step', step: 1, assign, theta }, 0)).toThrow(
      /short-ahead\.dpt: the file ends inside the (features|labels|content) \(truncated\?\)/,
    );
    expect(store.prefetchStats.served).toBe(0);
    store.close();
  });

  it('fails with a DatasetError naming the file when the file is cut short after opening', () => {
    const copy = join(directory, 'short.dpt');
    writeFileSync(copy, readFileSync(path));
    const spec = schedule(0);
    const kernel = logisticModelKernel('wasm-simd', D);
    const computer = new PartComputer(RowStore.open(copy, 0, PartComputer.maxChunkRows(spec), kernel, undefined, 'reads'), spec, kernel);
    truncateSync(copy, 4096);
    let error: unknown;
    try {
      for (let step = 0; step < 3; step++)
        computer.compute({ kind: 'step', step, assign: Uint32Array.from([0, 0, 7]), theta: thetaOf(new Array(D).fill(0), 0) }, 0);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toMatch(/short\.dpt: the file ends inside the (features|labels|content) \(truncated\?\)/);
  });

  it('fails with a DataBlockError naming the block when a block is corrupt', () => {
    const copy = join(directory, 'corrupt.dpt');
    const bytes = readFileSync(path);
    const at = bytes.length - 4 - 200; // inside the labels, in content block 0 (the file is under 1 MiB; its table is 4 bytes)
    bytes[at] = bytes[at]! ^ 0x40;
    writeFileSync(copy, bytes);
    const spec = schedule(0);
    const kernel = logisticModelKernel('wasm-simd', D);
    const computer = new PartComputer(RowStore.open(copy, 0, PartComputer.maxChunkRows(spec), kernel, undefined, 'reads'), spec, kernel);
    let error: unknown;
    try {
      computer.compute({ kind: 'step', step: 0, assign: Uint32Array.from([0, 0, 7]), theta: thetaOf(new Array(D).fill(0), 0) }, 0);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DataBlockError);
    expect((error as Error).message).toMatch(/corrupt\.dpt: content block 0 of 1 .* fails its CRC-32 check/);
  });
});

// Compute threads (dpt worker --threads): a step's chunks split over threads sharing the kernel's
// memory give the same bits as one thread, for the parts of single steps and for a whole run.
// The thread script is compiled JavaScript, so the modules under test are loaded from dist/.

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type * as KernelModule from '../../shared/kernel.js';
import type * as SyntheticModule from '../../shared/synthetic.js';
import type * as ComputeModule from '../../worker/compute.js';
import type * as PoolModule from '../../worker/compute-pool.js';
import type * as RowStoreModule from '../../worker/row-store.js';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';

const dist = (path: string): Promise<unknown> => import(join(REPO, 'dist', path));
const { PartComputer } = (await dist('worker/compute.js')) as typeof ComputeModule;
const { ComputePool } = (await dist('worker/compute-pool.js')) as typeof PoolModule;
const { RowStore } = (await dist('worker/row-store.js')) as typeof RowStoreModule;
const { createGradientKernel } = (await dist('shared/kernel.js')) as typeof KernelModule;
const { generateDataset } = (await dist('shared/synthetic.js')) as typeof SyntheticModule;

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

const ROWS = 20_000;
const D = 20;
const dataPath = generateDataset({ rows: ROWS, features: D, seed: 5 }, join(directory.path, 'data.dpt'), 'dpt').path;
// Shuffled rows, a validation split and B = 4096 (4096 × (20 + 40) work units: worth splitting).
const schedule = { rows: ROWS, valFraction: 0.1, seed: 3, shuffle: true, shuffleBlockRows: 0, batchSize: 4096, chunksPerBatch: 8 };

function computer(threads: number, reproducible = true): { parts: ComputeModule.PartComputer; pool: PoolModule.ComputePool | null } {
  const kernel = createGradientKernel('wasm-simd');
  if (kernel.shared === null) throw new Error('this Node.js has no WebAssembly SIMD');
  const store = RowStore.open(dataPath, 1 << 30, PartComputer.maxChunkRows(schedule), kernel);
  const pool = threads > 1 ? new ComputePool(kernel.shared.memory, threads, schedule.chunksPerBatch, []) : null;
  const parts = new PartComputer(store, schedule, reproducible, kernel, pool);
  parts.standardize({ mean: new Float64Array(D).fill(0.1), std: new Float64Array(D).fill(1.5) });
  return { parts, pool };
}

function bytes(values: Float64Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

describe('compute threads', () => {
  it('give the parts of one thread bit for bit, across an epoch boundary, with 2 and 3 threads', () => {
    const single = computer(1);
    const split = [computer(2), computer(3)];
    // 18,000 training rows: 5 batches an epoch, so steps 0–7 cross into epoch 1 (a new order).
    for (let step = 0; step < 8; step++) {
      const w = Float64Array.from({ length: D }, (_, j) => Math.sin(step + j) / 4);
      const message = { kind: 'step', step, chunks: Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), w, b: 0.05 * step } as const;
      const expected = single.parts.compute(message);
      const sums = Buffer.from(bytes(expected.sums)); // a copy: the buffer is reused next step
      for (const { parts } of split) {
        const part = parts.compute(message);
        expect(bytes(part.sums).equals(sums), `step ${step}`).toBe(true);
        expect(Array.from(part.rows)).toEqual(Array.from(expected.rows));
      }
    }
    for (const { pool } of split) {
      // All but step 4, the epoch's last batch (1,616 rows × 60 work units: below the threshold).
      expect(pool?.stepsSplit).toBe(7);
      pool?.close();
    }
  });

  it('leave small steps and merged parts on the main thread', () => {
    const merged = computer(2, false);
    merged.parts.compute({ kind: 'step', step: 0, chunks: Uint32Array.from([0, 1, 2, 3]), w: new Float64Array(D), b: 0 });
    expect(merged.pool?.stepsSplit).toBe(0);
    merged.pool?.close();
    const small = computer(2);
    // Step 4 is the epoch's last batch: 1,616 rows × 60 work units, below the split threshold.
    small.parts.compute({ kind: 'step', step: 4, chunks: Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), w: new Float64Array(D), b: 0 });
    expect(small.pool?.stepsSplit).toBe(0);
    small.pool?.close();
  });

  it('dpt train with 2 threads per worker trains the model of 1 thread, bit for bit', async () => {
    const run = async (name: string, extra: string[]): Promise<{ hash: string; losses: number[] }> => {
      const out = join(directory.path, `${name}.json`);
      const metrics = join(directory.path, `${name}.jsonl`);
      const flags = ['--data', dataPath, '--epochs', '2', '--batch-size', '4096', '--val-split', '0.1', '--lr', '0.5', '--out', out, '--metrics', metrics];
      const result = await runCli(['train', ...flags, ...extra], {}, 120_000);
      expect(result.code, result.stderr).toBe(0);
      return { hash: modelHash(out), losses: stepLosses(metrics) };
    };
    const one = await run('threads-1', ['--workers', '1', '--threads', '1']);
    const two = await run('threads-2', ['--workers', '1', '--threads', '2']);
    const twoByTwo = await run('w2-threads-2', ['--workers', '2', '--threads', '2']);
    expect(one.losses).toHaveLength(2 * 5);
    for (const other of [two, twoByTwo]) {
      expect(other.hash).toBe(one.hash);
      expect(other.losses).toEqual(one.losses);
    }
  });

  it('refuses a thread count or CPU list that is not one, naming the flag', async () => {
    for (const [flag, value] of [
      ['--threads', '0'],
      ['--thread-cpus', '2-1'],
    ]) {
      const result = await runCli(['worker', '--connect', 'ws://127.0.0.1:9', flag!, value!]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(flag!);
    }
  });
});

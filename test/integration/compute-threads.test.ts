// Compute threads (dpt worker --threads): a step's chunks split over threads sharing the kernel's
// memory give the same bits as one thread, for the parts of single steps and for a whole run.
// The thread script is compiled JavaScript, so the modules under test are loaded from dist/.

import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import type * as KernelModule from '../../shared/kernel.js';
import type * as ModelKernelModule from '../../shared/model-kernel.js';
import type * as SyntheticModule from '../../shared/synthetic.js';
import type * as ComputeModule from '../../worker/compute.js';
import type * as PoolModule from '../../worker/compute-pool.js';
import type * as RowStoreModule from '../../worker/row-store.js';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';
import { thetaOf } from '../helpers/theta.js';

const dist = (path: string): Promise<unknown> => import(join(REPO, 'dist', path));
const { PartComputer } = (await dist('worker/compute.js')) as typeof ComputeModule;
const { ComputePool } = (await dist('worker/compute-pool.js')) as typeof PoolModule;
const { RowStore } = (await dist('worker/row-store.js')) as typeof RowStoreModule;
const { createGradientKernel } = (await dist('shared/kernel.js')) as typeof KernelModule;
const { logisticModelKernel } = (await dist('shared/model-kernel.js')) as typeof ModelKernelModule;
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

function computer(threads: number, spec: typeof schedule = schedule): { parts: ComputeModule.PartComputer; pool: PoolModule.ComputePool | null } {
  const kernel = logisticModelKernel('wasm-simd', D);
  if (kernel.shared === null) throw new Error('this Node.js has no WebAssembly SIMD');
  const store = RowStore.open(dataPath, 1 << 30, PartComputer.maxChunkRows(spec), kernel);
  const pool = threads > 1 ? new ComputePool(kernel.shared, threads, spec.chunksPerBatch, []) : null;
  const parts = new PartComputer(store, spec, kernel, pool);
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
      const message = { kind: 'step', step, assign: Uint32Array.of(0, 0, 8), theta: thetaOf(w, 0.05 * step) } as const;
      const expected = single.parts.compute(message, 0);
      const sums = Buffer.from(bytes(expected.sums)); // a copy: the buffer is reused next step
      for (const { parts } of split) {
        const part = parts.compute(message, 0);
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

  it('give the bits of one thread over hundreds of steps of 64 chunks, each request run exactly once', () => {
    // The shape that doubled a helper's chunks about one run in 8 (issue #10, item 1): B = 4096, 64 chunks.
    const spec = { ...schedule, chunksPerBatch: 64 };
    const single = computer(1, spec);
    const split = [computer(2, spec), computer(3, spec)];
    const STEPS = 300;
    for (let step = 0; step < STEPS; step++) {
      const w = Float64Array.from({ length: D }, (_, j) => Math.cos(step * 0.37 + j) / 3);
      const message = { kind: 'step', step, assign: Uint32Array.of(0, 0, 64), theta: thetaOf(w, 0.01 * (step % 17)) } as const;
      const sums = Buffer.from(bytes(single.parts.compute(message, 0).sums));
      for (const [t, { parts }] of split.entries()) {
        expect(bytes(parts.compute(message, 0).sums).equals(sums), `step ${step}, ${t + 2} threads`).toBe(true);
      }
    }
    for (const { pool } of split) {
      expect(pool?.stepsSplit).toBeGreaterThan(STEPS / 2); // most steps really ran on the threads
      for (let helper = 0; helper < (pool?.threads ?? 1) - 1; helper++) expect(pool?.runsOf(helper)).toBe(pool?.stepsSplit);
      pool?.close();
    }
  });

  it('a helper woken without a new request does not run the last one again', async () => {
    // The test plays the pool's part over the shared control array, so it can wake the helper
    // with a notify that carries no request: what a spurious wake-up of Atomics.wait looks like.
    const { CALL_WIDTH, CONTROL, CONTROL_SLOTS } = (await dist('worker/compute-pool.js')) as typeof PoolModule;
    const kernel = createGradientKernel('wasm-simd');
    const shared = kernel.shared;
    if (shared === null) throw new Error('this Node.js has no WebAssembly SIMD');
    const DT = 6;
    const N = 300;
    const { x, y } = kernel.allocateRows(N, DT);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.7);
    for (let i = 0; i < N; i++) y[i] = i % 3 === 0 ? 1 : 0;
    const w = kernel.allocateVector(DT).fill(0.2);
    const width = DT + 2;
    const out = kernel.allocateVector(2 * width);
    const expected = kernel.allocateVector(2 * width);
    const expectedLoss = [0, 0].map((_, r) => kernel.accumulate(x, y, DT, null, r * 100, r * 100 + 150, w, 0.1, expected, r * width));
    const controlBuffer = new SharedArrayBuffer(CONTROL_SLOTS * 4);
    const control = new Int32Array(controlBuffer);
    const callsBuffer = new SharedArrayBuffer(CALL_WIDTH * 8);
    const lossesBuffer = new SharedArrayBuffer(8);
    const thread = new Worker(join(REPO, 'dist', 'worker', 'compute-thread.js'), {
      workerData: { memory: shared.memory, control: controlBuffer, calls: callsBuffer, losses: lossesBuffer, cpu: null },
    });
    const exited = new Promise<number>((resolve) => thread.on('exit', resolve));
    /** Spins (bounded) until `slot` of the control array satisfies `until`. */
    const awaitSlot = (slot: number, until: (value: number) => boolean, what: string): void => {
      const deadline = Date.now() + 20_000;
      while (!until(Atomics.load(control, slot))) {
        if (Date.now() > deadline) throw new Error(`compute thread: ${what} within 20 s`);
        Atomics.wait(control, slot, Atomics.load(control, slot), 5);
      }
    };
    const post = (request: number, row: number): void => {
      const call = shared.rawArguments(x, y, DT, null, row * 100, row * 100 + 150, w, 0.1, out, row * width);
      if (call === null) throw new Error('rows outside the kernel memory');
      new Float64Array(callsBuffer).set(call);
      Atomics.store(control, CONTROL.count, 1);
      Atomics.store(control, CONTROL.request, request);
      Atomics.notify(control, CONTROL.request);
      awaitSlot(CONTROL.done, (done) => done === request, `no answer to request ${request}`);
    };
    try {
      post(1, 0);
      expect(new Float64Array(lossesBuffer)[0]).toBe(expectedLoss[0]);
      // Wake it while it sleeps on the request slot, the request unchanged (bounded retries: a
      // notify that lands just before it enters Atomics.wait wakes nobody).
      awaitSlot(CONTROL.sleeping, (sleeping) => sleeping === 1, 'the helper did not go to sleep');
      const wakesBefore = Atomics.load(control, CONTROL.wakes);
      for (let attempt = 0; attempt < 1000 && Atomics.load(control, CONTROL.wakes) === wakesBefore; attempt++) {
        Atomics.notify(control, CONTROL.request);
        Atomics.wait(control, CONTROL.wakes, wakesBefore, 10);
      }
      expect(Atomics.load(control, CONTROL.wakes)).toBeGreaterThan(wakesBefore);
      post(2, 1);
      expect(Atomics.load(control, CONTROL.runs)).toBe(2);
      expect(bytes(out).equals(bytes(expected))).toBe(true); // request 1 added once, not twice
      expect(new Float64Array(lossesBuffer)[0]).toBe(expectedLoss[1]);
    } finally {
      Atomics.store(control, CONTROL.request, -1);
      Atomics.notify(control, CONTROL.request);
      await exited;
    }
  });

  it('leave small steps on the main thread', () => {
    const small = computer(2);
    // Step 4 is the epoch's last batch: 1,616 rows × 60 work units, below the split threshold.
    small.parts.compute({ kind: 'step', step: 4, assign: Uint32Array.of(0, 0, 8), theta: new Float64Array(D + 1) }, 0);
    expect(small.pool?.stepsSplit).toBe(0);
    small.pool?.close();
  });

  it('dpt train with 2 threads per worker trains the model of 1 thread, bit for bit', async () => {
    const run = async (name: string, extra: string[]): Promise<{ hash: string; losses: number[] }> => {
      const out = join(directory.path, `${name}.json`);
      const metrics = join(directory.path, `${name}.jsonl`);
      // 64 chunks a batch, as in the runs that doubled a helper's chunks (issue #10, item 1).
      const flags = [
        '--data',
        dataPath,
        '--epochs',
        '6',
        '--batch-size',
        '4096',
        '--chunks',
        '64',
        '--val-split',
        '0.1',
        '--lr',
        '0.5',
        '--out',
        out,
        '--metrics',
        metrics,
      ];
      const result = await runCli(['train', ...flags, ...extra], {}, 120_000);
      expect(result.code, result.stderr).toBe(0);
      return { hash: modelHash(out), losses: stepLosses(metrics) };
    };
    const one = await run('threads-1', ['--workers', '1', '--threads', '1']);
    const two = await run('threads-2', ['--workers', '1', '--threads', '2']);
    const twoByTwo = await run('w2-threads-2', ['--workers', '2', '--threads', '2']);
    expect(one.losses).toHaveLength(6 * 5);
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

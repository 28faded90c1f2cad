// Compute threads of one worker (--threads N): N − 1 helper threads share the WebAssembly memory
// that holds the rows, so a step's chunks can run on several CPUs, as PyTorch's intra-op threads
// do. The main thread keeps its own share and waits (briefly, blocking) for the helpers' losses.
// Waking a thread costs tens of µs on a VM, so small steps stay on the main thread, and threads
// poll for up to SPIN_MS before they sleep.

import { Worker } from 'node:worker_threads';
import type { RawCall, SharedKernel } from '../shared/kernel.js';
import type { WasmMemory } from '../shared/kernel-wasm.js';

/** Numbers per kernel call in the shared call buffer. */
export const CALL_WIDTH = 9;
/**
 * Slots of a helper's control array: request sequence (−1: stop), answered sequence, calls in the
 * request; and what the helper reports of itself: requests it has run, returns from Atomics.wait,
 * whether it is (about to be) asleep in Atomics.wait. A request is run once per sequence number,
 * whatever wakes the thread (issue #10: a wake-up without a new request re-ran the last one).
 */
export const CONTROL = { request: 0, done: 1, count: 2, runs: 3, wakes: 4, sleeping: 5 } as const;
export const CONTROL_SLOTS = 6;

export interface ThreadData {
  readonly memory: WasmMemory;
  /** The worker's implementation of the kernel (native or wasm): its threads run the same one. */
  readonly implementation: SharedKernel['implementation'];
  readonly control: SharedArrayBuffer;
  readonly calls: SharedArrayBuffer;
  readonly losses: SharedArrayBuffer;
  /** CPU to pin the thread to (Linux, taskset), or null. */
  readonly cpu: number | null;
}

/** Below this much work (rows × (D + 40), the 40 for exp and log1p) a step is not worth splitting. */
export const MIN_SPLIT_WORK = 100_000;
/** How long a thread polls before it sleeps, waiting for the next step's work or for a helper's answer. */
export const SPIN_MS = 1;
/** A helper that has not answered within this time is broken: the worker fails rather than hang. */
const ANSWER_TIMEOUT_MS = 60_000;

interface Helper {
  readonly thread: Worker;
  readonly control: Int32Array;
  readonly calls: Float64Array;
  readonly losses: Float64Array;
}

export class ComputePool {
  private readonly helpers: Helper[];
  private sequence = 0;
  private failure: Error | null = null;
  /** Steps split over the threads so far. */
  stepsSplit = 0;

  /** Starts `threads − 1` helpers of `kernel` for up to `maxCalls` calls each; `cpus[i]` pins helper i (when given). */
  constructor(kernel: Pick<SharedKernel, 'memory' | 'implementation'>, threads: number, maxCalls: number, cpus: readonly number[]) {
    this.helpers = Array.from({ length: threads - 1 }, (_, i) => {
      const data: ThreadData = {
        memory: kernel.memory,
        implementation: kernel.implementation,
        control: new SharedArrayBuffer(CONTROL_SLOTS * 4),
        calls: new SharedArrayBuffer(maxCalls * CALL_WIDTH * 8),
        losses: new SharedArrayBuffer(maxCalls * 8),
        cpu: cpus[i] ?? null,
      };
      const thread = new Worker(new URL('./compute-thread.js', import.meta.url), { workerData: data });
      thread.unref(); // the worker's lifetime is its connection's, not its threads'
      thread.on('error', (error) => {
        this.failure = error;
      });
      return { thread, control: new Int32Array(data.control), calls: new Float64Array(data.calls), losses: new Float64Array(data.losses) };
    });
  }

  /** Threads in all, the main thread included. */
  get threads(): number {
    return this.helpers.length + 1;
  }

  /** Hands helper i the calls `shares[i]`; returns at once (the caller computes its own share, then calls finish). */
  start(shares: readonly (readonly RawCall[])[]): void {
    if (this.failure !== null) throw this.failure;
    this.sequence++;
    this.stepsSplit++;
    shares.forEach((share, i) => {
      const helper = this.helpers[i]!; // shares.length <= helpers.length
      for (const [k, call] of share.entries()) helper.calls.set(call, k * CALL_WIDTH);
      Atomics.store(helper.control, CONTROL.count, share.length);
      Atomics.store(helper.control, CONTROL.request, this.sequence);
      Atomics.notify(helper.control, CONTROL.request);
    });
  }

  /** Requests helper i has run so far (each sequence number once). */
  runsOf(helper: number): number {
    return Atomics.load(this.helpers[helper]!.control, CONTROL.runs); // helper < threads − 1
  }

  /** Waits for the helpers started by `start` and returns their losses, share by share. */
  finish(shares: readonly (readonly RawCall[])[]): Float64Array[] {
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    return shares.map((share, i) => {
      const helper = this.helpers[i]!;
      const spinUntil = performance.now() + SPIN_MS;
      while (Atomics.load(helper.control, CONTROL.done) !== this.sequence && performance.now() < spinUntil) {
        // busy-wait: the helper is computing its share and answers within about the time this thread took
      }
      for (;;) {
        const done = Atomics.load(helper.control, CONTROL.done);
        if (done === this.sequence) break;
        if (this.failure !== null) throw this.failure;
        if (Date.now() > deadline) throw new Error(`compute thread ${i + 1} did not answer within ${ANSWER_TIMEOUT_MS} ms`);
        Atomics.wait(helper.control, CONTROL.done, done, 100);
      }
      return helper.losses.subarray(0, share.length);
    });
  }

  close(): void {
    for (const helper of this.helpers) {
      Atomics.store(helper.control, CONTROL.request, -1);
      Atomics.notify(helper.control, CONTROL.request);
    }
  }
}

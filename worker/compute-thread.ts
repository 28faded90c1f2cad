// A compute thread of a worker (--threads): runs the gradient kernel on the chunks the worker's
// main thread hands it, over the same WebAssembly memory (the rows are read where they lie), and
// answers with each chunk's loss. Only where the arithmetic runs changes: each chunk is still one
// kernel call over the same rows in the same order, so a step's bits do not depend on the threads.

import { workerData } from 'node:worker_threads';
import { pinThisThread } from '../shared/cpus.js';
import { sharedAccumulate } from '../shared/kernel.js';
import { CALL_WIDTH, CONTROL, SPIN_MS, type ThreadData } from './compute-pool.js';

const data = workerData as ThreadData; // set by ComputePool, the only creator of this thread
// The worker's implementation (the native addon or the wasm module) over the worker's memory.
const accumulate = sharedAccumulate(data.memory, data.implementation);
// Pinned like the processes of dpt train; unpinned (the OS places it) where that fails.
if (data.cpu !== null) pinThisThread(data.cpu);
const control = new Int32Array(data.control);
const calls = new Float64Array(data.calls);
const losses = new Float64Array(data.losses);
let seen = 0;
for (;;) {
  // Steps come back to back: polling a little before sleeping saves the wake-up of a halted CPU
  // (~0.1 ms on a VM) on every step, as MPI's progress loops do; a pause longer than this sleeps.
  let request = Atomics.load(control, CONTROL.request);
  const spinUntil = performance.now() + SPIN_MS;
  while (request === seen && performance.now() < spinUntil) {
    // busy-wait: the thread has a CPU of its own (dpt train pins it), and only between steps
    request = Atomics.load(control, CONTROL.request);
  }
  // Atomics.wait can return without a new request (a notify meant for nobody, an interrupt):
  // only a new sequence number is work, else this thread would run the last request again and
  // add its chunks into the sums twice.
  while (request === seen) {
    Atomics.store(control, CONTROL.sleeping, 1);
    Atomics.wait(control, CONTROL.request, seen);
    Atomics.store(control, CONTROL.sleeping, 0);
    Atomics.add(control, CONTROL.wakes, 1);
    request = Atomics.load(control, CONTROL.request);
  }
  if (request < 0) break; // the pool is closing
  const count = Atomics.load(control, CONTROL.count);
  for (let i = 0; i < count; i++) {
    const at = i * CALL_WIDTH;
    losses[i] = accumulate(
      calls[at]!,
      calls[at + 1]!,
      calls[at + 2]!,
      calls[at + 3]!,
      calls[at + 4]!,
      calls[at + 5]!,
      calls[at + 6]!,
      calls[at + 7]!,
      calls[at + 8]!,
    );
  }
  seen = request;
  Atomics.add(control, CONTROL.runs, 1);
  Atomics.store(control, CONTROL.done, request);
  Atomics.notify(control, CONTROL.done);
}

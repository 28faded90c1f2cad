// The scatter's side of the reduction tree, with stub workers and no sockets: a step's chunks go
// out in aligned, sticky ranges in one message for all; a subtree overlapping chunks already in
// is ignored and the chunks it leaves missing are reassigned (never waited for forever); the
// step completes with the bits of the reference tree.

import { describe, expect, it } from 'vitest';
import { resolveCoordinatorConfig } from '../../coordinator/config.js';
import { type Assignment, Scatter, type StepJobSpec } from '../../coordinator/scatter.js';
import type { WorkerConnection, WorkerServer } from '../../coordinator/server.js';
import { decomposeRange, reduceSubtreeInPlace, subtreeEnd, subtreeStart, TreeParts } from '../../shared/reduce.js';

const WIDTH = 3;
const CHUNKS = 8;
const ROWS_PER_CHUNK = 10;
const leaves = Float64Array.from({ length: CHUNKS * WIDTH }, (_, i) => Math.sin(i * 1.7) * 10 ** ((i % 5) - 2));

function subtreeValue(level: number, index: number): Float64Array {
  const start = subtreeStart(level, index);
  const copy = leaves.slice(start * WIDTH, subtreeEnd(level, index, CHUNKS) * WIDTH);
  reduceSubtreeInPlace(copy, WIDTH, start, level, index, CHUNKS);
  return copy.slice(0, WIDTH);
}

function part(step: number, pairs: number[]): { kind: 'part'; step: number; subtrees: Uint32Array; sums: Float64Array; rows: Uint32Array } {
  const sums = new Float64Array((pairs.length / 2) * WIDTH);
  const rows = new Uint32Array(pairs.length / 2);
  for (let k = 0; k < pairs.length; k += 2) {
    sums.set(subtreeValue(pairs[k]!, pairs[k + 1]!), (k / 2) * WIDTH);
    rows[k / 2] = (subtreeEnd(pairs[k]!, pairs[k + 1]!, CHUNKS) - subtreeStart(pairs[k]!, pairs[k + 1]!)) * ROWS_PER_CHUNK;
  }
  return { kind: 'part', step, subtrees: Uint32Array.from(pairs), sums, rows };
}

function setUp(workerIds: number[]): { scatter: Scatter; workers: WorkerConnection[]; sent: Assignment[][]; logs: string[]; spec: StepJobSpec } {
  const config = resolveCoordinatorConfig({ dataPath: 'unused', backupFactor: 0 });
  const logs: string[] = [];
  const scatter = new Scatter(
    config,
    CHUNKS,
    () => undefined,
    (line) => logs.push(line),
  );
  // Stubs with just what the scatter uses of a connection and of the server.
  const workers = workerIds.map(
    (id) => ({ id, address: `stub ${id}`, capacity: 1, isRelay: false, sendBytes: () => undefined }) as unknown as WorkerConnection,
  );
  const server = { readyWorkers: () => workers, drop: () => undefined } as unknown as WorkerServer;
  scatter.attach(server);
  const sent: Assignment[][] = [];
  const spec: StepJobSpec = {
    kind: 'step',
    id: 0,
    units: CHUNKS,
    parts: new TreeParts(CHUNKS, WIDTH),
    label: 'step 0',
    unitRows: (first, end) => (end - first) * ROWS_PER_CHUNK,
    send: (assignments) => sent.push(assignments.map(({ worker, units }) => ({ worker, units: [...units] }))),
  };
  return { scatter, workers, sent, logs, spec };
}

function reference(): number[] {
  const whole = leaves.slice();
  reduceSubtreeInPlace(whole, WIDTH, 0, 3, 0, CHUNKS);
  return Array.from(whole.subarray(0, WIDTH));
}

describe('the scatter along the reduction tree', () => {
  it('sends one message for all workers with aligned ranges sorted by worker id, the same at every step', async () => {
    const { scatter, workers, sent, spec } = setUp([7, 3]);
    for (let step = 0; step < 2; step++) {
      const done = scatter.run({ ...spec, id: step });
      expect(sent).toHaveLength(step + 1); // one send (one encoded message) for both workers
      const last = sent[step]!;
      expect(last.map(({ worker, units }) => [worker.id, units[0], units.at(-1)])).toEqual([
        [3, 0, 3],
        [7, 4, 7],
      ]);
      scatter.part(workers[1]!, part(step, decomposeRange(0, 4, CHUNKS)));
      scatter.part(workers[0]!, part(step, decomposeRange(4, 8, CHUNKS)));
      expect(await done).toEqual({ contributors: 2, rowsAccounted: CHUNKS * ROWS_PER_CHUNK });
      const out = new Float64Array(WIDTH);
      spec.parts.reduce(out);
      expect(Array.from(out)).toEqual(reference());
    }
  });

  it('ignores a subtree overlapping chunks already in, reassigns the chunks it leaves missing, and completes with the reference bits', async () => {
    const { scatter, workers, sent, logs, spec } = setUp([1, 2]);
    const done = scatter.run(spec);
    const [a, b] = workers as [WorkerConnection, WorkerConnection];
    // Worker 1 holds [0, 4): it answers chunks 0-1 as one subtree, then (a second answer, cut
    // another way) the whole range, which overlaps what is in: ignored, chunks 2-3 still missing.
    scatter.part(a, part(0, [1, 0]));
    scatter.part(a, part(0, [2, 0]));
    expect(spec.parts.pending).toBe(6);
    expect(logs.join('\n')).toMatch(/step 0: 2 chunk\(s\) overlapped parts already in and are recomputed/);
    // Chunks 2-3 were handed out again, to an idle worker.
    const again = sent.at(-1)!;
    expect(again.flatMap(({ units }) => units)).toEqual([2, 3]);
    scatter.part(b, part(0, [2, 1]));
    const redo = again[0]!.worker;
    scatter.part(redo, part(0, [1, 1]));
    expect((await done).rowsAccounted).toBe(CHUNKS * ROWS_PER_CHUNK);
    const out = new Float64Array(WIDTH);
    spec.parts.reduce(out);
    expect(Array.from(out)).toEqual(reference());
  });

  it('refuses a subtree with chunks the worker was not given, before anything is kept', () => {
    const { scatter, workers, spec } = setUp([1, 2]);
    void scatter.run(spec);
    expect(() => scatter.part(workers[0]!, part(0, [0, 0, 2, 1]))).toThrow(/chunk 4 of step 0 was not assigned to worker 1/);
    expect(spec.parts.pending).toBe(CHUNKS);
    expect(() => scatter.part(workers[0]!, part(0, [4, 0]))).toThrow(/not a subtree/);
  });
});

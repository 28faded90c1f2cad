// The pure pieces relays stand on (issue #11 item 3): shares weighted by capacity and still aligned
// to the reduction tree; a partial tree that finishes a relay's subtrees to the whole tree's bits;
// the capacity on the wire, checked at the boundary; and the scatter telling a stale answer (to a
// job that has ended, of the same step) from a current one, and weighting a relay by its workers.

import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { alignedShares, weightedAlignedShares } from '../../coordinator/assignment.js';
import { resolveCoordinatorConfig } from '../../coordinator/config.js';
import { type Assignment, Scatter, type StepJobSpec } from '../../coordinator/scatter.js';
import type { WorkerConnection, WorkerServer } from '../../coordinator/server.js';
import { ProtocolError } from '../../shared/errors.js';
import { decodeWorkerMessage, type Limits } from '../../shared/protocol.js';
import { ChunkParts, decomposeRange, reduceSubtreeInPlace, subtreeEnd, subtreeStart, TreeParts } from '../../shared/reduce.js';

const WIDTH = 3;

/** Leaves with values of very different magnitudes, so any change of the addition order changes bits. */
function leaves(chunks: number): Float64Array {
  return Float64Array.from({ length: chunks * WIDTH }, (_, i) => Math.sin(i * 1.37 + 0.2) * 10 ** ((i % 7) - 3));
}

/** Node (level, index) computed straight from the definition, by reduceSubtreeInPlace on a copy. */
function nodeValue(values: Float64Array, chunks: number, level: number, index: number): Float64Array {
  const start = subtreeStart(level, index);
  const copy = values.slice(start * WIDTH, subtreeEnd(level, index, chunks) * WIDTH);
  reduceSubtreeInPlace(copy, WIDTH, start, level, index, chunks);
  return copy.slice(0, WIDTH);
}

/** A seeded generator of [0, 1) for property loops. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('capacity-weighted aligned shares', () => {
  it('are exactly alignedShares when every capacity is 1', () => {
    for (const chunks of [1, 3, 8, 48, 64, 100]) {
      for (let workers = 1; workers <= chunks; workers++) expect(weightedAlignedShares(chunks, Array(workers).fill(1))).toEqual(alignedShares(chunks, workers));
    }
  });

  it('give a relay of 16 the share of 16 workers, one aligned subtree each for 4 relays over 64 chunks', () => {
    const bounds = weightedAlignedShares(64, [16, 16, 16, 16]);
    expect(bounds).toEqual([0, 16, 32, 48, 64]);
    for (let i = 0; i < 4; i++) expect(decomposeRange(bounds[i]!, bounds[i + 1]!, 64)).toEqual([4, i]);
    // Relays of 3 and 3 and two workers: 8 capacity over 64 chunks, granules of 8.
    expect(weightedAlignedShares(64, [3, 3, 1, 1])).toEqual([0, 24, 48, 56, 64]);
    // A relay of 32 and two of 16 (one relay died and its workers moved): still aligned.
    expect(weightedAlignedShares(64, [32, 16, 16])).toEqual([0, 32, 48, 64]);
  });

  it('fill shares in order, up to each capacity, when the capacity exceeds the chunks', () => {
    expect(weightedAlignedShares(8, [16, 16])).toEqual([0, 8, 8]);
    expect(weightedAlignedShares(8, Array(10).fill(1))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8]);
  });

  it('cover the chunks in order, each share within a granule of its weighted part and few subtrees', () => {
    const next = random(11);
    for (let trial = 0; trial < 500; trial++) {
      const chunks = 1 + Math.floor(next() * 300);
      const capacities = Array.from({ length: 1 + Math.floor(next() * 8) }, () => 1 + Math.floor(next() * 40));
      const total = capacities.reduce((sum, capacity) => sum + capacity, 0);
      const bounds = weightedAlignedShares(chunks, capacities);
      expect(bounds).toHaveLength(capacities.length + 1);
      expect(bounds[0]).toBe(0);
      expect(bounds.at(-1)).toBe(chunks);
      let granule = 1;
      while (granule * 2 * total <= chunks) granule *= 2;
      let before = 0;
      for (let i = 0; i < capacities.length; i++) {
        expect(bounds[i + 1]!).toBeGreaterThanOrEqual(bounds[i]!);
        before += capacities[i]!;
        if (total <= chunks) {
          // Cut on the granule grid (or at the end), within one granule of the exact weighted boundary.
          expect(bounds[i + 1]! % granule === 0 || bounds[i + 1] === chunks).toBe(true);
          expect(Math.abs(bounds[i + 1]! - (chunks * before) / total)).toBeLessThanOrEqual(granule + chunks / Math.ceil(chunks / granule));
          // Every unit of capacity can get a chunk: a share is never empty.
          expect(bounds[i + 1]!).toBeGreaterThan(bounds[i]!);
        }
        if (bounds[i + 1]! > bounds[i]!)
          expect(decomposeRange(bounds[i]!, bounds[i + 1]!, chunks).length / 2).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(chunks + 1)));
      }
    }
  });
});

describe('a partial tree (a relay holds a share of the step)', () => {
  it("finishes each maximal subtree of a relay's ranges from its workers' pieces with the whole tree's bits", () => {
    const next = random(5);
    for (let trial = 0; trial < 200; trial++) {
      const chunks = 1 + Math.floor(next() * 100);
      const values = leaves(chunks);
      // The relay's ranges: one or two contiguous runs.
      const a = Math.floor(next() * chunks);
      const b = a + 1 + Math.floor(next() * (chunks - a));
      const ranges: [number, number][] = [[a, b]];
      if (b + 1 < chunks) ranges.push([b + 1, b + 2 + Math.floor(next() * (chunks - b - 1))]);
      const only: number[] = [];
      for (const [first, end] of ranges) for (let c = first; c < end; c++) only.push(c);
      const parts = new TreeParts(chunks, WIDTH);
      parts.reset(chunks, only);
      expect(parts.pending).toBe(only.length);
      // The group's workers hold pieces of the ranges cut at random points, each sent as its subtrees.
      for (const [first, end] of ranges) {
        let at = first;
        while (at < end) {
          const stop = Math.min(end, at + 1 + Math.floor(next() * 9));
          const pieces = decomposeRange(at, stop, chunks);
          for (let k = 0; k < pieces.length; k += 2)
            expect(parts.accept(pieces[k]!, pieces[k + 1]!, nodeValue(values, chunks, pieces[k]!, pieces[k + 1]!), 0)).toBe(true);
          at = stop;
        }
      }
      expect(parts.pending).toBe(0);
      // A chunk outside the relay's share counts as covered: a subtree reaching it is refused.
      if (a > 0) expect(parts.accept(0, a - 1, new Float64Array(WIDTH), 0)).toBe(false);
      for (const [first, end] of ranges) {
        const nodes = decomposeRange(first, end, chunks);
        for (let k = 0; k < nodes.length; k += 2) {
          const out = new Float64Array(WIDTH + 1).fill(Number.NaN);
          parts.reduceNode(nodes[k]!, nodes[k + 1]!, out, 1);
          expect(Array.from(out.subarray(1))).toEqual(Array.from(nodeValue(values, chunks, nodes[k]!, nodes[k + 1]!)));
        }
      }
    }
  });

  it("gives the root of the whole tree when the relays' subtrees are combined by the coordinator", () => {
    const chunks = 64;
    const values = leaves(chunks);
    const whole = new TreeParts(chunks, WIDTH);
    whole.reset(chunks);
    for (let relay = 0; relay < 4; relay++) {
      const relayParts = new TreeParts(chunks, WIDTH);
      const only = Array.from({ length: 16 }, (_, i) => relay * 16 + i);
      relayParts.reset(chunks, only);
      for (const c of only) relayParts.accept(0, c, values, c * WIDTH);
      const node = new Float64Array(WIDTH);
      relayParts.reduceNode(4, relay, node, 0);
      expect(whole.accept(4, relay, node, 0)).toBe(true);
    }
    const root = new Float64Array(WIDTH);
    whole.reduce(root);
    expect(Array.from(root)).toEqual(Array.from(nodeValue(values, chunks, 6, 0)));
  });

  it('refuses to finish a node with a chunk still uncovered', () => {
    const parts = new TreeParts(8, WIDTH);
    parts.reset(8, [4, 5, 6, 7]);
    parts.accept(1, 2, new Float64Array(WIDTH), 0);
    expect(() => parts.reduceNode(2, 1, new Float64Array(WIDTH), 0)).toThrow(/chunk 6 uncovered/);
  });

  it('keeps the blocks of a pass share apart and reads each back', () => {
    const parts = new ChunkParts(10, 2);
    parts.reset(10, [2, 5, 6]);
    expect(parts.pending).toBe(3);
    expect(parts.has(0)).toBe(true);
    expect(parts.accept(5, Float64Array.from([7, 8]), 0)).toBe(true);
    const out = new Float64Array(4);
    parts.read(5, out, 2);
    expect(Array.from(out)).toEqual([0, 0, 7, 8]);
  });
});

describe('capacity on the wire', () => {
  const limits: Limits = { features: 3, parameters: 4, maxChunks: 4 };
  const raw = new Packr({ moreTypes: true, useRecords: false });
  const fieldOf = (fields: Record<string, unknown>): string => {
    try {
      decodeWorkerMessage(raw.pack(fields), limits);
    } catch (error) {
      if (error instanceof ProtocolError) return error.field;
      throw error;
    }
    return 'accepted';
  };

  it('accepts a relay ready with a capacity, a capacity message and a part counting its workers', () => {
    expect(decodeWorkerMessage(raw.pack({ kind: 'ready', rows: 10, features: 3, sha256: 'x', capacity: 0 }), limits)).toMatchObject({ capacity: 0 });
    expect(decodeWorkerMessage(raw.pack({ kind: 'capacity', workers: 16 }), limits)).toEqual({ kind: 'capacity', workers: 16 });
    const part = { kind: 'part', step: 1, subtrees: Uint32Array.from([2, 0]), sums: new Float64Array(5), rows: Uint32Array.from([4]), workers: 16 };
    expect(decodeWorkerMessage(raw.pack(part), limits)).toMatchObject({ workers: 16 });
  });

  it.each([
    ['a negative capacity', { kind: 'capacity', workers: -1 }, 'workers'],
    ['a fractional capacity', { kind: 'capacity', workers: 1.5 }, 'workers'],
    ['a capacity as text', { kind: 'capacity', workers: '16' }, 'workers'],
    ['a capacity beyond 2^24', { kind: 'capacity', workers: 2 ** 24 + 1 }, 'workers'],
    ['a ready with a NaN capacity', { kind: 'ready', rows: 10, features: 3, sha256: 'x', capacity: Number.NaN }, 'capacity'],
    [
      'a part counting no worker',
      { kind: 'part', step: 1, subtrees: Uint32Array.from([2, 0]), sums: new Float64Array(5), rows: Uint32Array.from([4]), workers: 0 },
      'workers',
    ],
  ])('rejects %s naming the field', (_name, fields, field) => {
    expect(fieldOf(fields)).toBe(field);
  });
});

describe('the scatter with relays', () => {
  const CHUNKS = 8;
  function setUp(connections: { id: number; capacity: number }[]): { scatter: Scatter; workers: WorkerConnection[]; sent: Assignment[][]; spec: StepJobSpec } {
    const scatter = new Scatter(
      resolveCoordinatorConfig({ dataPath: 'unused', backupFactor: 0 }),
      CHUNKS,
      () => undefined,
      () => undefined,
    );
    // Stubs with just what the scatter uses of a connection and of the server.
    const workers = connections.map(
      ({ id, capacity }) => ({ id, capacity, isRelay: capacity !== 1, address: `stub ${id}`, sendBytes: () => undefined }) as unknown as WorkerConnection,
    );
    scatter.attach({ readyWorkers: () => workers, drop: () => undefined } as unknown as WorkerServer);
    const sent: Assignment[][] = [];
    const spec: StepJobSpec = {
      kind: 'step',
      id: 0,
      units: CHUNKS,
      parts: new TreeParts(CHUNKS, WIDTH),
      label: 'step 0',
      unitRows: (first, end) => end - first,
      send: (assignments) => sent.push(assignments.map(({ worker, units }) => ({ worker, units: [...units] }))),
    };
    return { scatter, workers, sent, spec };
  }
  const part = (pairs: number[], workers?: number) => ({
    kind: 'part' as const,
    step: 0,
    subtrees: Uint32Array.from(pairs),
    sums: new Float64Array((pairs.length / 2) * WIDTH),
    rows: Uint32Array.from(
      { length: pairs.length / 2 },
      (_, k) => subtreeEnd(pairs[2 * k]!, pairs[2 * k + 1]!, CHUNKS) - subtreeStart(pairs[2 * k]!, pairs[2 * k + 1]!),
    ),
    ...(workers === undefined ? {} : { workers }),
  });

  it("weights a relay by its workers and counts them among the step's contributors", async () => {
    const { scatter, workers, sent, spec } = setUp([
      { id: 1, capacity: 1 },
      { id: 2, capacity: 3 },
    ]);
    const done = scatter.run(spec);
    expect(sent[0]!.map(({ worker, units }) => [worker.id, units])).toEqual([
      [2, [0, 1, 2, 3, 4, 5]],
      [1, [6, 7]],
    ]);
    scatter.part(workers[1]!, part([2, 0, 1, 2], 3));
    scatter.part(workers[0]!, part([1, 3]));
    expect(await done).toEqual({ contributors: 4, rowsAccounted: CHUNKS });
  });

  it('ignores an answer to an ended job of the same step, where checking it would drop the worker', async () => {
    const { scatter, workers, sent, spec } = setUp([
      { id: 1, capacity: 1 },
      { id: 2, capacity: 1 },
    ]);
    // Job 1 (e.g. a relay's first share of step 0) is cancelled before worker 1 answers it.
    const first = scatter.run({ ...spec, only: [0, 1, 2, 3] });
    scatter.cancel(new Error('session ended'));
    await expect(first).rejects.toThrow('session ended');
    // Job 2 of the same step gives other chunks to the workers; worker 1's late answer to job 1 comes first.
    const second = scatter.run({ ...spec, only: [4, 5, 6, 7] });
    expect(sent[1]!.map(({ worker, units }) => [worker.id, units])).toEqual([
      [1, [4, 5]],
      [2, [6, 7]],
    ]);
    expect(() => scatter.part(workers[0]!, part([1, 0]))).not.toThrow();
    expect(spec.parts.pending).toBe(4);
    scatter.part(workers[0]!, part([1, 2]));
    // Worker 2 answers in order too: job 1's share (stale, ignored), then job 2's.
    scatter.part(workers[1]!, part([1, 1]));
    expect(spec.parts.pending).toBe(2);
    scatter.part(workers[1]!, part([1, 3]));
    expect((await second).rowsAccounted).toBe(4);
  });
});

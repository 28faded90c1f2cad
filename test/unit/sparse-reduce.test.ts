import { describe, expect, it } from 'vitest';
import { type DptError, ProtocolError } from '../../shared/errors.js';
import { decomposeRange, reduceSubtreeInPlace, subtreeStart, TreeParts } from '../../shared/reduce.js';
import { addSparseParts, reduceSparseRange, reduceSparseSubtree, SparseTreeParts, sparsePartsFromWire, sparsePartsToWire } from '../../shared/sparse-reduce.js';
import type { SparsePart } from '../../shared/sparse-rows.js';
import { bitsOf, lcg } from '../helpers/sparse-random.js';

/** A random part: a random subset of [0, D) (sometimes empty or full), values of mixed magnitudes so that the order of additions shows in the bits. */
function randomPart(next: () => number, D: number, O: number): SparsePart {
  const density = [0, 0.05, 0.3, 1][Math.floor(next() * 4)]!;
  const list: number[] = [];
  for (let j = 0; j < D; j++) if (next() < density) list.push(j);
  const value = (): number => (next() * 2 - 1) * 2 ** Math.floor(next() * 60 - 30);
  const values = Float64Array.from({ length: list.length * O }, value);
  return { indices: Uint32Array.from(list), values, bias: Float64Array.from({ length: O }, value), loss: value() };
}

/** The dense part of the same numbers: D·O gradient values (coordinate j, output o at j·O + o), O biases, the loss; +0 where untouched. */
function densify(part: SparsePart, D: number, O: number): Float64Array {
  const dense = new Float64Array(D * O + O + 1);
  part.indices.forEach((j, k) => {
    for (let o = 0; o < O; o++) dense[j * O + o] = part.values[k * O + o]!;
  });
  dense.set(part.bias, D * O);
  dense[D * O + O] = part.loss;
  return dense;
}

describe('addSparseParts', () => {
  it('adds left + right where both hold a coordinate and keeps a single holder’s value unchanged', () => {
    const left: SparsePart = { indices: Uint32Array.of(1, 4, 7), values: Float64Array.of(1, 10, 2, 20, 3, 30), bias: Float64Array.of(0.5, 1), loss: 2 };
    const right: SparsePart = { indices: Uint32Array.of(0, 4, 9), values: Float64Array.of(-1, -10, 0.25, 0.5, 4, 40), bias: Float64Array.of(1, 2), loss: 3 };
    const sum = addSparseParts(left, right, 2);
    expect([...sum.indices]).toEqual([0, 1, 4, 7, 9]);
    expect([...sum.values]).toEqual([-1, -10, 1, 10, 2.25, 20.5, 3, 30, 4, 40]);
    expect([...sum.bias]).toEqual([1.5, 3]);
    expect(sum.loss).toBe(5);
  });
});

describe('the sparse reduction', () => {
  it('equals the dense reduction of the densified parts bit for bit, for every subtree of many chunk counts', () => {
    const next = lcg(7);
    for (const chunks of [1, 2, 3, 5, 7, 8, 13, 16, 31]) {
      for (const O of [1, 3]) {
        const D = 1 + Math.floor(next() * 40);
        const parts = Array.from({ length: chunks }, () => randomPart(next, D, O));
        const width = D * O + O + 1;
        for (let from = 0; from < chunks; from++) {
          for (let to = from + 1; to <= chunks; to++) {
            const dense = new Float64Array((to - from) * width);
            parts.slice(from, to).forEach((part, c) => {
              dense.set(densify(part, D, O), c * width);
            });
            const nodes = reduceSparseRange(parts.slice(from, to), from, to, chunks, O);
            const expected = decomposeRange(from, to, chunks);
            expect(nodes.flatMap((n) => [n.level, n.index])).toEqual(expected);
            for (const { level, index, part } of nodes) {
              reduceSubtreeInPlace(dense, width, from, level, index, chunks);
              const slot = subtreeStart(level, index) - from;
              expect(bitsOf(densify(part, D, O)), `chunks ${chunks}, [${from}, ${to}), node (${level}, ${index})`).toEqual(
                bitsOf(dense.subarray(slot * width, (slot + 1) * width)),
              );
              for (let k = 1; k < part.indices.length; k++) expect(part.indices[k]!).toBeGreaterThan(part.indices[k - 1]!);
            }
          }
        }
      }
    }
  });

  it('gives the dense root through SparseTreeParts and TreeParts, whatever the ranges and the arrival order', () => {
    const next = lcg(11);
    for (let trial = 0; trial < 60; trial++) {
      const chunks = 1 + Math.floor(next() * 24);
      const O = next() < 0.5 ? 1 : 4;
      const D = 1 + Math.floor(next() * 30);
      const width = D * O + O + 1;
      const parts = Array.from({ length: chunks }, () => randomPart(next, D, O));
      // Cut [0, chunks) into random ranges (workers), each sending its decomposed subtrees.
      const cuts = [0];
      while (cuts[cuts.length - 1]! < chunks) cuts.push(Math.min(chunks, cuts[cuts.length - 1]! + 1 + Math.floor(next() * 6)));
      const received: { level: number; index: number; part: SparsePart }[] = [];
      for (let r = 0; r + 1 < cuts.length; r++) received.push(...reduceSparseRange(parts.slice(cuts[r], cuts[r + 1]), cuts[r]!, cuts[r + 1]!, chunks, O));
      for (let i = received.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [received[i], received[j]] = [received[j]!, received[i]!];
      }
      const sparseTree = new SparseTreeParts(32, O);
      const denseTree = new TreeParts(32, width);
      sparseTree.reset(chunks);
      denseTree.reset(chunks);
      for (const { level, index, part } of received) {
        expect(sparseTree.accept(level, index, part)).toBe(true);
        expect(denseTree.accept(level, index, densify(part, D, O), 0)).toBe(true);
        // A second copy of a subtree (a backup's) is refused.
        expect(sparseTree.accept(level, index, part)).toBe(false);
      }
      expect(sparseTree.pending).toBe(0);
      const root = new Float64Array(width);
      denseTree.reduce(root);
      expect(bitsOf(densify(sparseTree.reduce(), D, O)), `trial ${trial}, ${chunks} chunks, cuts ${cuts}`).toEqual(bitsOf(root));
      // And equals the whole tree computed in one place.
      expect(bitsOf(densify(reduceSparseSubtree(parts, 0, Math.ceil(Math.log2(chunks)), 0, chunks, O), D, O))).toEqual(bitsOf(root));
    }
  });

  it('refuses a subtree overlapping covered chunks and finishes a relay’s node alone', () => {
    const next = lcg(3);
    const O = 2;
    const D = 10;
    const parts = Array.from({ length: 8 }, () => randomPart(next, D, O));
    const tree = new SparseTreeParts(8, O);
    tree.reset(8, [4, 5, 6, 7]);
    expect(tree.accept(0, 4, parts[4]!)).toBe(true);
    expect(tree.accept(1, 2, reduceSparseSubtree(parts, 0, 1, 2, 8, O))).toBe(false); // overlaps chunk 4
    expect(tree.accept(0, 5, parts[5]!)).toBe(true);
    expect(tree.accept(1, 3, reduceSparseSubtree(parts, 0, 1, 3, 8, O))).toBe(true);
    expect(tree.pending).toBe(0);
    expect(bitsOf(densify(tree.reduceNode(2, 1), D, O))).toEqual(bitsOf(densify(reduceSparseSubtree(parts, 0, 2, 1, 8, O), D, O)));
  });
});

describe('the wire form of sparse parts', () => {
  const O = 2;
  const D = 50;
  const parts: SparsePart[] = [
    { indices: Uint32Array.of(0, 3, 17, 49), values: Float64Array.of(1, 2, 3, 4, 5, 6, 7, 8), bias: Float64Array.of(0.5, 1.5), loss: 2.5 },
    { indices: new Uint32Array(0), values: new Float64Array(0), bias: Float64Array.of(1, 2), loss: 0 },
    { indices: Uint32Array.of(2, 40), values: Float64Array.of(-1, -2, -3, -4), bias: Float64Array.of(-0.5, 0.25), loss: 1 },
  ];

  it('round-trips a list of parts', () => {
    const back = sparsePartsFromWire(sparsePartsToWire(parts, O), O, D, 'part', 'parts');
    expect(back).toHaveLength(3);
    back.forEach((part, p) => {
      expect(bitsOf(densify(part, D, O))).toEqual(bitsOf(densify(parts[p]!, D, O)));
    });
  });

  const cases: [string, (wire: ReturnType<typeof sparsePartsToWire>) => Parameters<typeof sparsePartsFromWire>[0], string, RegExp][] = [
    ['a count too large', (w) => ({ ...w, counts: Uint32Array.of(w.counts[0]! + 1, w.counts[1]!, w.counts[2]!) }), 'parts.indices', /expected \d+ indices/],
    ['a count summing past 2^32', (w) => ({ ...w, counts: Uint32Array.of(2 ** 32 - 1, 2 ** 32 - 1, 5) }), 'parts.indices', /expected \d+ indices/],
    ['values of the wrong length', (w) => ({ ...w, values: w.values.subarray(1) }), 'parts.values', /expected \d+ values/],
    ['sums of the wrong length', (w) => ({ ...w, sums: w.sums.subarray(1) }), 'parts.sums', /expected 9 values/],
    [
      'an index not below D',
      (w) => ({ ...w, indices: Uint32Array.from(w.indices, (j, k) => (k === w.indices.length - 1 ? D : j)) }),
      'parts.indices',
      /not below D = 50/,
    ],
    [
      'an index out of order',
      (w) => ({ ...w, indices: Uint32Array.from(w.indices, (j, k) => (k === 1 ? w.indices[0]! : j)) }),
      'parts.indices',
      /not above the previous/,
    ],
  ];
  for (const [name, corrupt, field, message] of cases) {
    it(`rejects ${name} with a ProtocolError naming the field`, () => {
      const wire = corrupt(sparsePartsToWire(parts, O));
      let error: unknown;
      try {
        sparsePartsFromWire(wire, O, D, 'part', 'parts');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as ProtocolError).field).toBe(field);
      expect((error as DptError).code).toBe('DPT_PROTOCOL');
      expect((error as Error).message).toMatch(message);
      expect((error as ProtocolError).isNonFinite).toBe(false);
    });
  }

  it('flags a non-finite value as such', () => {
    const wire = sparsePartsToWire(parts, O);
    const values = Float64Array.from(wire.values);
    values[3] = Number.NaN;
    expect(() => sparsePartsFromWire({ ...wire, values }, O, D, 'part', 'parts')).toThrow(
      expect.objectContaining({ field: 'parts.values', isNonFinite: true }),
    );
    const sums = Float64Array.from(wire.sums);
    sums[8] = Number.POSITIVE_INFINITY;
    expect(() => sparsePartsFromWire({ ...wire, sums }, O, D, 'part', 'parts')).toThrow(expect.objectContaining({ field: 'parts.sums', isNonFinite: true }));
  });
});

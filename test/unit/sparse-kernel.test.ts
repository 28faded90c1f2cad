import { describe, expect, it } from 'vitest';
import { logisticShape, type ModelShape, softmaxShape } from '../../shared/model-shape.js';
import { createSparseTsKernel, PartAssembler, SPARSE_LOGISTIC_KERNEL_ID, SPARSE_SOFTMAX_KERNEL_ID } from '../../shared/sparse-kernel.js';
import type { SparseParams, SparsePart, SparseRows } from '../../shared/sparse-rows.js';
import { bitsOf, lcg, randomParams, randomRows } from '../helpers/sparse-random.js';

/**
 * The plain float64 reference, written from the formulas (not from the kernel): dense w = scale·v,
 * z = b + Σ_j w_j·x_j, logistic a = σ(z) and L = −[y log a + (1−y) log(1−a)] in softplus form;
 * softmax p = softmax(z), L = log Σ e^(z_k) − z_y; per row g = (p − onehot(y))·c_y, gradient g·x.
 * Returns dense sums (coordinate j, output o at j·O + o), then O biases and the loss, and per
 * entry the sum of the absolute terms (the scale that float64 rounding is relative to).
 */
function reference(shape: ModelShape, rows: SparseRows, order: Uint32Array | null, params: SparseParams, weights: Float64Array | null) {
  const D = shape.features;
  const O = shape.outputs;
  const width = D * O + O + 1;
  const sums = new Float64Array(width);
  const scale = new Float64Array(width);
  for (let i = 0; i < rows.rows; i++) {
    const row = order === null ? i : order[i]!;
    const x = new Float64Array(D);
    for (let k = rows.rowStart[row]!; k < rows.rowStart[row + 1]!; k++) x[rows.indices[k]!] = rows.values[k]!;
    const y = rows.labels[row]!;
    const c = weights === null ? 1 : weights[y]!;
    const z = Array.from({ length: O }, (_, o) => {
      let s = params.bias[o]!;
      for (let j = 0; j < D; j++) s += params.scale * params.v[o * D + j]! * x[j]!;
      return s;
    });
    let g: number[];
    let L: number;
    if (shape.kind === 'logistic') {
      const z0 = z[0]!;
      const a = z0 >= 0 ? 1 / (1 + Math.exp(-z0)) : Math.exp(z0) / (1 + Math.exp(z0));
      g = [(a - y) * c];
      L = (Math.log(1 + Math.exp(-Math.abs(z0))) + Math.max(z0, 0) - y * z0) * c;
    } else {
      const m = Math.max(...z);
      const total = z.reduce((s, zk) => s + Math.exp(zk - m), 0);
      g = z.map((zk, k) => (Math.exp(zk - m) / total - (k === y ? 1 : 0)) * c);
      L = (m + Math.log(total) - z[y]!) * c;
    }
    for (let j = 0; j < D; j++) {
      if (x[j] === 0) continue;
      for (let o = 0; o < O; o++) {
        sums[j * O + o]! += g[o]! * x[j]!;
        scale[j * O + o]! += Math.abs(g[o]! * x[j]!) + 1e-15 * Math.abs(x[j]!);
      }
    }
    for (let o = 0; o < O; o++) {
      sums[D * O + o]! += g[o]!;
      scale[D * O + o]! += Math.abs(g[o]!) + 1e-15;
    }
    sums[D * O + O]! += L;
    scale[D * O + O]! += Math.abs(L) + 1e-15;
  }
  return { sums, scale };
}

function densify(part: SparsePart, D: number, O: number): Float64Array {
  const dense = new Float64Array(D * O + O + 1);
  part.indices.forEach((j, k) => {
    for (let o = 0; o < O; o++) dense[j * O + o] = part.values[k * O + o]!;
  });
  dense.set(part.bias, D * O);
  dense[D * O + O] = part.loss;
  return dense;
}

/** The set of coordinates that rows touch, ascending. */
function touched(rows: SparseRows): number[] {
  return [...new Set(rows.indices)].sort((a, b) => a - b);
}

const SHAPES: [string, ModelShape][] = [
  ['logistic', logisticShape(300)],
  ['softmax K = 3', softmaxShape(3, 300)],
  ['softmax K = 10', softmaxShape(10, 97)],
];

describe('the TypeScript sparse kernel', () => {
  it('carries one id per model', () => {
    expect(createSparseTsKernel(logisticShape(5)).id).toBe(SPARSE_LOGISTIC_KERNEL_ID);
    expect(createSparseTsKernel(softmaxShape(4, 5)).id).toBe(SPARSE_SOFTMAX_KERNEL_ID);
  });

  for (const [name, shape] of SHAPES) {
    for (const weighted of [false, true]) {
      it(`equals a plain float64 reference to 1e-12 (${name}${weighted ? ', class weights' : ''})`, () => {
        const D = shape.features;
        const O = shape.outputs;
        const rows = randomRows({ rows: 400, D, meanNnz: 12, classes: shape.classes, isSoftmax: shape.kind === 'softmax', seed: 17 });
        const params = randomParams(O, D, 23, 0.4);
        const weights = weighted ? Float64Array.from({ length: shape.classes }, (_, k) => 0.5 + k * 0.75) : null;
        const kernel = createSparseTsKernel(shape, weights);
        const order = Uint32Array.from({ length: rows.rows }, (_, i) => (i * 37) % rows.rows);
        for (const rowOrder of [null, order]) {
          kernel.accumulate(rows, rowOrder, 0, rows.rows, params);
          const part = kernel.takePart();
          expect([...part.indices]).toEqual(touched(rows));
          const got = densify(part, D, O);
          const { sums, scale } = reference(shape, rows, rowOrder, params, weights);
          for (let i = 0; i < sums.length; i++) expect(Math.abs(got[i]! - sums[i]!), `entry ${i}`).toBeLessThanOrEqual(1e-12 * scale[i]!);
        }
      });
    }

    it(`gives the same bits however the rows are split into calls, in slot and entry mode (${name})`, () => {
      const D = shape.features;
      const O = shape.outputs;
      const rows = randomRows({ rows: 500, D, meanNnz: 20, classes: shape.classes, isSoftmax: shape.kind === 'softmax', seed: 5 });
      const params = randomParams(O, D, 9, 1.5);
      const kernel = createSparseTsKernel(shape);
      // Entry mode (a slot per entry, merged by a stable sort) must give the slot table's bits.
      const entryKernel = createSparseTsKernel(shape, null, { isEntryMode: true });
      const order = Uint32Array.from({ length: rows.rows }, (_, i) => (i * 211 + 7) % rows.rows);
      const next = lcg(99);
      for (const rowOrder of [null, order]) {
        kernel.accumulate(rows, rowOrder, 0, rows.rows, params);
        const wholePart = kernel.takePart();
        const whole = bitsOf(densify(wholePart, D, O));
        for (let trial = 0; trial < 6; trial++) {
          const splitKernel = trial % 2 === 0 ? kernel : entryKernel;
          let at = 0;
          while (at < rows.rows) {
            const to = Math.min(rows.rows, at + Math.floor(next() * 60));
            splitKernel.accumulate(rows, rowOrder, at, to, params);
            at = to;
          }
          const part = splitKernel.takePart();
          expect([...part.indices]).toEqual([...wholePart.indices]);
          expect(bitsOf(densify(part, D, O))).toEqual(whole);
        }
      }
    });
  }

  it('lists the touched coordinates ascending, sparse parts (radix sort) and dense ones (a sweep) alike', () => {
    for (const [D, rowCount] of [
      [2 ** 24 + 1, 30], // 25-bit indices: three radix passes
      [2 ** 20, 200],
      [1000, 5], // D ≤ 32 × touched: the sweep
      [1000, 400],
    ] as const) {
      const rows = randomRows({ rows: rowCount, D, meanNnz: 20, classes: 2, isSoftmax: false, seed: D });
      const kernel = createSparseTsKernel(logisticShape(D));
      const params: SparseParams = { v: new Float64Array(D), scale: 1, bias: new Float64Array(1) };
      for (let round = 0; round < 2; round++) {
        kernel.accumulate(rows, null, 0, rows.rows, params);
        const part = kernel.takePart();
        expect([...part.indices], `D = ${D}, round ${round}`).toEqual(touched(rows));
        // With v = 0: z = 0, r = 1/2 − y, so each value is Σ (1/2 − y)·x over the rows touching it.
        const expected = new Map<number, number>();
        for (let i = 0; i < rows.rows; i++)
          for (let k = rows.rowStart[i]!; k < rows.rowStart[i + 1]!; k++)
            expected.set(rows.indices[k]!, (expected.get(rows.indices[k]!) ?? 0) + (0.5 - rows.labels[i]!) * rows.values[k]!);
        part.indices.forEach((j, k) => {
          expect(part.values[k]).toBeCloseTo(expected.get(j)!, 12);
        });
      }
    }
  });

  it('closes parts by moving the slot base and clears the slots before it wraps past 2^32', () => {
    const D = 50;
    const assembler = new PartAssembler(D, 1);
    const slotOf = new Uint32Array(D);
    const touched = new Uint32Array(D);
    const sums = new Float64Array(D);
    assembler.base = 2 ** 32 - 1 - D - 7; // 7 slots before the wrap
    for (let round = 0; round < 4; round++) {
      // A part touching coordinates 3, 9, 1 (and 9 again), as a kernel fills the slots.
      let count = 0;
      for (const [j, x] of [
        [3, 1],
        [9, 2],
        [1, 4],
        [9, 8],
      ] as const) {
        let slot = slotOf[j]! - assembler.base;
        if (slot <= 0) {
          touched[count] = j;
          slot = ++count;
          slotOf[j] = assembler.base + slot;
        }
        sums[slot - 1]! += x;
      }
      const part = assembler.take(slotOf, touched, sums, count, Float64Array.of(0.5), 1);
      expect([...part.indices], `round ${round}`).toEqual([1, 3, 9]);
      expect([...part.values]).toEqual([4, 1, 10]);
      expect(assembler.base + D).toBeLessThanOrEqual(2 ** 32 - 1);
    }
    expect(assembler.base).toBeLessThan(10); // it wrapped to 0 on the way
  });

  it('starts each part from zeros: an empty part after a part, the same bits again', () => {
    const shape = softmaxShape(4, 64);
    const rows = randomRows({ rows: 100, D: 64, meanNnz: 8, classes: 4, isSoftmax: true, seed: 1 });
    const params = randomParams(4, 64, 2);
    const kernel = createSparseTsKernel(shape);
    kernel.accumulate(rows, null, 0, 100, params);
    const first = kernel.takePart();
    const empty = kernel.takePart();
    expect(empty.indices.length).toBe(0);
    expect([...empty.bias]).toEqual([0, 0, 0, 0]);
    expect(empty.loss).toBe(0);
    kernel.accumulate(rows, null, 0, 100, params);
    expect(bitsOf(densify(kernel.takePart(), 64, 4))).toEqual(bitsOf(densify(first, 64, 4)));
  });

  it('throws a RangeError on an index not below D and discards the open part', () => {
    const shape = logisticShape(10);
    const rows: SparseRows = {
      rows: 2,
      dims: 10,
      rowStart: Uint32Array.of(0, 2, 4),
      indices: Uint32Array.of(1, 3, 2, 10),
      values: Float32Array.of(1, 2, 3, 4),
      labels: Uint8Array.of(0, 1),
    };
    const kernel = createSparseTsKernel(shape);
    const params = kernel.allocateParams();
    expect(() => kernel.accumulate(rows, null, 0, 2, params)).toThrow(/row 1 has feature index 10, not below D = 10/);
    const part = kernel.takePart();
    expect(part.indices.length).toBe(0);
    expect(part.loss).toBe(0);
  });

  it('evaluates the plain loss and the correct predictions like the reference', () => {
    for (const [, shape] of SHAPES) {
      const D = shape.features;
      const O = shape.outputs;
      const rows = randomRows({ rows: 300, D, meanNnz: 10, classes: shape.classes, isSoftmax: shape.kind === 'softmax', seed: 8 });
      const params = randomParams(O, D, 4, 0.5);
      const kernel = createSparseTsKernel(
        shape,
        Float64Array.from({ length: shape.classes }, () => 3),
      ); // evaluate ignores weights
      const out = Float64Array.of(7, 7, 7);
      kernel.evaluate(rows, null, 0, rows.rows, params, out, 1);
      let loss = 0;
      let correct = 0;
      for (let i = 0; i < rows.rows; i++) {
        const one: SparseRows = { ...rows, rows: 1, rowStart: rows.rowStart.subarray(i, i + 2), labels: rows.labels.subarray(i, i + 1) };
        loss += reference(shape, one, null, params, null).sums[D * O + O]!;
        const z = Array.from({ length: O }, (_, o) => {
          let s = params.bias[o]!;
          for (let k = rows.rowStart[i]!; k < rows.rowStart[i + 1]!; k++) s += params.scale * params.v[o * D + rows.indices[k]!]! * rows.values[k]!;
          return s;
        });
        const predicted = shape.kind === 'logistic' ? (z[0]! > 0 ? 1 : 0) : z.indexOf(Math.max(...z));
        if (predicted === rows.labels[i]) correct++;
      }
      expect(out[0]).toBe(7);
      expect(Math.abs(out[1]! - 7 - loss)).toBeLessThanOrEqual(1e-11 * loss);
      expect(out[2]).toBe(7 + correct);
    }
  });
});

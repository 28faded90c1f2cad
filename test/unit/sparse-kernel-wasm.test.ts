import { describe, expect, it } from 'vitest';
import { logisticShape, type ModelShape, softmaxShape } from '../../shared/model-shape.js';
import { createSparseTsKernel, type PartAssembler, type SparseKernel } from '../../shared/sparse-kernel.js';
import { createSparseKernel, createSparseWasmKernel } from '../../shared/sparse-kernel-wasm.js';
import type { SparseParams, SparsePart, SparseRows } from '../../shared/sparse-rows.js';
import { bitsOf, lcg, randomParams, randomRows } from '../helpers/sparse-random.js';

function wasmKernel(shape: ModelShape, weights: Float64Array | null = null, isEntryMode?: boolean): SparseKernel {
  const kernel = createSparseWasmKernel(shape, weights, isEntryMode === undefined ? {} : { isEntryMode });
  // Node.js 20 has WebAssembly with shared memory: a machine without it fails, not skips.
  if (kernel === null) throw new Error('WebAssembly unavailable');
  return kernel;
}

/** rows copied into the kernel's own storage (allocateRows). */
function inKernel(kernel: SparseKernel, rows: SparseRows): SparseRows {
  const storage = kernel.allocateRows(rows.rows, rows.indices.length);
  storage.rowStart.set(rows.rowStart);
  storage.indices.set(rows.indices);
  storage.values.set(rows.values);
  storage.labels.set(rows.labels);
  return { rows: rows.rows, dims: rows.dims, ...storage };
}

function paramsIn(kernel: SparseKernel, params: SparseParams): SparseParams {
  const own = kernel.allocateParams();
  own.v.set(params.v);
  own.bias.set(params.bias);
  own.scale = params.scale;
  return own;
}

const partBits = (part: SparsePart) => ({ indices: [...part.indices], values: bitsOf(part.values), bias: bitsOf(part.bias), loss: bitsOf([part.loss]) });

interface Case {
  readonly name: string;
  readonly shape: ModelShape;
  readonly rows: number;
  readonly meanNnz: number;
  readonly values: 'plain' | 'extreme';
  readonly params: 'plain' | 'extreme';
  readonly amplitude: number;
}

const CASES: Case[] = [
  { name: 'logistic, 200k entries', shape: logisticShape(5_000), rows: 5_000, meanNnz: 40, values: 'plain', params: 'plain', amplitude: 0.3 },
  { name: 'logistic, large |z|', shape: logisticShape(2_000), rows: 2_000, meanNnz: 20, values: 'plain', params: 'plain', amplitude: 200 },
  { name: 'logistic, extreme values', shape: logisticShape(1_000), rows: 2_000, meanNnz: 10, values: 'extreme', params: 'extreme', amplitude: 1 },
  { name: 'softmax K = 5, 100k entries', shape: softmaxShape(5, 3_000), rows: 2_500, meanNnz: 40, values: 'plain', params: 'plain', amplitude: 0.3 },
  { name: 'softmax K = 3, large z', shape: softmaxShape(3, 500), rows: 1_000, meanNnz: 15, values: 'plain', params: 'plain', amplitude: 300 },
  { name: 'softmax K = 4, extreme values', shape: softmaxShape(4, 700), rows: 1_500, meanNnz: 10, values: 'extreme', params: 'extreme', amplitude: 1 },
];

describe('the WebAssembly sparse kernel', () => {
  it('carries the TypeScript kernel’s id', () => {
    expect(wasmKernel(logisticShape(3)).id).toBe(createSparseTsKernel(logisticShape(3)).id);
    expect(wasmKernel(softmaxShape(3, 3)).id).toBe(createSparseTsKernel(softmaxShape(3, 3)).id);
    expect(createSparseKernel(logisticShape(3), null, 'js').id).toBe('sparse-logistic-f64-1');
  });

  for (const c of CASES) {
    for (const [weighted, isEntryMode] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      it(`gives the TypeScript kernel’s bits (${c.name}${weighted ? ', class weights' : ''}${isEntryMode ? ', entry mode' : ''})`, () => {
        const { shape } = c;
        const D = shape.features;
        const O = shape.outputs;
        const rows = randomRows({
          rows: c.rows,
          D,
          meanNnz: c.meanNnz,
          classes: shape.classes,
          isSoftmax: shape.kind === 'softmax',
          seed: 41,
          values: c.values,
        });
        const params = randomParams(O, D, 43, c.amplitude, c.params);
        const weights = weighted ? Float64Array.from({ length: shape.classes }, (_, k) => 0.25 + 1.5 * k) : null;
        const ts = createSparseTsKernel(shape, weights);
        const wasm = wasmKernel(shape, weights, isEntryMode);
        const own = inKernel(wasm, rows);
        const ownParams = paramsIn(wasm, params);
        const order = Uint32Array.from({ length: rows.rows }, (_, i) => (i * 7919 + 3) % rows.rows);
        const ownOrder = wasm.allocateRows(rows.rows, 0).rowStart.subarray(0, rows.rows);
        ownOrder.set(order);
        const next = lcg(5);
        let sawNonFinite = false;
        for (const [tsOrder, wasmRows, wasmOrder] of [
          [null, own, null],
          [order, own, ownOrder],
          [order, own, order], // an order held outside the kernel's memory
          [order, rows, order], // rows held outside the kernel's memory
        ] as const) {
          // Rows in chunks of random sizes: one part per chunk.
          let at = 0;
          while (at < rows.rows) {
            const to = Math.min(rows.rows, at + 1 + Math.floor(next() * 700));
            ts.accumulate(rows, tsOrder, at, to, params);
            wasm.accumulate(wasmRows, wasmOrder, at, to, ownParams);
            const expected = ts.takePart();
            if (!Number.isFinite(expected.loss)) sawNonFinite = true;
            expect(partBits(wasm.takePart()), `rows [${at}, ${to})`).toEqual(partBits(expected));
            at = to;
          }
        }
        if (c.params === 'extreme') expect(sawNonFinite).toBe(true); // the extremes were reached
        // evaluate adds to the sums it is handed (here 0.1 and 3 at offset 1), row by row.
        for (const [tsOrder, wasmRows, wasmOrder] of [
          [null, own, null],
          [order, own, ownOrder],
          [order, rows, order],
        ] as const) {
          const tsEval = Float64Array.of(9, 0.1, 3);
          const wasmEval = Float64Array.of(9, 0.1, 3);
          ts.evaluate(rows, tsOrder, 0, rows.rows, params, tsEval, 1);
          wasm.evaluate(wasmRows, wasmOrder, 0, rows.rows, ownParams, wasmEval, 1);
          expect(bitsOf(wasmEval)).toEqual(bitsOf(tsEval));
        }
      });
    }
  }

  it('throws a RangeError on an index not below D and starts the next part clean', () => {
    const shape = softmaxShape(3, 10);
    const kernel = wasmKernel(shape);
    const good = randomRows({ rows: 50, D: 10, meanNnz: 3, classes: 3, isSoftmax: true, seed: 2 });
    const bad = inKernel(kernel, { ...good, indices: Uint32Array.from(good.indices, (j, k) => (k === good.indices.length - 1 ? 4_000_000_000 : j)) });
    const params = paramsIn(kernel, randomParams(3, 10, 1));
    expect(() => kernel.accumulate(bad, null, 0, 50, params)).toThrow(/not below D = 10/);
    kernel.accumulate(good, null, 0, 50, params);
    const ts = createSparseTsKernel(shape);
    ts.accumulate(good, null, 0, 50, params);
    expect(partBits(kernel.takePart())).toEqual(partBits(ts.takePart()));
  });

  it('keeps the bits when its slot base lies above 2^31 and wraps', () => {
    const shape = softmaxShape(3, 200);
    const kernel = wasmKernel(shape);
    // The slot base is internal state; set it near the end of the uint32 range (signed i32 in wasm).
    const assembler = (kernel as unknown as { assembler: PartAssembler }).assembler;
    assembler.base = 2 ** 32 - 1 - 200 - 100;
    const rows = randomRows({ rows: 60, D: 200, meanNnz: 6, classes: 3, isSoftmax: true, seed: 12 });
    const own = inKernel(kernel, rows);
    const params = randomParams(3, 200, 13);
    const ownParams = paramsIn(kernel, params);
    const ts = createSparseTsKernel(shape);
    let wrapped = false;
    for (let at = 0; at < 60; at += 10) {
      const before = assembler.base;
      kernel.accumulate(own, null, at, at + 10, ownParams);
      ts.accumulate(rows, null, at, at + 10, params);
      expect(partBits(kernel.takePart())).toEqual(partBits(ts.takePart()));
      if (assembler.base < before) wrapped = true;
    }
    expect(wrapped).toBe(true);
  });

  it('refuses parameters it did not allocate', () => {
    const kernel = wasmKernel(logisticShape(4));
    const rows = randomRows({ rows: 3, D: 4, meanNnz: 1, classes: 2, isSoftmax: false, seed: 1 });
    expect(() => kernel.accumulate(rows, null, 0, 3, { v: new Float64Array(4), scale: 1, bias: new Float64Array(1) })).toThrow(/allocateParams/);
  });
});

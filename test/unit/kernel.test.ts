import { describe, expect, it } from 'vitest';
import { createGradientKernel, type GradientKernel, isWasmSimdSupported, JS_KERNEL_ID, WASM_SIMD_KERNEL_ID } from '../../shared/kernel.js';
import { instantiateKernel } from '../../shared/kernel-wasm.js';
import { accumulateGradient } from '../../shared/model.js';

/** Plain-loop float64 reference of the kernel contract, written from the formulas. */
function reference(x: Float32Array, y: Uint8Array, D: number, rows: readonly number[], w: Float64Array, b: number) {
  const gradient = new Float64Array(D + 1);
  const scale = new Float64Array(D + 1); // Σ|terms|: the size rounding errors are relative to
  let loss = 0;
  let lossScale = 0;
  for (const row of rows) {
    let z = b;
    for (let j = 0; j < D; j++) z += (w[j] as number) * (x[row * D + j] as number);
    const a = 1 / (1 + Math.exp(-z));
    const label = y[row] as number;
    for (let j = 0; j < D; j++) {
      gradient[j] = (gradient[j] as number) + (a - label) * (x[row * D + j] as number);
      scale[j] = (scale[j] as number) + Math.abs((a - label) * (x[row * D + j] as number));
    }
    gradient[D] = (gradient[D] as number) + (a - label);
    scale[D] = (scale[D] as number) + Math.abs(a - label);
    const L = Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - label * z; // −[y·log a + (1−y)·log(1−a)]
    loss += L;
    lossScale += Math.abs(L);
  }
  return { gradient, scale, loss, lossScale };
}

/** A seeded LCG: values in [−2, 2) exactly representable in float32, labels 0/1, weights ~ 1/√D. */
function fill(kernel: GradientKernel, rows: number, D: number, seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
  const { x, y } = kernel.allocateRows(rows, D);
  for (let i = 0; i < x.length; i++) x[i] = next() * 4 - 2;
  for (let i = 0; i < rows; i++) y[i] = next() < 0.4 ? 1 : 0;
  const w = kernel.allocateVector(D);
  for (let j = 0; j < D; j++) w[j] = ((next() * 2 - 1) * 1.5) / Math.sqrt(D);
  return { x, y, w };
}

// The SIMD kernel is the default of every run, so a machine without WebAssembly SIMD fails
// these tests instead of skipping them (kernel.kind would be 'js').
describe('the WebAssembly SIMD kernel', () => {
  it('is available on this machine (Node.js 20 on x64 and arm64 has it)', () => {
    expect(isWasmSimdSupported()).toBe(true);
  });

  it.each([1, 3, 10, 100, 1000])('matches a float64 reference within 1e-9 for D = %i, contiguous and indexed rows', (D) => {
    const kernel = createGradientKernel('wasm-simd');
    expect(kernel.kind).toBe('wasm-simd');
    const rows = 37; // blocks of 4 and a tail of single rows
    const { x, y, w } = fill(kernel, rows, D, D);
    const order = kernel.allocateIndex(rows);
    for (let i = 0; i < rows; i++) order[i] = (i * 11 + 5) % rows;
    for (const [indexed, from, to] of [
      [false, 0, rows],
      [false, 2, 35],
      [true, 0, rows],
      [true, 3, 30],
    ] as const) {
      const out = kernel.allocateVector(D + 1);
      const loss = kernel.accumulate(x, y, D, indexed ? order : null, from, to, w, 0.25, out, 0);
      const positions = Array.from({ length: to - from }, (_, k) => from + k);
      const expected = reference(x, y, D, indexed ? positions.map((i) => order[i] as number) : positions, w, 0.25);
      for (let j = 0; j <= D; j++) {
        expect(Math.abs((out[j] as number) - (expected.gradient[j] as number))).toBeLessThanOrEqual(1e-9 * (expected.scale[j] as number) + 1e-300);
      }
      expect(Math.abs(loss - expected.loss)).toBeLessThanOrEqual(1e-9 * expected.lossScale);
    }
  });

  it('stays finite and exact for |z| = 1000', () => {
    const kernel = createGradientKernel('wasm-simd');
    const D = 5;
    const { x, y } = kernel.allocateRows(6, D);
    x.fill(0);
    for (let i = 0; i < 6; i++) x[i * D] = 1; // z = w_0 = ±1000
    y.set([1, 0, 1, 0, 1, 0]);
    for (const w0 of [1000, -1000]) {
      const w = Float64Array.from([w0, 0, 0, 0, 0]);
      const out = new Float64Array(D + 1);
      const loss = kernel.accumulate(x, y, D, null, 0, 6, w, 0, out, 0);
      // Per row: a ∈ {0, 1} exactly; L = 0 when the label agrees with the sign of z, else |z|.
      expect(loss).toBe(3 * 1000);
      expect(out[0]).toBe(w0 > 0 ? 3 : -3);
      expect(out[D]).toBe(w0 > 0 ? 3 : -3);
    }
  });

  it('gives the same bits twice, in another instance, and with w, out and order outside its memory', () => {
    const D = 37;
    const rows = 101;
    const first = createGradientKernel('wasm-simd');
    const { x, y, w } = fill(first, rows, D, 7);
    const order = Uint32Array.from({ length: rows }, (_, i) => (i * 13) % rows);
    const run = (kernel: GradientKernel, xs: Float32Array, ys: Uint8Array, ws: Float64Array, indexed: Uint32Array, out: Float64Array) => {
      const loss = kernel.accumulate(xs, ys, D, indexed, 1, 99, ws, -0.5, out, 3);
      return [...new Uint32Array(Float64Array.from([...out.subarray(3, 3 + D + 1), loss]).buffer)];
    };
    const outInside = first.allocateVector(D + 4);
    const orderInside = first.allocateIndex(rows);
    orderInside.set(order);
    const bits = run(first, x, y, w, orderInside, outInside);
    outInside.fill(0);
    expect(run(first, x, y, w, orderInside, outInside)).toEqual(bits);
    expect(run(first, x, y, Float64Array.from(w), order, new Float64Array(D + 4))).toEqual(bits);
    const second = createGradientKernel('wasm-simd');
    const copy = second.allocateRows(rows, D);
    copy.x.set(x);
    copy.y.set(y);
    expect(run(second, copy.x, copy.y, Float64Array.from(w), order, new Float64Array(D + 4))).toEqual(bits);
  });

  it('keeps earlier views valid when later allocations grow its memory', () => {
    const kernel = createGradientKernel('wasm-simd');
    const { x, y, w } = fill(kernel, 8, 4, 3);
    const before = Array.from(x);
    kernel.allocateVector(4 << 20); // 32 MiB: grows the memory
    expect(Array.from(x)).toEqual(before);
    const out = new Float64Array(5);
    expect(Number.isFinite(kernel.accumulate(x, y, 4, null, 0, 8, w, 0, out, 0))).toBe(true);
  });

  it('refuses rows that do not live in its memory', () => {
    const kernel = createGradientKernel('wasm-simd');
    expect(() => kernel.accumulate(new Float32Array(4), new Uint8Array(1), 4, null, 0, 1, new Float64Array(4), 0, new Float64Array(5), 0)).toThrow(
      /allocateRows/,
    );
  });

  it("computes exp and log1p within 1 ulp of JavaScript's, with fixed bits for fixed inputs", () => {
    const instance = instantiateKernel();
    if (instance === null) throw new Error('SIMD supported but no instance');
    const ulps = (a: number, b: number): number => {
      const bits = new BigInt64Array(new Float64Array([a, b]).buffer);
      return Math.abs(Number((bits[0] as bigint) - (bits[1] as bigint)));
    };
    let state = 99;
    const next = (): number => {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
    for (let i = 0; i < 20_000; i++) {
      const t = -next() * (i % 2 === 0 ? 750 : 2);
      expect(ulps(instance.exp(t), Math.exp(t))).toBeLessThanOrEqual(1);
      const u = i % 2 === 0 ? next() : Math.exp(-next() * 700);
      expect(ulps(instance.log1p(u), Math.log1p(u))).toBeLessThanOrEqual(1);
    }
    expect([instance.exp(0), instance.exp(-1000), instance.exp(-1), instance.log1p(0), instance.log1p(1), instance.log1p(0.5)]).toEqual([
      1,
      0,
      0.36787944117144233,
      0,
      Math.LN2,
      0.4054651081081644,
    ]);
  });
});

describe('kernel selection', () => {
  it('wraps accumulateGradient as the js kernel, bit for bit', () => {
    const kernel = createGradientKernel('js');
    expect([kernel.kind, kernel.id]).toEqual(['js', JS_KERNEL_ID]);
    const { x, y, w } = fill(kernel, 20, 6, 5);
    const a = new Float64Array(7);
    const b = new Float64Array(7);
    expect(kernel.accumulate(x, y, 6, null, 1, 19, w, 0.3, a, 0)).toBe(accumulateGradient(x, y, 6, null, 1, 19, w, 0.3, b, 0));
    expect(a).toEqual(b);
  });

  it('gives each kernel a distinct stable id', () => {
    expect(JS_KERNEL_ID).toBe('js-f64acc-1');
    expect(WASM_SIMD_KERNEL_ID).not.toBe(JS_KERNEL_ID);
    expect(createGradientKernel('wasm-simd').id).toBe(isWasmSimdSupported() ? WASM_SIMD_KERNEL_ID : JS_KERNEL_ID);
  });
});

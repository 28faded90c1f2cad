// The lanes8 order (issue #15): the WebAssembly kernel, the native addon (native/kernel.c) and the
// TypeScript twin give the same out and loss bits, and all three agree to the bit with a plain
// float64 reference of the order written here from its definition (shared/kernel-wasm.ts header),
// over millions of random rows: several D (below 8, not a multiple of 8, 1000), extreme z, ±0,
// subnormal x, huge w, class weights on and off, contiguous and indexed rows. The native addon is
// required (nativeKernelAddon('require')): where it was not built, these tests fail, not skip.
// Every build of the addon this CPU runs (AVX-512: 1 × 8 lanes, AVX2: 2 × 4, baseline: 4 × 2) is
// compared, not only the one dispatch picks.

import { describe, expect, it } from 'vitest';
import { exp as fdlibmExp, log1p as fdlibmLog1p } from '../../shared/fdlibm.js';
import { accumulateLanes8, createGradientKernel, type GradientKernel, LANES8_KERNEL_ID, supportedKernelIds, WASM_SIMD_KERNEL_ID } from '../../shared/kernel.js';
import { nativeAccumulate, nativeKernelAddon } from '../../shared/kernel-native.js';

const addon = nativeKernelAddon('require');
if (addon === undefined) throw new Error('unreachable: require mode throws when the addon is missing');
/** The addon's builds this CPU runs, widest first (all three on an AVX-512 x86-64). */
const BUILDS = ['avx512f', 'avx2', 'baseline'].slice(['avx512f', 'avx2', 'baseline'].indexOf(addon.isa()));

/** The order, from its definition: plain loops over plain arrays, one float64 operation at a time. */
function reference(
  x: Float32Array,
  y: Uint8Array,
  D: number,
  rows: readonly number[],
  w: Float64Array,
  b: number,
  out: Float64Array,
  classWeights: Float64Array | null,
): number {
  const D8 = D - (D % 8);
  const residualOf: number[] = [];
  let bias = 0;
  let loss = 0;
  for (const row of rows) {
    const S = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < D8; j++) S[j % 8] = S[j % 8]! + w[j]! * x[row * D + j]!;
    let z = S[0]! + S[4]! + (S[2]! + S[6]!) + (S[1]! + S[5]! + (S[3]! + S[7]!));
    for (let j = D8; j < D; j++) z = z + w[j]! * x[row * D + j]!;
    z = z + b;
    const label = y[row]!;
    const c = classWeights === null ? 1 : classWeights[label]!;
    const e = fdlibmExp(-Math.abs(z));
    const a = (z >= 0 ? 1 : e) / (1 + e);
    const r = (a - label) * c;
    residualOf.push(r);
    bias = bias + r;
    loss = loss + (fdlibmLog1p(e) + Math.max(z, 0) - label * z) * c;
  }
  // Blocks of 4 rows from the start of the range, then single rows.
  let k = 0;
  for (; k + 4 <= rows.length; k += 4) {
    const [p0, p1, p2, p3] = [rows[k]! * D, rows[k + 1]! * D, rows[k + 2]! * D, rows[k + 3]! * D];
    const [r0, r1, r2, r3] = [residualOf[k]!, residualOf[k + 1]!, residualOf[k + 2]!, residualOf[k + 3]!];
    for (let j = 0; j < D; j++) {
      const left = r0 * x[p0 + j]! + r1 * x[p1 + j]!;
      const right = r2 * x[p2 + j]! + r3 * x[p3 + j]!;
      out[j] = out[j]! + (left + right);
    }
  }
  for (; k < rows.length; k++) for (let j = 0; j < D; j++) out[j] = out[j]! + residualOf[k]! * x[rows[k]! * D + j]!;
  out[D] = out[D]! + bias;
  return loss;
}

/** A seeded LCG in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

// Values that stress the order: signed zeros, float32 subnormals, huge and tiny magnitudes (all
// finite products and sums: z reaches ±1e280, far past |z| = 745 where exp(−|z|) underflows).
const SPECIAL_X = [0, -0, 1e-40, -1.4e-45, 3e38, -3e38, 1, -1, 1e-30, 0.5];
const SPECIAL_W = [1e250, -1e250, 1e-300, -5e-324, 0, -0, 1, -1, 800, -800];

/** Fills rows of the kernel's memory: plain rows, and every third row from the special values. */
function fill(kernel: GradientKernel, rows: number, D: number, seed: number) {
  const next = random(seed);
  const { x, y } = kernel.allocateRows(rows, D);
  for (let i = 0; i < rows; i++) {
    const special = i % 3 === 2;
    for (let j = 0; j < D; j++) x[i * D + j] = special && next() < 0.5 ? SPECIAL_X[Math.floor(next() * SPECIAL_X.length)]! : next() * 4 - 2;
    y[i] = next() < 0.4 ? 1 : 0;
  }
  const order = kernel.allocateIndex(rows * 2);
  for (let i = 0; i < order.length; i++) order[i] = Math.floor(next() * rows);
  return { x, y, order, next };
}

function weights(kernel: GradientKernel, D: number, next: () => number, huge: boolean): Float64Array {
  const w = kernel.allocateVector(D);
  for (let j = 0; j < D; j++) w[j] = huge && next() < 0.3 ? SPECIAL_W[Math.floor(next() * SPECIAL_W.length)]! : ((next() * 2 - 1) * 1.5) / Math.sqrt(D);
  return w;
}

/** Index of the first element whose bits differ (NaN included), or −1. */
function firstDifference(a: Float64Array, b: Float64Array): number {
  const ua = new BigUint64Array(a.buffer, a.byteOffset, a.length);
  const ub = new BigUint64Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

function sameBits(a: number, b: number): boolean {
  return Object.is(a, b) || firstDifference(Float64Array.of(a), Float64Array.of(b)) === -1;
}

// D below 8, not a multiple of 8, 8 itself, and the bench's 1000; rows per D so that every D runs
// well over 100,000 rows through each implementation, 3.6 million rows in all.
const CASES: readonly (readonly [number, number])[] = [
  [1, 600_000],
  [3, 500_000],
  [7, 500_000],
  [8, 500_000],
  [9, 400_000],
  [13, 400_000],
  [31, 300_000],
  [100, 150_000],
  [1000, 120_000],
];

describe('the lanes8 kernel order', () => {
  it('has one id for its wasm, native and TypeScript implementations', () => {
    expect(WASM_SIMD_KERNEL_ID).toBe(LANES8_KERNEL_ID);
    expect(LANES8_KERNEL_ID).toBe('lanes8-r4-f64acc-1');
    expect(supportedKernelIds()).toEqual(['lanes8-r4-f64acc-1', 'js-f64acc-1']);
    const wasm = createGradientKernel('wasm-simd', 'off');
    const native = createGradientKernel('wasm-simd', 'require');
    expect([wasm.id, wasm.implementation, native.id, native.implementation]).toEqual([LANES8_KERNEL_ID, 'wasm', LANES8_KERNEL_ID, 'native']);
    expect(['avx512f', 'avx2', 'baseline']).toContain(addon.isa());
    expect(BUILDS[0]).toBe(addon.isa());
  });

  it.each(CASES)(
    'wasm, native, TypeScript and the reference give the same bits for D = %i over %i rows',
    (D, totalRows) => {
      const kernel = createGradientKernel('wasm-simd', 'off');
      expect(kernel.implementation).toBe('wasm');
      const shared = kernel.shared;
      if (shared === null) throw new Error('the wasm kernel shares its memory');
      const native = nativeAccumulate(addon, shared.memory);
      // Rows per buffer: small D cycle over many rows, D = 1000 over fewer (4 KB a row).
      const rows = Math.min(20_000, Math.max(64, Math.floor(8_000_000 / (4 * D))));
      const { x, y, order, next } = fill(kernel, rows, D, D * 7919 + 1);
      // out of: wasm, native (dispatched), TypeScript, the reference, then each build of the addon.
      const outs = Array.from({ length: 4 + BUILDS.length }, () => kernel.allocateVector(D + 1));
      const start = new Float64Array(D + 1);
      const table = kernel.allocateVector(2);
      let done = 0;
      let calls = 0;
      const failures: string[] = [];
      while (done < totalRows && failures.length === 0) {
        // Ranges of 0 to 13 rows (every block/tail split) and, one call in 4, up to 2,000 rows.
        const length = Math.min(rows, calls % 4 === 3 ? Math.floor(next() * 2_000) : Math.floor(next() * 14));
        const indexed = calls % 2 === 1;
        const from = Math.floor(next() * ((indexed ? order.length : rows) - length + 1));
        const to = from + length;
        const w = weights(kernel, D, next, calls % 5 === 0);
        const b = calls % 7 === 0 ? (next() < 0.5 ? -900 : 900) : next() * 2 - 1;
        const weighted = calls % 3 === 0;
        table.set([0.25 + next() * 4, 0.25 + next() * 4]);
        const classWeights = weighted ? table : null;
        for (let j = 0; j <= D; j++) start[j] = j % 5 === 0 ? 0 : next() - 0.5;
        for (const out of outs) out.set(start);
        const rowOrder = indexed ? order : null;
        const wasmLoss = kernel.accumulate(x, y, D, rowOrder, from, to, w, b, outs[0]!, 0, classWeights);
        const raw = shared.rawArguments(x, y, D, rowOrder, from, to, w, b, outs[1]!, 0, classWeights);
        if (raw === null) throw new Error('all arguments lie in the kernel memory');
        const nativeLoss = native(...raw);
        const tsLoss = accumulateLanes8(x, y, D, rowOrder, from, to, w, b, outs[2]!, 0, classWeights);
        const positions = Array.from({ length }, (_, i) => (indexed ? order[from + i]! : from + i));
        const referenceLoss = reference(x, y, D, positions, w, b, outs[3]!, classWeights);
        const view = new Uint8Array(shared.memory.buffer);
        const buildLosses = BUILDS.map((isa, i) => {
          const call = shared.rawArguments(x, y, D, rowOrder, from, to, w, b, outs[4 + i]!, 0, classWeights);
          if (call === null) throw new Error('all arguments lie in the kernel memory');
          return addon.accumulateOn(isa, view, ...call);
        });
        const names = ['native', 'typescript', 'reference', ...BUILDS.map((isa) => `native ${isa}`)];
        [nativeLoss, tsLoss, referenceLoss, ...buildLosses].forEach((loss, i) => {
          if (!sameBits(loss, wasmLoss)) failures.push(`call ${calls}: ${names[i]} loss ${loss} ≠ wasm ${wasmLoss}`);
          const at = firstDifference(outs[i + 1]!, outs[0]!);
          if (at >= 0)
            failures.push(`call ${calls} (rows [${from}, ${to}), indexed ${indexed}): ${names[i]} out[${at}] ${outs[i + 1]![at]} ≠ wasm ${outs[0]![at]}`);
        });
        if (!Number.isFinite(wasmLoss)) failures.push(`call ${calls}: loss ${wasmLoss} is not finite (the test keeps every sum finite)`);
        done += length;
        calls++;
      }
      expect(failures).toEqual([]);
      expect(done).toBeGreaterThanOrEqual(totalRows);
    },
    600_000,
  );

  it('gives the native and wasm kernels the same bits through the GradientKernel interface, w and out outside the memory too', () => {
    const D = 37;
    const rows = 501;
    const wasm = createGradientKernel('wasm-simd', 'off');
    const native = createGradientKernel('wasm-simd', 'require');
    const a = fill(wasm, rows, D, 11);
    const copy = native.allocateRows(rows, D);
    copy.x.set(a.x);
    copy.y.set(a.y);
    const w = Float64Array.from({ length: D }, (_, j) => Math.sin(j) * 0.7);
    const order = Uint32Array.from(a.order);
    for (const [indexed, weighted] of [
      [false, false],
      [true, true],
    ] as const) {
      const cw = weighted ? Float64Array.of(0.5, 3) : null;
      const outWasm = new Float64Array(D + 4);
      const outNative = new Float64Array(D + 4);
      const lossWasm = wasm.accumulate(a.x, a.y, D, indexed ? order : null, 3, 498, w, 0.125, outWasm, 2, cw);
      const lossNative = native.accumulate(copy.x, copy.y, D, indexed ? order : null, 3, 498, w, 0.125, outNative, 2, cw);
      expect(sameBits(lossNative, lossWasm)).toBe(true);
      expect(firstDifference(outNative, outWasm)).toBe(-1);
    }
  });

  it("computes exp and log1p with the wasm module's bits", () => {
    const next = random(5);
    const inputs = [0, -0, -1e-320, -1e-9, -0.3, -0.35, -1, -1.04, -700, -708.39, -709.8, -745.1, -746, -1000, -Infinity, Number.NaN];
    for (let i = 0; i < 200_000; i++) inputs.push(-next() * (i % 2 === 0 ? 750 : 2));
    expect(inputs.filter((t) => !sameBits(addon.exp(t), fdlibmExp(t)))).toEqual([]);
    const logInputs = [0, 1e-310, 1e-20, 2 ** -29, 0.41, 0.5, 1, 2, 1e10, 2 ** 53, Infinity];
    for (let i = 0; i < 200_000; i++) logInputs.push(i % 2 === 0 ? next() : Math.exp(-next() * 745));
    expect(logInputs.filter((u) => !sameBits(addon.log1p(u), fdlibmLog1p(u)))).toEqual([]);
  });

  it('refuses addresses outside the memory with a RangeError and writes nothing', () => {
    const kernel = createGradientKernel('wasm-simd', 'off');
    const shared = kernel.shared;
    if (shared === null) throw new Error('the wasm kernel shares its memory');
    const D = 4;
    const { x, y } = kernel.allocateRows(8, D);
    const order = kernel.allocateIndex(2);
    order.set([1, 1 << 30]); // the second row lies far past the memory
    const w = kernel.allocateVector(D);
    const out = kernel.allocateVector(D + 1);
    const raw = shared.rawArguments(x, y, D, order, 0, 2, w, 0, out, 0, null);
    if (raw === null) throw new Error('all arguments lie in the kernel memory');
    const view = new Uint8Array(shared.memory.buffer);
    expect(() => addon.accumulate(view, ...raw)).toThrow(RangeError);
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0]);
    expect(() => addon.accumulate(view, raw[0], raw[1], D, 0, view.length, raw[5], 0, raw[7], 0)).toThrow(/outside the memory/);
    expect(() => addon.accumulate(view, -1, raw[1], D, 0, 1, raw[5], 0, raw[7], 0)).toThrow(TypeError);
    expect(() => addon.accumulateOn('sse9', view, ...raw)).toThrow(/does not run that build/);
  });
});

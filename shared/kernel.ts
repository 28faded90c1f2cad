// Gradient kernels behind one interface. The default dense logistic kernel computes the lanes8
// operation order (shared/kernel-wasm.ts header), which no instruction set decides, in one of three
// implementations with the same bits and one id: the native addon (native/kernel.c, 8 float64
// lanes, where it was built), the WebAssembly SIMD-128 kernel (always there on Node.js 20), and a
// TypeScript twin (accumulateLanes8 below, where WebAssembly SIMD is missing). The native and wasm
// ones keep the rows in the wasm module's linear memory, so a step never copies them. The plain
// TypeScript kernel of shared/model.ts (--kernel js) sums in another order with JavaScript's Math:
// it has its own id. Different ids give different bits, so every process of a run uses one id.

import * as fdlibm from './fdlibm.js';
import { nativeAccumulate, nativeKernelAddon } from './kernel-native.js';
import { instantiateKernel, isWasmSimdSupported, type KernelInstance, type WasmAccumulate, type WasmMemory } from './kernel-wasm.js';
import { accumulateGradient } from './model.js';
import { type NativeMode, nativeMode } from './native-addon.js';

export type KernelKind = 'wasm-simd' | 'js';
/** Which code computes a kernel's order (users see it in the worker's log; it never changes the bits). */
export type KernelImplementation = 'native' | 'wasm' | 'typescript';

/** Identity of the plain TypeScript kernel (shared/model.ts): sequential sums, JavaScript's Math. */
export const JS_KERNEL_ID = 'js-f64acc-1';
/**
 * Identity of the lanes8 order (blocks of 4 rows, 8 interleaved float64 partial sums, fdlibm
 * exp/log1p): the kernel of kind 'wasm-simd', whichever implementation runs it. It replaced
 * 'wasm-simd128-r4-f64acc-1' (2 lanes; issue #15): a checkpoint or a peer with that id is refused
 * (the run fingerprint and the handshake compare ids), never mixed.
 */
export const LANES8_KERNEL_ID = 'lanes8-r4-f64acc-1';
/** The id runs of kind 'wasm-simd' (the default) ask for. */
export const WASM_SIMD_KERNEL_ID = LANES8_KERNEL_ID;

export interface GradientKernel {
  readonly kind: KernelKind;
  /** Which code runs the order: native, wasm or typescript (same id, same bits). */
  readonly implementation: KernelImplementation;
  /** Carried by the handshake; equal ids give equal bits for equal inputs (same Node.js version). */
  readonly id: string;
  /**
   * Row storage for `rows` rows of D features: x (rows × D, row-major) and y (rows labels).
   * For the wasm kernel the views lie in the kernel's memory, which only ever grows, so views
   * stay valid for the kernel's lifetime; the memory is released with the kernel (by GC).
   */
  allocateRows(rows: number, D: number): { x: Float32Array; y: Uint8Array };
  /** Row indices (an epoch order) in the kernel's memory, so the indexed path copies nothing. */
  allocateIndex(length: number): Uint32Array;
  /** float64 storage (weights, gradient sums) in the kernel's memory: w and out then cost no copy. */
  allocateVector(length: number): Float64Array;
  /**
   * The contract of accumulateGradient (shared/model.ts): adds Σ(a − y)·x_j to out[offset + j]
   * and Σ(a − y) to out[offset + D] over rows [from, to), or over rows order[from..to) when
   * `order` is given, and returns Σ L. x and y must come from allocateRows of this kernel (rows
   * are never copied); order, w and out may be anywhere, but outside the kernel's memory they
   * cost a copy (O(to − from) indices, O(D) floats). Row indices in `order` are not checked.
   * `classWeights` (c_0, c_1; --class-weight) weighs each row's residual and loss by c_y; none
   * (null or omitted) gives exactly the unweighted bits. Best allocated with allocateVector.
   */
  accumulate(
    x: Float32Array,
    y: Uint8Array,
    D: number,
    order: Uint32Array | null,
    from: number,
    to: number,
    w: Float64Array,
    b: number,
    out: Float64Array,
    offset: number,
    classWeights?: Float64Array | null,
  ): number;
  /** What helper threads need to run this kernel on the same memory; null for the TypeScript kernel. */
  readonly shared: SharedKernel | null;
}

/** A kernel whose memory other threads can share (compute threads of a worker). */
export interface SharedKernel {
  readonly memory: WasmMemory;
  /** 'native' or 'wasm': helper threads run the same implementation as their worker. */
  readonly implementation: 'native' | 'wasm';
  /**
   * The raw call (the 8 numbers of the exported accumulate) for these arguments of accumulate, or
   * null when one of them lies outside the kernel's memory (the caller then computes it itself).
   */
  rawArguments(...args: Parameters<GradientKernel['accumulate']>): RawCall | null;
}

/** x, y, D, order, n, w, b, out, classWeights: the arguments of the kernel module's exported accumulate. */
export type RawCall = readonly [number, number, number, number, number, number, number, number, number];

export { isWasmSimdSupported };

/**
 * Creates a kernel. 'wasm-simd' is the lanes8 order: native where the addon loads (unless
 * DPT_NATIVE=off; DPT_NATIVE=require makes its absence an error), else WebAssembly, else the
 * TypeScript twin; the returned `implementation` says which. 'js' is the plain TypeScript kernel.
 * `native` overrides DPT_NATIVE (tests and benchmarks build both implementations in one process).
 */
export function createGradientKernel(kind: KernelKind, native: NativeMode = nativeMode()): GradientKernel {
  if (kind === 'js') return createJsKernel();
  const instance = instantiateKernel();
  if (instance === null) return createLanes8TypeScriptKernel();
  const addon = nativeKernelAddon(native);
  return new WasmKernel(
    instance,
    addon === undefined ? 'wasm' : 'native',
    addon === undefined ? instance.accumulate : nativeAccumulate(addon, instance.memory),
  );
}

/** The raw accumulate of the kernel helper threads run over `memory` (compute threads: worker/compute-thread.ts). */
export function sharedAccumulate(memory: WasmMemory, implementation: 'native' | 'wasm'): WasmAccumulate {
  if (implementation === 'native') {
    const addon = nativeKernelAddon();
    if (addon !== undefined) return nativeAccumulate(addon, memory);
  }
  const instance = instantiateKernel(memory);
  if (instance === null) throw new Error('compute thread: WebAssembly SIMD is unavailable');
  return instance.accumulate;
}

function createJsKernel(): GradientKernel {
  return {
    kind: 'js',
    implementation: 'typescript',
    id: JS_KERNEL_ID,
    allocateRows: (rows, D) => ({ x: new Float32Array(rows * D), y: new Uint8Array(rows) }),
    allocateIndex: (length) => new Uint32Array(length),
    allocateVector: (length) => new Float64Array(length),
    accumulate: accumulateGradient,
    shared: null,
  };
}

function createLanes8TypeScriptKernel(): GradientKernel {
  return {
    kind: 'wasm-simd',
    implementation: 'typescript',
    id: LANES8_KERNEL_ID,
    allocateRows: (rows, D) => ({ x: new Float32Array(rows * D), y: new Uint8Array(rows) }),
    allocateIndex: (length) => new Uint32Array(length),
    allocateVector: (length) => new Float64Array(length),
    accumulate: accumulateLanes8,
    shared: null,
  };
}

/** z of row `base` (x offset) in the lanes8 order: 8 partial sums, the fixed tree, the tail in order, + b. */
function lanes8Score(x: Float32Array, base: number, D: number, w: Float64Array, b: number): number {
  const D8 = D - (D % 8);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let s4 = 0;
  let s5 = 0;
  let s6 = 0;
  let s7 = 0;
  for (let j = 0; j < D8; j += 8) {
    s0 += w[j]! * x[base + j]!;
    s1 += w[j + 1]! * x[base + j + 1]!;
    s2 += w[j + 2]! * x[base + j + 2]!;
    s3 += w[j + 3]! * x[base + j + 3]!;
    s4 += w[j + 4]! * x[base + j + 4]!;
    s5 += w[j + 5]! * x[base + j + 5]!;
    s6 += w[j + 6]! * x[base + j + 6]!;
    s7 += w[j + 7]! * x[base + j + 7]!;
  }
  let z = s0 + s4 + (s2 + s6) + (s1 + s5 + (s3 + s7));
  for (let j = D8; j < D; j++) z += w[j]! * x[base + j]!;
  return z + b;
}

/** accumulateLanes8's 4 rows at a time (row offsets, residuals): reused, not allocated per call (it is synchronous). */
const LANES8_BASES = new Float64Array(4);
const LANES8_RESIDUALS = new Float64Array(4);

/**
 * The lanes8 order in TypeScript (the WebAssembly kernel's bits where SIMD is missing), with the
 * contract of GradientKernel.accumulate. Scalar float64 arithmetic in the order's exact sequence.
 */
export function accumulateLanes8(
  x: Float32Array,
  y: Uint8Array,
  D: number,
  order: Uint32Array | null,
  from: number,
  to: number,
  w: Float64Array,
  b: number,
  out: Float64Array,
  offset: number,
  classWeights: Float64Array | null = null,
): number {
  let loss = 0;
  let bias = 0;
  const bases = LANES8_BASES;
  const residuals = LANES8_RESIDUALS;
  for (let k = from; k < to; ) {
    const count = to - k >= 4 ? 4 : 1;
    for (let r = 0; r < count; r++) {
      const row = order === null ? k + r : order[k + r]!;
      const base = row * D;
      const z = lanes8Score(x, base, D, w, b);
      const label = y[row]!;
      const c = classWeights === null ? 1 : classWeights[label]!;
      const e = fdlibm.exp(-Math.abs(z));
      const residual = ((z >= 0 ? 1 : e) / (1 + e) - label) * c;
      bias += residual;
      loss += (fdlibm.log1p(e) + Math.max(z, 0) - label * z) * c;
      bases[r] = base;
      residuals[r] = residual;
    }
    if (count === 4) {
      const p0 = bases[0]!;
      const p1 = bases[1]!;
      const p2 = bases[2]!;
      const p3 = bases[3]!;
      const r0 = residuals[0]!;
      const r1 = residuals[1]!;
      const r2 = residuals[2]!;
      const r3 = residuals[3]!;
      for (let j = 0; j < D; j++) out[offset + j]! += r0 * x[p0 + j]! + r1 * x[p1 + j]! + (r2 * x[p2 + j]! + r3 * x[p3 + j]!);
    } else {
      const p0 = bases[0]!;
      const r0 = residuals[0]!;
      for (let j = 0; j < D; j++) out[offset + j]! += r0 * x[p0 + j]!;
    }
    k += count;
  }
  out[offset + D]! += bias;
  return loss;
}

const PAGE_BYTES = 65_536;

/** The wasm kernel reads memory by address: every range is checked before a call. */
function checkRange(...[x, y, D, order, from, to, w, , out, offset, classWeights]: Parameters<GradientKernel['accumulate']>): void {
  const hasWeights = classWeights === undefined || classWeights === null || classWeights.length >= 2;
  if (
    !(
      hasWeights &&
      from >= 0 &&
      from <= to &&
      w.length >= D &&
      offset + D < out.length &&
      (order === null ? to * D <= x.length && to <= y.length : to <= order.length)
    )
  ) {
    throw new RangeError(`wasm kernel: rows [${from}, ${to}) or offset ${offset} out of range`);
  }
}
/** Allocations start at multiples of a cache line; address 0 stays unused (it means "no order"). */
const ALIGN = 64;

class WasmKernel implements GradientKernel, SharedKernel {
  readonly kind = 'wasm-simd' as const;
  readonly id = LANES8_KERNEL_ID;
  readonly shared: SharedKernel = this;
  readonly implementation: 'native' | 'wasm';
  private readonly instance: KernelInstance;
  /** The instance's own accumulate, or the native addon's over the same memory. */
  private readonly run: WasmAccumulate;
  /** Every buffer object this memory has had: a view is ours iff its buffer is one of them. */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private nextFree = ALIGN;
  /** Scratch for arguments that live outside the memory (grown on demand). */
  private scratchIndex: Uint32Array = new Uint32Array(0);
  private scratchW: Float64Array = new Float64Array(0);
  private scratchOut: Float64Array = new Float64Array(0);
  private scratchWeights: Float64Array | null = null;

  constructor(instance: KernelInstance, implementation: 'native' | 'wasm', run: WasmAccumulate) {
    this.instance = instance;
    this.implementation = implementation;
    this.run = run;
    this.buffers.add(instance.memory.buffer);
  }

  allocateRows(rows: number, D: number): { x: Float32Array; y: Uint8Array } {
    const x = this.allocate(rows * D * 4);
    const y = this.allocate(rows);
    return { x: new Float32Array(this.instance.memory.buffer, x, rows * D), y: new Uint8Array(this.instance.memory.buffer, y, rows) };
  }

  allocateIndex(length: number): Uint32Array {
    const address = this.allocate(length * 4); // before reading .buffer: allocating may grow it
    return new Uint32Array(this.instance.memory.buffer, address, length);
  }

  allocateVector(length: number): Float64Array {
    const address = this.allocate(length * 8);
    return new Float64Array(this.instance.memory.buffer, address, length);
  }

  accumulate(
    x: Float32Array,
    y: Uint8Array,
    D: number,
    order: Uint32Array | null,
    from: number,
    to: number,
    w: Float64Array,
    b: number,
    out: Float64Array,
    offset: number,
    classWeights: Float64Array | null = null,
  ): number {
    if (!this.buffers.has(x.buffer) || !this.buffers.has(y.buffer)) throw new Error('wasm kernel: x and y must come from allocateRows of this kernel');
    checkRange(x, y, D, order, from, to, w, b, out, offset, classWeights);
    const n = to - from;
    let xAddress = x.byteOffset;
    let yAddress = y.byteOffset;
    let orderAddress = 0;
    if (order === null) {
      xAddress += from * D * 4;
      yAddress += from;
    } else if (this.buffers.has(order.buffer)) {
      orderAddress = order.byteOffset + from * 4;
    } else {
      if (this.scratchIndex.length < n) this.scratchIndex = this.allocateIndex(Math.max(n, 2 * this.scratchIndex.length));
      this.scratchIndex.set(order.subarray(from, to));
      orderAddress = this.scratchIndex.byteOffset;
    }
    let wAddress = w.byteOffset;
    if (!this.buffers.has(w.buffer)) {
      if (this.scratchW.length < D) this.scratchW = this.allocateVector(D);
      this.scratchW.set(w.subarray(0, D));
      wAddress = this.scratchW.byteOffset;
    }
    let weightsAddress = 0; // 0: no table, c_y = 1
    if (classWeights !== null) {
      weightsAddress = classWeights.byteOffset;
      if (!this.buffers.has(classWeights.buffer)) {
        this.scratchWeights ??= this.allocateVector(2);
        this.scratchWeights.set(classWeights.subarray(0, 2));
        weightsAddress = this.scratchWeights.byteOffset;
      }
    }
    if (this.buffers.has(out.buffer)) return this.run(xAddress, yAddress, D, orderAddress, n, wAddress, b, out.byteOffset + offset * 8, weightsAddress);
    // out elsewhere: run on a copy of its D + 1 entries, so the sums round exactly as in place.
    if (this.scratchOut.length < D + 1) this.scratchOut = this.allocateVector(D + 1);
    const window = out.subarray(offset, offset + D + 1);
    this.scratchOut.set(window);
    const loss = this.run(xAddress, yAddress, D, orderAddress, n, wAddress, b, this.scratchOut.byteOffset, weightsAddress);
    window.set(this.scratchOut.subarray(0, D + 1));
    return loss;
  }

  get memory(): WasmMemory {
    return this.instance.memory;
  }

  rawArguments(...[x, y, D, order, from, to, w, b, out, offset, classWeights]: Parameters<GradientKernel['accumulate']>): RawCall | null {
    const mine = (view: ArrayBufferView): boolean => this.buffers.has(view.buffer);
    const weights = classWeights ?? null;
    if (!mine(x) || !mine(y) || !mine(w) || !mine(out) || (order !== null && !mine(order)) || (weights !== null && !mine(weights))) return null;
    checkRange(x, y, D, order, from, to, w, b, out, offset, weights);
    const weightsAddress = weights === null ? 0 : weights.byteOffset;
    return order === null
      ? [x.byteOffset + from * D * 4, y.byteOffset + from, D, 0, to - from, w.byteOffset, b, out.byteOffset + offset * 8, weightsAddress]
      : [x.byteOffset, y.byteOffset, D, order.byteOffset + from * 4, to - from, w.byteOffset, b, out.byteOffset + offset * 8, weightsAddress];
  }

  /** Bump allocation of `bytes`, growing the memory; returns the address. */
  private allocate(bytes: number): number {
    const address = Math.ceil(this.nextFree / ALIGN) * ALIGN;
    const end = address + Math.max(bytes, 1);
    if (end > this.instance.maxPages * PAGE_BYTES) throw new RangeError(`wasm kernel: ${end} bytes exceed the 4 GiB of a wasm32 memory`);
    const have = this.instance.memory.buffer.byteLength;
    if (end > have) {
      this.instance.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
      this.buffers.add(this.instance.memory.buffer);
    }
    this.nextFree = end;
    return address;
  }
}

/** Ids of the kernels this process can run, best first (what a worker's hello offers). */
export function supportedKernelIds(): string[] {
  return [LANES8_KERNEL_ID, JS_KERNEL_ID];
}

/** The id of a kernel kind (what a run asks of its workers). */
export function kernelId(kind: KernelKind): string {
  return kind === 'wasm-simd' ? LANES8_KERNEL_ID : JS_KERNEL_ID;
}

/** Creates the kernel with this id, or returns null when it is unknown here. */
export function createKernelById(id: string): GradientKernel | null {
  if (!supportedKernelIds().includes(id)) return null;
  return createGradientKernel(id === LANES8_KERNEL_ID ? 'wasm-simd' : 'js');
}

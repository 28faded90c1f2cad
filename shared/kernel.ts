// Gradient kernels behind one interface: the WebAssembly SIMD-128 kernel (shared/kernel-wasm.ts),
// whose rows live in its own linear memory so a step never copies them, and the plain TypeScript
// kernel of shared/model.ts as the fallback. Each kernel has a stable id: different kernels sum in
// different orders and give different bits, so every process of a run must use the same one.

import { instantiateKernel, isWasmSimdSupported, type KernelInstance, type WasmMemory } from './kernel-wasm.js';
import { accumulateGradient } from './model.js';

export type KernelKind = 'wasm-simd' | 'js';

/** Identity of the plain TypeScript kernel (shared/model.ts). */
export const JS_KERNEL_ID = 'js-f64acc-1';
/** Identity of the SIMD kernel: blocks of 4 rows, 2 float64 lanes, exp/log1p from JavaScript's Math. */
export const WASM_SIMD_KERNEL_ID = 'wasm-simd128-r4-f64acc-1';

export interface GradientKernel {
  readonly kind: KernelKind;
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
 * Creates a kernel. 'wasm-simd' falls back to the TypeScript kernel where SIMD is unavailable;
 * the returned `kind` and `id` say which one was built.
 */
export function createGradientKernel(kind: KernelKind): GradientKernel {
  const instance = kind === 'wasm-simd' ? instantiateKernel() : null;
  return instance === null ? createJsKernel() : new WasmKernel(instance);
}

function createJsKernel(): GradientKernel {
  return {
    kind: 'js',
    id: JS_KERNEL_ID,
    allocateRows: (rows, D) => ({ x: new Float32Array(rows * D), y: new Uint8Array(rows) }),
    allocateIndex: (length) => new Uint32Array(length),
    allocateVector: (length) => new Float64Array(length),
    accumulate: accumulateGradient,
    shared: null,
  };
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
  readonly id = WASM_SIMD_KERNEL_ID;
  readonly shared: SharedKernel = this;
  private readonly instance: KernelInstance;
  /** Every buffer object this memory has had: a view is ours iff its buffer is one of them. */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private nextFree = ALIGN;
  /** Scratch for arguments that live outside the memory (grown on demand). */
  private scratchIndex: Uint32Array = new Uint32Array(0);
  private scratchW: Float64Array = new Float64Array(0);
  private scratchOut: Float64Array = new Float64Array(0);
  private scratchWeights: Float64Array | null = null;

  constructor(instance: KernelInstance) {
    this.instance = instance;
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
    if (this.buffers.has(out.buffer))
      return this.instance.accumulate(xAddress, yAddress, D, orderAddress, n, wAddress, b, out.byteOffset + offset * 8, weightsAddress);
    // out elsewhere: run on a copy of its D + 1 entries, so the sums round exactly as in place.
    if (this.scratchOut.length < D + 1) this.scratchOut = this.allocateVector(D + 1);
    const window = out.subarray(offset, offset + D + 1);
    this.scratchOut.set(window);
    const loss = this.instance.accumulate(xAddress, yAddress, D, orderAddress, n, wAddress, b, this.scratchOut.byteOffset, weightsAddress);
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
  return isWasmSimdSupported() ? [WASM_SIMD_KERNEL_ID, JS_KERNEL_ID] : [JS_KERNEL_ID];
}

/** The id of a kernel kind (what a run asks of its workers). */
export function kernelId(kind: KernelKind): string {
  return kind === 'wasm-simd' ? WASM_SIMD_KERNEL_ID : JS_KERNEL_ID;
}

/** Creates the kernel with this id, or returns null when it is unknown or unavailable here. */
export function createKernelById(id: string): GradientKernel | null {
  if (!supportedKernelIds().includes(id)) return null;
  return createGradientKernel(id === WASM_SIMD_KERNEL_ID ? 'wasm-simd' : 'js');
}

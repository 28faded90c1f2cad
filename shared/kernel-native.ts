// The native implementation of the lanes8 dense logistic kernel (native/kernel.c, an optional
// N-API addon built at install, issue #15): the same operation order as the WebAssembly kernel
// (shared/kernel-wasm.ts header), with 8 float64 lanes where the CPU has them, over the same
// WebAssembly memory: it reads the rows, w and out where the wasm kernel would, by the same byte
// offsets, so choosing it copies nothing and changes no bit, only the speed.

import type { WasmAccumulate, WasmMemory } from './kernel-wasm.js';
import { loadNativeAddon, type NativeMode, nativeMode } from './native-addon.js';

/** What build/native/kernel.node exports. */
export interface NativeKernelAddon {
  /**
   * The wasm module's accumulate (x, y, D, order, n, w, b, out, classWeights: byte offsets into
   * `memory`, 0 for no order or no class weights) over `memory`, a view of the whole wasm memory.
   * Throws a RangeError where an offset (or a row of `order`) lies outside the view.
   */
  accumulate(memory: Uint8Array, x: number, y: number, D: number, order: number, n: number, w: number, b: number, out: number, classWeights: number): number;
  /** accumulate on one build ('avx512f', 'avx2' or 'baseline'; one this CPU runs, else a RangeError): tests compare them all. */
  accumulateOn(
    isa: string,
    memory: Uint8Array,
    x: number,
    y: number,
    D: number,
    order: number,
    n: number,
    w: number,
    b: number,
    out: number,
    classWeights: number,
  ): number;
  /** The addon's e^x (x ≤ 0) and log(1 + x) (0 ≤ x), ports of shared/fdlibm.ts, exported for tests. */
  exp(x: number): number;
  log1p(x: number): number;
  /** The build accumulate runs on this CPU, the widest it supports: 'avx512f' (8 lanes), 'avx2' (2 × 4) or 'baseline' (4 × 2). */
  isa(): string;
}

/** The native kernel addon, or undefined (DPT_NATIVE=off, not built, stale): callers use WebAssembly. */
export function nativeKernelAddon(mode: NativeMode = nativeMode()): NativeKernelAddon | undefined {
  return loadNativeAddon<NativeKernelAddon>('kernel', mode);
}

/**
 * The wasm module's accumulate signature run by the addon over `memory`. The view of the memory
 * is renewed only when the memory has grown (a grown shared memory hands out a new, longer
 * buffer; the old one stays valid), so a call costs no allocation.
 */
export function nativeAccumulate(addon: NativeKernelAddon, memory: WasmMemory): WasmAccumulate {
  let buffer = memory.buffer;
  let view = new Uint8Array(buffer);
  return (x, y, D, order, n, w, b, out, classWeights) => {
    const current = memory.buffer;
    if (current !== buffer) {
      buffer = current;
      view = new Uint8Array(buffer);
    }
    return addon.accumulate(view, x, y, D, order, n, w, b, out, classWeights);
  };
}

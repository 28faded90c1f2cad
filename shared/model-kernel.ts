// The kernel of a run's model, behind one interface over the flat parameter vector θ
// (shared/model-shape.ts): the binary logistic kernels of shared/kernel.ts (WebAssembly SIMD or
// TypeScript, ids unchanged, so a logistic run keeps its bits) or the softmax kernel
// (shared/softmax-kernel-wasm.ts, or its TypeScript twin in shared/softmax.ts where SIMD is
// missing: the twin computes the same bits, so both carry one id). A worker builds the one the
// welcome names; its step, pass and row code then never asks which model it trains.

import {
  supportedKernelIds as binaryKernelIds,
  createKernelById,
  type GradientKernel,
  type KernelImplementation,
  type KernelKind,
  kernelId,
  type SharedKernel,
} from './kernel.js';
import { logisticShape, type ModelShape } from './model-shape.js';
import { accumulateEval } from './passes.js';
import { accumulateSoftmax, accumulateSoftmaxEval, FDLIBM_MATH } from './softmax.js';
import { SOFTMAX_WASM_KERNEL_ID, SoftmaxWasmKernel } from './softmax-kernel-wasm.js';

/** Labels as a kernel reads them: 0/1 bytes (logistic) or uint16 class indices (softmax), as a .dpt stores them. */
export type LabelArray = Uint8Array | Uint16Array;

export interface ModelKernel {
  /** Carried by the handshake: equal ids give equal bits for equal inputs. */
  readonly id: string;
  /** Which code runs it (native, wasm or typescript): the worker's log line says; never changes the bits. */
  readonly implementation: KernelImplementation;
  readonly shape: ModelShape;
  /** Row storage for `rows` rows: x (rows × D, row-major) and labels, where the kernel reads them without a copy. */
  allocateRows(rows: number, D: number): { x: Float32Array; y: LabelArray };
  /** Row indices (an epoch order) in the kernel's memory. */
  allocateIndex(length: number): Uint32Array;
  /** float64 storage (θ, parts) in the kernel's memory. */
  allocateVector(length: number): Float64Array;
  /**
   * Adds the gradient sums of rows [from, to) (or order[from..to)) in θ's layout to
   * out[offset, offset + P) and their loss sum to out[offset + P] (P = parameterCount), and
   * returns that loss sum. x and y from allocateRows; θ and out from allocateVector.
   */
  accumulate(
    x: Float32Array,
    y: LabelArray,
    order: Uint32Array | null,
    from: number,
    to: number,
    theta: Float64Array,
    out: Float64Array,
    offset: number,
  ): number;
  /** Adds the loss and the correct predictions of the rows to out[offset], out[offset + 1], row by row (an evaluation pass). */
  evaluate(x: Float32Array, y: LabelArray, order: Uint32Array | null, from: number, to: number, theta: Float64Array, out: Float64Array, offset: number): void;
  /** The binary kernel compute threads can share, or null (the softmax kernel runs on the worker's thread). */
  readonly shared: SharedKernel | null;
  /**
   * The class weights c_k (--class-weight, issue #12) in the kernel's memory, one per class, that
   * accumulate applies to each row's gradient and loss (never evaluate: a pass reports the plain
   * loss); null when the run is unweighted (the kernels' unweighted bits).
   */
  readonly classWeights: Float64Array | null;
}

/** The kernel id a run of this shape asks its workers for ('js' only changes a logistic run's kernel). */
export function runKernelId(shape: ModelShape, kind: KernelKind): string {
  return shape.kind === 'logistic' ? kernelId(kind) : SOFTMAX_WASM_KERNEL_ID;
}

/** Ids of the kernels this process can run, best first (what a worker's hello offers). */
export function supportedKernelIds(): string[] {
  return [...binaryKernelIds(), SOFTMAX_WASM_KERNEL_ID];
}

/**
 * The kernel with this id for this shape, or null when it is unknown here or belongs to another
 * model. `classWeights` (shape.classes values, copied into the kernel's memory) weighs the rows.
 */
export function createModelKernel(id: string, shape: ModelShape, classWeights: Float64Array | null = null): ModelKernel | null {
  if (classWeights !== null && classWeights.length !== shape.classes) {
    throw new Error(`invariant broken: ${classWeights.length} class weights for ${shape.classes} classes`);
  }
  if (shape.kind === 'softmax') return id === SOFTMAX_WASM_KERNEL_ID ? softmaxKernel(shape, classWeights) : null;
  const binary = createKernelById(id);
  return binary === null ? null : logisticKernel(binary, shape, classWeights);
}

/** `weights` copied into a vector of the kernel's memory (the wasm kernels read it by address), or null. */
function tableIn(allocateVector: (length: number) => Float64Array, weights: Float64Array | null): Float64Array | null {
  if (weights === null) return null;
  const table = allocateVector(weights.length);
  table.set(weights);
  return table;
}

function asBytes(y: LabelArray): Uint8Array {
  if (!(y instanceof Uint8Array)) throw new Error('invariant broken: a logistic kernel reads 0/1 byte labels');
  return y;
}

function asClassIndices(y: LabelArray): Uint16Array {
  if (!(y instanceof Uint16Array)) throw new Error('invariant broken: a softmax kernel reads uint16 class indices');
  return y;
}

function logisticKernel(kernel: GradientKernel, shape: ModelShape, weights: Float64Array | null): ModelKernel {
  const D = shape.features;
  const lossAt = shape.lossIndex;
  const classWeights = tableIn((length) => kernel.allocateVector(length), weights);
  return {
    id: kernel.id,
    implementation: kernel.implementation,
    shape,
    allocateRows: (rows, features) => kernel.allocateRows(rows, features),
    allocateIndex: (length) => kernel.allocateIndex(length),
    allocateVector: (length) => kernel.allocateVector(length),
    accumulate(x, y, order, from, to, theta, out, offset) {
      // θ = [w, b]: the kernel reads w as θ's first D values, in place.
      const loss = kernel.accumulate(x, asBytes(y), D, order, from, to, theta, theta[D]!, out, offset, classWeights);
      out[offset + lossAt]! += loss;
      return loss;
    },
    evaluate: (x, y, order, from, to, theta, out, offset) => accumulateEval(x, asBytes(y), D, order, from, to, theta, theta[D]!, out, offset),
    shared: kernel.shared,
    classWeights,
  };
}

function softmaxKernel(shape: ModelShape, weights: Float64Array | null): ModelKernel {
  const D = shape.features;
  const K = shape.classes;
  const wasmKernel = SoftmaxWasmKernel.create();
  const scratch = new Float64Array(K);
  const evaluate: ModelKernel['evaluate'] = (x, y, order, from, to, theta, out, offset) =>
    accumulateSoftmaxEval(x, asClassIndices(y), D, K, order, from, to, theta, out, offset, scratch);
  if (wasmKernel === null) {
    const classWeights = tableIn((length) => new Float64Array(length), weights);
    // No SIMD here: the TypeScript twin, with the wasm module's exp and log1p ported (the same bits).
    return {
      id: SOFTMAX_WASM_KERNEL_ID,
      implementation: 'typescript',
      shape,
      allocateRows: (rows, features) => ({ x: new Float32Array(rows * features), y: new Uint16Array(rows) }),
      allocateIndex: (length) => new Uint32Array(length),
      allocateVector: (length) => new Float64Array(length),
      accumulate: (x, y, order, from, to, theta, out, offset) =>
        accumulateSoftmax(x, asClassIndices(y), D, K, order, from, to, theta, out, offset, scratch, FDLIBM_MATH, classWeights),
      evaluate,
      shared: null,
      classWeights,
    };
  }
  const classWeights = tableIn((length) => wasmKernel.allocateVector(length), weights);
  return {
    id: wasmKernel.id,
    implementation: 'wasm',
    shape,
    allocateRows: (rows, features) => wasmKernel.allocateRows(rows, features),
    allocateIndex: (length) => wasmKernel.allocateIndex(length),
    allocateVector: (length) => wasmKernel.allocateVector(length),
    accumulate: (x, y, order, from, to, theta, out, offset) =>
      wasmKernel.accumulate(x, asClassIndices(y), D, K, order, from, to, theta, out, offset, classWeights),
    evaluate,
    shared: null,
    classWeights,
  };
}

/** The logistic model kernel of a binary kernel kind over D features (tests and benchmarks build one directly). */
export function logisticModelKernel(kind: KernelKind, D: number, classWeights: Float64Array | null = null): ModelKernel {
  const binary = createKernelById(kernelId(kind));
  if (binary === null) throw new Error(`invariant broken: kernel ${kind} unavailable`);
  return logisticKernel(binary, logisticShape(D), classWeights);
}

// Class weights in the kernels (--class-weight, issue #12): every kernel weighs a row's gradient
// and loss by c_y, compared with plain-loop float64 references written from the formulas; a table
// of ones gives exactly the unweighted bits; the wasm kernels' raw calls carry the table.
import { describe, expect, it } from 'vitest';
import { createGradientKernel, type GradientKernel } from '../../shared/kernel.js';
import { instantiateKernel } from '../../shared/kernel-wasm.js';
import { accumulateGradient } from '../../shared/model.js';
import { createModelKernel, logisticModelKernel } from '../../shared/model-kernel.js';
import { softmaxShape } from '../../shared/model-shape.js';
import { accumulateSoftmax, softmaxPartWidth } from '../../shared/softmax.js';
import { SOFTMAX_WASM_KERNEL_ID, SoftmaxWasmKernel } from '../../shared/softmax-kernel-wasm.js';

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const bits = (values: ArrayLike<number>): bigint[] => [...new BigInt64Array(Float64Array.from(values).buffer)];

/** Σ c_y·(a − y)·x and Σ c_y·L over `rows`, plain loops in float64 (Math's exp and log), with Σ|terms| as scale. */
function binaryReference(x: Float32Array, y: Uint8Array, D: number, rows: readonly number[], w: Float64Array, b: number, c: readonly number[]) {
  const part = new Float64Array(D + 2);
  const scale = new Float64Array(D + 2);
  for (const row of rows) {
    let z = b;
    for (let j = 0; j < D; j++) z += (w[j] as number) * (x[row * D + j] as number);
    const label = y[row] as number;
    const weight = c[label] as number;
    const a = 1 / (1 + Math.exp(-z));
    for (let j = 0; j < D; j++) {
      const term = weight * (a - label) * (x[row * D + j] as number);
      part[j] = (part[j] as number) + term;
      scale[j] = (scale[j] as number) + Math.abs(term);
    }
    part[D] = (part[D] as number) + weight * (a - label);
    scale[D] = (scale[D] as number) + Math.abs(weight * (a - label));
    const L = -(label * Math.log(a) + (1 - label) * Math.log(1 - a)); // the definition, not the kernel's softplus form
    part[D + 1] = (part[D + 1] as number) + weight * L;
    scale[D + 1] = (scale[D + 1] as number) + Math.abs(weight) * (Math.abs(z) + 1);
  }
  return { part, scale };
}

/** Σ c_y·(p − onehot(y)) xᵀ, Σ c_y·(p − onehot(y)) and Σ c_y·(−log p_y), plain loops in float64. */
function softmaxReference(x: Float32Array, y: Uint16Array, D: number, K: number, rows: readonly number[], theta: Float64Array, c: readonly number[]) {
  const part = new Float64Array(K * D + K + 1);
  const scale = new Float64Array(K * D + K + 1);
  for (const row of rows) {
    const z = Array.from({ length: K }, (_, k) => {
      let sum = theta[K * D + k] as number;
      for (let j = 0; j < D; j++) sum += (theta[k * D + j] as number) * (x[row * D + j] as number);
      return sum;
    });
    const total = z.reduce((sum, zk) => sum + Math.exp(zk), 0);
    const label = y[row] as number;
    const weight = c[label] as number;
    for (let k = 0; k < K; k++) {
      const g = weight * (Math.exp(z[k] as number) / total - (k === label ? 1 : 0));
      for (let j = 0; j < D; j++) {
        part[k * D + j] = (part[k * D + j] as number) + g * (x[row * D + j] as number);
        scale[k * D + j] = (scale[k * D + j] as number) + Math.abs(g * (x[row * D + j] as number));
      }
      part[K * D + k] = (part[K * D + k] as number) + g;
      scale[K * D + k] = (scale[K * D + k] as number) + Math.abs(g);
    }
    part[K * D + K] = (part[K * D + K] as number) + weight * (Math.log(total) - (z[label] as number));
    scale[K * D + K] = (scale[K * D + K] as number) + Math.abs(weight) * (Math.abs(Math.log(total)) + Math.abs(z[label] as number) + 1);
  }
  return { part, scale };
}

function expectClose(actual: Float64Array, expected: { part: Float64Array; scale: Float64Array }, tolerance: number): void {
  for (let i = 0; i < expected.part.length; i++) {
    const diff = Math.abs((actual[i] as number) - (expected.part[i] as number));
    expect(diff, `entry ${i}`).toBeLessThanOrEqual(tolerance * (expected.scale[i] as number) + 1e-300);
  }
}

function fillBinary(kernel: GradientKernel, rows: number, D: number, seed: number) {
  const next = lcg(seed);
  const { x, y } = kernel.allocateRows(rows, D);
  for (let i = 0; i < x.length; i++) x[i] = next() * 4 - 2;
  for (let i = 0; i < rows; i++) y[i] = next() < 0.3 ? 1 : 0;
  const w = kernel.allocateVector(D);
  for (let j = 0; j < D; j++) w[j] = ((next() * 2 - 1) * 1.5) / Math.sqrt(D);
  const order = kernel.allocateIndex(rows);
  for (let i = 0; i < rows; i++) order[i] = (i * 11 + 5) % rows;
  return { x, y, w, order };
}

const WEIGHTS = [0.7142857142857143, 1.6666666666666667];

describe('class weights in the binary kernels (WebAssembly SIMD and TypeScript)', () => {
  for (const kind of ['wasm-simd', 'js'] as const) {
    it.each([1, 3, 4, 10, 33])(`${kind}: weighs each row's gradient and loss by c_y, within 1e-12 of a float64 reference, D = %i`, (D) => {
      const kernel = createGradientKernel(kind);
      expect(kernel.kind).toBe(kind);
      const rows = 37;
      const { x, y, w, order } = fillBinary(kernel, rows, D, 7 * D + 1);
      const table = kernel.allocateVector(2);
      table.set(WEIGHTS);
      for (const indexed of [false, true]) {
        const out = kernel.allocateVector(D + 1);
        const loss = kernel.accumulate(x, y, D, indexed ? order : null, 2, 35, w, 0.25, out, 0, table);
        const chosen = Array.from({ length: 33 }, (_, i) => (indexed ? (order[i + 2] as number) : i + 2));
        expectClose(Float64Array.from([...out, loss]), binaryReference(x, y, D, chosen, w, 0.25, WEIGHTS), 1e-12);
      }
    });

    it(`${kind}: gives exactly the unweighted bits with a table of ones (x·1 = x in IEEE 754), and differs with others`, () => {
      const kernel = createGradientKernel(kind);
      const D = 13;
      const { x, y, w, order } = fillBinary(kernel, 41, D, 99);
      const ones = kernel.allocateVector(2).fill(1);
      for (const indexed of [false, true]) {
        const plain = kernel.allocateVector(D + 1);
        const weighted = kernel.allocateVector(D + 1);
        const plainLoss = kernel.accumulate(x, y, D, indexed ? order : null, 0, 41, w, -0.5, plain, 0);
        const onesLoss = kernel.accumulate(x, y, D, indexed ? order : null, 0, 41, w, -0.5, weighted, 0, ones);
        expect(bits([...weighted, onesLoss])).toEqual(bits([...plain, plainLoss]));
        const other = kernel.allocateVector(D + 1);
        kernel.accumulate(x, y, D, indexed ? order : null, 0, 41, w, -0.5, other, 0, Float64Array.from([1, 2]));
        expect(bits(other)).not.toEqual(bits(plain));
      }
    });
  }

  it('wasm: a table outside the kernel memory gives the bits of one inside it', () => {
    const kernel = createGradientKernel('wasm-simd');
    const D = 6;
    const { x, y, w } = fillBinary(kernel, 20, D, 5);
    const inside = kernel.allocateVector(2);
    inside.set(WEIGHTS);
    const a = kernel.allocateVector(D + 1);
    const b = kernel.allocateVector(D + 1);
    const lossA = kernel.accumulate(x, y, D, null, 0, 20, w, 0, a, 0, inside);
    const lossB = kernel.accumulate(x, y, D, null, 0, 20, w, 0, b, 0, Float64Array.from(WEIGHTS));
    expect(bits([...b, lossB])).toEqual(bits([...a, lossA]));
  });

  it("wasm: the compute threads' raw call carries the table's address (9 numbers), and gives the kernel's bits", () => {
    const kernel = createGradientKernel('wasm-simd');
    const shared = kernel.shared;
    if (shared === null) throw new Error('expected the shared wasm kernel');
    const D = 9;
    const { x, y, w, order } = fillBinary(kernel, 30, D, 3);
    const table = kernel.allocateVector(2);
    table.set(WEIGHTS);
    const viaKernel = kernel.allocateVector(D + 1);
    const loss = kernel.accumulate(x, y, D, order, 4, 27, w, 0.1, viaKernel, 0, table);
    const viaRaw = kernel.allocateVector(D + 1);
    const call = shared.rawArguments(x, y, D, order, 4, 27, w, 0.1, viaRaw, 0, table);
    expect(call).not.toBeNull();
    expect(call?.length).toBe(9);
    expect(call?.[8]).toBe(table.byteOffset);
    const instance = instantiateKernel(shared.memory);
    const rawLoss = instance?.accumulate(...(call as [number, number, number, number, number, number, number, number, number]));
    expect(bits([...viaRaw, rawLoss ?? Number.NaN])).toEqual(bits([...viaKernel, loss]));
    // A table elsewhere cannot travel by address: the caller computes the chunk itself.
    expect(shared.rawArguments(x, y, D, order, 4, 27, w, 0.1, viaRaw, 0, Float64Array.from(WEIGHTS))).toBeNull();
  });

  it('the logistic model kernel copies its table and weighs training, never the evaluation pass', () => {
    const D = 5;
    const plainKernel = logisticModelKernel('js', D);
    const weightedKernel = logisticModelKernel('js', D, Float64Array.from(WEIGHTS));
    expect(weightedKernel.classWeights).toEqual(Float64Array.from(WEIGHTS));
    expect(plainKernel.classWeights).toBeNull();
    const next = lcg(11);
    const { x, y: labels } = weightedKernel.allocateRows(16, D);
    if (!(labels instanceof Uint8Array)) throw new Error('a logistic kernel reads 0/1 byte labels');
    const y = labels;
    for (let i = 0; i < x.length; i++) x[i] = next() * 4 - 2;
    for (let i = 0; i < 16; i++) y[i] = next() < 0.5 ? 1 : 0;
    const theta = Float64Array.from({ length: D + 1 }, () => next() - 0.5);
    const out = new Float64Array(D + 2);
    weightedKernel.accumulate(x, y, null, 0, 16, theta, out, 0);
    const direct = new Float64Array(D + 1);
    const loss = accumulateGradient(x, y, D, null, 0, 16, theta, theta[D] as number, direct, 0, Float64Array.from(WEIGHTS));
    expect(bits(out)).toEqual(bits([...direct, loss]));
    const evalPlain = new Float64Array(2);
    const evalWeighted = new Float64Array(2);
    plainKernel.evaluate(x, y, null, 0, 16, theta, evalPlain, 0);
    weightedKernel.evaluate(x, y, null, 0, 16, theta, evalWeighted, 0);
    expect(bits(evalWeighted)).toEqual(bits(evalPlain));
  });
});

function createSoftmax(): SoftmaxWasmKernel {
  const kernel = SoftmaxWasmKernel.create();
  if (kernel === null) throw new Error('WebAssembly SIMD unavailable'); // Node.js 20 on x64/arm64 has it
  return kernel;
}

function fillSoftmax(kernel: SoftmaxWasmKernel, rows: number, D: number, K: number, seed: number) {
  const next = lcg(seed);
  const { x, y } = kernel.allocateRows(rows, D);
  for (let i = 0; i < x.length; i++) x[i] = next() * 4 - 2;
  for (let i = 0; i < rows; i++) y[i] = Math.floor(next() * K);
  const theta = kernel.allocateVector(K * D + K);
  for (let i = 0; i < theta.length; i++) theta[i] = ((next() * 2 - 1) * 1.5) / Math.sqrt(D);
  const order = kernel.allocateIndex(rows);
  for (let i = 0; i < rows; i++) order[i] = (i * 7 + 3) % rows;
  return { x, y, theta, order };
}

describe('class weights in the softmax kernels (WebAssembly SIMD and its TypeScript twin)', () => {
  it.each([
    [2, 1],
    [3, 7],
    [5, 8],
    [10, 13],
  ])('weighs each row by c_y within 1e-12 of a float64 reference, with the twin giving the wasm bits, K = %i, D = %i', (K, D) => {
    const kernel = createSoftmax();
    const rows = 29;
    const { x, y, theta, order } = fillSoftmax(kernel, rows, D, K, 31 * K + D);
    const weights = Array.from({ length: K }, (_, k) => (k === 1 ? 0 : 0.5 + k / 3)); // a zero weight too
    const table = kernel.allocateVector(K);
    table.set(weights);
    const width = softmaxPartWidth(K, D);
    for (const indexed of [false, true]) {
      const out = kernel.allocateVector(width);
      kernel.accumulate(x, y, D, K, indexed ? order : null, 1, 27, theta, out, 0, table);
      const chosen = Array.from({ length: 26 }, (_, i) => (indexed ? (order[i + 1] as number) : i + 1));
      expectClose(out, softmaxReference(x, y, D, K, chosen, theta, weights), 1e-12);
      const twin = new Float64Array(width);
      accumulateSoftmax(x, y, D, K, indexed ? order : null, 1, 27, theta, twin, 0, new Float64Array(K), kernel.math, Float64Array.from(weights));
      expect(bits(twin)).toEqual(bits(out));
    }
  });

  it('gives exactly the unweighted bits with a table of ones, wasm and twin', () => {
    const kernel = createSoftmax();
    const [K, D] = [4, 9];
    const { x, y, theta, order } = fillSoftmax(kernel, 23, D, K, 17);
    const ones = kernel.allocateVector(K).fill(1);
    const width = softmaxPartWidth(K, D);
    for (const indexed of [false, true]) {
      const plain = kernel.allocateVector(width);
      const weighted = kernel.allocateVector(width);
      kernel.accumulate(x, y, D, K, indexed ? order : null, 0, 23, theta, plain, 0);
      kernel.accumulate(x, y, D, K, indexed ? order : null, 0, 23, theta, weighted, 0, ones);
      expect(bits(weighted)).toEqual(bits(plain));
      const twinPlain = new Float64Array(width);
      const twinOnes = new Float64Array(width);
      accumulateSoftmax(x, y, D, K, indexed ? order : null, 0, 23, theta, twinPlain, 0, new Float64Array(K));
      accumulateSoftmax(x, y, D, K, indexed ? order : null, 0, 23, theta, twinOnes, 0, new Float64Array(K), undefined, Float64Array.from([1, 1, 1, 1]));
      expect(bits(twinOnes)).toEqual(bits(twinPlain));
    }
  });

  it('the softmax model kernel weighs training with its table (a copy in its memory), and refuses a table of the wrong length', () => {
    const [K, D] = [3, 4];
    const weights = Float64Array.from([2, 0.5, 1.25]);
    const kernel = createModelKernel(SOFTMAX_WASM_KERNEL_ID, softmaxShape(K, D), weights);
    if (kernel === null) throw new Error('expected the softmax kernel');
    expect(kernel.classWeights).toEqual(weights);
    const next = lcg(23);
    const { x, y } = kernel.allocateRows(12, D);
    for (let i = 0; i < x.length; i++) x[i] = next() * 4 - 2;
    for (let i = 0; i < 12; i++) (y as Uint16Array)[i] = Math.floor(next() * K);
    const theta = kernel.allocateVector(K * D + K);
    for (let i = 0; i < theta.length; i++) theta[i] = next() - 0.5;
    const out = kernel.allocateVector(softmaxPartWidth(K, D));
    kernel.accumulate(x, y, null, 0, 12, theta, out, 0);
    const rows = Array.from({ length: 12 }, (_, i) => i);
    expectClose(out, softmaxReference(x, y as Uint16Array, D, K, rows, theta, [...weights]), 1e-12);
    expect(() => createModelKernel(SOFTMAX_WASM_KERNEL_ID, softmaxShape(K, D), Float64Array.from([1, 1]))).toThrow(/2 class weights for 3 classes/);
  });
});

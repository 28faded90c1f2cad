import { afterAll, describe, expect, it } from 'vitest';
import { instantiateKernel } from '../../shared/kernel-wasm.js';
import { accumulateSoftmax, JS_MATH, softmaxPartWidth } from '../../shared/softmax.js';
import { SOFTMAX_WASM_KERNEL_ID, SoftmaxWasmKernel } from '../../shared/softmax-kernel-wasm.js';
import { softmaxReference } from '../helpers/softmax-reference.js';

function createKernel(): SoftmaxWasmKernel {
  const kernel = SoftmaxWasmKernel.create();
  // Node.js 20 on x64 and arm64 has WebAssembly SIMD: a machine without it fails, not skips.
  if (kernel === null) throw new Error('WebAssembly SIMD unavailable');
  return kernel;
}

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Seeded rows in the kernel's memory: x in [−2, 2) (exact in float32), labels < K, θ ~ 1.5/√D. */
function fill(kernel: SoftmaxWasmKernel, rows: number, D: number, K: number, seed: number) {
  const next = lcg(seed);
  const { x, y } = kernel.allocateRows(rows, D);
  for (let i = 0; i < x.length; i++) x[i] = next() * 4 - 2;
  for (let i = 0; i < rows; i++) y[i] = Math.floor(next() * K);
  const theta = kernel.allocateVector(K * D + K);
  for (let i = 0; i < theta.length; i++) theta[i] = ((next() * 2 - 1) * 1.5) / Math.sqrt(D);
  return { x, y, theta };
}

const bits = (values: Float64Array): bigint[] => [...new BigInt64Array(Float64Array.from(values).buffer)];

/** Largest |kernel − reference| over a part, absolute and relative to the reference's scale, by data kind. */
const worst = { random: { absolute: 0, relative: 0 }, extreme: { absolute: 0, relative: 0 }, scaled: { absolute: 0, relative: 0 } };
function compareWithReference(
  part: Float64Array,
  offset: number,
  expected: ReturnType<typeof softmaxReference>,
  tolerance: number,
  kind: keyof typeof worst = 'random',
): void {
  for (let i = 0; i < expected.part.length; i++) {
    const diff = Math.abs((part[offset + i] as number) - (expected.part[i] as number));
    const scale = expected.scale[i] as number;
    worst[kind].absolute = Math.max(worst[kind].absolute, diff);
    if (scale > 0) worst[kind].relative = Math.max(worst[kind].relative, diff / scale);
    expect(diff, `entry ${i}`).toBeLessThanOrEqual(tolerance * scale + 1e-300);
  }
}

afterAll(() => {
  // For the closing note of issue #12 (the reference comparison's max |diff|).
  for (const [kind, { absolute, relative }] of Object.entries(worst)) {
    console.log(`softmax kernel vs float64 reference (${kind} data): max |diff| ${absolute.toExponential(3)}, max |diff|/scale ${relative.toExponential(3)}`);
  }
});

const GRID = [2, 3, 10, 26].flatMap((K) => [1, 7, 64].map((D) => [K, D] as const));

describe('the softmax WebAssembly SIMD kernel', () => {
  it.each(GRID)('matches the float64 reference within 1e-12 relative for K = %i, D = %i, contiguous and indexed rows', (K, D) => {
    const kernel = createKernel();
    const rows = 23;
    const { x, y, theta } = fill(kernel, rows, D, K, K * 100 + D);
    const order = kernel.allocateIndex(rows);
    for (let i = 0; i < rows; i++) order[i] = (i * 7 + 3) % rows;
    for (const [indexed, from, to] of [
      [false, 0, rows],
      [false, 2, 21],
      [true, 0, rows],
      [true, 3, 20],
    ] as const) {
      const out = kernel.allocateVector(softmaxPartWidth(K, D) + 2);
      const loss = kernel.accumulate(x, y, D, K, indexed ? order : null, from, to, theta, out, 2);
      const positions = Array.from({ length: to - from }, (_, k) => from + k);
      const expected = softmaxReference(x, y, D, K, indexed ? positions.map((i) => order[i] as number) : positions, theta);
      compareWithReference(out, 2, expected, 1e-12);
      expect(loss).toBe(out[2 + K * D + K]);
      expect([out[0], out[1]]).toEqual([0, 0]);
    }
  });

  it.each(GRID)(
    'gives the bits of its TypeScript twin accumulateSoftmax (with the module’s exp and log1p, and with the fdlibm ports) for K = %i, D = %i',
    (K, D) => {
      const kernel = createKernel();
      const rows = 19;
      const { x, y, theta } = fill(kernel, rows, D, K, K * 7 + D);
      const order = Uint32Array.from({ length: rows }, (_, i) => (i * 5 + 1) % rows);
      const orderInside = kernel.allocateIndex(rows);
      orderInside.set(order);
      const width = softmaxPartWidth(K, D);
      for (const indexed of [false, true]) {
        const out = kernel.allocateVector(width);
        out.fill(0.125); // a part that already holds sums: the additions must round the same way
        const twin = new Float64Array(width).fill(0.125);
        const loss = kernel.accumulate(x, y, D, K, indexed ? orderInside : null, 1, 18, theta, out, 0);
        const twinLoss = accumulateSoftmax(x, y, D, K, indexed ? order : null, 1, 18, theta, twin, 0, new Float64Array(K), kernel.math);
        expect(bits(out)).toEqual(bits(twin));
        expect(Object.is(loss, twinLoss)).toBe(true);
        // The TypeScript fallback as shipped (the fdlibm ports of shared/fdlibm.ts): the same bits again.
        const fallback = new Float64Array(width).fill(0.125);
        const fallbackLoss = accumulateSoftmax(x, y, D, K, indexed ? order : null, 1, 18, theta, fallback, 0, new Float64Array(K));
        expect(bits(fallback)).toEqual(bits(out));
        expect(Object.is(fallbackLoss, loss)).toBe(true);
      }
    },
  );

  it.each(GRID)('stays finite for random logits scaled to |z| ≈ 1e4 for K = %i, D = %i, within 1e-12 of the reference plus the rounding of z', (K, D) => {
    const kernel = createKernel();
    const rows = 23;
    const { x, y, theta } = fill(kernel, rows, D, K, K + D);
    for (let i = 0; i < theta.length; i++) theta[i] = (theta[i] as number) * 1e4;
    const out = kernel.allocateVector(softmaxPartWidth(K, D));
    const loss = kernel.accumulate(x, y, D, K, null, 0, rows, theta, out, 0);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(loss)).toBe(true);
    // z itself rounds differently in the two summation orders, by at most γ = (D + 1)·2^−53·Σ|W x|
    // + |b| (the standard bound for a sum), which is ~1e−12 at |z| ≈ 1e4; p_k depends on z_k − m,
    // so each term of an entry moves by at most 2γ relative to itself: the bound is 1e−12 + 2γ.
    let zScale = 0;
    for (let row = 0; row < rows; row++) {
      for (let k = 0; k < K; k++) {
        let size = Math.abs(theta[K * D + k] as number);
        for (let j = 0; j < D; j++) size += Math.abs((theta[k * D + j] as number) * (x[row * D + j] as number));
        zScale = Math.max(zScale, size);
      }
    }
    expect(zScale).toBeGreaterThan(1e3);
    const gamma = (D + 1) * 2 ** -53 * zScale;
    const expected = softmaxReference(
      x,
      y,
      D,
      K,
      Array.from({ length: rows }, (_, i) => i),
      theta,
    );
    compareWithReference(out, 0, expected, 1e-12 + 2 * gamma, 'scaled');
  });

  it('stays finite and exact for logits up to |z| = 1e4 (exact integer logits)', () => {
    const kernel = createKernel();
    const K = 10;
    const D = 7;
    const rows = 40;
    const next = lcg(12);
    const { x, y } = kernel.allocateRows(rows, D);
    for (let i = 0; i < x.length; i++) x[i] = Math.floor(next() * 7) - 3; // −3..3
    for (let i = 0; i < rows; i++) y[i] = Math.floor(next() * K);
    for (const spread of ['wide', 'narrow'] as const) {
      // wide: W_kj ∈ −450..450, so z spans ±1e4 and most p are exactly 0 or 1;
      // narrow: b_k = ±1e4 + k, W_kj ∈ −1..1, so z is huge but its differences are small (e^z overflows, e^(z−m) does not).
      const theta = kernel.allocateVector(K * D + K);
      for (let i = 0; i < K * D; i++) theta[i] = spread === 'wide' ? Math.floor(next() * 901) - 450 : Math.floor(next() * 3) - 1;
      for (let k = 0; k < K; k++) theta[K * D + k] = spread === 'wide' ? Math.floor(next() * 601) - 300 : (k % 2 === 0 ? 1e4 : -1e4) + k;
      const out = kernel.allocateVector(softmaxPartWidth(K, D));
      const loss = kernel.accumulate(x, y, D, K, null, 0, rows, theta, out, 0);
      expect(out.every(Number.isFinite)).toBe(true);
      expect(Number.isFinite(loss)).toBe(true);
      const expected = softmaxReference(
        x,
        y,
        D,
        K,
        Array.from({ length: rows }, (_, i) => i),
        theta,
      );
      compareWithReference(out, 0, expected, 1e-12, 'extreme');
      const maxZ = Math.max(
        ...Array.from({ length: rows * K }, (_, i) => {
          const row = Math.floor(i / K);
          const k = i % K;
          let z = theta[K * D + k] as number;
          for (let j = 0; j < D; j++) z += (theta[k * D + j] as number) * (x[row * D + j] as number);
          return Math.abs(z);
        }),
      );
      expect(maxZ).toBeGreaterThan(spread === 'wide' ? 3000 : 9000);
    }
  });

  it('gives the closed form at the extremes: p exactly 0 or 1, loss m − z_y', () => {
    const kernel = createKernel();
    const K = 4;
    const D = 1;
    const { x, y } = kernel.allocateRows(4, D);
    x.fill(1);
    y.set([0, 1, 2, 3]);
    const theta = kernel.allocateVector(K * D + K);
    theta.set([0, 0, 0, 0, 1e4, -1e4, 0, 5e3]); // W = 0, b = z: z = (1e4, −1e4, 0, 5e3) for every row
    const out = kernel.allocateVector(softmaxPartWidth(K, D));
    const loss = kernel.accumulate(x, y, D, K, null, 0, 4, theta, out, 0);
    // Per row p = (1, 0, 0, 0) exactly; L_y = 1e4 − z_y: 0, 2e4, 1e4, 5e3. Σ g = 4p − Σ onehot = (3, −1, −1, −1).
    expect(loss).toBe(0 + 2e4 + 1e4 + 5e3);
    expect(Array.from(out)).toEqual([3, -1, -1, -1, 3, -1, -1, -1, loss]);
  });

  it('has a gradient equal to central differences of its loss', () => {
    const kernel = createKernel();
    const K = 3;
    const D = 5;
    const rows = 9;
    const { x, y, theta } = fill(kernel, rows, D, K, 5);
    const width = softmaxPartWidth(K, D);
    const out = kernel.allocateVector(width);
    kernel.accumulate(x, y, D, K, null, 0, rows, theta, out, 0);
    const lossAt = (values: Float64Array): number => {
      const shifted = kernel.allocateVector(K * D + K);
      shifted.set(values);
      return kernel.accumulate(x, y, D, K, null, 0, rows, shifted, kernel.allocateVector(width), 0);
    };
    const h = 1e-6;
    for (let i = 0; i < K * D + K; i++) {
      const plus = Float64Array.from(theta);
      const minus = Float64Array.from(theta);
      plus[i] = (plus[i] as number) + h;
      minus[i] = (minus[i] as number) - h;
      const numeric = (lossAt(plus) - lossAt(minus)) / (2 * h);
      expect(Math.abs(numeric - (out[i] as number)), `θ[${i}]`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(numeric)));
    }
  });

  it('uses the binary kernel’s exp and log1p: the same bits, and log1p within 1 ulp of Math’s up to K − 1', () => {
    const kernel = createKernel();
    const binary = instantiateKernel();
    if (binary === null) throw new Error('WebAssembly SIMD unavailable');
    const next = lcg(77);
    const ulps = (a: number, b: number): number => {
      const words = new BigInt64Array(Float64Array.from([a, b]).buffer);
      return Math.abs(Number((words[0] as bigint) - (words[1] as bigint)));
    };
    for (let i = 0; i < 5_000; i++) {
      const t = -next() * 800;
      expect(Object.is(kernel.math.exp(t), binary.exp(t))).toBe(true);
      const u = next() * 1000; // T = Σ_{k ≠ a} e_k lies in [0, K − 1]
      expect(ulps(kernel.math.log1p(u), Math.log1p(u))).toBeLessThanOrEqual(1);
      expect(ulps(kernel.math.log1p(u / 1000), JS_MATH.log1p(u / 1000))).toBeLessThanOrEqual(1);
    }
  });

  it('refuses views outside its memory and ranges past its buffers', () => {
    const kernel = createKernel();
    const { x, y, theta } = fill(kernel, 4, 3, 2, 1);
    const out = kernel.allocateVector(softmaxPartWidth(2, 3));
    expect(() => kernel.accumulate(x, y, 3, 2, null, 0, 4, Float64Array.from(theta), out, 0)).toThrow(/must come from this kernel/);
    expect(() => kernel.accumulate(x, y, 3, 2, null, 0, 5, theta, out, 0)).toThrow(RangeError);
    expect(() => kernel.accumulate(x, y, 3, 2, null, 0, 4, theta, out, 1)).toThrow(RangeError);
    expect(kernel.id).toBe(SOFTMAX_WASM_KERNEL_ID);
  });

  it('keeps earlier views valid when later allocations grow its memory', () => {
    const kernel = createKernel();
    const { x, y, theta } = fill(kernel, 8, 4, 3, 3);
    const before = Array.from(x);
    kernel.allocateVector(4 << 20); // 32 MiB: grows the memory
    expect(Array.from(x)).toEqual(before);
    const out = kernel.allocateVector(softmaxPartWidth(3, 4));
    expect(Number.isFinite(kernel.accumulate(x, y, 4, 3, null, 0, 8, theta, out, 0))).toBe(true);
  });
});

describe('the softmax kernel given a row order held outside its memory', () => {
  it('copies the order in and gives the bits of the same order held inside (it used to refuse it)', () => {
    const kernel = createKernel();
    const [rows, D, K] = [23, 9, 4];
    const { x, y, theta } = fill(kernel, rows, D, K, 99);
    const order = Uint32Array.from({ length: rows }, (_, i) => (i * 7 + 3) % rows);
    const inside = kernel.allocateIndex(rows);
    inside.set(order);
    const width = softmaxPartWidth(K, D);
    const viaInside = kernel.allocateVector(width);
    const viaOutside = kernel.allocateVector(width);
    const lossInside = kernel.accumulate(x, y, D, K, inside, 2, 21, theta, viaInside, 0);
    const lossOutside = kernel.accumulate(x, y, D, K, order, 2, 21, theta, viaOutside, 0);
    expect(lossOutside).toBe(lossInside);
    expect(bits(viaOutside)).toEqual(bits(viaInside));
    expect(viaInside.some((value) => value !== 0)).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { exp, log1p } from '../../shared/fdlibm.js';
import { instantiateKernel } from '../../shared/kernel-wasm.js';

function wasmMath() {
  const instance = instantiateKernel();
  if (instance === null) throw new Error('WebAssembly SIMD unavailable');
  return instance;
}

const same = (a: number, b: number): boolean => Object.is(a, b);

describe('the TypeScript fdlibm ports', () => {
  it('give the wasm kernels’ exp bit for bit on x ≤ 0, subnormal results and edges included', () => {
    const wasm = wasmMath();
    let state = 41;
    const next = (): number => {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
    const inputs = [0, -0, -1e-300, -(2 ** -29), -0.34657359027997264, -0.35, -1.0397, -1.04, -708.39, -709.78, -745.13, -745.2, -800, -Infinity, Number.NaN];
    for (let i = 0; i < 100_000; i++) inputs.push(-next() * [1e-9, 0.5, 2, 40, 750][i % 5]!);
    let mismatches = 0;
    for (const x of inputs) if (!same(exp(x), wasm.exp(x))) mismatches++;
    expect(mismatches).toBe(0);
  });

  it('give the wasm kernels’ log1p bit for bit on 0 ≤ x < 2^53', () => {
    const wasm = wasmMath();
    let state = 43;
    const next = (): number => {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
    const inputs = [0, 1e-300, 2 ** -60, 2 ** -29, 2 ** -20, 0.41421, 0.41422, 0.5, 1, Math.SQRT2 - 1, 2, 3, 25, 999, 2 ** 52, Infinity, Number.NaN];
    for (let i = 0; i < 100_000; i++) inputs.push(next() * [1e-12, 1e-6, 0.5, 1, 30, 1000][i % 6]!);
    let mismatches = 0;
    for (const x of inputs) if (!same(log1p(x), wasm.log1p(x))) mismatches++;
    expect(mismatches).toBe(0);
  });
});

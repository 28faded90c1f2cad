// Micro-measurement (not a test) for issue #12's closing note: what the softmax kernel costs per
// row against the binary kernel. rows/s of the softmax WebAssembly SIMD kernel (and its TypeScript
// twin with Math's exp/log1p) at K classes × D features, against the binary SIMD kernel at D, on
// the same rows, in batches of B contiguous rows; median of interleaved trials.
// Run: `npm run build && node dist/bench/softmax-kernel.js [--k 10] [--d 64] [--b 256] [--seconds 0.5] [--trials 3]`.

import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { accumulateSoftmax, softmaxPartWidth } from '../shared/softmax.js';
import { SoftmaxWasmKernel } from '../shared/softmax-kernel-wasm.js';
import { benchRows, formatNumber, median } from './harness.js';
import { measureKernel } from './kernel.js';

/** rows/s of the softmax kernel ('wasm', or 'js': the TypeScript twin with Math) over batches of B rows cycling over N. */
export function measureSoftmax(kind: 'wasm' | 'js', K: number, D: number, B: number, N: number, seconds: number): number {
  const kernel = SoftmaxWasmKernel.create();
  if (kernel === null) throw new Error('WebAssembly SIMD unavailable');
  const { x, y } = kernel.allocateRows(N, D);
  let s = 12_345; // the LCG of bench/kernel.ts: x in [−2, 2)
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    x[i] = (s >>> 8) * (1 / 16_777_216) * 4 - 2;
  }
  for (let i = 0; i < N; i++) y[i] = i % K;
  const theta = kernel.allocateVector(K * D + K);
  for (let i = 0; i < theta.length; i++) theta[i] = ((0.5 / Math.sqrt(D)) * ((i % 7) - 3)) / 3;
  const out = kernel.allocateVector(softmaxPartWidth(K, D));
  const scratch = new Float64Array(K);
  const batches = N / B;
  let batch = 0;
  const run = (budgetMs: number): number => {
    let rows = 0;
    const started = performance.now();
    let elapsed = 0;
    do {
      for (let rep = 0; rep < 8; rep++) {
        out.fill(0);
        const from = batch * B;
        if (kind === 'wasm') kernel.accumulate(x, y, D, K, null, from, from + B, theta, out, 0);
        else accumulateSoftmax(x, y, D, K, null, from, from + B, theta, out, 0, scratch);
        rows += B;
        batch = (batch + 1) % batches;
      }
      elapsed = performance.now() - started;
    } while (elapsed < budgetMs);
    return (rows * 1000) / elapsed;
  };
  run(Math.min(300, seconds * 500)); // JIT and wasm tier-up
  return run(seconds * 1000);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      k: { type: 'string', default: '10' },
      d: { type: 'string', default: '64' },
      b: { type: 'string', default: '256' },
      seconds: { type: 'string', default: '0.5' },
      trials: { type: 'string', default: '3' },
    },
  });
  const [K, D, B, seconds, trials] = [values.k, values.d, values.b, values.seconds, values.trials].map(Number) as [number, number, number, number, number];
  const N = benchRows(D, B);
  const samples = { binary: [] as number[], softmax: [] as number[], softmaxJs: [] as number[] };
  for (let trial = 0; trial < trials; trial++) {
    samples.binary.push(measureKernel('wasm-simd', D, B, N, seconds));
    samples.softmax.push(measureSoftmax('wasm', K, D, B, N, seconds));
    samples.softmaxJs.push(measureSoftmax('js', K, D, B, N, seconds));
  }
  const [binary, softmax, softmaxJs] = [median(samples.binary), median(samples.softmax), median(samples.softmaxJs)];
  console.log(`D = ${D}, B = ${B}, N = ${N}, ${trials} trials of ${seconds} s, median rows/s`);
  console.log(`binary wasm SIMD kernel:         ${formatNumber(binary)} rows/s`);
  console.log(`softmax wasm SIMD kernel, K = ${K}: ${formatNumber(softmax)} rows/s (${(binary / softmax).toFixed(1)}× the binary kernel's time per row)`);
  console.log(`softmax TypeScript twin, K = ${K}:  ${formatNumber(softmaxJs)} rows/s`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();

// Benchmark of the gradient kernel alone: the TypeScript kernel, the lanes8 kernel as WebAssembly
// SIMD and as the native addon (native/kernel.c, where it was built; the same bits), and the C
// reference (bench/kernel.c, built with cc -march=native and reassociation: no same-bits promise)
// on the same data, for D × B. Reports rows/s and the ratios to C. Run: `npm run build && node dist/bench/kernel.js [--d 100] [--b 64] [--seconds 0.5]`.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createGradientKernel, type KernelKind } from '../shared/kernel.js';
import { nativeKernelAddon } from '../shared/kernel-native.js';
import type { NativeMode } from '../shared/native-addon.js';
import { benchRows, buildCKernel, C_FLAGS, formatNumber, formatTable, median, parseGridArgs, RESULTS_DIR, writeJson } from './harness.js';

export interface KernelResult {
  readonly D: number;
  readonly B: number;
  /** Rows of the data set the batches cycle over. */
  readonly N: number;
  /** rows/s, median of the trials; null when skipped. */
  readonly js: number;
  /** The lanes8 kernel in WebAssembly (DPT_NATIVE=off). */
  readonly wasm: number;
  /** The lanes8 kernel as the native addon; null where it is not built. */
  readonly native: number | null;
  readonly c: number | null;
  /** Every trial's rows/s, in run order (trials interleave the kernels): the spread behind each median. */
  readonly samples: { readonly js: number[]; readonly wasm: number[]; readonly native: number[]; readonly c: number[] };
}

/**
 * rows/s of `kind` over batches of B contiguous rows cycling over N rows, after a warm-up.
 * `native`: 'off' measures the WebAssembly kernel, 'require' the native addon.
 */
export function measureKernel(kind: KernelKind, D: number, B: number, N: number, seconds: number, native: NativeMode = 'off'): number {
  const kernel = createGradientKernel(kind, native);
  const { x, y } = kernel.allocateRows(N, D);
  // The same values as bench/kernel.c: an LCG in [−2, 2), labels 1 on every third row.
  let s = 12_345;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    x[i] = (s >>> 8) * (1 / 16_777_216) * 4 - 2;
  }
  for (let i = 0; i < N; i++) y[i] = i % 3 === 0 ? 1 : 0;
  const w = kernel.allocateVector(D);
  for (let j = 0; j < D; j++) w[j] = ((0.5 / Math.sqrt(D)) * ((j % 7) - 3)) / 3;
  const out = kernel.allocateVector(D + 1);
  const batches = N / B;
  let batch = 0;
  const run = (budgetMs: number): number => {
    let rows = 0;
    const started = performance.now();
    let elapsed = 0;
    do {
      for (let rep = 0; rep < 8; rep++) {
        out.fill(0);
        kernel.accumulate(x, y, D, null, batch * B, batch * B + B, w, 0.1, out, 0);
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

export function measureCKernel(binary: string, D: number, B: number, N: number, seconds: number): number {
  const result = spawnSync(binary, [String(D), String(B), String(N), String(seconds)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`C kernel failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { rowsPerSec: number }).rowsPerSec;
}

/** Measures every (D, B) with `trials` interleaved trials per kernel; the C kernel when `cBinary` is given. */
export function runKernelGrid(Ds: readonly number[], Bs: readonly number[], seconds: number, trials: number, cBinary: string | null): KernelResult[] {
  const results: KernelResult[] = [];
  for (const D of Ds) {
    for (const B of Bs) {
      const N = benchRows(D, B);
      const samples = { js: [] as number[], wasm: [] as number[], native: [] as number[], c: [] as number[] };
      const hasNative = nativeKernelAddon('auto') !== undefined;
      for (let trial = 0; trial < trials; trial++) {
        samples.js.push(measureKernel('js', D, B, N, seconds));
        samples.wasm.push(measureKernel('wasm-simd', D, B, N, seconds, 'off'));
        if (hasNative) samples.native.push(measureKernel('wasm-simd', D, B, N, seconds, 'require'));
        if (cBinary !== null) samples.c.push(measureCKernel(cBinary, D, B, N, seconds));
      }
      results.push({
        D,
        B,
        N,
        js: median(samples.js),
        wasm: median(samples.wasm),
        native: hasNative ? median(samples.native) : null,
        c: cBinary === null ? null : median(samples.c),
        samples,
      });
    }
  }
  return results;
}

/** The median and, over several trials, the range of the trials: "1,234 (1,100–1,300)". */
function spread(value: number | null, samples: readonly number[]): string {
  if (value === null) return '–';
  if (samples.length < 2) return formatNumber(value);
  return `${formatNumber(value)} (${formatNumber(Math.min(...samples))}–${formatNumber(Math.max(...samples))})`;
}

export function formatKernelTable(results: readonly KernelResult[]): string {
  return formatTable(
    ['D', 'B', 'N rows', 'C rows/s', 'native rows/s', 'wasm-simd rows/s', 'js rows/s', 'native/wasm', 'wasm/js', 'C/native', 'C/wasm', 'C/js'],
    results.map((r) => [
      String(r.D),
      String(r.B),
      formatNumber(r.N),
      spread(r.c, r.samples.c),
      spread(r.native, r.samples.native),
      spread(r.wasm, r.samples.wasm),
      spread(r.js, r.samples.js),
      r.native === null ? '–' : formatNumber(r.native / r.wasm),
      formatNumber(r.wasm / r.js),
      r.c === null || r.native === null ? '–' : formatNumber(r.c / r.native),
      r.c === null ? '–' : formatNumber(r.c / r.wasm),
      r.c === null ? '–' : formatNumber(r.c / r.js),
    ]),
  );
}

function main(): void {
  const args = parseGridArgs(process.argv.slice(2), { D: [10, 100, 1000], B: [64, 1024, 8192], W: [1] });
  const seconds = Number(args.values.get('seconds') ?? (args.quick ? 0.2 : 0.5));
  const directory = mkdtempSync(join(tmpdir(), 'dpt-bench-'));
  try {
    const built = buildCKernel(directory);
    if ('skipped' in built) process.stdout.write(`C reference skipped: ${built.skipped}\n`);
    const results = runKernelGrid(args.D, args.B, seconds, args.quick ? 1 : 3, 'path' in built ? built.path : null);
    process.stdout.write(`gradient kernel alone, one core, rows/s (C: cc ${C_FLAGS.join(' ')})\n${formatKernelTable(results)}\n`);
    writeJson(join(RESULTS_DIR, 'kernel-latest.json'), { date: new Date().toISOString(), node: process.version, cFlags: C_FLAGS, results });
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();

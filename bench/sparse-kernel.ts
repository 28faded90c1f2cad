// Micro-measurement (not a test) for issue #13: what a sparse step's compute costs at D = 2^16
// against D = 2^24 (the target: within 1.5×, cost following nnz, not D). rows/s of the sparse
// kernels (WebAssembly and TypeScript, logistic and softmax) over batches of B rows at ~nnz
// non-zeros per row with uniformly hashed indices, each batch one part (accumulate + takePart, the
// sort of the touched coordinates included), median of interleaved trials; beside it the size of
// a part on the wire and the time to add two parts (a node of the reduction). With --check-rows it first
// compares the two kernels' bits over --check-rows random rows (extreme values included).
// Run: `npm run build && node dist/bench/sparse-kernel.js [--nnz 40] [--b 4096] [--d 16,24]
//   [--k 10] [--seconds 1] [--trials 3] [--check-rows 2000000]`.

import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { logisticShape, type ModelShape, softmaxShape } from '../shared/model-shape.js';
import { createSparseTsKernel, type SparseKernel, type SparseRowStorage } from '../shared/sparse-kernel.js';
import { createSparseWasmKernel } from '../shared/sparse-kernel-wasm.js';
import { addSparseParts } from '../shared/sparse-reduce.js';
import type { SparseParams, SparsePart, SparseRows } from '../shared/sparse-rows.js';
import { formatNumber, formatTable, median } from './harness.js';

/** Batches of rows the measurement cycles over (distinct rows, so caches see a fresh batch each time). */
const BATCHES = 8;

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

type Kind = 'wasm' | 'js';

function kernelOf(kind: Kind, shape: ModelShape): SparseKernel {
  const kernel = kind === 'wasm' ? createSparseWasmKernel(shape) : createSparseTsKernel(shape);
  if (kernel === null) throw new Error('WebAssembly unavailable');
  return kernel;
}

/**
 * `rows` rows of `nnz` entries each (distinct indices, uniform in [0, D), ascending within a row;
 * values in [−2, 2) or, with `extreme`, mixed with tiny and near-float32-max values), written
 * into `storage` (a kernel's).
 */
function fillRows(storage: SparseRowStorage, rows: number, nnz: number, D: number, classes: number, seed: number, extreme = false): SparseRows {
  const next = lcg(seed);
  const picked = new Uint32Array(nnz);
  for (let i = 0; i < rows; i++) {
    storage.rowStart[i] = i * nnz;
    for (let k = 0; k < nnz; k++) picked[k] = Math.floor(next() * D);
    picked.sort();
    // Distinct: a repeat moves up to the next free index (D ≫ nnz here).
    for (let k = 1; k < nnz; k++) if (picked[k]! <= picked[k - 1]!) picked[k] = picked[k - 1]! + 1;
    // Pushed past D at the top: move down from there (D ≥ nnz).
    if (picked[nnz - 1]! >= D) picked[nnz - 1] = D - 1;
    for (let k = nnz - 2; k >= 0; k--) if (picked[k]! >= picked[k + 1]!) picked[k] = picked[k + 1]! - 1;
    for (let k = 0; k < nnz; k++) {
      storage.indices[i * nnz + k] = picked[k]!;
      let x = next() * 4 - 2;
      if (extreme) {
        const pick = next();
        if (pick < 0.1) x = 3.4e38 * (next() - 0.5) * 2;
        else if (pick < 0.2) x = 1e-40;
      }
      storage.values[i * nnz + k] = x === 0 ? 1 : x;
    }
    storage.labels[i] = Math.floor(next() * classes);
  }
  storage.rowStart[rows] = rows * nnz;
  return { rows, dims: D, ...storage };
}

function fillParams(params: SparseParams, seed: number, extreme = false): SparseParams {
  const next = lcg(seed);
  for (let i = 0; i < params.v.length; i++) {
    params.v[i] = (next() * 2 - 1) * 0.2;
    if (extreme && next() < 0.05) params.v[i] = (next() - 0.5) * 2e300;
  }
  for (let o = 0; o < params.bias.length; o++) params.bias[o] = next() - 0.5;
  params.scale = 0.999;
  return params;
}

/** rows/s of one kernel: B-row batches (one part each), cycling over BATCHES batches. */
export interface SparseMeasurement {
  readonly rowsPerSec: number;
  readonly touchedPerPart: number;
  /** One part's wire form (sparse-reduce.ts): 4 + 8·(O + 1) + (4 + 8·O) per coordinate. */
  readonly partBytes: number;
  /** Adding two parts of consecutive batches (one node of the reduction tree), best of 5. */
  readonly addMs: number;
}

export function measureSparse(kind: Kind, shape: ModelShape, nnz: number, B: number, seconds: number): SparseMeasurement {
  const kernel = kernelOf(kind, shape);
  const rows = fillRows(kernel.allocateRows(BATCHES * B, BATCHES * B * nnz), BATCHES * B, nnz, shape.features, shape.classes, 7);
  const params = fillParams(kernel.allocateParams(), 11);
  let batch = 0;
  let touched = 0;
  let parts = 0;
  const run = (budgetMs: number): number => {
    let done = 0;
    const started = performance.now();
    let elapsed = 0;
    do {
      kernel.accumulate(rows, null, batch * B, (batch + 1) * B, params);
      const part = kernel.takePart();
      touched += part.indices.length;
      parts++;
      done += B;
      batch = (batch + 1) % BATCHES;
      elapsed = performance.now() - started;
    } while (elapsed < budgetMs);
    return (done * 1000) / elapsed;
  };
  run(Math.max(1000, seconds * 500)); // JIT and wasm tier-up (compiled in the background: slow on a loaded machine)
  touched = 0;
  parts = 0;
  const rowsPerSec = run(seconds * 1000);
  const O = shape.outputs;
  kernel.accumulate(rows, null, 0, B, params);
  const left = kernel.takePart();
  kernel.accumulate(rows, null, B, 2 * B, params);
  const right = kernel.takePart();
  let addMs = Number.POSITIVE_INFINITY;
  for (let trial = 0; trial < 5; trial++) {
    const started = performance.now();
    addSparseParts(left, right, O);
    addMs = Math.min(addMs, performance.now() - started);
  }
  const partBytes = 4 + 8 * (O + 1) + left.indices.length * (4 + 8 * O);
  return { rowsPerSec, touchedPerPart: touched / parts, partBytes, addMs };
}

const partKey = (part: SparsePart): string => {
  const bits = (values: ArrayLike<number>): string =>
    Array.from(values, (x) => (Number.isNaN(x) ? 'NaN' : new BigUint64Array(Float64Array.of(x).buffer)[0]!.toString(16))).join(',');
  return `${part.indices.join(',')}|${bits(part.values)}|${bits(part.bias)}|${bits([part.loss])}`;
};

/** Compares the wasm and TypeScript kernels' parts over `total` rows (half plain, half extreme); returns the rows compared. */
export function checkBits(shape: ModelShape, nnz: number, B: number, total: number): number {
  const wasmKernel = kernelOf('wasm', shape);
  const tsKernel = createSparseTsKernel(shape);
  const storage = wasmKernel.allocateRows(B, B * nnz);
  const params = wasmKernel.allocateParams();
  let compared = 0;
  for (let round = 0; compared < total; round++) {
    const extreme = round % 2 === 1;
    const rows = fillRows(storage, B, nnz, shape.features, shape.classes, 100 + round, extreme);
    fillParams(params, 200 + round, extreme);
    wasmKernel.accumulate(rows, null, 0, B, params);
    tsKernel.accumulate(rows, null, 0, B, params);
    if (partKey(wasmKernel.takePart()) !== partKey(tsKernel.takePart())) throw new Error(`bits differ: ${shape.kind}, round ${round}`);
    compared += B;
  }
  return compared;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      nnz: { type: 'string', default: '40' },
      b: { type: 'string', default: '4096' },
      d: { type: 'string', default: '16,24' },
      k: { type: 'string', default: '10' },
      seconds: { type: 'string', default: '1' },
      trials: { type: 'string', default: '3' },
      'check-rows': { type: 'string', default: '0' },
    },
  });
  const [nnz, B, K, seconds, trials, checkRows] = [values.nnz, values.b, values.k, values.seconds, values.trials, values['check-rows']].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const bits = values.d.split(',').map(Number);
  if (checkRows > 0) {
    for (const shape of [logisticShape(2 ** 18), softmaxShape(K, 2 ** 14)]) {
      const started = performance.now();
      const compared = checkBits(shape, nnz, B, checkRows);
      console.log(
        `bits: wasm = TypeScript over ${formatNumber(compared)} rows (${shape.kind}, D = ${shape.features}, half extreme) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  }
  const cells: { label: string; shape: ModelShape; kind: Kind }[] = [];
  for (const b of bits) {
    for (const kind of ['wasm', 'js'] as const) cells.push({ label: `logistic, D = 2^${b}, ${kind}`, shape: logisticShape(2 ** b), kind });
  }
  for (const b of bits) {
    // softmax's v is K·D float64: at 2^24 and K = 10, 1.3 GB; measured at the largest that fits in 2 GB.
    const D = 2 ** Math.min(b, 22);
    cells.push({ label: `softmax K = ${K}, D = 2^${Math.log2(D)}, wasm`, shape: softmaxShape(K, D), kind: 'wasm' });
  }
  const samples = cells.map(() => [] as number[]);
  const last: (SparseMeasurement | null)[] = cells.map(() => null);
  for (let trial = 0; trial < trials; trial++) {
    cells.forEach((cell, c) => {
      const measured = measureSparse(cell.kind, cell.shape, nnz, B, seconds);
      samples[c]!.push(measured.rowsPerSec);
      last[c] = measured;
    });
  }
  console.log(`nnz = ${nnz} per row, B = ${B} rows per part, ${trials} trials of ${seconds} s, median`);
  console.log(
    formatTable(
      ['kernel', 'rows/s', 'ms per B rows', 'touched per part', 'part bytes', 'ms to add 2 parts'],
      cells.map((cell, c) => {
        const rate = median(samples[c]!);
        const m = last[c]!;
        return [cell.label, formatNumber(rate), ((B / rate) * 1000).toFixed(2), formatNumber(m.touchedPerPart), formatNumber(m.partBytes), m.addMs.toFixed(2)];
      }),
    ),
  );
  for (const kind of ['wasm', 'js'] as const) {
    const at = (b: number) => cells.findIndex((cell) => cell.kind === kind && cell.shape.kind === 'logistic' && cell.shape.features === 2 ** b);
    const [low, high] = [at(bits[0]!), at(bits[bits.length - 1]!)];
    if (low >= 0 && high >= 0 && low !== high) {
      const ratio = median(samples[low]!) / median(samples[high]!);
      console.log(
        `logistic ${kind}: time per row at 2^${bits[bits.length - 1]} is ${ratio.toFixed(2)}× that at 2^${bits[0]} (target ≤ 1.5× for the whole step)`,
      );
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();

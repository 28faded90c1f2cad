// Synthetic logistic-regression data of any size, streamed: features x ~ N(0, 1) stored as
// float32, labels y ~ Bernoulli(σ(w·x + b)) from known true weights, so a test can check that
// training recovers them. The same (rows, features, seed) give the same bytes.
//
// True model: w_j ~ N(0, 1)·2/√D (so w·x has standard deviation ≈ 2: labels carry signal but are
// not separable) and b ~ N(0, 0.5²), drawn from stream 0 of a seeded xoshiro128** generator;
// rows from stream 1, row by row: D normals (Marsaglia's polar method on 32-bit uniforms), then
// one uniform u for y = [u < σ(z)], with z computed in float64 from the float32 features.
// Math.log, Math.exp and Math.sqrt are the only functions involved: equal bits on equal Node.js
// versions (another version could differ in a last float64 bit, which almost never survives the
// float32 rounding of x or moves u across σ(z)).

import { AtomicFileWriter, writeFileAtomic } from './atomic-file.js';
import { BinaryDatasetWriter } from './binary-dataset.js';
import { sigmoid } from './model.js';

export interface SyntheticSpec {
  readonly rows: number;
  /** D, the number of features. */
  readonly features: number;
  readonly seed: number;
}

export interface TrueModel {
  readonly weights: Float64Array;
  readonly bias: number;
}

export type SyntheticFormat = 'dpt' | 'csv';

export interface GenerateResult {
  readonly path: string;
  readonly weightsPath: string;
  readonly rows: number;
  readonly bytes: number;
  readonly model: TrueModel;
}

const MODEL_STREAM = 0;
const ROW_STREAM = 1;

const TWO_TO_MINUS_31 = 2 ** -31;
const TWO_TO_MINUS_32 = 2 ** -32;

/**
 * Normal and uniform deviates from xoshiro128** (seeded by splitmix32 from seed and stream; the
 * algorithm of shared/rng.ts). The state lives in typed arrays and the hot loop in locals: values
 * captured by closures would be boxed on every draw, which made generation 3× slower.
 */
class Deviates {
  private readonly s = new Int32Array(4);
  /** [spare normal, 1 if it is pending]: the polar method yields normals in pairs. */
  private readonly spare = new Float64Array(2);

  constructor(seed: number, stream: number) {
    let state = (seed ^ Math.imul(stream + 1, 0x27d4eb2d)) | 0;
    for (let i = 0; i < 4; i++) {
      state = (state + 0x9e3779b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = z ^ (z >>> 16);
    }
  }

  /** A uniform deviate in [0, 1) on a 2^−32 grid. */
  uniform(): number {
    const s = this.s;
    let s0 = s[0]!;
    let s1 = s[1]!;
    let s2 = s[2]!;
    let s3 = s[3]!;
    const product = Math.imul(s1, 5);
    const result = Math.imul((product << 7) | (product >>> 25), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return result * TWO_TO_MINUS_32;
  }

  /** Fills target[from .. from+count) with standard normal deviates (Marsaglia's polar method). */
  normals(target: Float32Array | Float64Array, from: number, count: number): void {
    const s = this.s;
    let s0 = s[0]!;
    let s1 = s[1]!;
    let s2 = s[2]!;
    let s3 = s[3]!;
    let i = from;
    const end = from + count;
    if (this.spare[1] === 1 && i < end) {
      target[i++] = this.spare[0]!;
      this.spare[1] = 0;
    }
    while (i < end) {
      let u = 0;
      let v = 0;
      let q: number;
      do {
        for (let k = 0; k < 2; k++) {
          const product = Math.imul(s1, 5);
          const draw = Math.imul((product << 7) | (product >>> 25), 9) >>> 0;
          const t = s1 << 9;
          s2 ^= s0;
          s3 ^= s1;
          s1 ^= s2;
          s0 ^= s3;
          s2 ^= t;
          s3 = (s3 << 11) | (s3 >>> 21);
          if (k === 0) u = draw * TWO_TO_MINUS_31 - 1;
          else v = draw * TWO_TO_MINUS_31 - 1;
        }
        q = u * u + v * v;
      } while (q >= 1 || q === 0);
      const m = Math.sqrt((-2 * Math.log(q)) / q);
      target[i++] = u * m;
      if (i < end) target[i++] = v * m;
      else {
        this.spare[0] = v * m;
        this.spare[1] = 1;
      }
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
  }
}

/** The true model of (features, seed): w_j ~ N(0, 1)·2/√D, b ~ N(0, 0.5²). */
export function trueModel(features: number, seed: number): TrueModel {
  const deviates = new Deviates(seed, MODEL_STREAM);
  const draws = new Float64Array(features + 1);
  deviates.normals(draws, 0, features + 1);
  const weights = new Float64Array(features);
  for (let j = 0; j < features; j++) weights[j] = (draws[j]! * 2) / Math.sqrt(features);
  return { weights, bias: draws[features]! * 0.5 };
}

/** Rows per batch: about 1 MiB of features, at least 1 row. */
export function syntheticBatchRows(D: number): number {
  return Math.max(1, Math.floor(262_144 / D));
}

/** One batch of generated rows: x row-major (count × D float32), y the labels; the buffers are reused by the next batch. */
export interface SyntheticBatch {
  readonly x: Float32Array;
  readonly y: Uint8Array;
  readonly count: number;
}

/** Generates the rows in order, one batch at a time (a generator, so a writer can pause between batches). */
export function* syntheticBatches(spec: SyntheticSpec, model: TrueModel): Generator<SyntheticBatch, void, void> {
  const D = spec.features;
  const deviates = new Deviates(spec.seed, ROW_STREAM);
  const capacity = syntheticBatchRows(D);
  const x = new Float32Array(capacity * D);
  const y = new Uint8Array(capacity);
  const w = model.weights;
  for (let start = 0; start < spec.rows; start += capacity) {
    const count = Math.min(capacity, spec.rows - start);
    for (let i = 0; i < count; i++) {
      const base = i * D;
      deviates.normals(x, base, D);
      let z = model.bias;
      for (let j = 0; j < D; j++) z += w[j]! * x[base + j]!; // the stored float32 values, widened exactly
      y[i] = deviates.uniform() < sigmoid(z) ? 1 : 0;
    }
    yield { x, y, count };
  }
}

/** The rows of syntheticBatches, handed to onBatch(x, y, count) batch by batch. */
export function generateRows(spec: SyntheticSpec, model: TrueModel, onBatch: (x: Float32Array, y: Uint8Array, count: number) => void): void {
  for (const batch of syntheticBatches(spec, model)) onBatch(batch.x, batch.y, batch.count);
}

/** Shortest decimal text (up to 9 significant digits) that reads back as the same float32. */
export function formatFloat32(value: number): string {
  for (let digits = 7; digits <= 9; digits++) {
    const text = value.toPrecision(digits);
    if (Math.fround(Number(text)) === value) return trimZeros(text);
  }
  return String(value); // float64 text of the float32 value: always reads back exactly
}

function trimZeros(text: string): string {
  const exponent = text.indexOf('e');
  const mantissa = exponent === -1 ? text : text.slice(0, exponent);
  const trimmed = mantissa.includes('.') ? mantissa.replace(/\.?0+$/, '') : mantissa;
  return exponent === -1 ? trimmed : `${trimmed}${text.slice(exponent)}`;
}

/**
 * Writes the data set to `path` (.dpt or CSV with a header f0 … f(D−1), label) and the true model
 * to `path`.weights.json, each atomically (shared/atomic-file.ts): a failure (disk full) leaves
 * no temporary file and the previous files unchanged. `onProgress(rowsDone)` follows every batch.
 */
export function generateDataset(spec: SyntheticSpec, path: string, format: SyntheticFormat, onProgress?: (rowsDone: number) => void): GenerateResult {
  const steps = writeDataset(spec, path, format, onProgress);
  for (;;) {
    const next = steps.next();
    if (next.done === true) return next.value;
  }
}

/** Longest stretch of generation between two turns of the event loop (so Ctrl-C is handled). */
const YIELD_EVERY_MS = 50;

/**
 * generateDataset that lets the event loop run every YIELD_EVERY_MS: a signal handler (Ctrl-C)
 * can then stop the process mid-file, and the exit hook of shared/atomic-file.ts removes the
 * temporary files. The same bytes as generateDataset.
 */
export async function generateDatasetInterruptibly(
  spec: SyntheticSpec,
  path: string,
  format: SyntheticFormat,
  onProgress?: (rowsDone: number) => void,
): Promise<GenerateResult> {
  const steps = writeDataset(spec, path, format, onProgress);
  let lastYield = performance.now();
  for (;;) {
    const next = steps.next();
    if (next.done === true) return next.value;
    if (performance.now() - lastYield >= YIELD_EVERY_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
  }
}

/** The writing, one batch per step of the generator. */
function* writeDataset(
  spec: SyntheticSpec,
  path: string,
  format: SyntheticFormat,
  onProgress?: (rowsDone: number) => void,
): Generator<void, GenerateResult, void> {
  const model = trueModel(spec.features, spec.seed);
  const featureNames = Array.from({ length: spec.features }, (_, j) => `f${j}`);
  let done = 0;
  let bytes: number;
  if (format === 'dpt') {
    const writer = new BinaryDatasetWriter(path, { featureNames, labelName: 'label' });
    try {
      for (const { x, y, count } of syntheticBatches(spec, model)) {
        writer.append(x, y, count);
        done += count;
        onProgress?.(done);
        yield;
      }
      bytes = writer.finish().bytes;
    } finally {
      writer.abort(); // removes the temporary files unless finish() renamed them into place
    }
  } else {
    bytes = yield* writeCsv(spec, model, featureNames, path, (rows) => onProgress?.(rows));
  }
  const weightsPath = `${path}.weights.json`;
  const description = 'x ~ N(0,1) as float32; y ~ Bernoulli(sigmoid(w.x + b)); w_j ~ N(0,1)*2/sqrt(D), b ~ N(0,0.25)';
  writeFileAtomic(
    weightsPath,
    `${JSON.stringify({ format: 'dpt-synthetic', version: 1, seed: spec.seed, rows: spec.rows, features: spec.features, description, weights: Array.from(model.weights), bias: model.bias }, null, 2)}\n`,
  );
  return { path, weightsPath, rows: spec.rows, bytes, model };
}

function* writeCsv(
  spec: SyntheticSpec,
  model: TrueModel,
  featureNames: readonly string[],
  path: string,
  onProgress: (rows: number) => void,
): Generator<void, number, void> {
  const file = new AtomicFileWriter(path);
  try {
    const header = Buffer.from(`${featureNames.join(',')},label\n`, 'utf8');
    file.write(header);
    let bytes = header.length;
    let done = 0;
    const D = spec.features;
    const cells = new Array<string>(D + 1);
    for (const { x, y, count } of syntheticBatches(spec, model)) {
      const lines: string[] = [];
      for (let i = 0; i < count; i++) {
        for (let j = 0; j < D; j++) cells[j] = formatFloat32(x[i * D + j]!);
        cells[D] = y[i] === 1 ? '1' : '0';
        lines.push(cells.join(','));
      }
      const text = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
      file.write(text);
      bytes += text.length;
      done += count;
      onProgress(done);
      yield;
    }
    file.commit(bytes);
    return bytes;
  } finally {
    file.abort(); // removes the temporary file unless commit() renamed it into place
  }
}

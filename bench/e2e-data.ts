// The data side of the end-to-end bench (issue #15 item 4): the fixed train/held-out split of
// flights_3m, the one standardization every tool gets, the input files each tool reads, and the
// one evaluator that scores every tool's weights. Benchmarks only.
//
// Split: the file's rows are already a seeded uniform shuffle (../shared/datasets/README.md), so
// the first 80 % of its rows train and the last 20 % are held out. Standardization: the mean and
// the population standard deviation (divide by n) of each feature over the training rows, in
// float64, a constant column getting std 1: what `dpt train` computes by default, so dpt reads the
// raw training rows and standardizes them itself, and the peers read the same transform already
// applied (float32 binary for numpy, LIBSVM text for liblinear). Files are written once per source
// file (size and mtime) into the cache directory and reused.

import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { lineWriter } from './harness.js';
import { softplus } from './liblinear-model.js';

/** Held-out share of the rows: the last this fraction of the file. */
export const HELD_OUT_FRACTION = 0.2;
const PREP_VERSION = 1;

/** What the split wrote, and the transform every peer gets. */
export interface Prepared {
  readonly version: number;
  readonly source: string;
  readonly sourceBytes: number;
  readonly sourceMtimeMs: number;
  readonly rows: number;
  readonly trainRows: number;
  readonly features: readonly string[];
  /** Per feature over the training rows, float64. */
  readonly mean: readonly number[];
  /** Population standard deviation over the training rows (1 for a constant column). */
  readonly std: readonly number[];
  readonly trainPositives: number;
  readonly testPositives: number;
  readonly prepareSeconds: number;
}

/** The cache's files: raw rows for dpt and the evaluator, standardized rows for the peers. */
export interface PreparedFiles {
  readonly directory: string;
  /** Header + the training rows, byte for byte as in the source (what `dpt train` reads). */
  readonly trainCsv: string;
  /** rows × D float32, row-major, raw values (all rows: the evaluator's copy). */
  readonly rawFeatures: string;
  /** rows × uint8 labels (all rows). */
  readonly labels: string;
  /** trainRows × D float32, standardized (numpy.fromfile for the Python peers). */
  readonly trainStandardized: string;
  /** The standardized training rows as LIBSVM text (liblinear). */
  readonly trainSvm: string;
  readonly prepared: string;
}

export function preparedFiles(directory: string): PreparedFiles {
  return {
    directory,
    trainCsv: join(directory, 'train.csv'),
    rawFeatures: join(directory, 'raw-features.f32'),
    labels: join(directory, 'labels.u8'),
    trainStandardized: join(directory, 'train-standardized.f32'),
    trainSvm: join(directory, 'train-standardized.svm'),
    prepared: join(directory, 'prepared.json'),
  };
}

/** The split's files, written when absent or made from another version of the source. */
export async function prepareSplit(source: string, directory: string, log: (line: string) => void): Promise<Prepared> {
  const files = preparedFiles(directory);
  const stat = statSync(source);
  if (existsSync(files.prepared)) {
    const prepared = JSON.parse(readFileSync(files.prepared, 'utf8')) as Prepared;
    if (prepared.version === PREP_VERSION && prepared.source === source && prepared.sourceBytes === stat.size && prepared.sourceMtimeMs === stat.mtimeMs) {
      return prepared;
    }
  }
  mkdirSync(directory, { recursive: true });
  const started = performance.now();
  log(`preparing the split of ${source} in ${directory} (once)…`);
  const { header, lines } = await readLines(source);
  const cells = header.split(',');
  if (cells.at(-1) !== 'label') throw new Error(`${source}: the last column is '${cells.at(-1)}', not 'label'`);
  const features = cells.slice(0, -1);
  const D = features.length;
  const rows = lines.length;
  const trainRows = rows - Math.round(rows * HELD_OUT_FRACTION);
  const x = new Float32Array(rows * D);
  const y = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    const parts = lines[i]!.split(',');
    if (parts.length !== D + 1) throw new Error(`${source}: line ${i + 2}: ${parts.length} fields, expected ${D + 1}`);
    for (let j = 0; j < D; j++) {
      const value = Number(parts[j]);
      if (!Number.isFinite(value) || Math.fround(value) !== value) throw new Error(`${source}: line ${i + 2}: field ${j + 1} '${parts[j]}'`);
      x[i * D + j] = value;
    }
    const label = parts[D];
    if (label !== '0' && label !== '1') throw new Error(`${source}: line ${i + 2}: label '${label}'`);
    y[i] = label === '1' ? 1 : 0;
  }
  // Mean and population std over the training rows (two passes, float64).
  const mean = new Array<number>(D).fill(0);
  const std = new Array<number>(D).fill(0);
  for (let i = 0; i < trainRows; i++) for (let j = 0; j < D; j++) mean[j]! += x[i * D + j]!;
  for (let j = 0; j < D; j++) mean[j]! /= trainRows;
  for (let i = 0; i < trainRows; i++) {
    for (let j = 0; j < D; j++) {
      const d = x[i * D + j]! - mean[j]!;
      std[j]! += d * d;
    }
  }
  for (let j = 0; j < D; j++) std[j] = std[j]! > 0 ? Math.sqrt(std[j]! / trainRows) : 1;

  await writeText(files.trainCsv, (write) => {
    write(header);
    for (let i = 0; i < trainRows; i++) write(lines[i]!);
  });
  writeFileSync(files.rawFeatures, x);
  writeFileSync(files.labels, y);
  const standardized = new Float32Array(trainRows * D);
  for (let i = 0; i < trainRows; i++) for (let j = 0; j < D; j++) standardized[i * D + j] = (x[i * D + j]! - mean[j]!) / std[j]!;
  writeFileSync(files.trainStandardized, standardized);
  // LIBSVM: every feature written (standardized values are rarely 0); 9 significant digits give
  // back the float32 the numpy peers read. Each column has few distinct values, so format once.
  const formatted = features.map(() => new Map<number, string>());
  await writeText(files.trainSvm, (write) => {
    for (let i = 0; i < trainRows; i++) {
      let line = y[i] === 1 ? '1' : '0';
      for (let j = 0; j < D; j++) {
        const value = standardized[i * D + j]!;
        let text = formatted[j]!.get(value);
        if (text === undefined) {
          text = ` ${j + 1}:${value.toPrecision(9)}`;
          formatted[j]!.set(value, text);
        }
        line += text;
      }
      write(line);
    }
  });
  let trainPositives = 0;
  for (let i = 0; i < trainRows; i++) trainPositives += y[i]!;
  let testPositives = 0;
  for (let i = trainRows; i < rows; i++) testPositives += y[i]!;
  const prepared: Prepared = {
    version: PREP_VERSION,
    source,
    sourceBytes: stat.size,
    sourceMtimeMs: stat.mtimeMs,
    rows,
    trainRows,
    features,
    mean,
    std,
    trainPositives,
    testPositives,
    prepareSeconds: (performance.now() - started) / 1000,
  };
  writeFileSync(files.prepared, `${JSON.stringify(prepared, null, 2)}\n`);
  log(
    `prepared ${trainRows.toLocaleString('en-US')} training and ${(rows - trainRows).toLocaleString('en-US')} held-out rows in ${prepared.prepareSeconds.toFixed(1)} s`,
  );
  return prepared;
}

async function readLines(source: string): Promise<{ header: string; lines: string[] }> {
  const stream = createReadStream(source);
  const input = createInterface({ input: source.endsWith('.gz') ? stream.pipe(createGunzip()) : stream, crlfDelay: Number.POSITIVE_INFINITY });
  let header: string | null = null;
  const lines: string[] = [];
  for await (const line of input) {
    if (line === '') continue;
    if (header === null) header = line;
    else lines.push(line);
  }
  if (header === null) throw new Error(`${source}: empty`);
  return { header, lines };
}

/** Writes lines through one stream, ~1 MB a write (harness.ts lineWriter). */
async function writeText(path: string, body: (write: (line: string) => void) => void): Promise<void> {
  const out = lineWriter(path);
  body((line) => out.write(line));
  await out.close();
}

/** The raw rows and labels in memory, for the evaluator. */
export interface EvaluationData {
  readonly D: number;
  readonly trainRows: number;
  readonly rows: number;
  /** rows × D raw values. */
  readonly x: Float32Array;
  readonly y: Uint8Array;
}

export function loadEvaluationData(prepared: Prepared, files: PreparedFiles): EvaluationData {
  const bytes = readFileSync(files.rawFeatures);
  const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const y = new Uint8Array(readFileSync(files.labels));
  return { D: prepared.features.length, trainRows: prepared.trainRows, rows: prepared.rows, x, y };
}

/** A linear model over standardized features: z = Σ_j w_j·(x_j − mean_j)/std_j + b. */
export interface LinearModel {
  readonly w: readonly number[];
  readonly b: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export interface Losses {
  /** Mean log-loss over the training rows, softplus(z) − y·z (no rounding of p). */
  readonly trainLoss: number;
  /** trainLoss + λ/2·‖w‖² (bias not penalized): the objective every tool minimizes. */
  readonly objective: number;
  readonly heldOutLoss: number;
  readonly heldOutAccuracy: number;
}

/**
 * The log-losses of `model` over rows [0, trainRows) and [trainRows, rows), in float64 from the
 * raw values (the model's own mean and std, so dpt's saved standardization is the one applied).
 */
export function evaluateModel(model: LinearModel, data: EvaluationData, lambda: number): Losses {
  const { D, x, y } = data;
  if (model.w.length !== D) throw new Error(`a model of ${model.w.length} weights for ${D} features`);
  // z = Σ_j (w_j/std_j)·x_j + (b − Σ_j w_j·mean_j/std_j): one multiply-add per value.
  const scaled = new Float64Array(D);
  let offset = model.b;
  for (let j = 0; j < D; j++) {
    scaled[j] = model.w[j]! / model.std[j]!;
    offset -= scaled[j]! * model.mean[j]!;
  }
  const lossOver = (from: number, to: number): { loss: number; correct: number } => {
    let loss = 0;
    let correct = 0;
    for (let i = from; i < to; i++) {
      let z = offset;
      const base = i * D;
      for (let j = 0; j < D; j++) z += scaled[j]! * x[base + j]!;
      const label = y[i]!;
      loss += softplus(z) - label * z;
      if ((z > 0 ? 1 : 0) === label) correct++;
    }
    return { loss: loss / (to - from), correct };
  };
  const train = lossOver(0, data.trainRows);
  const heldOut = lossOver(data.trainRows, data.rows);
  let norm2 = 0;
  for (const w of model.w) norm2 += w * w;
  return {
    trainLoss: train.loss,
    objective: train.loss + (lambda / 2) * norm2,
    heldOutLoss: heldOut.loss,
    heldOutAccuracy: heldOut.correct / (data.rows - data.trainRows),
  };
}

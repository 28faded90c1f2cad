// Opens a data file for training whatever its format: a .dpt file as it is, a CSV (or .csv.gz)
// through a binary cache converted once in one streaming pass (constant memory). Coordinator and
// workers then read only the header or the rows they need, never the whole CSV into memory.

import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinaryDataset } from './binary-dataset.js';
import { convertCsvToBinary } from './csv-convert.js';
import { DatasetError } from './errors.js';

/** Bumped when the conversion could produce other bytes, so old cache entries are not reused. */
const CACHE_VERSION = 1;

export interface DataFile {
  /** The path the user named (CSV or .dpt). */
  readonly sourcePath: string;
  /** The .dpt file actually read (the source itself, or its cache). */
  readonly binaryPath: string;
  /** Identity of the rows (SHA-256 of the .dpt header, names and content CRCs): equal on every process that reads equal data. */
  readonly identity: string;
  readonly rows: number;
  readonly features: number;
  readonly featureNames: readonly string[];
  readonly labelName: string;
  /** Bytes of features and labels: rows × (4·D + 1). */
  readonly dataBytes: number;
}

/** Where converted CSV files are cached: $DPT_CACHE_DIR, else the system's temporary folder. */
export function cacheDirectory(): string {
  return process.env.DPT_CACHE_DIR ?? join(tmpdir(), 'dpt-cache');
}

/**
 * Opens `path` for training. `labelColumn` (a header name or 0-based index; undefined: the last
 * column) applies to CSV; a .dpt file has its label fixed and must agree if one is named.
 */
export async function openDataFile(path: string, labelColumn: string | undefined, onProgress?: (line: string) => void): Promise<DataFile> {
  const binaryPath = isBinary(path) ? path : await cachedConversion(path, labelColumn, onProgress);
  const file = BinaryDataset.open(binaryPath);
  try {
    if (isBinary(path) && labelColumn !== undefined && labelColumn !== file.labelName && !/^-?\d+$/.test(labelColumn)) {
      throw new DatasetError(path, undefined, undefined, `the label of this .dpt file is '${file.labelName}', not '${labelColumn}'`);
    }
    return {
      sourcePath: path,
      binaryPath,
      identity: file.identity,
      rows: file.rows,
      features: file.features,
      featureNames: file.featureNames,
      labelName: file.labelName,
      dataBytes: file.rows * (4 * file.features + 1),
    };
  } finally {
    file.close();
  }
}

function isBinary(path: string): boolean {
  return path.endsWith('.dpt');
}

/** The cache entry of a CSV: keyed by the SHA-256 of its bytes and the label column, converted if absent. */
async function cachedConversion(path: string, labelColumn: string | undefined, onProgress?: (line: string) => void): Promise<string> {
  const digest = await sha256OfFile(path);
  const key = createHash('sha256')
    .update(`${CACHE_VERSION}\0${digest}\0${labelColumn ?? ''}`)
    .digest('hex')
    .slice(0, 32);
  const directory = cacheDirectory();
  mkdirSync(directory, { recursive: true });
  const cached = join(directory, `${key}.dpt`);
  try {
    BinaryDataset.open(cached).close();
    return cached;
  } catch {
    // Not cached yet (or a damaged entry): convert below; the writer renames into place atomically.
  }
  const started = performance.now();
  const summary = await convertCsvToBinary(path, cached, { labelColumn });
  onProgress?.(
    `converted ${path} (${summary.rows} rows × ${summary.features} features) to ${cached} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return cached;
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return hash.digest('hex');
}

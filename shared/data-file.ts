// Opens a data file for training whatever its format: a .dpt file as it is, a CSV (or .csv.gz)
// through a binary cache converted once in one streaming pass (constant memory). Coordinator and
// workers then read only the header or the rows they need, never the whole CSV into memory. Only
// regular files are opened (a FIFO would hang the process); a .dpt file's content is checked block
// by block as its rows are read (shared/binary-dataset.ts), and a cache entry before it is reused.

import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinaryDataset } from './binary-dataset.js';
import { convertCsvToBinary } from './csv-convert.js';
import { DatasetError } from './errors.js';
import { requireRegularFile } from './regular-file.js';

/** Bumped when the conversion could produce other bytes, so old cache entries are not reused. */
const CACHE_VERSION = 1;

export interface DataFile {
  /** The path the user named (CSV or .dpt). */
  readonly sourcePath: string;
  /** The .dpt file actually read (the source itself, or its cache). */
  readonly binaryPath: string;
  /**
   * Identity of the rows: the SHA-256 of the .dpt file's header, names and table of content
   * CRC-32s (for a CSV, of its converted cache entry, so equal values give equal identities
   * whatever the CSV's formatting). It covers the content because every block is checked against
   * that table before its rows are used; equal on every process that reads equal data.
   */
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
 * column) applies to CSV; a .dpt file has its label fixed and must agree if one is named. `role`
 * names what gave the path in messages (default: the flag --data).
 */
export async function openDataFile(path: string, labelColumn: string | undefined, onProgress?: (line: string) => void, role = '--data'): Promise<DataFile> {
  requireRegularFile(path, role);
  const binaryPath = isBinary(path) ? path : await cachedConversion(path, labelColumn, onProgress);
  const file = BinaryDataset.open(binaryPath, role);
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
  // An entry is reused only whole and intact (every block checked, at about the cost of hashing
  // the CSV above): a damaged one is converted again rather than failing every worker's reads.
  let entry: BinaryDataset | null = null;
  try {
    entry = BinaryDataset.open(cached, 'the cache entry');
    entry.verify();
    return cached;
  } catch (error) {
    // Not cached yet (ENOENT) or a damaged entry: convert below; the writer renames into place atomically.
    if (entry !== null) onProgress?.(`the cache entry ${cached} is damaged (${(error as Error).message}); converting ${path} again`);
  } finally {
    entry?.close();
  }
  const started = performance.now();
  const summary = await convertCsvToBinary(path, cached, { labelColumn });
  onProgress?.(
    `converted ${path} (${summary.rows} rows × ${summary.features} features) to ${cached} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return cached;
}

/**
 * The coordinator's own verdict on content block `block` of its copy of the data (a worker says
 * that block of its copy fails): the DatasetError if this copy fails it too (the data is bad),
 * null if this copy passes (only the worker's copy is bad) or has no such block.
 */
export function checkDataBlock(binaryPath: string, block: number): DatasetError | null {
  let file: BinaryDataset | null = null;
  try {
    file = BinaryDataset.open(binaryPath, '--data');
    if (block >= file.blocks) return null;
    file.checkBlock(block);
    return null;
  } catch (error) {
    if (error instanceof DatasetError) return error;
    throw error;
  } finally {
    file?.close();
  }
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

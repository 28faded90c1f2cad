// Opens a data file for training whatever its format: a .dpt file as it is, a CSV (or .csv.gz)
// through a binary cache converted once in one streaming pass (constant memory). Coordinator and
// workers then read only the header or the rows they need, never the whole CSV into memory. Only
// regular files are opened (a FIFO would hang the process); a .dpt file's content is checked block
// by block as its rows are read (shared/binary-dataset.ts). The cache and its stat-keyed index, so
// that a CSV is hashed once per host rather than once per process: shared/csv-cache.ts. The labels
// may be any values; the file's classes (issue #12) come with it, bounded by --max-classes.

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinaryDataset, type LabelType } from './binary-dataset.js';
import { type ClassList, DEFAULT_MAX_CLASSES } from './classes.js';
import { cachedConversion, type WholeRead } from './csv-cache.js';
import { DatasetError } from './errors.js';
import { tooManyClassesProblem } from './label-cells.js';
import { requireRegularFile } from './regular-file.js';

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
  /** The classes of the labels, class k the k-th ([0, 1] for 0/1 labels; shared/classes.ts order otherwise). */
  readonly classes: ClassList;
  /** How the .dpt file stores labels: 'uint8' 0/1 or 'uint16' class indices (BinaryDataset.readLabels' target). */
  readonly labelType: LabelType;
  /** Bytes of features and labels: rows × (4·D + 1) for uint8 labels, rows × (4·D + 2) for uint16. */
  readonly dataBytes: number;
}

/** Where converted CSV files are cached: $DPT_CACHE_DIR, else the system's temporary folder. */
export function cacheDirectory(): string {
  return process.env.DPT_CACHE_DIR ?? join(tmpdir(), 'dpt-cache');
}

/**
 * Opens `path` for training. `labelColumn` (a header name or 0-based index; undefined: the last
 * column) applies to CSV; a .dpt file has its label fixed and must agree if one is named. `role`
 * names what gave the path in messages (default: the flag --data). `onWholeRead` is told of every
 * whole read of the CSV or of its cache entry (for tests that count them). More than `maxClasses`
 * distinct labels (--max-classes) is a DatasetError naming the file (and, when a CSV is converted,
 * the line of the first label past the bound) and the flag.
 */
export async function openDataFile(
  path: string,
  labelColumn: string | undefined,
  onProgress?: (line: string) => void,
  role = '--data',
  onWholeRead?: (what: WholeRead, path: string) => void,
  maxClasses: number = DEFAULT_MAX_CLASSES,
): Promise<DataFile> {
  requireRegularFile(path, role);
  const binaryPath = isBinary(path) ? path : await cachedConversion(path, { directory: cacheDirectory(), labelColumn, maxClasses, onProgress, onWholeRead });
  const file = BinaryDataset.open(binaryPath, role);
  try {
    if (isBinary(path) && labelColumn !== undefined && labelColumn !== file.labelName && !/^-?\d+$/.test(labelColumn)) {
      throw new DatasetError(path, undefined, undefined, `the label of this .dpt file is '${file.labelName}', not '${labelColumn}'`);
    }
    // A cache entry converted under a larger bound, or a .dpt file, may hold more classes than this run allows.
    const K = file.classes.values.length;
    if (K > maxClasses) throw new DatasetError(path, undefined, undefined, tooManyClassesProblem(file.labelName, K, maxClasses));
    return {
      sourcePath: path,
      binaryPath,
      identity: file.identity,
      rows: file.rows,
      features: file.features,
      featureNames: file.featureNames,
      labelName: file.labelName,
      classes: file.classes,
      labelType: file.labelType,
      dataBytes: file.rows * (4 * file.features + file.sections.labelBytes),
    };
  } finally {
    file.close();
  }
}

function isBinary(path: string): boolean {
  return path.endsWith('.dpt');
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

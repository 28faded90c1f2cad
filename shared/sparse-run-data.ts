// The data of a sparse run (issue #13) as the coordinator and the workers open it: which files
// are sparse (a LIBSVM file, a sparse .dpt, a CSV with --hash-bits), the sparse .dpt they become
// (shared/sparse-data-file.ts: converted once per host and content), the flags refused for the
// data they were given, and its rows loaded where the kernel reads them.
//
// Exports: SparseRunData, isSparseData, openSparseRunData, loadSparseRows, copySparseRows.

import { ConfigError } from './errors.js';
import type { SparseRunSpec } from './protocol.js';
import { openSparseDataFile, type SparseDataFile, type SparseOpenOptions, sparseFormatOf } from './sparse-data-file.js';
import { readSparseDataset, type SparseDataset } from './sparse-dataset.js';
import type { SparseKernel } from './sparse-kernel.js';
import type { SparseRows } from './sparse-rows.js';

/** A sparse run's data: the sparse .dpt read (`path`, `sparsePath`) and the file the user named. */
export type SparseRunData = SparseDataFile;

/** The welcome's flags as shared/sparse-data-file.ts takes them. */
function openOptions(spec: SparseRunSpec): Pick<SparseOpenOptions, 'format' | 'hashing'> {
  return {
    format: spec.format ?? undefined,
    hashing: spec.hashBits === null ? undefined : { bits: spec.hashBits, categorical: spec.categorical, crosses: spec.crosses },
  };
}

/** Whether `path` with these flags is a sparse run's data: --format libsvm, --hash-bits, a .svm/.libsvm name, or a sparse .dpt. */
export function isSparseData(path: string, spec: SparseRunSpec): boolean {
  return spec.hashBits !== null || sparseFormatOf(path, openOptions(spec)) !== null;
}

/**
 * The sparse .dpt of `path` (itself, or its cache entry, converted once per host and content: the
 * same rows and identity on every host) and what its header says. `role` names what gave the path
 * in messages (--data). Throws DatasetError for bad data (file, line, column), ConfigError for
 * flags the file cannot honour.
 */
export async function openSparseRunData(
  path: string,
  spec: SparseRunSpec,
  labelColumn: string | undefined,
  log: (line: string) => void,
  role: string,
  maxClasses: number,
): Promise<SparseRunData> {
  const isDpt = path.toLowerCase().endsWith('.dpt');
  const isLibsvm = /\.(svm|libsvm)(\.gz)?$/i.test(path) || spec.format === 'libsvm';
  if (spec.hashBits !== null && (isDpt || isLibsvm)) {
    throw new ConfigError(`--hash-bits hashes the columns of a CSV file; ${path} is ${isDpt ? 'a .dpt file' : 'LIBSVM text, sparse already'}`);
  }
  if (spec.format === 'libsvm' && isDpt) throw new ConfigError(`--format libsvm: ${path} is a .dpt file, not LIBSVM text`);
  if (isLibsvm && labelColumn !== undefined) throw new ConfigError(`--label-column: a LIBSVM file's label is the first field of each line (${path})`);
  return openSparseDataFile(path, { ...openOptions(spec), labelColumn, maxClasses, role, onProgress: log });
}

/**
 * The rows of the sparse .dpt `data.path`, every check passed (readSparseDataset), copied once into
 * storage the kernel reads without a copy per call (the wasm kernel's memory).
 */
export function loadSparseRows(data: SparseRunData, kernel: SparseKernel, role: string): SparseRows {
  return copySparseRows(readSparseDataset(data.sparsePath, role), kernel);
}

/** Rows read and checked already (a downloaded file: worker/remote-sparse-data.ts), copied as loadSparseRows copies them. */
export function copySparseRows(read: SparseDataset, kernel: SparseKernel): SparseRows {
  const storage = kernel.allocateRows(read.rows, read.nnz);
  storage.rowStart.set(read.rowStart);
  storage.indices.set(read.indices);
  storage.values.set(read.values);
  storage.labels.set(read.labels);
  return { rows: read.rows, dims: read.dims, ...storage };
}

// The data of a sparse run (issue #13) as the coordinator and the workers open it: which files
// are sparse (a LIBSVM file, a sparse .dpt, a CSV with --hash-bits), the sparse .dpt they become
// (LIBSVM converted once into a cache entry named after the file's content, so every host that
// holds the same bytes gets the same rows and identity), and its rows loaded where the kernel
// reads them. The format itself is shared/sparse-dataset.ts's; the conversions are libsvm.ts's.
//
// Exports: SparseRunData, isSparseData, openSparseRunData, loadSparseRows.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDirectory } from './data-file.js';
import { ConfigError, DatasetError } from './errors.js';
import { convertLibsvmToSparse } from './libsvm.js';
import type { SparseRunSpec } from './protocol.js';
import { isSparseDptFile, readSparseDataset, readSparseHeader, type SparseDatasetInfo } from './sparse-dataset.js';
import type { SparseKernel } from './sparse-kernel.js';
import type { SparseRows } from './sparse-rows.js';

/** A sparse run's data: the sparse .dpt read (`path`) and the file the user named. */
export type SparseRunData = SparseDatasetInfo & { readonly sourcePath: string };

/** Bumped when the conversion's output for the same input may change. */
const SPARSE_CACHE_VERSION = 1;

function isLibsvmPath(path: string): boolean {
  return /\.(svm|libsvm)$/i.test(path);
}

/** Whether `path` with these flags is a sparse run's data: --format libsvm, --hash-bits, a .svm/.libsvm name, or a sparse .dpt. */
export function isSparseData(path: string, spec: SparseRunSpec): boolean {
  if (spec.format === 'libsvm' || spec.hashBits !== null || isLibsvmPath(path)) return true;
  return path.endsWith('.dpt') && isSparseDptFile(path);
}

/**
 * The sparse .dpt of `path` (itself, or its cache entry, converted once) and what its header says.
 * `role` names what gave the path in messages (--data). Throws DatasetError for bad data (file,
 * line, column), ConfigError for flags the file cannot honour.
 */
export async function openSparseRunData(
  path: string,
  spec: SparseRunSpec,
  labelColumn: string | undefined,
  log: (line: string) => void,
  role: string,
  maxClasses: number,
): Promise<SparseRunData> {
  const isDpt = path.endsWith('.dpt');
  if (spec.hashBits !== null && (isDpt || isLibsvmPath(path))) {
    throw new ConfigError(`--hash-bits hashes the columns of a CSV file; ${path} is ${isDpt ? 'a .dpt file' : 'LIBSVM text, sparse already'}`);
  }
  if (spec.format === 'libsvm' && isDpt) throw new ConfigError(`--format libsvm: ${path} is a .dpt file, not LIBSVM text`);
  let sparsePath: string;
  if (spec.hashBits !== null) {
    throw new ConfigError('--hash-bits: hashed CSV training needs the hashed CSV conversion (issue #13), not in this build yet');
  } else if (spec.format === 'libsvm' || isLibsvmPath(path)) {
    if (labelColumn !== undefined) throw new ConfigError(`--label-column: a LIBSVM file's label is the first field of each line (${path})`);
    sparsePath = await cachedLibsvm(path, log, maxClasses);
  } else sparsePath = path;
  const info = readSparseHeader(sparsePath, role);
  const K = info.classes.values.length;
  if (K > maxClasses) throw new DatasetError(path, undefined, undefined, `the labels hold ${K} classes, more than --max-classes ${maxClasses} allows`);
  return { ...info, sourcePath: path };
}

/** The cache entry of a LIBSVM file: named after its bytes (SHA-256), converted when absent. */
async function cachedLibsvm(path: string, log: (line: string) => void, maxClasses: number): Promise<string> {
  const directory = cacheDirectory();
  mkdirSync(directory, { recursive: true });
  const digest = await sha256OfFile(path);
  const entry = join(directory, `${createHash('sha256').update(`sparse-libsvm\0${SPARSE_CACHE_VERSION}\0${digest}`).digest('hex').slice(0, 32)}.dpt`);
  if (existsSync(entry)) return entry;
  // Converted beside the entry under a name of this process, then renamed: two processes converting at once both end with a whole file.
  const temporary = `${entry}.${process.pid}.tmp`;
  const started = performance.now();
  try {
    const summary = await convertLibsvmToSparse(path, temporary, { maxClasses });
    renameSync(temporary, entry);
    log(`converted ${path} (${summary.rows} rows, sparse) to ${entry} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(temporary, { force: true });
  }
  return entry;
}

function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', (error: NodeJS.ErrnoException) => reject(new DatasetError(path, undefined, undefined, `cannot read it (${error.code ?? error.message})`)))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/**
 * The rows of the sparse .dpt `data.path`, every check passed (readSparseDataset), copied once into
 * storage the kernel reads without a copy per call (the wasm kernel's memory).
 */
export function loadSparseRows(data: SparseRunData, kernel: SparseKernel, role: string): SparseRows {
  const read = readSparseDataset(data.path, role);
  const storage = kernel.allocateRows(read.rows, read.nnz);
  storage.rowStart.set(read.rowStart);
  storage.indices.set(read.indices);
  storage.values.set(read.values);
  storage.labels.set(read.labels);
  return { rows: read.rows, dims: read.dims, ...storage };
}

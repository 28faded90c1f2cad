// Opens "a sparse input" for a run whatever it is (issue #13): a sparse .dpt as it is; a LIBSVM
// file (.svm, .libsvm, optionally .gz, or --format libsvm) or a CSV with hashing options through
// the conversion cache of shared/csv-cache.ts (converted once per host in one streaming pass, then
// found by a stat-keyed index). Coordinator and workers call the same function and get the same
// .dpt path and identity. Exports: openSparseDataFile, SparseDataFile, SparseOpenOptions,
// SparseInputFormat, sparseFormatOf.

import { DEFAULT_MAX_CLASSES } from './classes.js';
import { type CacheConverter, cachedConversion, type WholeRead } from './csv-cache.js';
import { cacheDirectory } from './data-file.js';
import { ConfigError, DatasetError } from './errors.js';
import { convertLibsvmToSparse } from './libsvm.js';
import { requireRegularFile } from './regular-file.js';
import { convertCsvToSparse } from './sparse-convert.js';
import { isSparseDptFile, readSparseDataset, readSparseHeader, type SparseDatasetInfo, sparseClassesProblem } from './sparse-dataset.js';

/** How a sparse input is read: a sparse .dpt, LIBSVM text, or CSV with hashed columns. */
export type SparseInputFormat = 'dpt' | 'libsvm' | 'csv';

export interface SparseOpenOptions {
  /** --format; default: by the name (.dpt, .svm/.libsvm with an optional .gz, else CSV). */
  readonly format?: 'libsvm' | 'csv' | undefined;
  /** The hashing flags of a CSV input (--hash-bits, --categorical, --cross); required for CSV, refused otherwise. */
  readonly hashing?: { readonly bits: number; readonly categorical: readonly string[]; readonly crosses: readonly string[] } | undefined;
  /** --label-column of a CSV input (header name or 0-based index; default the last column). */
  readonly labelColumn?: string | undefined;
  /** --max-classes: a file with more classes is a DatasetError naming it and the flag. */
  readonly maxClasses?: number | undefined;
  /** What named the path in messages (default --data). */
  readonly role?: string | undefined;
  readonly onProgress?: ((line: string) => void) | undefined;
  readonly onWholeRead?: ((what: WholeRead, path: string) => void) | undefined;
}

/** What a run needs to know of its sparse input; the rows themselves: readSparseDataset(sparsePath). */
export interface SparseDataFile extends SparseDatasetInfo {
  /** The path the user named. */
  readonly sourcePath: string;
  /** The sparse .dpt actually read (the source itself, or its cache entry). */
  readonly sparsePath: string;
  readonly format: SparseInputFormat;
}

/** Whether `path` (with --format `format`) is LIBSVM text by its name: .svm, .libsvm, each optionally .gz. */
function isLibsvmName(path: string): boolean {
  return /\.(svm|libsvm)(\.gz)?$/i.test(path);
}

/**
 * The sparse format of an input, or null when it is a dense input (a CSV without hashing options,
 * a dense .dpt): how the CLI decides between the dense and the sparse path.
 */
export function sparseFormatOf(path: string, options: Pick<SparseOpenOptions, 'format' | 'hashing'>): SparseInputFormat | null {
  if (options.format === 'libsvm' || (options.format === undefined && isLibsvmName(path))) return 'libsvm';
  if (path.toLowerCase().endsWith('.dpt') && options.format === undefined) return isSparseDptFile(path) ? 'dpt' : null;
  return options.hashing !== undefined ? 'csv' : null;
}

/**
 * Opens `path` as sparse input: returns the sparse .dpt to read and its header. A conversion (at
 * most once per host and content) names bad lines by file, line and column (DatasetError); a flag
 * that does not fit the input is a ConfigError.
 */
export async function openSparseDataFile(path: string, options: SparseOpenOptions = {}): Promise<SparseDataFile> {
  const role = options.role ?? '--data';
  requireRegularFile(path, role);
  const format = sparseFormatOf(path, options);
  const maxClasses = options.maxClasses ?? DEFAULT_MAX_CLASSES;
  if (format === null) {
    throw path.toLowerCase().endsWith('.dpt')
      ? new DatasetError(
          path,
          undefined,
          undefined,
          `a dense .dpt file, not a sparse one (${role}: give a sparse .dpt, a LIBSVM file, or a CSV with --hash-bits)`,
        )
      : new ConfigError(`${role} ${path}: a CSV read as sparse data needs --hash-bits (and --categorical, --cross as wanted)`);
  }
  if (format !== 'csv' && options.hashing !== undefined) {
    throw new ConfigError(
      `--hash-bits, --categorical and --cross apply to CSV input; ${path} is ${format === 'dpt' ? 'a sparse .dpt with its own hashing' : 'LIBSVM'}`,
    );
  }
  let sparsePath = path;
  if (format !== 'dpt') {
    const converter = format === 'libsvm' ? libsvmConverter(maxClasses) : csvConverter(options, maxClasses);
    sparsePath = await cachedConversion(path, {
      directory: cacheDirectory(),
      labelColumn: format === 'csv' ? options.labelColumn : undefined,
      maxClasses,
      onProgress: options.onProgress,
      onWholeRead: options.onWholeRead,
      converter,
    });
  }
  const info = readSparseHeader(sparsePath, role);
  const problem = sparseClassesProblem(info, maxClasses);
  if (problem !== null) throw new DatasetError(path, undefined, undefined, problem);
  return { ...info, sourcePath: path, sparsePath, format };
}

function libsvmConverter(maxClasses: number): CacheConverter {
  return {
    key: 'sparse-libsvm-1',
    extension: '.sparse.dpt',
    convert: async (input, entry) => describe(await convertLibsvmToSparse(input, entry, { maxClasses })),
    verify: (entry) => void readSparseDataset(entry, 'the cache entry'),
  };
}

function csvConverter(options: SparseOpenOptions, maxClasses: number): CacheConverter {
  // The options define the features: each set has its own entry. Lists keep their order (the spec does).
  const hashing = options.hashing!; // sparseFormatOf returns 'csv' only with hashing options
  return {
    key: `sparse-csv-1\0${JSON.stringify({ bits: hashing.bits, categorical: hashing.categorical, crosses: hashing.crosses })}`,
    extension: '.sparse.dpt',
    convert: async (input, entry) => describe(await convertCsvToSparse(input, entry, { ...hashing, labelColumn: options.labelColumn, maxClasses })),
    verify: (entry) => void readSparseDataset(entry, 'the cache entry'),
  };
}

function describe(summary: { rows: number; dims: number; nnz: number }): string {
  return `${summary.rows} rows, D = ${summary.dims}, ${summary.nnz} non-zeros`;
}

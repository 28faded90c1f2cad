// Converts a CSV file (plain or gzip) with hashed columns to a sparse .dpt file in one streaming
// pass with bounded memory (issue #13): the header makes the FeatureHashing spec
// (shared/feature-hashing.ts), each record its hashed row, and the spec is recorded in the file.
// Exports: convertCsvToSparse, CsvToSparseOptions.

import { type StreamProgress, streamCsvRecords } from './csv-stream.js';
import { DatasetError } from './errors.js';
import { createFeatureHashing, createRowHasher, type HashingOptions, type RowHasher } from './feature-hashing.js';
import { type SparseDatasetSummary, SparseDatasetWriter } from './sparse-dataset.js';

export interface CsvToSparseOptions extends HashingOptions {
  /** Most distinct labels (classes); default DEFAULT_MAX_CLASSES (shared/classes.ts). */
  readonly maxClasses?: number | undefined;
  readonly onProgress?: ((progress: StreamProgress & { readonly rows: number }) => void) | undefined;
}

/**
 * Converts `input` (CSV with a header) to the sparse .dpt `output`, D = 2^bits; the output
 * appears only if the whole input is valid. Labels of any value become classes as for a dense file
 * (0/1: the binary model). Errors name file, line and column (DatasetError) or the flag (ConfigError).
 */
export async function convertCsvToSparse(input: string, output: string, options: CsvToSparseOptions): Promise<SparseDatasetSummary> {
  // Set by the header record; an object, so that TypeScript sees the callback's assignments.
  const state: { hasher: RowHasher | null; writer: SparseDatasetWriter | null } = { hasher: null, writer: null };
  try {
    await streamCsvRecords(
      input,
      (fields, line) => {
        const { hasher, writer } = state;
        if (hasher === null || writer === null) {
          const spec = createFeatureHashing(options, fields, input, line);
          state.hasher = createRowHasher(spec, fields, input, line);
          state.writer = new SparseDatasetWriter(output, {
            labelName: spec.labelColumn,
            dims: 2 ** spec.bits,
            hashing: spec,
            maxClasses: options.maxClasses,
            labelSource: { path: input, column: state.hasher.labelIndex + 1 },
          });
          return;
        }
        const count = hasher.hashRow(fields, line);
        writer.appendRow(hasher.indices, hasher.values, count, fields[hasher.labelIndex]!, line);
      },
      (progress) => options.onProgress?.({ ...progress, rows: state.writer?.rowsWritten ?? 0 }),
    );
    if (state.writer === null) throw new DatasetError(input, undefined, undefined, 'the file is empty (expected a header row and data rows)');
    if (state.writer.rowsWritten === 0) throw new DatasetError(input, 2, undefined, 'the file has a header but no data rows');
    return state.writer.finish();
  } catch (error) {
    state.writer?.abort();
    throw error;
  }
}

// Reads a small CSV data file whole into a row-major float32 feature matrix and 0/1 labels (for
// predict and evaluate), checking every cell with the rules of shared/csv-rules.ts (DESIGN.md
// invariant 5): errors name the file, the line and the column. Training streams instead.

import { createHash } from 'node:crypto';
import { closeSync, readFileSync } from 'node:fs';
import { parseCsv } from './csv.js';
import { type CsvColumns, parseRecord, resolveColumns } from './csv-rules.js';
import { DatasetError } from './errors.js';
import { openRegularFile } from './regular-file.js';

export interface Dataset {
  readonly path: string;
  /**
   * What identifies the rows read: the SHA-256 (hex) of a CSV file's bytes; for a .dpt file its
   * identity (SHA-256 of header, names and content CRC table; every block is checked as read).
   */
  readonly identity: string;
  readonly featureNames: readonly string[];
  /** Name of the label column, or null when the file was read without labels. */
  readonly labelName: string | null;
  readonly rows: number;
  /** D, the number of features. */
  readonly features: number;
  /** rows × D, row-major. */
  readonly x: Float32Array;
  /** One 0/1 label per row; empty when read without labels. */
  readonly y: Uint8Array;
}

export interface ReadOptions {
  /**
   * The label column: a header name, or a 0-based index (negative counts from the end).
   * undefined: the last column. null: the file has no labels to read (prediction).
   */
  readonly labelColumn?: string | null | undefined;
  /** Read exactly these feature columns, by header name (a model's features); default: all but the label. */
  readonly featureColumns?: readonly string[] | undefined;
}

/** Reads the CSV file at `path` (a regular file; `role` names the flag that gave it, for messages). */
export function readDataset(path: string, options: ReadOptions = {}, role = '--data'): Dataset {
  const fd = openRegularFile(path, role);
  let bytes: Buffer;
  try {
    bytes = readFileSync(fd);
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  } finally {
    closeSync(fd);
  }
  return parseDataset(path, bytes, options);
}

/** Parses the bytes of a CSV data file; `path` names it in errors. */
export function parseDataset(path: string, bytes: Buffer, options: ReadOptions = {}): Dataset {
  const identity = createHash('sha256').update(bytes).digest('hex');
  const text = bytes.toString('utf8');
  let layout = null as CsvColumns | null; // set by the first record (the callback runs synchronously)
  let D = 0;
  let capacity = 1024;
  let x = new Float32Array(0);
  let y = new Uint8Array(0);
  let rows = 0;

  parseCsv(path, text, (fields, line) => {
    if (layout === null) {
      layout = resolveColumns(path, line, fields, options);
      D = layout.columns.length;
      x = new Float32Array(capacity * D);
      y = new Uint8Array(capacity);
      return;
    }
    if (rows === capacity) {
      capacity *= 2;
      const grownX = new Float32Array(capacity * D);
      grownX.set(x);
      x = grownX;
      const grownY = new Uint8Array(capacity);
      grownY.set(y);
      y = grownY;
    }
    y[rows] = parseRecord(path, line, fields, layout, x, rows * D);
    rows++;
  });

  const columns = layout;
  if (columns === null) throw new DatasetError(path, undefined, undefined, 'the file is empty (expected a header row and data rows)');
  if (rows === 0) throw new DatasetError(path, 2, undefined, 'the file has a header but no data rows');
  return {
    path,
    identity,
    featureNames: columns.featureNames,
    labelName: columns.labelName,
    rows,
    features: D,
    x: x.slice(0, rows * D),
    y: columns.labelIndex >= 0 ? y.slice(0, rows) : new Uint8Array(0),
  };
}

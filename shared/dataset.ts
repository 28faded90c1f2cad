// Reads a CSV data file into a row-major float32 feature matrix and 0/1 labels, checking every
// cell (DESIGN.md invariant 5): errors name the file, the line and the column.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseCsv } from './csv.js';
import { DatasetError } from './errors.js';

export interface Dataset {
  readonly path: string;
  /** SHA-256 (hex) of the file's bytes: coordinator and workers check they read the same file. */
  readonly sha256: string;
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

const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;
const FLOAT32_MAX = 3.4028234663852886e38;

export function readDataset(path: string, options: ReadOptions = {}): Dataset {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parseDataset(path, bytes, options);
}

/** Parses the bytes of a CSV data file; `path` names it in errors. */
export function parseDataset(path: string, bytes: Buffer, options: ReadOptions = {}): Dataset {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const text = bytes.toString('utf8');
  let header: string[] | null = null;
  let columns: Int32Array = new Int32Array(0); // file column of each feature
  let labelIndex = -1;
  let D = 0;
  let capacity = 1024;
  let x = new Float32Array(0);
  let y = new Uint8Array(0);
  let rows = 0;

  parseCsv(path, text, (fields, line) => {
    if (header === null) {
      header = fields.map((name) => name.trim());
      ({ columns, labelIndex } = resolveColumns(path, line, header, options));
      D = columns.length;
      x = new Float32Array(capacity * D);
      y = new Uint8Array(capacity);
      return;
    }
    if (fields.length !== header.length) {
      throw new DatasetError(
        path,
        line,
        Math.min(fields.length, header.length) + 1,
        `expected ${header.length} columns as in the header, found ${fields.length}`,
      );
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
    const base = rows * D;
    for (let j = 0; j < D; j++) {
      const column = columns[j]!;
      x[base + j] = parseCell(path, line, column, header[column]!, fields[column]!);
    }
    if (labelIndex >= 0) {
      const cell = fields[labelIndex]!.trim();
      const label = cell === '' ? Number.NaN : Number(cell);
      if (label !== 0 && label !== 1) {
        const shown = cell === '' ? 'an empty cell' : `'${cell}'`;
        throw new DatasetError(path, line, labelIndex + 1, `label ${shown} in column '${header[labelIndex]}' must be 0 or 1`);
      }
      y[rows] = label;
    }
    rows++;
  });

  if (header === null) throw new DatasetError(path, undefined, undefined, 'the file is empty (expected a header row and data rows)');
  if (rows === 0) throw new DatasetError(path, 2, undefined, 'the file has a header but no data rows');
  const names: string[] = header;
  return {
    path,
    sha256,
    featureNames: Array.from(columns, (column) => names[column]!),
    labelName: labelIndex >= 0 ? names[labelIndex]! : null,
    rows,
    features: D,
    x: x.slice(0, rows * D),
    y: labelIndex >= 0 ? y.slice(0, rows) : new Uint8Array(0),
  };
}

function parseCell(path: string, line: number, column: number, name: string, cell: string): number {
  if (!NUMBER.test(cell)) {
    const problem = cell.trim() === '' ? 'is empty' : `'${cell.trim()}' is not a finite number`;
    throw new DatasetError(path, line, column + 1, `column '${name}' ${problem}`);
  }
  const value = Number(cell);
  if (Math.abs(value) > FLOAT32_MAX) {
    throw new DatasetError(path, line, column + 1, `column '${name}' value ${cell.trim()} is outside the float32 range`);
  }
  return value;
}

function resolveColumns(path: string, line: number, header: string[], options: ReadOptions): { columns: Int32Array; labelIndex: number } {
  const seen = new Set<string>();
  header.forEach((name, index) => {
    if (name === '') throw new DatasetError(path, line, index + 1, 'the header has an empty column name');
    if (seen.has(name)) throw new DatasetError(path, line, index + 1, `the header names column '${name}' twice`);
    seen.add(name);
  });
  let labelIndex = -1;
  if (options.labelColumn !== null) {
    const spec = options.labelColumn;
    if (spec === undefined) labelIndex = header.length - 1;
    else if (header.includes(spec)) labelIndex = header.indexOf(spec);
    else if (/^-?\d+$/.test(spec)) {
      const index = Number(spec);
      labelIndex = index < 0 ? header.length + index : index;
      if (labelIndex < 0 || labelIndex >= header.length) {
        throw new DatasetError(path, line, undefined, `label column index ${spec} is outside the ${header.length} columns`);
      }
    } else throw new DatasetError(path, line, undefined, `no column named '${spec}' for the label (columns: ${header.join(', ')})`);
  }
  let columns: number[];
  if (options.featureColumns !== undefined) {
    columns = options.featureColumns.map((name) => {
      const index = header.indexOf(name);
      if (index === -1) throw new DatasetError(path, line, undefined, `the model's feature column '${name}' is missing from the header`);
      return index;
    });
  } else {
    columns = header.map((_, index) => index).filter((index) => index !== labelIndex);
  }
  if (columns.length === 0) throw new DatasetError(path, line, undefined, 'the file has no feature columns besides the label');
  return { columns: Int32Array.from(columns), labelIndex };
}

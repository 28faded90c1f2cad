// The cell and column rules of a CSV data file (DESIGN.md invariant 5), record by record, for
// readers that stream: which columns are features and which is the label, and the check of each
// cell. Used by the streaming converter and by shared/dataset.ts alike. parseRecord takes labels
// 0/1 only; parseRecordCells passes a label cell of any value through (issue #12: classes).

import { DatasetError } from './errors.js';

export interface ColumnOptions {
  /** Header name or 0-based index (negative counts from the end); undefined: the last column; null: no label. */
  readonly labelColumn?: string | null | undefined;
  /** Read exactly these feature columns, by header name; default: all but the label. */
  readonly featureColumns?: readonly string[] | undefined;
}

/** The columns chosen by the header: feature columns in order, and the label's (−1: none). */
export interface CsvColumns {
  readonly header: readonly string[];
  readonly columns: Int32Array;
  readonly labelIndex: number;
  readonly featureNames: readonly string[];
  readonly labelName: string | null;
}

const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;
const FLOAT32_MAX = 3.4028234663852886e38;

/** Resolves the header record (line `line`) against the options; throws DatasetError naming file and line. */
export function resolveColumns(path: string, line: number, fields: readonly string[], options: ColumnOptions): CsvColumns {
  const header = fields.map((name) => name.trim());
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
    } else throw new DatasetError(path, line, undefined, `no column named '${spec}' for the label (columns: ${describeHeader(header)})`);
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
  return {
    header,
    columns: Int32Array.from(columns),
    labelIndex,
    featureNames: columns.map((column) => header[column]!),
    labelName: labelIndex >= 0 ? header[labelIndex]! : null,
  };
}

/**
 * Checks one data record (line `line`) and stores its features as float32 at x[base .. base + D);
 * returns its label (0 or 1; 0 when the file has no label column). Throws DatasetError naming
 * file, line and column.
 */
export function parseRecord(path: string, line: number, fields: readonly string[], layout: CsvColumns, x: Float32Array, base: number): 0 | 1 {
  const { header, labelIndex } = layout;
  parseFeatures(path, line, fields, layout, x, base);
  if (labelIndex < 0) return 0;
  const cell = fields[labelIndex]!.trim();
  const label = cell === '' ? Number.NaN : Number(cell);
  if (label !== 0 && label !== 1) {
    const shown = cell === '' ? 'an empty cell' : `'${cell}'`;
    throw new DatasetError(path, line, labelIndex + 1, `label ${shown} in column '${header[labelIndex]}' must be 0 or 1`);
  }
  return label;
}

/**
 * Checks one data record as parseRecord does, features into x[base .. base + D), but returns its
 * label cell as written, of any value (the classes are found from the cells; shared/classes.ts),
 * or null when the file has no label column. An empty label cell is a DatasetError naming file,
 * line and column.
 */
export function parseRecordCells(path: string, line: number, fields: readonly string[], layout: CsvColumns, x: Float32Array, base: number): string | null {
  const { header, labelIndex } = layout;
  parseFeatures(path, line, fields, layout, x, base);
  if (labelIndex < 0) return null;
  const cell = fields[labelIndex]!;
  if (cell.trim() === '') throw new DatasetError(path, line, labelIndex + 1, `the label in column '${header[labelIndex]}' is an empty cell`);
  return cell;
}

/** The column count and every feature cell of a record (DatasetError naming file, line and column). */
function parseFeatures(path: string, line: number, fields: readonly string[], layout: CsvColumns, x: Float32Array, base: number): void {
  const { header, columns } = layout;
  if (fields.length !== header.length) {
    throw new DatasetError(
      path,
      line,
      Math.min(fields.length, header.length) + 1,
      `expected ${header.length} columns as in the header, found ${fields.length}`,
    );
  }
  for (let j = 0; j < columns.length; j++) {
    const column = columns[j]!;
    x[base + j] = parseNumberCell(path, line, column, header[column]!, fields[column]!);
  }
}

/** A numeric cell of column `name` (0-based `column`) as a number within float32 range; DatasetError naming file, line and column otherwise. */
export function parseNumberCell(path: string, line: number, column: number, name: string, cell: string): number {
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

/** The header's names as an error lists them: the first 20, then how many there are. */
function describeHeader(header: readonly string[]): string {
  const SHOWN = 20;
  return header.length <= SHOWN ? header.join(', ') : `${header.slice(0, SHOWN).join(', ')}, … ${header.length} in all`;
}

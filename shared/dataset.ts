// Reads a small CSV data file whole into a row-major float32 feature matrix and its labels (for
// predict and evaluate): 0/1 labels for a binary model, or class indices for a softmax model
// (issue #12; labels of any value, numbers or strings). Every cell is checked with the rules of
// shared/csv-rules.ts (DESIGN.md invariant 5): errors name the file, the line and the column.
// A gzip file is read as training reads it (recognized by its magic bytes, not its name; issue
// #14 item 5: read as text, its bytes ended up in an error). Training streams instead.

import { createHash } from 'node:crypto';
import { closeSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ClassCollector, type ClassList, createClassIndex, DEFAULT_MAX_CLASSES } from './classes.js';
import { parseCsv } from './csv.js';
import { type CsvColumns, parseRecord, resolveColumns } from './csv-rules.js';
import { isGzipHeader } from './csv-stream.js';
import { ConfigError, DatasetError } from './errors.js';
import { openRegularFile } from './regular-file.js';

export interface Dataset {
  readonly path: string;
  /**
   * What identifies the rows read: the SHA-256 (hex) of a CSV file's bytes (a gzip file's once
   * decompressed, so equal to the plain file's); for a .dpt file its
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

/** Reads the CSV file at `path`, plain or gzip (a regular file; `role` names the flag that gave it, for messages). */
export function readDataset(path: string, options: ReadOptions = {}, role = '--data'): Dataset {
  return parseDataset(path, readWhole(path, role), options);
}

function readWhole(path: string, role: string): Buffer {
  const fd = openRegularFile(path, role);
  let bytes: Buffer;
  try {
    bytes = readFileSync(fd);
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  } finally {
    closeSync(fd);
  }
  if (!isGzipHeader(bytes)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `not a valid gzip file (${(error as Error).message})`);
  }
}

/** Parses the bytes of a CSV data file, labels 0 or 1 (or none); `path` names it in errors. */
export function parseDataset(path: string, bytes: Buffer, options: ReadOptions = {}): Dataset {
  let y = new Uint8Array(0);
  const scan = scanRows(path, bytes, options, (layout) => ({
    grow: (capacity) => {
      const grown = new Uint8Array(capacity);
      grown.set(y);
      y = grown;
    },
    read: (fields, line, row, x, base) => {
      y[row] = parseRecord(path, line, fields, layout, x, base);
    },
  }));
  return { ...scan, y: scan.labelName === null ? new Uint8Array(0) : y.slice(0, scan.rows) };
}

/** A data file read with its labels as classes (softmax regression). */
export interface ClassDataset extends Omit<Dataset, 'y' | 'labelName'> {
  readonly labelName: string;
  /** The classes the indices in `y` refer to: the model's, or the file's own when none was given. */
  readonly classes: ClassList;
  /** One class index per row, < classes.values.length. */
  readonly y: Uint32Array;
}

export interface ClassReadOptions {
  /** The label column: a header name, or a 0-based index (negative counts from the end); undefined: the last column. */
  readonly labelColumn?: string | undefined;
  /** Read exactly these feature columns, by header name (a model's features); default: all but the label. */
  readonly featureColumns?: readonly string[] | undefined;
  /**
   * A model's classes: a label cell that is not one of them is a DatasetError naming file, line
   * and column. Default: the file's own distinct labels, ordered as shared/classes.ts says.
   */
  readonly classes?: ClassList | undefined;
  /** Bound on the distinct labels discovered without `classes` (--max-classes). */
  readonly maxClasses?: number | undefined;
}

/** Reads the CSV file at `path`, plain or gzip, with labels of any value (see ClassReadOptions). */
export function readClassDataset(path: string, options: ClassReadOptions = {}, role = '--data'): ClassDataset {
  return parseClassDataset(path, readWhole(path, role), options);
}

/** Parses the bytes of a CSV data file with labels of any value; `path` names it in errors. */
export function parseClassDataset(path: string, bytes: Buffer, options: ClassReadOptions = {}): ClassDataset {
  const known = options.classes === undefined ? null : { classes: options.classes, indexOf: createClassIndex(options.classes) };
  const collector = new ClassCollector(options.maxClasses ?? DEFAULT_MAX_CLASSES); // used only when no classes are given
  let y = new Uint32Array(0);
  const cells: string[] = []; // the label cells while the classes are being discovered
  const scan = scanRows(path, bytes, { labelColumn: options.labelColumn, featureColumns: options.featureColumns }, (layout) => {
    const { labelIndex, header } = layout;
    const column = labelIndex + 1;
    // The features are checked by the shared rules with the label column left out; the label
    // cell is read here (csv-rules' own label check allows only 0 and 1).
    const features: CsvColumns = { ...layout, labelIndex: -1 };
    return {
      grow: (capacity) => {
        const grown = new Uint32Array(capacity);
        grown.set(y);
        y = grown;
      },
      read: (fields, line, row, x, base) => {
        parseRecord(path, line, fields, features, x, base);
        const cell = fields[labelIndex]!.trim(); // the column count was checked by parseRecord
        if (cell === '') throw new DatasetError(path, line, column, `label in column '${header[labelIndex]}' is an empty cell`);
        if (known !== null) {
          const k = known.indexOf(cell);
          if (k === -1)
            throw new DatasetError(
              path,
              line,
              column,
              `label '${cell}' in column '${header[labelIndex]}' is not one of the model's classes (${describeClasses(known.classes)})`,
            );
          y[row] = k;
          return;
        }
        try {
          collector.add(cell);
        } catch (error) {
          if (error instanceof ConfigError) throw new DatasetError(path, line, column, error.message);
          throw error;
        }
        cells.push(cell);
      },
    };
  });
  if (scan.labelName === null) throw new DatasetError(path, 1, undefined, 'the file has no label column'); // labelColumn is never null here
  let classes: ClassList;
  if (known !== null) classes = known.classes;
  else {
    classes = collector.classes();
    const index = createClassIndex(classes);
    cells.forEach((cell, row) => {
      y[row] = index(cell);
    });
  }
  return { ...scan, labelName: scan.labelName, classes, y: y.slice(0, scan.rows) };
}

/** Up to 10 classes, as a message shows them. */
function describeClasses(classes: ClassList): string {
  const shown = classes.values.slice(0, 10).map((value) => (typeof value === 'number' ? String(value) : `'${value}'`));
  return classes.values.length > 10 ? `${shown.join(', ')}, … ${classes.values.length} in all` : shown.join(', ');
}

/** What a reader does with each data record besides its features. */
interface RowReader {
  /** The label store must hold `capacity` rows (keep the first rows read). */
  grow(capacity: number): void;
  /** Checks record `row` (at `line`), its features into x[base .. base + D), its label wherever the reader keeps it. */
  read(fields: readonly string[], line: number, row: number, x: Float32Array, base: number): void;
}

/** The file's rows without their labels: the features, counts and names every reader returns. */
type ScannedRows = Omit<Dataset, 'y'>;

function scanRows(path: string, bytes: Buffer, options: ReadOptions, startReader: (layout: CsvColumns) => RowReader): ScannedRows {
  const identity = createHash('sha256').update(bytes).digest('hex');
  const text = bytes.toString('utf8');
  let layout = null as CsvColumns | null; // set by the first record (the callback runs synchronously)
  let reader = null as RowReader | null;
  let D = 0;
  let capacity = 1024;
  let x = new Float32Array(0);
  let rows = 0;

  parseCsv(path, text, (fields, line) => {
    if (reader === null) {
      layout = resolveColumns(path, line, fields, options);
      D = layout.columns.length;
      x = new Float32Array(capacity * D);
      reader = startReader(layout);
      reader.grow(capacity);
      return;
    }
    if (rows === capacity) {
      capacity *= 2;
      const grownX = new Float32Array(capacity * D);
      grownX.set(x);
      x = grownX;
      reader.grow(capacity);
    }
    reader.read(fields, line, rows, x, rows * D);
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
  };
}

// LIBSVM / svmlight text files (issue #13), read in one streaming pass with bounded memory: each
// line `label index:value index:value ... # comment` becomes one sparse row. Exports:
// streamLibsvmRows, LibsvmRowHandler, convertLibsvmToSparse, LibsvmConvertOptions.
//
// The rules: fields are separated by spaces or tabs; `#` starts a comment to the end of the line;
// blank and comment-only lines are skipped; LF or CRLF. The label is a decimal number (classes:
// shared/classes.ts; −1/+1 and 0/1 are the binary classes). Indices are 1-based decimal integers
// below 2^32, strictly increasing within a line (out of order and repeated indices are refused);
// index j is feature j − 1. Values are decimal numbers within float32 range; a value that is 0
// as a float32 gives no entry (a stored entry is never 0). `qid:` (ranking files) is refused.
// Every problem is a DatasetError naming file, line and column (1-based, in bytes of the line).

import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { isGzipHeader, type StreamProgress } from './csv-stream.js';
import { DatasetError } from './errors.js';
import { requireRegularFile } from './regular-file.js';
import { type SparseDatasetSummary, SparseDatasetWriter } from './sparse-dataset.js';

/**
 * Called once per data line: the row's `count` entries in indices (0-based, increasing) and values
 * (float32, non-zero), its label token as written, and its 1-based line. The arrays are reused by
 * the next call: copy what you keep.
 */
export type LibsvmRowHandler = (indices: Uint32Array, values: Float32Array, count: number, label: string, line: number) => void;

const CHUNK_BYTES = 1 << 20;
/** Bounds the bytes held while looking for the end of one line. */
const MAX_LINE_BYTES = 64 << 20;
const FLOAT32_MAX = 3.4028234663852886e38;
const MAX_INDEX = 2 ** 32 - 1;
/** The same decimal form as a CSV cell (shared/csv-rules.ts): no hex, no Infinity, no NaN. */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** 10^0 … 10^22: every one an exact double, so m·10^e and m/10^e round once (Clinger's fast path). */
const POW10 = Array.from({ length: 23 }, (_, e) => Number(`1e${e}`));

const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const HASH = 0x23;
const COLON = 0x3a;

/**
 * Calls `onRow` for every data line of the LIBSVM file at `path` (plain or gzip, recognized by its
 * magic bytes), in order, and resolves to the largest index of the file (D, counting indices whose
 * value is 0). Rejects with a DatasetError naming file, line and column.
 */
export async function streamLibsvmRows(path: string, onRow: LibsvmRowHandler, onProgress?: (progress: StreamProgress) => void): Promise<number> {
  requireRegularFile(path, 'the LIBSVM input');
  let totalBytes: number;
  try {
    totalBytes = statSync(path).size;
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const isGzip = startsWithGzipMagic(path);
  const file = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  let bytes: Readable = file;
  if (isGzip) {
    const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
    file.on('error', (error) => gunzip.destroy(error));
    bytes = file.pipe(gunzip);
  }
  const parser = new LineParser(path, onRow);
  let pending: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of bytes) {
      pending = parser.feed(pending, chunk as Buffer);
      onProgress?.({ bytesRead: file.bytesRead, totalBytes });
    }
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new DatasetError(
      path,
      undefined,
      undefined,
      isGzip ? `not a valid gzip file (${(error as Error).message})` : `cannot read the file (${code ?? String(error)})`,
    );
  } finally {
    file.destroy();
  }
  if (pending.length > 0) parser.parseLines(pending, 0, pending.length, true);
  return parser.largestIndex;
}

function startsWithGzipMagic(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const magic = Buffer.alloc(2);
    return readSync(fd, magic, 0, 2, 0) === 2 && isGzipHeader(magic);
  } finally {
    closeSync(fd);
  }
}

/** Cuts bytes into lines and parses each; holds the row being built (reused arrays, grown as needed). */
class LineParser {
  private readonly path: string;
  private readonly onRow: LibsvmRowHandler;
  private indices = new Uint32Array(1024);
  private values = new Float32Array(1024);
  private line = 0;
  private hashBuffer: Buffer | null = null;
  private nextHash = -1;
  /** The largest 1-based index seen, zeros included: D. */
  largestIndex = 0;
  /** The last label token's bytes and string: labels repeat, so most rows decode none. */
  private labelBytes = Buffer.alloc(0);
  private label = '';

  constructor(path: string, onRow: LibsvmRowHandler) {
    this.path = path;
    this.onRow = onRow;
  }

  /** Parses every whole line of pending + chunk; returns the bytes after the last newline (a copy). */
  feed(pending: Buffer, chunk: Buffer): Buffer {
    const data = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const cut = data.lastIndexOf(LF);
    if (cut < 0) {
      if (data.length > MAX_LINE_BYTES) throw new DatasetError(this.path, this.line + 1, undefined, `a line runs over ${MAX_LINE_BYTES} bytes`);
      return data === chunk ? Buffer.from(chunk) : data;
    }
    this.parseLines(data, 0, cut + 1, false);
    return Buffer.from(data.subarray(cut + 1)); // a copy: the stream may reuse its chunk
  }

  /** Lines of data[from, to): each ends with LF, the last one may not when `isLast`. */
  parseLines(data: Buffer, from: number, to: number, isLast: boolean): void {
    let start = from;
    while (start < to) {
      let end = data.indexOf(LF, start);
      if (end < 0 || end >= to) {
        if (!isLast) return;
        end = to;
      }
      this.line++;
      this.parseLine(data, start, end);
      start = end + 1;
    }
  }

  private fail(column: number, problem: string): never {
    throw new DatasetError(this.path, this.line, column, problem);
  }

  /** One line, bytes [start, end) without its LF. */
  private parseLine(data: Buffer, start: number, lineEnd: number): void {
    let end = lineEnd;
    if (end > start && data[end - 1] === CR) end--;
    // The next '#' of this buffer, found once and reused until passed: searching from every line
    // start to the end of a 1 MiB chunk made the parse quadratic in the lines of a chunk.
    if (data !== this.hashBuffer || (this.nextHash !== -1 && this.nextHash < start)) {
      this.hashBuffer = data;
      this.nextHash = data.indexOf(HASH, start);
    }
    if (this.nextHash !== -1 && this.nextHash < end) end = this.nextHash;
    let at = start;
    while (at < end && (data[at] === SPACE || data[at] === TAB)) at++;
    if (at === end) return; // blank or comment only
    const labelStart = at;
    while (at < end && data[at] !== SPACE && data[at] !== TAB) at++;
    const label = this.labelOf(data, labelStart, at, labelStart - start + 1);
    let count = 0;
    let previous = 0; // 1-based: indices start at 1
    for (;;) {
      while (at < end && (data[at] === SPACE || data[at] === TAB)) at++;
      if (at === end) break;
      const tokenStart = at;
      const column = tokenStart - start + 1;
      // Index: decimal digits up to ':'.
      let index = 0;
      let digits = 0;
      while (at < end && data[at]! >= 0x30 && data[at]! <= 0x39) {
        index = index * 10 + (data[at]! - 0x30);
        digits++;
        at++;
      }
      if (at === end || data[at] !== COLON || digits === 0) this.badEntry(data, tokenStart, end, column);
      if (index < 1 || index > MAX_INDEX || digits > 10) this.fail(column, `index ${data.toString('latin1', tokenStart, at)} is outside 1 to ${MAX_INDEX}`);
      if (index <= previous) {
        this.fail(
          column,
          index === previous
            ? `index ${index} appears twice (indices must be strictly increasing)`
            : `index ${index} follows index ${previous} (indices must be strictly increasing)`,
        );
      }
      previous = index;
      at++; // the colon
      const valueStart = at;
      while (at < end && data[at] !== SPACE && data[at] !== TAB) at++;
      const value = this.valueOf(data, valueStart, at, valueStart - start + 1, index);
      if (value === 0) continue;
      if (count === this.indices.length) this.grow();
      this.indices[count] = index - 1;
      this.values[count] = value;
      count++;
    }
    if (previous > this.largestIndex) this.largestIndex = previous;
    this.onRow(this.indices, this.values, count, label, this.line);
  }

  /** The label token at `column`, checked as a decimal number. */
  private labelOf(data: Buffer, from: number, to: number, column: number): string {
    const length = to - from;
    if (length === this.labelBytes.length) {
      // A byte loop: labels are a few bytes, and Buffer.compare's native call cost more than the parse.
      let k = 0;
      while (k < length && data[from + k] === this.labelBytes[k]) k++;
      if (k === length) return this.label;
    }
    const text = data.toString('utf8', from, to);
    if (text.includes(':')) this.fail(column, `the line starts with '${text}', not with a label (expected "label index:value ...")`);
    if (!NUMBER.test(text) || !Number.isFinite(Number(text))) this.fail(column, `label '${text}' is not a finite decimal number`);
    this.labelBytes = Buffer.from(data.subarray(from, to));
    this.label = text;
    return text;
  }

  /** The problem with a token that is not `index:value`. */
  private badEntry(data: Buffer, from: number, end: number, column: number): never {
    let to = from;
    while (to < end && data[to] !== SPACE && data[to] !== TAB) to++;
    const token = data.toString('utf8', from, to);
    if (token.startsWith('qid:')) this.fail(column, `'${token}': qid (ranking files) is not supported; remove the qid: fields`);
    return this.fail(column, `'${token}' is not index:value (a 1-based integer index, a colon, a number)`);
  }

  /** The value of data[from, to) as a float32; DatasetError unless a finite decimal within float32 range. */
  private valueOf(data: Buffer, from: number, to: number, column: number, index: number): number {
    // Fast path: [sign] digits [. digits], at most 15 significant digits, exactly rounded.
    let at = from;
    let isNegative = false;
    if (at < to && (data[at] === 0x2d || data[at] === 0x2b)) {
      isNegative = data[at] === 0x2d;
      at++;
    }
    let mantissa = 0;
    let significant = 0;
    let scale = 0;
    let digits = 0;
    let isFraction = false;
    for (; at < to; at++) {
      const c = data[at]!;
      if (c >= 0x30 && c <= 0x39) {
        digits++;
        if (mantissa === 0 && c === 0x30) {
          if (isFraction) scale++;
          continue;
        }
        mantissa = mantissa * 10 + (c - 0x30);
        significant++;
        if (isFraction) scale++;
      } else if (c === 0x2e && !isFraction) isFraction = true;
      else break;
    }
    if (at === to && digits > 0 && significant <= 15 && scale <= 22) {
      const value = Math.fround(mantissa / POW10[scale]!);
      return isNegative ? -value : value;
    }
    const text = data.toString('utf8', from, to);
    if (!NUMBER.test(text)) this.fail(column, `the value of index ${index} ${text === '' ? 'is empty' : `'${text}' is not a finite decimal number`}`);
    const value = Number(text);
    if (!(Math.abs(value) <= FLOAT32_MAX)) this.fail(column, `the value of index ${index}, ${text}, is outside the float32 range`);
    return Math.fround(value);
  }

  private grow(): void {
    const indices = new Uint32Array(this.indices.length * 2);
    indices.set(this.indices);
    const values = new Float32Array(this.values.length * 2);
    values.set(this.values);
    this.indices = indices;
    this.values = values;
  }
}

export interface LibsvmConvertOptions {
  /** Most distinct labels (classes); default DEFAULT_MAX_CLASSES (shared/classes.ts). */
  readonly maxClasses?: number | undefined;
  readonly onProgress?: ((progress: StreamProgress & { readonly rows: number }) => void) | undefined;
}

/**
 * Converts the LIBSVM file `input` to a sparse .dpt `output` in one streaming pass (the output
 * appears only if the whole input is valid). D is the largest index; labels −1/+1 or 0/1 are the
 * binary classes, any other values classes for softmax (at most maxClasses).
 */
export async function convertLibsvmToSparse(input: string, output: string, options: LibsvmConvertOptions = {}): Promise<SparseDatasetSummary> {
  const writer = new SparseDatasetWriter(output, {
    labelName: 'label',
    dims: null,
    hashing: null,
    maxClasses: options.maxClasses,
    labelSource: { path: input, column: 1 },
    isSignedBinary: true,
  });
  try {
    const dims = await streamLibsvmRows(
      input,
      (indices, values, count, label, line) => writer.appendRow(indices, values, count, label, line),
      (progress) => options.onProgress?.({ ...progress, rows: writer.rowsWritten }),
    );
    return writer.finish(dims);
  } catch (error) {
    writer.abort();
    throw error;
  }
}

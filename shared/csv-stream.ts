// Streams the records of a CSV file (plain or gzip) in constant memory: bytes arrive in chunks,
// are cut at record boundaries (a newline outside quotes), and each piece is decoded once and goes
// through the strict parser of shared/csv.ts, with line numbers counted across pieces so errors
// name the real line. Cutting bytes, not text, is safe in UTF-8 (no multi-byte sequence contains
// '\n' or '"') and gives parseCsv flat strings: slices of concatenated chunks made it 30× slower.

import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parseCsv, type RecordHandler } from './csv.js';
import { DatasetError } from './errors.js';
import { requireRegularFile } from './regular-file.js';

export interface StreamProgress {
  /** Bytes of the file read so far (compressed bytes for gzip) and its size. */
  readonly bytesRead: number;
  readonly totalBytes: number;
}

/**
 * Bytes per chunk, and so per parsed piece. Measured on Node 20: 64 KiB pieces parse at a steady
 * rate, while pieces of 512 KiB to 1 MiB slowed parseCsv down 20–50× after a few megabytes.
 */
const CHUNK_BYTES = 1 << 16;
/** Bounds the bytes held while looking for the end of one record, so a broken quote cannot fill memory. */
const MAX_RECORD_BYTES = 64 << 20;

/**
 * Calls `onRecord(fields, line)` for every record of the CSV file at `path`, in order; gzip is
 * recognized by its magic bytes. `onProgress` is called after each chunk. Rejects with a
 * DatasetError naming file and line.
 */
export async function streamCsvRecords(path: string, onRecord: RecordHandler, onProgress?: (progress: StreamProgress) => void): Promise<void> {
  // A FIFO or a device would block the read below forever (issue #10 item 8).
  requireRegularFile(path, 'the CSV input');
  let totalBytes: number;
  let isGzip: boolean;
  try {
    totalBytes = statSync(path).size;
    isGzip = hasGzipMagic(path);
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const file = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  let bytes: Readable = file;
  if (isGzip) {
    const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
    file.on('error', (error) => gunzip.destroy(error));
    bytes = file.pipe(gunzip);
  }
  let pending: Buffer = Buffer.alloc(0);
  let linesBefore = 0;
  // One callback for every piece: a new closure per piece deoptimized parseCsv into code that ran 20× slower.
  let recordError: unknown = null;
  const onPieceRecord = (fields: string[], line: number): void => {
    try {
      onRecord(fields, line + linesBefore);
    } catch (error) {
      recordError = error;
      throw error;
    }
  };
  const parsePiece = (piece: string): void => {
    try {
      parseCsv(path, piece, onPieceRecord);
    } catch (error) {
      // parseCsv's own errors (a quote left open) count lines from the start of the piece.
      if (error !== recordError && error instanceof DatasetError && error.line !== undefined) throw shiftLine(error, linesBefore);
      throw error;
    }
    linesBefore += countNewlines(piece);
  };
  try {
    for await (const chunk of bytes) {
      const data = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer]);
      const cut = lastRecordEnd(data);
      if (cut >= 0) {
        parsePiece(data.toString('utf8', 0, cut + 1));
        pending = Buffer.from(data.subarray(cut + 1)); // a copy: the stream may reuse its chunk
      } else if (data.length > MAX_RECORD_BYTES) {
        throw new DatasetError(path, linesBefore + 1, undefined, `a record runs over ${MAX_RECORD_BYTES} bytes (a quote left open?)`);
      } else pending = data;
      onProgress?.({ bytesRead: file.bytesRead, totalBytes });
    }
  } catch (error) {
    // What onRecord threw is the caller's (e.g. a ConfigError for a flag checked against the header), not a read error.
    if (error instanceof DatasetError || error === recordError) throw error;
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
  if (pending.length > 0) parsePiece(pending.toString('utf8'));
}

/** The same error, `lines` further down the file. */
function shiftLine(error: DatasetError, lines: number): DatasetError {
  const where = [error.file, `line ${error.line}`, error.column === undefined ? '' : `column ${error.column}`].filter((part) => part !== '').join(', ');
  return new DatasetError(error.file, error.line! + lines, error.column, error.message.slice(where.length + 2));
}

/** Index of the last '\n' outside quotes ("" inside quotes counts twice, so parity works), or −1. */
function lastRecordEnd(bytes: Buffer): number {
  if (bytes.indexOf(0x22) === -1) return bytes.lastIndexOf(0x0a);
  let isQuoted = false;
  let end = -1;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 0x22) isQuoted = !isQuoted;
    else if (c === 0x0a && !isQuoted) end = i;
  }
  return end;
}

function countNewlines(text: string): number {
  let count = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) count++;
  return count;
}

function hasGzipMagic(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const magic = Buffer.alloc(2);
    return readSync(fd, magic, 0, 2, 0) === 2 && isGzipHeader(magic);
  } finally {
    closeSync(fd);
  }
}

/** Whether `bytes` start as a gzip stream does (RFC 1952: 1f 8b), whatever the file is called. */
export function isGzipHeader(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

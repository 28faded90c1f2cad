// The binary dataset format `.dpt`: a small checked header, then row-major float32 features and
// the labels at fixed offsets, so any range of rows is one positioned read into a buffer the
// caller owns (a worker reads only its rows, never the whole file). Writer streams; reader opens.
//
// Layout (little-endian; every section starts at a multiple of 64 bytes, zero padding between):
//   0   magic "\x89DPT\r\n\x1a\n" (the PNG trick: a text-mode transfer or a 7-bit channel breaks it)
//   8   u32 version (1 or 2)    12  u8 feature type (1 = float32)   13  u8 label type (v1: 1 = uint8, v2: 2 = uint16)   14  u16 0
//   16  u64 rows                24  u32 features D                  28  u32 bytes of the names block
//   32  u64 dataOffset          40  u64 labelsOffset                48  u64 tableOffset
//   56  u32 blockBytes          60  u32 CRC-32 of bytes [0, 60) and of the names block
//   64  names block: UTF-8 JSON {"features": [D names], "label": name}; v2 adds "classes": [K values]
//   dataOffset    rows × D float32 (row r at dataOffset + 4·D·r)
//   labelsOffset  v1: rows × uint8, each 0 or 1; v2: rows × uint16, each a class index < K
//   tableOffset   one u32 CRC-32 per blockBytes block of [dataOffset, tableOffset) — the last may be short
//   end of file   tableOffset + 4 × blocks
// Versions (issue #12): labels may be any values; the classes are the distinct label cells sorted
// (shared/classes.ts). A file whose classes are numbers within {0, 1} is version 1, byte for byte
// the format before classes existed (its classes are [0, 1]); any other is version 2, its classes
// in the names block ("classes": JSON numbers when every label is numeric, else strings), class k
// the k-th, K ≤ 65,535. Readers accept both; the writer picks the version once every label is in.
// The content CRCs are written as the data streams out. Opening checks the header and the exact
// file size only, so opening a file of any size takes microseconds; the content is checked as it
// is read: before any row of a block is returned, that block's CRC-32 is checked and its values
// too (every feature finite, every label 0 or 1 in v1, below K in v2), once per open file (a bit
// per block remembers it; issue #10 items 6 and 7). A read that covers whole blocks is checked in
// the caller's buffer, without a second read; a block a read covers only in part is read whole
// once, into a scratch block.
// The identity (`identity`) is the SHA-256 of the header, the names and the CRC table: two files
// with equal identities have the same shape, names, classes and content CRCs, and since every block is
// checked against that table before use, equal identities mean equal rows as far as CRC-32 can tell.

import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, rmSync } from 'node:fs';
import { endianness } from 'node:os';
import { crc32 } from 'node:zlib';
import { AtomicFileWriter, describeFailure, trackTemporary, untrackTemporary, writeFully } from './atomic-file.js';
import { type ClassList, DEFAULT_MAX_CLASSES } from './classes.js';
import { ConfigError, DataBlockError, DatasetError, WriteError } from './errors.js';
import { BINARY_CLASSES, checkClassList, LabelCells, MAX_DPT_CLASSES } from './label-cells.js';
import { nativePasses } from './passes-native.js';
import { openRegularFile } from './regular-file.js';

export const BINARY_MAGIC = Buffer.from([0x89, 0x44, 0x50, 0x54, 0x0d, 0x0a, 0x1a, 0x0a]);
/** The version of a file with labels 0/1 (uint8); BINARY_VERSION_CLASSES: classes of any values (uint16 indices). */
export const BINARY_VERSION = 1;
export const BINARY_VERSION_CLASSES = 2;
const HEADER_BYTES = 64;
const ALIGN = 64;
/** Bytes per content CRC block: 1 MiB keeps the table at 4 bytes per MiB of data. */
export const BLOCK_BYTES = 1 << 20;
const FLOAT32 = 1;
const UINT8 = 1;
const UINT16 = 2;
const MAX_FEATURES = 1 << 24;
const MAX_ROWS = 2 ** 32 - 1;
const MAX_NAMES_BYTES = 64 << 20;
/** One read or write call moves at most this many bytes (the kernel caps a call near 2 GiB). */
const MAX_IO_BYTES = 1 << 30;

export interface BinaryDatasetNames {
  readonly featureNames: readonly string[];
  readonly labelName: string;
}

/** How a file stores its labels: uint8 0/1 (version 1) or uint16 class indices (version 2). */
export type LabelType = 'uint8' | 'uint16';

/** What a finished file holds; `identity` as described above. */
export interface BinaryDatasetSummary {
  readonly path: string;
  readonly rows: number;
  readonly features: number;
  readonly bytes: number;
  readonly identity: string;
  readonly classes: ClassList;
  readonly labelType: LabelType;
}

/** Options of a writer; its label cells come through appendCells. */
export interface BinaryDatasetWriterOptions {
  /** Most distinct label cells appendCells accepts (default DEFAULT_MAX_CLASSES, at most 65,535). */
  readonly maxClasses?: number | undefined;
  /** Where the label cells come from, for messages: the source file and its 1-based label column (default: the rows of the file written). */
  readonly labelSource?: { readonly path: string; readonly column: number } | undefined;
}

/** Where a .dpt file's sections lie (byte offsets) and how many content blocks its CRC table has. */
export interface DptLayout {
  readonly version: 1 | 2;
  /** Bytes per label: 1 (uint8, version 1) or 2 (uint16, version 2); the labels of rows [a, b) are bytes [labelsOffset + a·labelBytes, labelsOffset + b·labelBytes). */
  readonly labelBytes: 1 | 2;
  readonly rows: number;
  readonly features: number;
  readonly namesBytes: number;
  readonly dataOffset: number;
  readonly labelsOffset: number;
  readonly tableOffset: number;
  readonly blocks: number;
  readonly fileBytes: number;
}

type Layout = DptLayout;

function align(offset: number): number {
  return Math.ceil(offset / ALIGN) * ALIGN;
}

function layoutOf(version: 1 | 2, rows: number, features: number, namesBytes: number, blockBytes: number): Layout {
  const labelBytes = version === BINARY_VERSION ? 1 : 2;
  const dataOffset = align(HEADER_BYTES + namesBytes);
  const labelsOffset = align(dataOffset + rows * features * 4);
  const tableOffset = align(labelsOffset + rows * labelBytes);
  const blocks = Math.ceil((tableOffset - dataOffset) / blockBytes);
  return { version, labelBytes, rows, features, namesBytes, dataOffset, labelsOffset, tableOffset, blocks, fileBytes: tableOffset + 4 * blocks };
}

function encodeHeader(layout: Layout, names: Buffer): Buffer {
  const header = Buffer.alloc(layout.dataOffset);
  BINARY_MAGIC.copy(header, 0);
  header.writeUInt32LE(layout.version, 8);
  header.writeUInt8(FLOAT32, 12);
  header.writeUInt8(layout.version === BINARY_VERSION ? UINT8 : UINT16, 13);
  header.writeBigUInt64LE(BigInt(layout.rows), 16);
  header.writeUInt32LE(layout.features, 24);
  header.writeUInt32LE(layout.namesBytes, 28);
  header.writeBigUInt64LE(BigInt(layout.dataOffset), 32);
  header.writeBigUInt64LE(BigInt(layout.labelsOffset), 40);
  header.writeBigUInt64LE(BigInt(layout.tableOffset), 48);
  header.writeUInt32LE(BLOCK_BYTES, 56);
  names.copy(header, HEADER_BYTES);
  header.writeUInt32LE(headerCrc(header, layout.namesBytes), 60);
  return header;
}

function headerCrc(header: Buffer, namesBytes: number): number {
  return crc32(header.subarray(HEADER_BYTES, HEADER_BYTES + namesBytes), crc32(header.subarray(0, 60)));
}

function identityOf(header: Buffer, table: Buffer): string {
  return createHash('sha256').update(header).update(table).digest('hex');
}

/** Reads exactly `length` bytes at `position` into `target`; a short file is a DatasetError. */
function readExactly(path: string, fd: number, target: Uint8Array, position: number, what: string): void {
  let done = 0;
  while (done < target.length) {
    const count = readSync(fd, target, done, Math.min(target.length - done, MAX_IO_BYTES), position + done);
    if (count === 0) throw new DatasetError(path, undefined, undefined, `the file ends inside the ${what} (truncated?)`);
    done += count;
  }
}

function bytesOf(view: ArrayBufferView, from = 0, length = view.byteLength - from): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset + from, length);
}

/** Label rows mapped per chunk when finish() copies label cells' ids behind the features. */
const LABEL_CHUNK_ROWS = 1 << 18;

/** The names block: today's JSON for version 1; version 2 adds the class list. */
function encodeNames(names: BinaryDatasetNames, classes: ClassList | null): Buffer {
  const json =
    classes === null
      ? JSON.stringify({ features: names.featureNames, label: names.labelName })
      : JSON.stringify({ features: names.featureNames, label: names.labelName, classes: classes.values });
  return Buffer.from(json, 'utf8');
}

/**
 * Writes a .dpt file with constant memory: rows are appended in batches, features go straight to
 * their place in the file, labels to a side file that is copied behind them at the end. Labels come
 * either as 0/1 bytes (append: a version-1 file) or as label cells (appendCells: the side file holds
 * each row's first-seen cell id, u32, and finish() maps the ids to 0/1 for a version-1 file or to
 * class indices for a version-2 one while copying them; memory: the distinct cells only).
 * The features are placed behind the version-1 names block; a version-2 names block (with the
 * classes) is longer, and when its aligned end passes theirs finish() moves the features once (one
 * more read and write of that section, for multiclass files only; the content CRCs, relative to
 * dataOffset, do not change). The file appears under its name only when finish() succeeds
 * (shared/atomic-file.ts: every write checked, fsync and size check, rename); any failure removes
 * both temporary files.
 */
export class BinaryDatasetWriter {
  readonly path: string;
  private readonly names: BinaryDatasetNames;
  private readonly namesV1: Buffer;
  private readonly features: number;
  private readonly maxClasses: number;
  private readonly labelSource: { readonly path: string; readonly column: number } | null;
  private readonly file: AtomicFileWriter;
  private readonly labelsPath: string;
  private readonly labelsFd: number;
  /** Where the features are written: behind the version-1 names block (finish() may move them). */
  private readonly dataOffset: number;
  /** How the labels come in, fixed by the first append: 0/1 bytes or cells. */
  private labelInput: 'unknown' | 'bytes' | 'cells' = 'unknown';
  private cells: LabelCells | null = null;
  /** The first-seen ids of one appendCells batch (grown to the largest batch). */
  private ids = new Uint32Array(0);
  private rows = 0;
  /** CRC state of the content block being written, and the finished blocks' CRCs. */
  private blockCrc = 0;
  private blockFill = 0;
  private readonly crcs: number[] = [];
  private isOpen = true;

  /** Throws ConfigError for a `maxClasses` outside 1 to 65,535, RangeError for bad names, WriteError when the files cannot be created. */
  constructor(path: string, names: BinaryDatasetNames, options: BinaryDatasetWriterOptions = {}) {
    if (endianness() !== 'LE') throw new Error('the .dpt format is little-endian; this machine is not');
    const D = names.featureNames.length;
    if (D < 1 || D > MAX_FEATURES) throw new RangeError(`a .dpt file holds 1 to ${MAX_FEATURES} features, got ${D}`);
    const maxClasses = options.maxClasses ?? DEFAULT_MAX_CLASSES;
    if (!(Number.isInteger(maxClasses) && maxClasses >= 1 && maxClasses <= MAX_DPT_CLASSES)) {
      throw new ConfigError(
        `--max-classes must be an integer from 1 to ${MAX_DPT_CLASSES.toLocaleString('en-US')} (a .dpt class index is a uint16), got ${maxClasses}`,
      );
    }
    this.path = path;
    this.features = D;
    this.names = names;
    this.maxClasses = maxClasses;
    this.labelSource = options.labelSource ?? null;
    this.namesV1 = encodeNames(names, null);
    if (this.namesV1.length > MAX_NAMES_BYTES) throw new RangeError(`the feature names take ${this.namesV1.length} bytes, more than ${MAX_NAMES_BYTES}`);
    this.dataOffset = layoutOf(BINARY_VERSION, 0, D, this.namesV1.length, BLOCK_BYTES).dataOffset;
    this.file = new AtomicFileWriter(path);
    this.labelsPath = `${path}.${process.pid}.labels.tmp`;
    try {
      this.labelsFd = openSync(this.labelsPath, 'w+');
    } catch (error) {
      this.file.abort();
      throw new WriteError(`${path}: cannot create a file beside it (${describeFailure(error)})`, { cause: error });
    }
    trackTemporary(this.labelsPath);
  }

  get rowsWritten(): number {
    return this.rows;
  }

  /**
   * Appends `count` rows: x holds them row-major (count × D float32, finite), y their labels (0 or 1):
   * the file is version 1. Append in batches (thousands of rows): each call is one write to each file.
   */
  append(x: Float32Array, y: Uint8Array, count: number): void {
    this.takeLabelsAs('bytes');
    this.checkBatch(x, y.length, count);
    for (let i = 0; i < count; i++) if (y[i]! > 1) throw new RangeError(`row ${this.rows + i}: label ${y[i]} is not 0 or 1`);
    this.writeBatch(x, bytesOf(y, 0, count), count, 1);
  }

  /**
   * Appends `count` rows with their label cells as written (any text; blanks around a cell are
   * ignored, '1' and '1.0' are one numeric class). `lines[i]` is the source line of row i, for
   * messages. A blank cell, or a new cell past `maxClasses` classes, is a DatasetError naming the
   * label source (file, line, column; else the row of this file) and --max-classes; the writer is
   * then aborted. Append in batches, as for append().
   */
  appendCells(x: Float32Array, cells: readonly string[], count: number, lines?: ArrayLike<number>): void {
    this.takeLabelsAs('cells');
    this.checkBatch(x, cells.length, count);
    this.cells ??= new LabelCells(this.maxClasses);
    const labelCells = this.cells;
    if (this.ids.length < count) this.ids = new Uint32Array(count);
    const ids = this.ids;
    for (let i = 0; i < count; i++) {
      const cell = cells[i]!;
      let id: number;
      try {
        id = labelCells.idOf(cell);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        this.abort();
        throw this.labelError(i, lines, `label '${cell.trim()}' in column '${this.names.labelName}': ${error.message}`);
      }
      if (id < 0) {
        this.abort();
        throw this.labelError(i, lines, `column '${this.names.labelName}' (the label) is empty`);
      }
      ids[i] = id;
    }
    this.writeBatch(x, bytesOf(ids, 0, count * 4), count, 4);
  }

  /** Writes labels, CRC table and header, and renames the file into place. */
  finish(): BinaryDatasetSummary {
    if (!this.isOpen) throw new Error(`${this.path}: finish after finish or abort`);
    try {
      const settled = this.cells?.settle() ?? null;
      const isBinary = settled === null || settled.isBinary;
      const names = isBinary ? this.namesV1 : encodeNames(this.names, settled.classes);
      if (names.length > MAX_NAMES_BYTES) {
        throw new DatasetError(
          this.labelSource?.path ?? this.path,
          undefined,
          undefined,
          `the names and classes take ${names.length} bytes, more than ${MAX_NAMES_BYTES}`,
        );
      }
      const layout = layoutOf(isBinary ? BINARY_VERSION : BINARY_VERSION_CLASSES, this.rows, this.features, names.length, BLOCK_BYTES);
      if (layout.dataOffset !== this.dataOffset) this.moveFeatures(layout.dataOffset);
      this.pad(layout.dataOffset + this.rows * this.features * 4, layout.labelsOffset);
      if (settled === null) this.copyLabelBytes(layout.labelsOffset);
      else this.copyLabelCells(settled.storedOfId, layout);
      this.pad(layout.labelsOffset + this.rows * layout.labelBytes, layout.tableOffset);
      if (this.blockFill > 0) this.crcs.push(this.blockCrc);
      const table = Buffer.alloc(4 * this.crcs.length);
      this.crcs.forEach((crc, i) => {
        table.writeUInt32LE(crc, 4 * i);
      });
      this.file.write(table, layout.tableOffset);
      const header = encodeHeader(layout, names);
      this.file.write(header, 0);
      this.closeLabels();
      this.file.commit(layout.fileBytes);
      return {
        path: this.path,
        rows: this.rows,
        features: this.features,
        bytes: layout.fileBytes,
        identity: identityOf(header, table),
        classes: settled?.classes ?? BINARY_CLASSES,
        labelType: isBinary ? 'uint8' : 'uint16',
      };
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  /** Stops writing and removes the partial files; safe to call more than once. */
  abort(): void {
    this.file.abort();
    this.closeLabels();
  }

  private takeLabelsAs(input: 'bytes' | 'cells'): void {
    if (!this.isOpen) throw new Error(`${this.path}: append after finish or abort`);
    if (this.labelInput !== 'unknown' && this.labelInput !== input)
      throw new Error(`${this.path}: labels come either as 0/1 bytes (append) or as cells (appendCells), not both`);
    this.labelInput = input;
  }

  /** Invariants of a batch: lengths, the row bound, finite features (the caller checked user input). */
  private checkBatch(x: Float32Array, labels: number, count: number): void {
    const D = this.features;
    if (x.length < count * D || labels < count) throw new RangeError(`append of ${count} rows: x or the labels are too short`);
    if (this.rows + count > MAX_ROWS) throw new RangeError(`a .dpt file holds at most ${MAX_ROWS} rows`);
    for (let i = 0; i < count * D; i++) {
      if (!Number.isFinite(x[i]!)) throw new RangeError(`row ${this.rows + Math.floor(i / D)}, feature ${i % D}: ${x[i]} is not finite`);
    }
  }

  /** Features to their place, `labels` (this batch's side-file bytes, `labelBytes` a row) to the side file. */
  private writeBatch(x: Float32Array, labels: Uint8Array, count: number, labelBytes: number): void {
    const D = this.features;
    const features = bytesOf(x, 0, count * D * 4);
    try {
      this.file.write(features, this.dataOffset + this.rows * D * 4);
      this.checksum(features);
      this.writeLabels(labels, this.rows * labelBytes);
    } catch (error) {
      this.abort(); // both temporary files go, not only the one that failed
      throw error;
    }
    this.rows += count;
  }

  private labelError(i: number, lines: ArrayLike<number> | undefined, problem: string): DatasetError {
    const source = this.labelSource;
    if (source === null) return new DatasetError(this.path, undefined, undefined, `row ${this.rows + i} (counting from 0): ${problem}`);
    return new DatasetError(source.path, lines?.[i], source.column, problem);
  }

  /** Moves the features from this.dataOffset to `to` (> this.dataOffset), last chunk first since the ranges overlap. */
  private moveFeatures(to: number): void {
    const total = this.rows * this.features * 4;
    const chunk = new Uint8Array(Math.min(BLOCK_BYTES, Math.max(total, 1)));
    const fd = openSync(this.file.temporary, 'r');
    try {
      for (let end = total; end > 0; end -= chunk.length) {
        const start = Math.max(0, end - chunk.length);
        const part = chunk.subarray(0, end - start);
        readExactly(this.file.temporary, fd, part, this.dataOffset + start, 'features');
        this.file.write(part, to + start);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Copies the 0/1 label bytes of append() behind the features. */
  private copyLabelBytes(labelsOffset: number): void {
    const chunk = Buffer.alloc(Math.min(BLOCK_BYTES, Math.max(this.rows, 1)));
    for (let done = 0; done < this.rows; done += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, this.rows - done));
      readExactly(this.labelsPath, this.labelsFd, part, done, 'labels');
      this.file.write(part, labelsOffset + done);
      this.checksum(part);
    }
  }

  /** Copies the cells' ids behind the features as what the file stores for them (`storedOfId`: 0/1 or class index). */
  private copyLabelCells(storedOfId: Uint16Array, layout: Layout): void {
    const rows = Math.min(LABEL_CHUNK_ROWS, Math.max(this.rows, 1));
    const ids = new Uint32Array(rows);
    const stored = layout.labelBytes === 1 ? new Uint8Array(rows) : new Uint16Array(rows);
    for (let done = 0; done < this.rows; done += rows) {
      const count = Math.min(rows, this.rows - done);
      readExactly(this.labelsPath, this.labelsFd, bytesOf(ids, 0, count * 4), done * 4, 'labels');
      for (let i = 0; i < count; i++) stored[i] = storedOfId[ids[i]!]!;
      const part = bytesOf(stored, 0, count * layout.labelBytes);
      this.file.write(part, layout.labelsOffset + done * layout.labelBytes);
      this.checksum(part);
    }
  }

  private closeLabels(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    closeSync(this.labelsFd);
    rmSync(this.labelsPath, { force: true });
    untrackTemporary(this.labelsPath);
  }

  /** Labels go to the side file, every byte count checked. */
  private writeLabels(bytes: Uint8Array, position: number): void {
    try {
      writeFully(this.labelsFd, bytes, position);
    } catch (error) {
      throw new WriteError(`${this.path}: cannot write (${describeFailure(error)}); the previous file, if any, is unchanged`, { cause: error });
    }
  }

  /** Zero bytes over [from, to): padding is part of the checksummed content. */
  private pad(from: number, to: number): void {
    if (to <= from) return;
    const zeros = new Uint8Array(to - from);
    this.file.write(zeros, from);
    this.checksum(zeros);
  }

  /** Feeds content bytes, in file order, to the per-block CRCs. */
  private checksum(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length) {
      const take = Math.min(BLOCK_BYTES - this.blockFill, bytes.length - at);
      this.blockCrc = crc32(bytes.subarray(at, at + take), this.blockCrc);
      this.blockFill += take;
      at += take;
      if (this.blockFill === BLOCK_BYTES) {
        this.crcs.push(this.blockCrc);
        this.blockCrc = 0;
        this.blockFill = 0;
      }
    }
  }
}

/** An open .dpt file: rows and labels are read by range into buffers the caller owns. */
export class BinaryDataset {
  readonly path: string;
  readonly rows: number;
  /** D, the number of features. */
  readonly features: number;
  readonly featureNames: readonly string[];
  readonly labelName: string;
  /** The classes, class k the k-th: [0, 1] for a version-1 file, the names block's list for version 2. */
  readonly classes: ClassList;
  /** How labels are stored: 'uint8' 0/1 (version 1) or 'uint16' class indices (version 2); readLabels' target follows. */
  readonly labelType: LabelType;
  /** SHA-256 (hex) of header, names and content CRC table: equal files have equal identities. */
  readonly identity: string;
  /** Size of the file in bytes. */
  readonly bytes: number;
  private readonly fd: number;
  private readonly layout: Layout;
  private readonly table: Buffer;
  /** One bit per content block: set once the block has passed its checks (this open file's reads trust it from then on). */
  private readonly checked: Uint8Array;
  /** One whole block, for blocks a read covers only in part; allocated at the first such read. */
  private scratch: Uint8Array | null = null;
  private isOpen = true;

  private constructor(path: string, fd: number, layout: Layout, names: StoredNames, header: Buffer, table: Buffer) {
    this.path = path;
    this.fd = fd;
    this.layout = layout;
    this.rows = layout.rows;
    this.features = layout.features;
    this.featureNames = names.featureNames;
    this.labelName = names.labelName;
    this.classes = names.classes;
    this.labelType = layout.labelBytes === 1 ? 'uint8' : 'uint16';
    this.bytes = layout.fileBytes;
    this.table = table;
    this.checked = new Uint8Array(Math.ceil(layout.blocks / 8));
    this.identity = identityOf(header, table);
  }

  /**
   * Opens and checks the header, its CRC and the file's size; throws DatasetError naming file and
   * field. `role` names what gave the path (a flag, for messages); a FIFO or device is refused.
   */
  static open(path: string, role: string | null = null): BinaryDataset {
    const fd = openRegularFile(path, role);
    try {
      const fileBytes = fstatSync(fd).size;
      const fixed = Buffer.alloc(HEADER_BYTES);
      if (fileBytes < HEADER_BYTES)
        throw new DatasetError(path, undefined, undefined, `${fileBytes} bytes is too short for a .dpt header (${HEADER_BYTES} bytes)`);
      readExactly(path, fd, fixed, 0, 'header');
      const { layout, names, header } = checkHeader(path, fd, fixed, fileBytes);
      const table = Buffer.alloc(4 * layout.blocks);
      readExactly(path, fd, table, layout.tableOffset, 'checksum table');
      return new BinaryDataset(path, fd, layout, names, header, table);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /**
   * Reads rows [from, to) into `into` starting at row `intoRow` (row-major, D floats a row), with
   * one positioned read. `into` may be any Float32Array, e.g. a kernel's wasm memory view. Every
   * block the rows lie in has passed its checks before this returns (DataBlockError otherwise).
   */
  readRows(from: number, to: number, into: Float32Array, intoRow = 0): void {
    this.checkRange(from, to);
    const D = this.features;
    if ((intoRow + to - from) * D > into.length) throw new RangeError(`readRows: ${to - from} rows do not fit into ${into.length} floats at row ${intoRow}`);
    const target = bytesOf(into, intoRow * D * 4, (to - from) * D * 4);
    const at = this.layout.dataOffset + from * D * 4;
    readExactly(this.path, this.fd, target, at, 'features');
    this.checkBlocksOf(at, target);
  }

  /**
   * Reads the labels of rows [from, to) into `into` at `intoRow`; their blocks are checked as
   * readRows does. A Uint8Array takes a version-1 file's 0/1 labels; a Uint16Array takes class
   * indices of either version (a version-1 file's 0/1 widened: class k of [0, 1] is k). A version-2
   * file into a Uint8Array is a caller's bug (Error): check labelType first.
   */
  readLabels(from: number, to: number, into: Uint8Array | Uint16Array, intoRow = 0): void {
    this.checkRange(from, to);
    if (intoRow + to - from > into.length) throw new RangeError(`readLabels: ${to - from} labels do not fit into ${into.length} at ${intoRow}`);
    const count = to - from;
    const at = this.layout.labelsOffset + from * this.layout.labelBytes;
    if (into instanceof Uint8Array) {
      if (this.layout.labelBytes !== 1)
        throw new Error(`${this.path}: readLabels into a Uint8Array, but this file stores uint16 class indices (K = ${this.classes.values.length})`);
      const target = into.subarray(intoRow, intoRow + count);
      readExactly(this.path, this.fd, target, at, 'labels');
      this.checkBlocksOf(at, target);
      return;
    }
    const target = bytesOf(into, intoRow * 2, count * 2);
    if (this.layout.labelBytes === 2) {
      readExactly(this.path, this.fd, target, at, 'labels');
      this.checkBlocksOf(at, target);
      return;
    }
    // Version 1 into uint16: the bytes land in the upper half of the target and are checked there,
    // then widened in place front to back (label i's two bytes end at byte 2i + 1 ≤ count + i, the
    // byte just read, so no byte is overwritten before it is read).
    const raw = target.subarray(count);
    readExactly(this.path, this.fd, raw, at, 'labels');
    this.checkBlocksOf(at, raw);
    const widened = into.subarray(intoRow, intoRow + count);
    for (let i = 0; i < count; i++) widened[i] = raw[i]!;
  }

  /** Reads and checks every block not checked yet; throws DataBlockError naming the first bad one. */
  verify(): void {
    for (let block = 0; block < this.layout.blocks; block++) this.checkBlock(block);
  }

  /** Checks content block `block` now unless it passed already (DataBlockError); a block outside the table is a RangeError. */
  checkBlock(block: number): void {
    if (!this.isOpen) throw new Error(`${this.path}: read after close`);
    if (!(Number.isInteger(block) && block >= 0 && block < this.layout.blocks)) {
      throw new RangeError(`${this.path}: content block ${block} outside [0, ${this.layout.blocks})`);
    }
    if (!this.isChecked(block)) this.checkContent(block, this.readBlock(block));
  }

  /** Content blocks in the CRC table (1 MiB each, the last may be short). */
  get blocks(): number {
    return this.layout.blocks;
  }

  /** The file's layout (section offsets, block count). */
  get sections(): DptLayout {
    return this.layout;
  }

  /**
   * Checks the blocks that bytes [at, at + bytes.length) of the file fall in, once each: a block
   * the read covers whole is checked in `bytes`, one it covers in part is read whole first.
   */
  private checkBlocksOf(at: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const { dataOffset, tableOffset } = this.layout;
    const last = Math.floor((at + bytes.length - 1 - dataOffset) / BLOCK_BYTES);
    for (let block = Math.floor((at - dataOffset) / BLOCK_BYTES); block <= last; block++) {
      if (this.isChecked(block)) continue;
      const start = dataOffset + block * BLOCK_BYTES;
      const end = Math.min(start + BLOCK_BYTES, tableOffset);
      this.checkContent(block, start >= at && end <= at + bytes.length ? bytes.subarray(start - at, end - at) : this.readBlock(block));
    }
  }

  private isChecked(block: number): boolean {
    return (this.checked[block >>> 3]! & (1 << (block & 7))) !== 0;
  }

  /** Block `block`'s bytes, read into the scratch block (valid until the next call). */
  private readBlock(block: number): Uint8Array {
    const { dataOffset, tableOffset } = this.layout;
    const start = dataOffset + block * BLOCK_BYTES;
    this.scratch ??= new Uint8Array(Math.min(BLOCK_BYTES, tableOffset - dataOffset));
    const content = this.scratch.subarray(0, Math.min(BLOCK_BYTES, tableOffset - start));
    readExactly(this.path, this.fd, content, start, 'content');
    return content;
  }

  /**
   * Checks block `block` (its bytes in `content`): CRC-32 against the table, then every feature
   * finite and every label 0 or 1, so a file crafted with a valid CRC cannot feed Inf or NaN to a
   * gradient (the writer never writes either). Marks the block checked; throws DataBlockError.
   */
  private checkContent(block: number, content: Uint8Array): void {
    const { dataOffset, labelsOffset, labelBytes, rows, features: D } = this.layout;
    const start = dataOffset + block * BLOCK_BYTES;
    const end = start + content.length;
    if (crc32(content) !== this.table.readUInt32LE(4 * block)) {
      throw new DataBlockError(
        this.path,
        block,
        `content block ${block} of ${this.layout.blocks} (file bytes ${start} to ${end}: ${this.describeRows(start, end)}) fails its CRC-32 check (corrupt file)`,
      );
    }
    // Features in this block: floats [first, first + count) of the row-major matrix. A block starts
    // 64-byte aligned past the aligned dataOffset and `content` is a Float32Array's bytes or the
    // scratch block, so the view below is 4-byte aligned.
    const featuresEnd = Math.min(end, dataOffset + rows * D * 4);
    if (featuresEnd > start) {
      const values = new Float32Array(content.buffer, content.byteOffset, (featuresEnd - start) / 4);
      const first = (start - dataOffset) / 4;
      const i = firstNonFinite(values);
      if (i >= 0) {
        const row = Math.floor((first + i) / D);
        const j = (first + i) % D;
        throw new DataBlockError(
          this.path,
          block,
          `row ${row} (counting from 0), feature ${j} '${this.featureNames[j]}' is ${values[i]}, not a finite number (content block ${block}; a .dpt file holds finite features only)`,
        );
      }
    }
    // Labels in this block: a block starts an even number of bytes past labelsOffset (both 64-byte
    // aligned, blocks 1 MiB), so a uint16 label never straddles two blocks.
    const labelsFrom = Math.max(start, labelsOffset);
    const labelsTo = Math.min(end, labelsOffset + rows * labelBytes);
    if (labelBytes === 1) {
      for (let at = labelsFrom; at < labelsTo; at++) {
        const label = content[at - start]!;
        if (label > 1) {
          throw new DataBlockError(
            this.path,
            block,
            `the label of row ${at - labelsOffset} (counting from 0) is ${label}, not 0 or 1 (content block ${block}; corrupt file?)`,
          );
        }
      }
    } else {
      const K = this.classes.values.length;
      for (let at = labelsFrom; at < labelsTo; at += 2) {
        const label = content[at - start]! | (content[at - start + 1]! << 8);
        if (label >= K) {
          throw new DataBlockError(
            this.path,
            block,
            `the label of row ${(at - labelsOffset) / 2} (counting from 0) is class index ${label}, not below the file's ${K} classes (content block ${block}; corrupt file?)`,
          );
        }
      }
    }
    this.checked[block >>> 3]! |= 1 << (block & 7);
  }

  /** Which rows' features and labels file bytes [start, end) hold, for messages. */
  private describeRows(start: number, end: number): string {
    const { dataOffset, labelsOffset, labelBytes, rows, features: D } = this.layout;
    const parts: string[] = [];
    const featuresEnd = Math.min(end, dataOffset + rows * D * 4);
    if (featuresEnd > start)
      parts.push(`features of rows ${Math.floor((start - dataOffset) / (4 * D))} to ${Math.ceil((featuresEnd - dataOffset) / (4 * D)) - 1}`);
    const labelsFrom = Math.max(start, labelsOffset);
    const labelsTo = Math.min(end, labelsOffset + rows * labelBytes);
    if (labelsTo > labelsFrom) parts.push(`labels of rows ${(labelsFrom - labelsOffset) / labelBytes} to ${(labelsTo - labelsOffset) / labelBytes - 1}`);
    return parts.length === 0 ? 'padding only' : parts.join(', ');
  }

  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    closeSync(this.fd);
  }

  private checkRange(from: number, to: number): void {
    if (!this.isOpen) throw new Error(`${this.path}: read after close`);
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= this.rows)) {
      throw new RangeError(`${this.path}: rows [${from}, ${to}) outside [0, ${this.rows})`);
    }
  }
}

/**
 * The layout the fixed 64 header bytes describe, every field checked as opening does (DatasetError
 * naming `path` and the field): for a reader that has only those bytes yet (a remote file).
 */
export function layoutOfHeader(path: string, fixed: Buffer): DptLayout {
  const bad = (field: string, problem: string): never => {
    throw new DatasetError(path, undefined, undefined, `header field '${field}': ${problem}`);
  };
  if (!fixed.subarray(0, 8).equals(BINARY_MAGIC)) bad('magic', 'not a .dpt file (the first 8 bytes are not \\x89DPT\\r\\n\\x1a\\n)');
  const version = fixed.readUInt32LE(8);
  // Version 3 is the sparse file of shared/sparse-dataset.ts (issue #13), which imports this module.
  if (version === 3) bad('version', 'this is a sparse .dpt file (version 3: CSR rows), not a dense one (version 1 or 2); read it as sparse data');
  if (version !== BINARY_VERSION && version !== BINARY_VERSION_CLASSES) {
    bad('version', `expected ${BINARY_VERSION} or ${BINARY_VERSION_CLASSES}, found ${version} (written by another dpt version?)`);
  }
  if (fixed.readUInt8(12) !== FLOAT32) bad('featureType', `expected 1 (float32), found ${fixed.readUInt8(12)}`);
  const labelType = version === BINARY_VERSION ? UINT8 : UINT16;
  if (fixed.readUInt8(13) !== labelType) {
    bad('labelType', `expected ${labelType} (${labelType === UINT8 ? 'uint8' : 'uint16'}) in a version-${version} file, found ${fixed.readUInt8(13)}`);
  }
  const rows = Number(fixed.readBigUInt64LE(16));
  if (rows < 1 || rows > MAX_ROWS) bad('rows', `expected 1 to ${MAX_ROWS}, found ${rows}`);
  const features = fixed.readUInt32LE(24);
  if (features < 1 || features > MAX_FEATURES) bad('features', `expected 1 to ${MAX_FEATURES}, found ${features}`);
  const namesBytes = fixed.readUInt32LE(28);
  if (namesBytes > MAX_NAMES_BYTES) bad('namesBytes', `${namesBytes} exceeds ${MAX_NAMES_BYTES}`);
  const blockBytes = fixed.readUInt32LE(56);
  if (blockBytes !== BLOCK_BYTES) bad('blockBytes', `expected ${BLOCK_BYTES}, found ${blockBytes}`);
  const layout = layoutOf(version === BINARY_VERSION ? BINARY_VERSION : BINARY_VERSION_CLASSES, rows, features, namesBytes, BLOCK_BYTES);
  for (const [field, at, expected] of [
    ['dataOffset', 32, layout.dataOffset],
    ['labelsOffset', 40, layout.labelsOffset],
    ['tableOffset', 48, layout.tableOffset],
  ] as const) {
    const found = Number(fixed.readBigUInt64LE(at));
    if (found !== expected) bad(field, `expected ${expected} for ${rows} rows × ${features} features, found ${found}`);
  }
  return layout;
}

function checkHeader(path: string, fd: number, fixed: Buffer, fileBytes: number): { layout: Layout; names: StoredNames; header: Buffer } {
  const bad = (field: string, problem: string): never => {
    throw new DatasetError(path, undefined, undefined, `header field '${field}': ${problem}`);
  };
  const layout = layoutOfHeader(path, fixed);
  const { rows, features, namesBytes } = layout;
  if (fileBytes < layout.dataOffset) bad('namesBytes', `the file (${fileBytes} bytes) ends inside the names block`);
  const header = Buffer.alloc(layout.dataOffset);
  fixed.copy(header);
  readExactly(path, fd, header.subarray(HEADER_BYTES), HEADER_BYTES, 'names block');
  const crc = fixed.readUInt32LE(60);
  if (headerCrc(header, namesBytes) !== crc) bad('headerCrc', 'the header or the names block is corrupt (CRC-32 mismatch)');
  if (fileBytes !== layout.fileBytes) {
    bad(
      'rows',
      `${rows} rows × ${features} features need a file of ${layout.fileBytes} bytes, found ${fileBytes} (${fileBytes < layout.fileBytes ? 'truncated' : 'trailing bytes'})`,
    );
  }
  return { layout, names: parseNames(path, header.subarray(HEADER_BYTES, HEADER_BYTES + namesBytes), features, layout.version), header };
}

/** A names block as read: the names, and the classes (version 2's list, [0, 1] for version 1). */
interface StoredNames extends BinaryDatasetNames {
  readonly classes: ClassList;
}

function parseNames(path: string, bytes: Buffer, features: number, version: 1 | 2): StoredNames {
  const bad = (problem: string): never => {
    throw new DatasetError(path, undefined, undefined, `header field 'names': ${problem}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bad('not valid JSON');
  }
  const names = value as { features?: unknown; label?: unknown; classes?: unknown }; // checked just below
  if (typeof value !== 'object' || value === null || !Array.isArray(names.features) || typeof names.label !== 'string') {
    return bad('expected {"features": [names], "label": name}');
  }
  const featureNames: unknown[] = names.features;
  if (featureNames.length !== features) bad(`${featureNames.length} feature names for ${features} features`);
  if (!featureNames.every((name): name is string => typeof name === 'string')) bad('a feature name is not a string');
  let classes = BINARY_CLASSES;
  if (version === BINARY_VERSION_CLASSES) {
    const checked = checkClassList(names.classes);
    if (typeof checked === 'string') return bad(`classes: ${checked}`);
    classes = checked;
  }
  return { featureNames: featureNames as string[], labelName: names.label, classes }; // every element checked above
}

/**
 * Reads a whole .dpt file with 0/1 labels into `allocate`d storage (default: plain typed arrays;
 * e.g. kernel.allocateRows). A version-2 file (classes other than 0/1) is a DatasetError naming the
 * file: use loadBinaryDatasetClasses for class indices.
 */
export function loadBinaryDataset(
  path: string,
  allocate: (rows: number, D: number) => { x: Float32Array; y: Uint8Array } = (rows, D) => ({ x: new Float32Array(rows * D), y: new Uint8Array(rows) }),
  role: string | null = null,
): { dataset: BinaryDataset; x: Float32Array; y: Uint8Array } {
  const dataset = BinaryDataset.open(path, role);
  try {
    if (dataset.labelType !== 'uint8') {
      throw new DatasetError(path, undefined, undefined, `its label '${dataset.labelName}' holds ${dataset.classes.values.length} classes, not 0 and 1`);
    }
    const { x, y } = allocate(dataset.rows, dataset.features);
    dataset.readRows(0, dataset.rows, x);
    dataset.readLabels(0, dataset.rows, y);
    return { dataset, x, y };
  } finally {
    dataset.close();
  }
}

/** Reads a whole .dpt file of either version: features, and each row's class index into dataset.classes (a version-1 file's 0/1 as indices 0/1). */
export function loadBinaryDatasetClasses(path: string, role: string | null = null): { dataset: BinaryDataset; x: Float32Array; y: Uint16Array } {
  const dataset = BinaryDataset.open(path, role);
  try {
    const x = new Float32Array(dataset.rows * dataset.features);
    const y = new Uint16Array(dataset.rows);
    dataset.readRows(0, dataset.rows, x);
    dataset.readLabels(0, dataset.rows, y);
    return { dataset, x, y };
  } finally {
    dataset.close();
  }
}

/** Index of the first NaN or ±Infinity in `values`, or −1 (natively where native/passes.c is built). */
export function firstNonFinite(values: Float32Array): number {
  const addon = nativePasses();
  if (addon !== undefined) return addon.firstNonFinite(values);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

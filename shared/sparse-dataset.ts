// The sparse dataset format (issue #13): CSR rows in a checked file of the .dpt family, written by
// streaming conversion with bounded memory and read whole into SparseRows after every check.
// Exports: SPARSE_VERSION, SparseDatasetWriter, SparseDatasetSummary, SparseDatasetInfo,
// SparseDataset, readSparseDataset, readSparseHeader, readSparseLabels, isSparseDptFile,
// SPARSE_HEADER_BYTES, SparseLayout, sparseLayoutOfHeader, sparseIdentity (the last four for a
// download that checks a remote file's header before fetching the rest: worker/remote-sparse-data.ts).
//
// Layout (little-endian; every section starts at a multiple of 64 bytes, zero padding between):
//   0   magic "\x89DPT\r\n\x1a\n" (as the dense .dpt)   8  u32 version 3 (dense files are 1 and 2)
//   12  u8 value type (1 = float32)    13  u8 label type (1 = uint8 class index of 2 classes, 2 = uint16 class index)   14  u16 0
//   16  u64 rows                       24  u32 dims D                    28  u32 bytes of the meta block
//   32  u64 nnz                        40  u64 rowStartOffset            48  u64 indicesOffset
//   56  u64 valuesOffset               64  u64 labelsOffset              72  u64 tableOffset
//   80  u32 blockBytes                 84  40 bytes 0                    124 u32 CRC-32 of bytes [0, 124) and of the meta block
//   128 meta block: UTF-8 JSON {"label": name, "classes": [K values], "hashing": FeatureHashing | null}
//   rowStartOffset  (rows + 1) × uint32: row i's entries are [rowStart[i], rowStart[i + 1]); rowStart[0] = 0, rowStart[rows] = nnz
//   indicesOffset   nnz × uint32: 0-based feature indices, strictly increasing within a row, below D
//   valuesOffset    nnz × float32: finite and non-zero
//   labelsOffset    rows × uint8 (label type 1: class index 0 or 1 of the two classes listed) or rows × uint16 (class index < K)
//   tableOffset     one u32 CRC-32 per blockBytes block of [rowStartOffset, tableOffset): the last may be short
// With label type 1 the classes are [0, 1] or [-1, 1] (LIBSVM's ±1 labels), and the byte is the
// class index: 1 is the positive class of the binary model. A dense reader refuses version 3 and
// this reader refuses versions 1 and 2, each naming the other kind.
// The identity is the SHA-256 of the header, the meta block and the CRC table, as for a dense file.
// Reading checks the header, the exact size, every block's CRC and every invariant above before it
// returns a row: a worker trains only on rows that are what the converter wrote.

import { constants as bufferConstants } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, rmSync } from 'node:fs';
import { endianness } from 'node:os';
import { crc32 } from 'node:zlib';
import { AtomicFileWriter, describeFailure, trackTemporary, untrackTemporary, writeFully } from './atomic-file.js';
import { BINARY_MAGIC, BINARY_VERSION, BINARY_VERSION_CLASSES } from './binary-dataset.js';
import { type ClassList, DEFAULT_MAX_CLASSES } from './classes.js';
import { ConfigError, DatasetError, WriteError } from './errors.js';
import { checkFeatureHashing, type FeatureHashing } from './feature-hashing.js';
import { BINARY_CLASSES, checkClassList, LabelCells, MAX_DPT_CLASSES, tooManyClassesProblem } from './label-cells.js';
import type { LabelArray } from './model-kernel.js';
import { openRegularFile } from './regular-file.js';
import type { SparseRows } from './sparse-rows.js';

export const SPARSE_VERSION = 3;
const HEADER_BYTES = 128;
/** Bytes of the fixed header: the layout (and so the file's size) follows from them (sparseLayoutOfHeader). */
export const SPARSE_HEADER_BYTES = HEADER_BYTES;
const CRC_AT = 124;
const ALIGN = 64;
/** Bytes per content CRC block, as the dense format (4 bytes of table per MiB). */
const BLOCK_BYTES = 1 << 20;
const FLOAT32 = 1;
const UINT8 = 1;
const UINT16 = 2;
const MAX_ROWS = 2 ** 32 - 1;
/** D and nnz are bounded by what a uint32 index and a uint32 row offset can hold. */
const MAX_DIMS = 2 ** 32 - 1;
const MAX_NNZ = 2 ** 32 - 1;
const MAX_META_BYTES = 64 << 20;
/** The largest buffer this Node allocates (4 GiB on Node 20, 64-bit): the bound on the rows of a file read whole. */
const MAX_LENGTH = bufferConstants.MAX_LENGTH;
/** One read or write call moves at most this many bytes (the kernel caps a call near 2 GiB). */
const MAX_IO_BYTES = 1 << 30;
/** Elements buffered per side file before a write (1 MiB of uint32). */
const SIDE_ELEMENTS = 1 << 18;
/** The classes of a LIBSVM file labelled −1/+1: class index 1 is +1, the positive class. */
const SIGNED_CLASSES: ClassList = Object.freeze({ isNumeric: true, values: Object.freeze([-1, 1]) });

/** Where a sparse file's sections lie (byte offsets). */
export interface SparseLayout {
  readonly labelBytes: 1 | 2;
  readonly rows: number;
  readonly dims: number;
  readonly nnz: number;
  readonly metaBytes: number;
  readonly rowStartOffset: number;
  readonly indicesOffset: number;
  readonly valuesOffset: number;
  readonly labelsOffset: number;
  readonly tableOffset: number;
  readonly blocks: number;
  readonly fileBytes: number;
}

function align(offset: number): number {
  return Math.ceil(offset / ALIGN) * ALIGN;
}

function layoutOf(labelBytes: 1 | 2, rows: number, dims: number, nnz: number, metaBytes: number): SparseLayout {
  const rowStartOffset = align(HEADER_BYTES + metaBytes);
  const indicesOffset = align(rowStartOffset + 4 * (rows + 1));
  const valuesOffset = align(indicesOffset + 4 * nnz);
  const labelsOffset = align(valuesOffset + 4 * nnz);
  const tableOffset = align(labelsOffset + labelBytes * rows);
  const blocks = Math.ceil((tableOffset - rowStartOffset) / BLOCK_BYTES);
  return {
    labelBytes,
    rows,
    dims,
    nnz,
    metaBytes,
    rowStartOffset,
    indicesOffset,
    valuesOffset,
    labelsOffset,
    tableOffset,
    blocks,
    fileBytes: tableOffset + 4 * blocks,
  };
}

function encodeHeader(layout: SparseLayout, meta: Buffer): Buffer {
  const header = Buffer.alloc(layout.rowStartOffset);
  BINARY_MAGIC.copy(header, 0);
  header.writeUInt32LE(SPARSE_VERSION, 8);
  header.writeUInt8(FLOAT32, 12);
  header.writeUInt8(layout.labelBytes === 1 ? UINT8 : UINT16, 13);
  header.writeBigUInt64LE(BigInt(layout.rows), 16);
  header.writeUInt32LE(layout.dims, 24);
  header.writeUInt32LE(layout.metaBytes, 28);
  header.writeBigUInt64LE(BigInt(layout.nnz), 32);
  header.writeBigUInt64LE(BigInt(layout.rowStartOffset), 40);
  header.writeBigUInt64LE(BigInt(layout.indicesOffset), 48);
  header.writeBigUInt64LE(BigInt(layout.valuesOffset), 56);
  header.writeBigUInt64LE(BigInt(layout.labelsOffset), 64);
  header.writeBigUInt64LE(BigInt(layout.tableOffset), 72);
  header.writeUInt32LE(BLOCK_BYTES, 80);
  meta.copy(header, HEADER_BYTES);
  header.writeUInt32LE(headerCrc(header, layout.metaBytes), CRC_AT);
  return header;
}

function headerCrc(header: Buffer, metaBytes: number): number {
  return crc32(header.subarray(HEADER_BYTES, HEADER_BYTES + metaBytes), crc32(header.subarray(0, CRC_AT)));
}

/** The identity of a sparse file: SHA-256 (hex) of its header with the meta block (rowStartOffset bytes) and its CRC table. */
export function sparseIdentity(header: Uint8Array, table: Uint8Array): string {
  return identityOf(header, table);
}

function identityOf(header: Uint8Array, table: Uint8Array): string {
  return createHash('sha256').update(header).update(table).digest('hex');
}

/** The meta block: the label's name, its classes, and the hashing that made the features (null: LIBSVM). */
interface SparseMeta {
  readonly labelName: string;
  readonly classes: ClassList;
  readonly hashing: FeatureHashing | null;
}

function encodeMeta(meta: SparseMeta): Buffer {
  return Buffer.from(JSON.stringify({ label: meta.labelName, classes: meta.classes.values, hashing: meta.hashing }), 'utf8');
}

/** What a finished file holds. */
export interface SparseDatasetSummary {
  readonly path: string;
  readonly rows: number;
  readonly dims: number;
  readonly nnz: number;
  readonly bytes: number;
  readonly identity: string;
  readonly classes: ClassList;
  readonly labelType: 'uint8' | 'uint16';
}

export interface SparseDatasetWriterOptions {
  readonly labelName: string;
  /** A fixed D (2^B buckets for hashed features), or null: D is the largest index written + 1. */
  readonly dims: number | null;
  readonly hashing: FeatureHashing | null;
  /** Most distinct label cells (default DEFAULT_MAX_CLASSES, at most 65,535). */
  readonly maxClasses?: number | undefined;
  /** Where the rows come from, for messages: the source file and its 1-based label column (LIBSVM: 1). */
  readonly labelSource: { readonly path: string; readonly column: number };
  /** Labels exactly within {−1, +1} are the binary classes [−1, 1] (LIBSVM's convention); else any other values are classes. */
  readonly isSignedBinary?: boolean | undefined;
}

/** A side file: uint32 elements buffered, then appended; removed on finish or abort. */
class SideFile {
  readonly path: string;
  readonly fd: number;
  private readonly buffer = new Uint32Array(SIDE_ELEMENTS);
  private filled = 0;
  /** Elements written to the file so far. */
  private written = 0;
  private isOpen = true;

  constructor(path: string, owner: string) {
    this.path = path;
    try {
      this.fd = openSync(path, 'w+');
    } catch (error) {
      throw new WriteError(`${owner}: cannot create a file beside it (${describeFailure(error)})`, { cause: error });
    }
    trackTemporary(path);
  }

  get length(): number {
    return this.written + this.filled;
  }

  /** Appends one element: the raw bits of a uint32 (or of a float32, through a shared view). */
  push(bits: number): void {
    this.buffer[this.filled++] = bits;
    if (this.filled === SIDE_ELEMENTS) this.flush();
  }

  flush(): void {
    if (this.filled === 0) return;
    writeFully(this.fd, new Uint8Array(this.buffer.buffer, 0, this.filled * 4), this.written * 4);
    this.written += this.filled;
    this.filled = 0;
  }

  /** Reads bytes [from, from + target.length) of the flushed file into target. */
  read(target: Uint8Array, from: number): void {
    readExactly(this.path, this.fd, target, from, 'a temporary section');
  }

  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    closeSync(this.fd);
    rmSync(this.path, { force: true });
    untrackTemporary(this.path);
  }
}

/**
 * Writes a sparse file with bounded memory: rows are appended one at a time; their offsets,
 * indices, values and label cell ids go to four side files beside the output (buffered 1 MiB
 * each), which finish() copies into place behind the header once rows, D, nnz and the classes are
 * known, checksumming as it goes. The file appears under its name only when finish() succeeds
 * (shared/atomic-file.ts); any failure removes every temporary file.
 */
export class SparseDatasetWriter {
  readonly path: string;
  private readonly options: SparseDatasetWriterOptions;
  private readonly cells: LabelCells;
  private readonly rowEnds: SideFile;
  private readonly indices: SideFile;
  private readonly values: SideFile;
  private readonly labelIds: SideFile;
  /** One float32 seen as its uint32 bits, to push values through a SideFile. */
  private readonly valueBits = new Float32Array(1);
  private readonly valueBitsView = new Uint32Array(this.valueBits.buffer);
  private rows = 0;
  private nnz = 0;
  /** Largest 0-based index written + 1. */
  private indexBound = 0;
  private isOpen = true;

  /** Throws ConfigError for `maxClasses` outside 1 to 65,535, WriteError when the files cannot be created. */
  constructor(path: string, options: SparseDatasetWriterOptions) {
    if (endianness() !== 'LE') throw new Error('the .dpt format is little-endian; this machine is not');
    const maxClasses = options.maxClasses ?? DEFAULT_MAX_CLASSES;
    if (!(Number.isInteger(maxClasses) && maxClasses >= 1 && maxClasses <= MAX_DPT_CLASSES)) {
      throw new ConfigError(
        `--max-classes must be an integer from 1 to ${MAX_DPT_CLASSES.toLocaleString('en-US')} (a class index is a uint16), got ${maxClasses}`,
      );
    }
    if (options.dims !== null && !(Number.isInteger(options.dims) && options.dims >= 1 && options.dims <= MAX_DIMS)) {
      throw new RangeError(`a sparse .dpt file holds 1 to ${MAX_DIMS} features, got ${options.dims}`);
    }
    this.path = path;
    this.options = options;
    this.cells = new LabelCells(maxClasses);
    const sides: SideFile[] = [];
    try {
      for (const name of ['rows', 'indices', 'values', 'labels']) sides.push(new SideFile(`${path}.${process.pid}.${name}.tmp`, path));
    } catch (error) {
      for (const side of sides) side.close();
      throw error;
    }
    [this.rowEnds, this.indices, this.values, this.labelIds] = sides as [SideFile, SideFile, SideFile, SideFile];
  }

  get rowsWritten(): number {
    return this.rows;
  }

  get entriesWritten(): number {
    return this.nnz;
  }

  /**
   * Appends one row: `count` entries of indices (0-based, strictly increasing) and values (finite,
   * non-zero), the row's label cell as written, and its 1-based source `line` for messages. A
   * label past --max-classes is a DatasetError naming source, line and label column; the writer is
   * then aborted. The parsers guarantee the entry invariants; a breach is a bug (RangeError).
   */
  appendRow(indices: Uint32Array, values: Float32Array, count: number, labelCell: string, line: number): void {
    if (!this.isOpen) throw new Error(`${this.path}: append after finish or abort`);
    let id: number;
    try {
      id = this.cells.idOf(labelCell);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      this.abort();
      throw new DatasetError(this.options.labelSource.path, line, this.options.labelSource.column, `label '${labelCell.trim()}': ${error.message}`);
    }
    if (id < 0) {
      this.abort();
      throw new DatasetError(this.options.labelSource.path, line, this.options.labelSource.column, `the label of column '${this.options.labelName}' is empty`);
    }
    if (this.rows + 1 > MAX_ROWS) throw new RangeError(`a sparse .dpt file holds at most ${MAX_ROWS} rows`);
    if (this.nnz + count > MAX_NNZ) {
      this.abort();
      throw new DatasetError(
        this.options.labelSource.path,
        line,
        undefined,
        `more than ${MAX_NNZ} non-zero entries in all (the most a sparse .dpt file holds)`,
      );
    }
    const dims = this.options.dims;
    let previous = -1;
    try {
      for (let k = 0; k < count; k++) {
        const j = indices[k]!;
        const v = values[k]!;
        if (!(j > previous) || (dims !== null && j >= dims) || v === 0 || !Number.isFinite(v)) {
          throw new RangeError(
            `${this.path}: row ${this.rows}, entry ${k}: index ${j} after ${previous}, value ${v} (indices increase, values are finite and non-zero)`,
          );
        }
        previous = j;
        this.indices.push(j);
        this.valueBits[0] = v;
        this.values.push(this.valueBitsView[0]!);
      }
      this.nnz += count;
      if (previous + 1 > this.indexBound) this.indexBound = previous + 1;
      this.rowEnds.push(this.nnz);
      this.labelIds.push(id);
    } catch (error) {
      this.abort();
      throw error instanceof RangeError ? error : new WriteError(`${this.path}: cannot write (${describeFailure(error)})`, { cause: error });
    }
    this.rows++;
  }

  /**
   * Assembles the file (header, sections, CRC table) and renames it into place. `dimsAtLeast`: a
   * lower bound on D when it is not fixed (LIBSVM: the largest index, counting entries of value 0).
   */
  finish(dimsAtLeast = 0): SparseDatasetSummary {
    if (!this.isOpen) throw new Error(`${this.path}: finish after finish or abort`);
    const source = this.options.labelSource.path;
    let file: AtomicFileWriter | null = null;
    try {
      if (this.rows === 0) throw new DatasetError(source, undefined, undefined, 'the file has no data rows');
      const dims = this.options.dims ?? Math.max(this.indexBound, dimsAtLeast);
      if (dims === 0) throw new DatasetError(source, undefined, undefined, 'no row has a feature (every entry is absent or 0): D would be 0');
      const { classes, storedOfId, labelBytes } = this.settleLabels();
      const meta = encodeMeta({ labelName: this.options.labelName, classes, hashing: this.options.hashing });
      if (meta.length > MAX_META_BYTES)
        throw new DatasetError(source, undefined, undefined, `the label classes take ${meta.length} bytes, more than ${MAX_META_BYTES}`);
      for (const side of [this.rowEnds, this.indices, this.values, this.labelIds]) side.flush();
      const layout = layoutOf(labelBytes, this.rows, dims, this.nnz, meta.length);
      file = new AtomicFileWriter(this.path);
      const out = new ChecksummedOutput(file, layout.rowStartOffset);
      out.write(new Uint8Array(4)); // rowStart[0] = 0
      this.copySide(this.rowEnds, out);
      out.padTo(layout.indicesOffset);
      this.copySide(this.indices, out);
      out.padTo(layout.valuesOffset);
      this.copySide(this.values, out);
      out.padTo(layout.labelsOffset);
      this.copyLabels(storedOfId, labelBytes, out);
      out.padTo(layout.tableOffset);
      const table = out.table();
      file.write(table, layout.tableOffset);
      const header = encodeHeader(layout, meta);
      file.write(header, 0);
      this.closeSides();
      file.commit(layout.fileBytes);
      return {
        path: this.path,
        rows: this.rows,
        dims,
        nnz: this.nnz,
        bytes: layout.fileBytes,
        identity: identityOf(header, table),
        classes,
        labelType: labelBytes === 1 ? 'uint8' : 'uint16',
      };
    } catch (error) {
      file?.abort();
      this.abort();
      throw error;
    }
  }

  /** Stops writing and removes every temporary file; safe to call more than once. */
  abort(): void {
    this.closeSides();
  }

  /** The classes, what each first-seen cell id is stored as, and the label width. */
  private settleLabels(): { classes: ClassList; storedOfId: Uint16Array; labelBytes: 1 | 2 } {
    const settled = this.cells.settle();
    if (settled.isBinary) return { classes: BINARY_CLASSES, storedOfId: settled.storedOfId, labelBytes: 1 };
    const { classes } = settled;
    if (this.options.isSignedBinary === true && classes.isNumeric && classes.values.every((value) => value === -1 || value === 1)) {
      // Class k of `classes` is −1 or +1; stored as the index into [−1, 1].
      const storedOfId = settled.storedOfId.map((k) => (classes.values[k] === 1 ? 1 : 0));
      return { classes: SIGNED_CLASSES, storedOfId, labelBytes: 1 };
    }
    return { classes, storedOfId: settled.storedOfId, labelBytes: 2 };
  }

  private copySide(side: SideFile, out: ChecksummedOutput): void {
    const total = side.length * 4;
    const chunk = new Uint8Array(Math.min(BLOCK_BYTES, Math.max(total, 1)));
    for (let done = 0; done < total; done += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, total - done));
      side.read(part, done);
      out.write(part);
    }
  }

  private copyLabels(storedOfId: Uint16Array, labelBytes: 1 | 2, out: ChecksummedOutput): void {
    const chunkRows = Math.min(SIDE_ELEMENTS, Math.max(this.rows, 1));
    const ids = new Uint32Array(chunkRows);
    const stored = labelBytes === 1 ? new Uint8Array(chunkRows) : new Uint16Array(chunkRows);
    for (let done = 0; done < this.rows; done += chunkRows) {
      const count = Math.min(chunkRows, this.rows - done);
      this.labelIds.read(new Uint8Array(ids.buffer, 0, count * 4), done * 4);
      for (let i = 0; i < count; i++) stored[i] = storedOfId[ids[i]!]!;
      out.write(new Uint8Array(stored.buffer, 0, count * labelBytes));
    }
  }

  private closeSides(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    for (const side of [this.rowEnds, this.indices, this.values, this.labelIds]) side.close();
  }
}

/** Writes content bytes in file order from `start`, keeping the CRC-32 of each BLOCK_BYTES block. */
class ChecksummedOutput {
  private readonly file: AtomicFileWriter;
  private position: number;
  private blockCrc = 0;
  private blockFill = 0;
  private readonly crcs: number[] = [];

  constructor(file: AtomicFileWriter, start: number) {
    this.file = file;
    this.position = start;
  }

  write(bytes: Uint8Array): void {
    this.file.write(bytes, this.position);
    this.position += bytes.length;
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

  /** Zero bytes up to `offset`: padding is part of the checksummed content. */
  padTo(offset: number): void {
    if (offset > this.position) this.write(new Uint8Array(offset - this.position));
  }

  /** The CRC table (call once, after the last byte). */
  table(): Buffer {
    if (this.blockFill > 0) this.crcs.push(this.blockCrc);
    const table = Buffer.alloc(4 * this.crcs.length);
    this.crcs.forEach((crc, i) => {
      table.writeUInt32LE(crc, 4 * i);
    });
    return table;
  }
}

/** Reads exactly `target.length` bytes at `position`; a short file is a DatasetError. */
function readExactly(path: string, fd: number, target: Uint8Array, position: number, what: string): void {
  let done = 0;
  while (done < target.length) {
    const count = readSync(fd, target, done, Math.min(target.length - done, MAX_IO_BYTES), position + done);
    if (count === 0) throw new DatasetError(path, undefined, undefined, `the file ends inside ${what} (truncated?)`);
    done += count;
  }
}

/** What the header of a sparse file says (readSparseHeader): no row is read. */
export interface SparseDatasetInfo {
  readonly path: string;
  readonly rows: number;
  readonly dims: number;
  readonly nnz: number;
  readonly labelName: string;
  /** The classes, class k the k-th ([0, 1] or [−1, 1] when labelType is 'uint8'). */
  readonly classes: ClassList;
  readonly labelType: 'uint8' | 'uint16';
  /** The hashing that made the features (a hashed CSV), or null (LIBSVM). */
  readonly hashing: FeatureHashing | null;
  /** SHA-256 (hex) of header, meta block and CRC table (see the file header). */
  readonly identity: string;
  readonly bytes: number;
}

/** A whole sparse file in memory: its rows (one buffer, views per section) and what its header says. */
export type SparseDataset = SparseRows & SparseDatasetInfo;

/**
 * Whether the file at `path` starts as a sparse .dpt does (magic and version 3); false for anything
 * unreadable or not a regular file (the open that follows names the problem). Opens without
 * blocking: a FIFO given as a data file must be refused, not waited on.
 */
export function isSparseDptFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!fstatSync(fd).isFile()) return false;
    const fixed = Buffer.alloc(12);
    return readSync(fd, fixed, 0, 12, 0) === 12 && fixed.subarray(0, 8).equals(BINARY_MAGIC) && fixed.readUInt32LE(8) === SPARSE_VERSION;
  } finally {
    closeSync(fd);
  }
}

/** Opens `path` and checks its header, meta block, size and CRC table's size; the caller closes fd. */
function openChecked(path: string, role: string | null): { fd: number; layout: SparseLayout; meta: SparseMeta; header: Buffer; table: Buffer } {
  const fd = openRegularFile(path, role);
  try {
    const bad = (field: string, problem: string): never => {
      throw new DatasetError(path, undefined, undefined, `header field '${field}': ${problem}`);
    };
    const fileBytes = fstatSync(fd).size;
    if (fileBytes < HEADER_BYTES)
      throw new DatasetError(path, undefined, undefined, `${fileBytes} bytes is too short for a sparse .dpt header (${HEADER_BYTES} bytes)`);
    const fixed = Buffer.alloc(HEADER_BYTES);
    readExactly(path, fd, fixed, 0, 'the header');
    const layout = sparseLayoutOfHeader(fixed, path);
    if (fileBytes < layout.rowStartOffset) bad('metaBytes', `the file (${fileBytes} bytes) ends inside the meta block`);
    const header = Buffer.alloc(layout.rowStartOffset);
    fixed.copy(header);
    readExactly(path, fd, header.subarray(HEADER_BYTES), HEADER_BYTES, 'the meta block');
    if (headerCrc(header, layout.metaBytes) !== fixed.readUInt32LE(CRC_AT)) bad('headerCrc', 'the header or the meta block is corrupt (CRC-32 mismatch)');
    if (fileBytes !== layout.fileBytes) {
      bad(
        'rows',
        `${layout.rows} rows and ${layout.nnz} entries need a file of ${layout.fileBytes} bytes, found ${fileBytes} (${fileBytes < layout.fileBytes ? 'truncated' : 'trailing bytes'})`,
      );
    }
    const meta = parseMeta(path, header.subarray(HEADER_BYTES, HEADER_BYTES + layout.metaBytes), layout.labelBytes);
    const table = Buffer.alloc(4 * layout.blocks);
    readExactly(path, fd, table, layout.tableOffset, 'the checksum table');
    return { fd, layout, meta, header, table };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * The layout the fixed header `bytes` (SPARSE_HEADER_BYTES of them) describes, every field checked
 * (magic, version, types, bounds, offsets); the header's CRC covers the meta block too and is
 * checked once that is read. DatasetError naming `path` (a file or a URL) and the field otherwise.
 */
export function sparseLayoutOfHeader(bytes: Uint8Array, path: string): SparseLayout {
  const fixed = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const bad = (field: string, problem: string): never => {
    throw new DatasetError(path, undefined, undefined, `header field '${field}': ${problem}`);
  };
  if (!fixed.subarray(0, 8).equals(BINARY_MAGIC)) bad('magic', 'not a .dpt file (the first 8 bytes are not \\x89DPT\\r\\n\\x1a\\n)');
  const version = fixed.readUInt32LE(8);
  if (version === BINARY_VERSION || version === BINARY_VERSION_CLASSES) {
    bad(
      'version',
      `this is a dense .dpt file (version ${version}), not a sparse one (version ${SPARSE_VERSION}); convert LIBSVM or hashed CSV with 'dpt data convert'`,
    );
  }
  if (version !== SPARSE_VERSION) bad('version', `expected ${SPARSE_VERSION} (sparse), found ${version} (written by another dpt version?)`);
  if (fixed.readUInt8(12) !== FLOAT32) bad('valueType', `expected 1 (float32), found ${fixed.readUInt8(12)}`);
  const labelType = fixed.readUInt8(13);
  if (labelType !== UINT8 && labelType !== UINT16) bad('labelType', `expected 1 (uint8) or 2 (uint16), found ${labelType}`);
  const rows = Number(fixed.readBigUInt64LE(16));
  if (rows < 1 || rows > MAX_ROWS) bad('rows', `expected 1 to ${MAX_ROWS}, found ${rows}`);
  const dims = fixed.readUInt32LE(24);
  if (dims < 1) bad('dims', `expected 1 to ${MAX_DIMS}, found ${dims}`);
  const metaBytes = fixed.readUInt32LE(28);
  if (metaBytes > MAX_META_BYTES) bad('metaBytes', `${metaBytes} exceeds ${MAX_META_BYTES}`);
  const nnz = Number(fixed.readBigUInt64LE(32));
  if (nnz > MAX_NNZ) bad('nnz', `expected at most ${MAX_NNZ}, found ${nnz}`);
  if (fixed.readUInt32LE(80) !== BLOCK_BYTES) bad('blockBytes', `expected ${BLOCK_BYTES}, found ${fixed.readUInt32LE(80)}`);
  const layout = layoutOf(labelType === UINT8 ? 1 : 2, rows, dims, nnz, metaBytes);
  for (const [field, at, expected] of [
    ['rowStartOffset', 40, layout.rowStartOffset],
    ['indicesOffset', 48, layout.indicesOffset],
    ['valuesOffset', 56, layout.valuesOffset],
    ['labelsOffset', 64, layout.labelsOffset],
    ['tableOffset', 72, layout.tableOffset],
  ] as const) {
    const found = Number(fixed.readBigUInt64LE(at));
    if (found !== expected) bad(field, `expected ${expected} for ${rows} rows and ${nnz} entries, found ${found}`);
  }
  return layout;
}

function parseMeta(path: string, bytes: Buffer, labelBytes: 1 | 2): SparseMeta {
  const bad = (problem: string): never => {
    throw new DatasetError(path, undefined, undefined, `header field 'meta': ${problem}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bad('not valid JSON');
  }
  if (typeof value !== 'object' || value === null) return bad('expected {"label", "classes", "hashing"}');
  const meta = value as Record<string, unknown>;
  if (typeof meta.label !== 'string') bad('label: expected a string');
  const classes = checkClassList(meta.classes);
  if (typeof classes === 'string') return bad(`classes: ${classes}`);
  if (
    labelBytes === 1 &&
    !(classes.isNumeric && classes.values.length === 2 && (classes.values[0] === 0 || classes.values[0] === -1) && classes.values[1] === 1)
  ) {
    bad('classes: a file with uint8 labels has the classes [0, 1] or [-1, 1]');
  }
  let hashing: FeatureHashing | null = null;
  if (meta.hashing !== null) {
    const checked = checkFeatureHashing(meta.hashing);
    if (typeof checked === 'string') return bad(`hashing: ${checked}`);
    hashing = checked;
  }
  return { labelName: meta.label as string, classes, hashing }; // label checked above
}

function infoOf(path: string, layout: SparseLayout, meta: SparseMeta, header: Buffer, table: Buffer): SparseDatasetInfo {
  return {
    path,
    rows: layout.rows,
    dims: layout.dims,
    nnz: layout.nnz,
    labelName: meta.labelName,
    classes: meta.classes,
    labelType: layout.labelBytes === 1 ? 'uint8' : 'uint16',
    hashing: meta.hashing,
    identity: identityOf(header, table),
    bytes: layout.fileBytes,
  };
}

/**
 * The header of the sparse file at `path`, checked (magic, version, fields, meta block CRC, exact
 * size): microseconds whatever the file's size. DatasetError naming the file and field otherwise.
 */
export function readSparseHeader(path: string, role: string | null = null): SparseDatasetInfo {
  const { fd, layout, meta, header, table } = openChecked(path, role);
  closeSync(fd);
  return infoOf(path, layout, meta, header, table);
}

/**
 * Reads the whole sparse file at `path` into memory (one buffer; rowStart, indices, values and
 * labels are views of it) after checking everything the format promises: the header, every
 * block's CRC-32, rowStart from 0 to nnz without decreasing, indices strictly increasing within a
 * row and below D, values finite and non-zero, labels below the number of classes. Any breach is a
 * DatasetError naming the file and what is wrong (block, row).
 */
export function readSparseDataset(path: string, role: string | null = null): SparseDataset {
  const { fd, layout, meta, header, table } = openChecked(path, role);
  let content: Uint8Array;
  try {
    const bytes = layout.tableOffset - layout.rowStartOffset;
    if (bytes > MAX_LENGTH) {
      throw new DatasetError(
        path,
        undefined,
        undefined,
        `its rows take ${bytes} bytes; a sparse .dpt is read whole, into one buffer of at most ${MAX_LENGTH} bytes (about 500 million non-zeros)`,
      );
    }
    content = new Uint8Array(bytes);
    readExactly(path, fd, content, layout.rowStartOffset, 'the rows');
  } finally {
    closeSync(fd);
  }
  for (let block = 0; block < layout.blocks; block++) {
    const from = block * BLOCK_BYTES;
    const crc = crc32(content.subarray(from, Math.min(from + BLOCK_BYTES, content.length)));
    if (crc !== table.readUInt32LE(4 * block)) {
      throw new DatasetError(
        path,
        undefined,
        undefined,
        `content block ${block} (bytes ${layout.rowStartOffset + from} on) fails its CRC-32 check: the file is corrupt`,
      );
    }
  }
  const base = layout.rowStartOffset;
  const buffer = content.buffer;
  const rowStart = new Uint32Array(buffer, 0, layout.rows + 1);
  const indices = new Uint32Array(buffer, layout.indicesOffset - base, layout.nnz);
  const values = new Float32Array(buffer, layout.valuesOffset - base, layout.nnz);
  const labels: LabelArray =
    layout.labelBytes === 1
      ? new Uint8Array(buffer, layout.labelsOffset - base, layout.rows)
      : new Uint16Array(buffer, layout.labelsOffset - base, layout.rows);
  checkRows(path, layout, rowStart, indices, values, labels, meta.classes.values.length);
  return { ...infoOf(path, layout, meta, header, table), rowStart, indices, values, labels };
}

/**
 * The labels of the sparse file at `path` (a class index per row), without its rows: the content
 * blocks the label section lies in are read and checked against their CRC-32, and every label
 * against the file's classes. What a coordinator counts classes from (--class-weight balanced):
 * O(rows) bytes, plus at most one block of the values before them. DatasetError otherwise.
 */
export function readSparseLabels(path: string, role: string | null = null): LabelArray {
  const { fd, layout, meta, table } = openChecked(path, role);
  const base = layout.rowStartOffset;
  const firstBlock = Math.floor((layout.labelsOffset - base) / BLOCK_BYTES);
  const from = base + firstBlock * BLOCK_BYTES;
  const bytes = new Uint8Array(layout.tableOffset - from);
  try {
    readExactly(path, fd, bytes, from, 'the labels');
  } finally {
    closeSync(fd);
  }
  for (let block = firstBlock; block < layout.blocks; block++) {
    const at = (block - firstBlock) * BLOCK_BYTES;
    if (crc32(bytes.subarray(at, Math.min(at + BLOCK_BYTES, bytes.length))) !== table.readUInt32LE(4 * block)) {
      throw new DatasetError(path, undefined, undefined, `content block ${block} (bytes ${from + at} on) fails its CRC-32 check: the file is corrupt`);
    }
  }
  // labelsOffset and every block start are multiples of 64 bytes: the views are aligned.
  const offset = layout.labelsOffset - from;
  const labels: LabelArray = layout.labelBytes === 1 ? new Uint8Array(bytes.buffer, offset, layout.rows) : new Uint16Array(bytes.buffer, offset, layout.rows);
  const K = meta.classes.values.length;
  for (let i = 0; i < layout.rows; i++) {
    if (labels[i]! >= K)
      throw new DatasetError(
        path,
        undefined,
        undefined,
        `the label of row ${i} (counting from 0) is class index ${labels[i]}, not below the file's ${K} classes (corrupt file?)`,
      );
  }
  return labels;
}

/** The CSR invariants of the file header, row by row (a CRC collision or a bug of a writer would break them). */
function checkRows(path: string, layout: SparseLayout, rowStart: Uint32Array, indices: Uint32Array, values: Float32Array, labels: LabelArray, K: number): void {
  const bad = (problem: string): never => {
    throw new DatasetError(path, undefined, undefined, `${problem} (corrupt file?)`);
  };
  const { rows, dims, nnz } = layout;
  if (rowStart[0] !== 0) bad(`rowStart[0] is ${rowStart[0]}, not 0`);
  if (rowStart[rows] !== nnz) bad(`rowStart[${rows}] is ${rowStart[rows]}, not nnz = ${nnz}`);
  for (let i = 0; i < rows; i++) {
    const start = rowStart[i]!;
    const end = rowStart[i + 1]!;
    if (end < start) bad(`row ${i} (counting from 0) ends at entry ${end}, before its start ${start}`);
    let previous = -1;
    for (let k = start; k < end; k++) {
      const j = indices[k]!;
      if (j <= previous || j >= dims) bad(`row ${i} (counting from 0): index ${j} ${j >= dims ? `is not below D = ${dims}` : `does not follow ${previous}`}`);
      const v = values[k]!;
      if (v === 0 || !Number.isFinite(v)) bad(`row ${i} (counting from 0), index ${j}: value ${v} is not finite and non-zero`);
      previous = j;
    }
    if (labels[i]! >= K) bad(`the label of row ${i} (counting from 0) is class index ${labels[i]}, not below the file's ${K} classes`);
  }
}

/** The message for a run that allows fewer classes than a file holds (as for dense files). */
export function sparseClassesProblem(info: SparseDatasetInfo, maxClasses: number): string | null {
  const K = info.classes.values.length;
  return K > maxClasses ? tooManyClassesProblem(info.labelName, K, maxClasses) : null;
}

// The binary dataset format `.dpt`: a small checked header, then row-major float32 features and
// uint8 labels at fixed offsets, so any range of rows is one positioned read into a buffer the
// caller owns (a worker reads only its rows, never the whole file). Writer streams; reader opens.
//
// Layout (little-endian; every section starts at a multiple of 64 bytes, zero padding between):
//   0   magic "\x89DPT\r\n\x1a\n" (the PNG trick: a text-mode transfer or a 7-bit channel breaks it)
//   8   u32 version (1)         12  u8 feature type (1 = float32)   13  u8 label type (1 = uint8)   14  u16 0
//   16  u64 rows                24  u32 features D                  28  u32 bytes of the names block
//   32  u64 dataOffset          40  u64 labelsOffset                48  u64 tableOffset
//   56  u32 blockBytes          60  u32 CRC-32 of bytes [0, 60) and of the names block
//   64  names block: UTF-8 JSON {"features": [D names], "label": name}
//   dataOffset    rows × D float32 (row r at dataOffset + 4·D·r)
//   labelsOffset  rows × uint8, each 0 or 1
//   tableOffset   one u32 CRC-32 per blockBytes block of [dataOffset, tableOffset) — the last may be short
//   end of file   tableOffset + 4 × blocks
// The content CRCs are written as the data streams out. Opening checks the header and the exact
// file size only, so opening a file of any size takes microseconds; the content is checked as it
// is read: before any row of a block is returned, that block's CRC-32 is checked and its values
// too (every feature finite, every label 0 or 1), once per open file (a bit per block remembers it;
// issue #10 items 6 and 7). A read that covers whole blocks is checked in the caller's buffer,
// without a second read; a block a read covers only in part is read whole once, into a scratch block.
// The identity (`identity`) is the SHA-256 of the header, the names and the CRC table: two files
// with equal identities have the same shape, names and content CRCs, and since every block is
// checked against that table before use, equal identities mean equal rows as far as CRC-32 can tell.

import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, rmSync } from 'node:fs';
import { endianness } from 'node:os';
import { crc32 } from 'node:zlib';
import { AtomicFileWriter, describeFailure, trackTemporary, untrackTemporary, writeFully } from './atomic-file.js';
import { DataBlockError, DatasetError, WriteError } from './errors.js';
import { openRegularFile } from './regular-file.js';

export const BINARY_MAGIC = Buffer.from([0x89, 0x44, 0x50, 0x54, 0x0d, 0x0a, 0x1a, 0x0a]);
export const BINARY_VERSION = 1;
const HEADER_BYTES = 64;
const ALIGN = 64;
/** Bytes per content CRC block: 1 MiB keeps the table at 4 bytes per MiB of data. */
export const BLOCK_BYTES = 1 << 20;
const FLOAT32 = 1;
const UINT8 = 1;
const MAX_FEATURES = 1 << 24;
const MAX_ROWS = 2 ** 32 - 1;
const MAX_NAMES_BYTES = 64 << 20;
/** One read or write call moves at most this many bytes (the kernel caps a call near 2 GiB). */
const MAX_IO_BYTES = 1 << 30;

export interface BinaryDatasetNames {
  readonly featureNames: readonly string[];
  readonly labelName: string;
}

/** What a finished file holds; `identity` as described above. */
export interface BinaryDatasetSummary {
  readonly path: string;
  readonly rows: number;
  readonly features: number;
  readonly bytes: number;
  readonly identity: string;
}

/** Where a .dpt file's sections lie (byte offsets) and how many content blocks its CRC table has. */
export interface DptLayout {
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

function layoutOf(rows: number, features: number, namesBytes: number, blockBytes: number): Layout {
  const dataOffset = align(HEADER_BYTES + namesBytes);
  const labelsOffset = align(dataOffset + rows * features * 4);
  const tableOffset = align(labelsOffset + rows);
  const blocks = Math.ceil((tableOffset - dataOffset) / blockBytes);
  return { rows, features, namesBytes, dataOffset, labelsOffset, tableOffset, blocks, fileBytes: tableOffset + 4 * blocks };
}

function encodeHeader(layout: Layout, names: Buffer): Buffer {
  const header = Buffer.alloc(layout.dataOffset);
  BINARY_MAGIC.copy(header, 0);
  header.writeUInt32LE(BINARY_VERSION, 8);
  header.writeUInt8(FLOAT32, 12);
  header.writeUInt8(UINT8, 13);
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

/**
 * Writes a .dpt file with constant memory: rows are appended in batches, features go straight to
 * their place in the file, labels to a side file that is copied behind them at the end. The file
 * appears under its name only when finish() succeeds (shared/atomic-file.ts: every write checked,
 * fsync and size check, rename); any failure removes both temporary files.
 */
export class BinaryDatasetWriter {
  readonly path: string;
  private readonly names: Buffer;
  private readonly features: number;
  private readonly file: AtomicFileWriter;
  private readonly labelsPath: string;
  private readonly labelsFd: number;
  private readonly dataOffset: number;
  private rows = 0;
  /** CRC state of the content block being written, and the finished blocks' CRCs. */
  private blockCrc = 0;
  private blockFill = 0;
  private readonly crcs: number[] = [];
  private isOpen = true;

  constructor(path: string, names: BinaryDatasetNames) {
    if (endianness() !== 'LE') throw new Error('the .dpt format is little-endian; this machine is not');
    const D = names.featureNames.length;
    if (D < 1 || D > MAX_FEATURES) throw new RangeError(`a .dpt file holds 1 to ${MAX_FEATURES} features, got ${D}`);
    this.path = path;
    this.features = D;
    this.names = Buffer.from(JSON.stringify({ features: names.featureNames, label: names.labelName }), 'utf8');
    if (this.names.length > MAX_NAMES_BYTES) throw new RangeError(`the feature names take ${this.names.length} bytes, more than ${MAX_NAMES_BYTES}`);
    this.dataOffset = layoutOf(0, D, this.names.length, BLOCK_BYTES).dataOffset;
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
   * Appends `count` rows: x holds them row-major (count × D float32, finite), y their labels (0 or 1).
   * Append in batches (thousands of rows): each call is one write to each file.
   */
  append(x: Float32Array, y: Uint8Array, count: number): void {
    if (!this.isOpen) throw new Error(`${this.path}: append after finish or abort`);
    const D = this.features;
    if (x.length < count * D || y.length < count) throw new RangeError(`append of ${count} rows: x or y is too short`);
    if (this.rows + count > MAX_ROWS) throw new RangeError(`a .dpt file holds at most ${MAX_ROWS} rows`);
    for (let i = 0; i < count * D; i++) {
      if (!Number.isFinite(x[i]!)) throw new RangeError(`row ${this.rows + Math.floor(i / D)}, feature ${i % D}: ${x[i]} is not finite`);
    }
    for (let i = 0; i < count; i++) if (y[i]! > 1) throw new RangeError(`row ${this.rows + i}: label ${y[i]} is not 0 or 1`);
    const features = bytesOf(x, 0, count * D * 4);
    try {
      this.file.write(features, this.dataOffset + this.rows * D * 4);
      this.checksum(features);
      this.writeLabels(bytesOf(y, 0, count), this.rows);
    } catch (error) {
      this.abort(); // both temporary files go, not only the one that failed
      throw error;
    }
    this.rows += count;
  }

  /** Writes labels, CRC table and header, and renames the file into place. */
  finish(): BinaryDatasetSummary {
    if (!this.isOpen) throw new Error(`${this.path}: finish after finish or abort`);
    try {
      const layout = layoutOf(this.rows, this.features, this.names.length, BLOCK_BYTES);
      this.pad(layout.dataOffset + this.rows * this.features * 4, layout.labelsOffset);
      const chunk = Buffer.alloc(Math.min(BLOCK_BYTES, Math.max(this.rows, 1)));
      for (let done = 0; done < this.rows; done += chunk.length) {
        const part = chunk.subarray(0, Math.min(chunk.length, this.rows - done));
        readExactly(this.labelsPath, this.labelsFd, part, done, 'labels');
        this.file.write(part, layout.labelsOffset + done);
        this.checksum(part);
      }
      this.pad(layout.labelsOffset + this.rows, layout.tableOffset);
      if (this.blockFill > 0) this.crcs.push(this.blockCrc);
      const table = Buffer.alloc(4 * this.crcs.length);
      this.crcs.forEach((crc, i) => {
        table.writeUInt32LE(crc, 4 * i);
      });
      this.file.write(table, layout.tableOffset);
      const header = encodeHeader(layout, this.names);
      this.file.write(header, 0);
      this.closeLabels();
      this.file.commit(layout.fileBytes);
      return { path: this.path, rows: this.rows, features: this.features, bytes: layout.fileBytes, identity: identityOf(header, table) };
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

  private constructor(path: string, fd: number, layout: Layout, names: BinaryDatasetNames, header: Buffer, table: Buffer) {
    this.path = path;
    this.fd = fd;
    this.layout = layout;
    this.rows = layout.rows;
    this.features = layout.features;
    this.featureNames = names.featureNames;
    this.labelName = names.labelName;
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

  /** Reads the labels of rows [from, to) into `into` at `intoRow`; their blocks are checked as readRows does. */
  readLabels(from: number, to: number, into: Uint8Array, intoRow = 0): void {
    this.checkRange(from, to);
    if (intoRow + to - from > into.length) throw new RangeError(`readLabels: ${to - from} labels do not fit into ${into.length} at ${intoRow}`);
    const target = into.subarray(intoRow, intoRow + to - from);
    const at = this.layout.labelsOffset + from;
    readExactly(this.path, this.fd, target, at, 'labels');
    this.checkBlocksOf(at, target);
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
    const { dataOffset, labelsOffset, rows, features: D } = this.layout;
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
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        if (v - v !== 0) {
          const row = Math.floor((first + i) / D);
          const j = (first + i) % D;
          throw new DataBlockError(
            this.path,
            block,
            `row ${row} (counting from 0), feature ${j} '${this.featureNames[j]}' is ${v}, not a finite number (content block ${block}; a .dpt file holds finite features only)`,
          );
        }
      }
    }
    const labelsFrom = Math.max(start, labelsOffset);
    const labelsTo = Math.min(end, labelsOffset + rows);
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
    this.checked[block >>> 3]! |= 1 << (block & 7);
  }

  /** Which rows' features and labels file bytes [start, end) hold, for messages. */
  private describeRows(start: number, end: number): string {
    const { dataOffset, labelsOffset, rows, features: D } = this.layout;
    const parts: string[] = [];
    const featuresEnd = Math.min(end, dataOffset + rows * D * 4);
    if (featuresEnd > start)
      parts.push(`features of rows ${Math.floor((start - dataOffset) / (4 * D))} to ${Math.ceil((featuresEnd - dataOffset) / (4 * D)) - 1}`);
    const labelsFrom = Math.max(start, labelsOffset);
    const labelsTo = Math.min(end, labelsOffset + rows);
    if (labelsTo > labelsFrom) parts.push(`labels of rows ${labelsFrom - labelsOffset} to ${labelsTo - labelsOffset - 1}`);
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
  if (version !== BINARY_VERSION) bad('version', `expected ${BINARY_VERSION}, found ${version} (written by another dpt version?)`);
  if (fixed.readUInt8(12) !== FLOAT32) bad('featureType', `expected 1 (float32), found ${fixed.readUInt8(12)}`);
  if (fixed.readUInt8(13) !== UINT8) bad('labelType', `expected 1 (uint8), found ${fixed.readUInt8(13)}`);
  const rows = Number(fixed.readBigUInt64LE(16));
  if (rows < 1 || rows > MAX_ROWS) bad('rows', `expected 1 to ${MAX_ROWS}, found ${rows}`);
  const features = fixed.readUInt32LE(24);
  if (features < 1 || features > MAX_FEATURES) bad('features', `expected 1 to ${MAX_FEATURES}, found ${features}`);
  const namesBytes = fixed.readUInt32LE(28);
  if (namesBytes > MAX_NAMES_BYTES) bad('namesBytes', `${namesBytes} exceeds ${MAX_NAMES_BYTES}`);
  const blockBytes = fixed.readUInt32LE(56);
  if (blockBytes !== BLOCK_BYTES) bad('blockBytes', `expected ${BLOCK_BYTES}, found ${blockBytes}`);
  const layout = layoutOf(rows, features, namesBytes, BLOCK_BYTES);
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

function checkHeader(path: string, fd: number, fixed: Buffer, fileBytes: number): { layout: Layout; names: BinaryDatasetNames; header: Buffer } {
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
  return { layout, names: parseNames(path, header.subarray(HEADER_BYTES, HEADER_BYTES + namesBytes), features), header };
}

function parseNames(path: string, bytes: Buffer, features: number): BinaryDatasetNames {
  const bad = (problem: string): never => {
    throw new DatasetError(path, undefined, undefined, `header field 'names': ${problem}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bad('not valid JSON');
  }
  const names = value as { features?: unknown; label?: unknown }; // checked just below
  if (typeof value !== 'object' || value === null || !Array.isArray(names.features) || typeof names.label !== 'string') {
    return bad('expected {"features": [names], "label": name}');
  }
  const featureNames: unknown[] = names.features;
  if (featureNames.length !== features) bad(`${featureNames.length} feature names for ${features} features`);
  if (!featureNames.every((name): name is string => typeof name === 'string')) bad('a feature name is not a string');
  return { featureNames: featureNames as string[], labelName: names.label }; // every element checked above
}

/** Reads a whole .dpt file into `allocate`d storage (default: plain typed arrays; e.g. kernel.allocateRows). */
export function loadBinaryDataset(
  path: string,
  allocate: (rows: number, D: number) => { x: Float32Array; y: Uint8Array } = (rows, D) => ({ x: new Float32Array(rows * D), y: new Uint8Array(rows) }),
  role: string | null = null,
): { dataset: BinaryDataset; x: Float32Array; y: Uint8Array } {
  const dataset = BinaryDataset.open(path, role);
  try {
    const { x, y } = allocate(dataset.rows, dataset.features);
    dataset.readRows(0, dataset.rows, x);
    dataset.readLabels(0, dataset.rows, y);
    return { dataset, x, y };
  } finally {
    dataset.close();
  }
}

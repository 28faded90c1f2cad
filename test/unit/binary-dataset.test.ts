import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BINARY_MAGIC, BinaryDataset, BinaryDatasetWriter, loadBinaryDataset, loadBinaryDatasetClasses } from '../../shared/binary-dataset.js';
import { DataBlockError, DatasetError } from '../../shared/errors.js';
import { createGradientKernel } from '../../shared/kernel.js';
import { forEachBlockOfUnit } from '../../worker/block-needs.js';
import { temporaryDirectory } from '../helpers/cli.js';
import { blockCrcMatches, blockOf, craftFeature, craftLabel, craftLabelIndex, crc32Reference, dptLayout, featureOffset } from '../helpers/dpt-bytes.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());

let files = 0;
function freshPath(): string {
  return join(directory.path, `data-${files++}.dpt`);
}

/** rows × D seeded values (exact in float32) and labels, written in appends of uneven sizes. */
function writeSample(path: string, rows: number, D: number): { x: Float32Array; y: Uint8Array } {
  const x = Float32Array.from({ length: rows * D }, (_, i) => ((i * 7919) % 1000) / 8 - 60);
  const y = Uint8Array.from({ length: rows }, (_, i) => ((i * 31) % 3 === 0 ? 1 : 0));
  const writer = new BinaryDatasetWriter(path, { featureNames: Array.from({ length: D }, (_, j) => `feature ${j} é`), labelName: 'label' });
  for (let start = 0, size = 1; start < rows; start += size, size = size * 3 + 1) {
    const count = Math.min(size, rows - start);
    writer.append(x.subarray(start * D), y.subarray(start), count);
  }
  writer.finish();
  return { x, y };
}

function failure(action: () => unknown): DatasetError {
  try {
    action();
  } catch (error) {
    if (error instanceof DatasetError) return error;
    throw error;
  }
  throw new Error('expected a DatasetError');
}

/** An edit that changes bytes in place. */
function mutate(change: (bytes: Buffer) => unknown): (bytes: Buffer) => Buffer {
  return (bytes) => {
    change(bytes);
    return bytes;
  };
}

/** Writes a copy of `source` with `edit` applied to its bytes and returns its path. */
function corrupted(source: string, edit: (bytes: Buffer) => Buffer): string {
  const path = freshPath();
  writeFileSync(path, edit(Buffer.from(readFileSync(source))));
  return path;
}

describe('the .dpt format', () => {
  const sample = freshPath();
  const D = 7;
  const rows = 1000;
  const { x, y } = writeSample(sample, rows, D);

  it('round-trips rows, labels and names, any range with one read into any offset', () => {
    const dataset = BinaryDataset.open(sample);
    expect([dataset.rows, dataset.features, dataset.labelName]).toEqual([rows, D, 'label']);
    expect(dataset.featureNames[3]).toBe('feature 3 é');
    for (const [from, to, at] of [
      [0, rows, 0],
      [123, 456, 5],
      [999, 1000, 1],
      [10, 10, 0],
    ] as const) {
      const into = new Float32Array((at + to - from) * D).fill(Number.NaN);
      dataset.readRows(from, to, into, at);
      expect(into.subarray(at * D)).toEqual(x.subarray(from * D, to * D));
      const labels = new Uint8Array(at + to - from);
      dataset.readLabels(from, to, labels, at);
      expect(labels.subarray(at)).toEqual(y.subarray(from, to));
    }
    dataset.verify();
    dataset.close();
  });

  it('keeps the features 64-byte aligned in the file and reads into a kernel memory', () => {
    const bytes = readFileSync(sample);
    const dataOffset = Number(bytes.readBigUInt64LE(32));
    expect(dataOffset % 64).toBe(0);
    expect(Number(bytes.readBigUInt64LE(40)) % 64).toBe(0);
    const kernel = createGradientKernel('wasm-simd');
    const loaded = loadBinaryDataset(sample, (n, d) => kernel.allocateRows(n, d));
    expect(loaded.x).toEqual(x);
    expect(loaded.y).toEqual(y);
  });

  it('gives equal files equal identities and different content different ones', () => {
    const again = freshPath();
    writeSample(again, rows, D);
    const identity = (path: string): string => {
      const dataset = BinaryDataset.open(path);
      dataset.close();
      return dataset.identity;
    };
    expect(identity(again)).toBe(identity(sample));
    expect(identity(again)).toMatch(/^[0-9a-f]{64}$/);
    const other = freshPath();
    const writer = new BinaryDatasetWriter(other, { featureNames: Array.from({ length: D }, (_, j) => `feature ${j} é`), labelName: 'label' });
    const changed = Float32Array.from(x);
    changed[5000] = 0.5;
    writer.append(changed, y, rows);
    writer.finish();
    expect(identity(other)).not.toBe(identity(sample));
  });

  it.each([
    ['magic', (b: Buffer) => Buffer.concat([Buffer.from('a,b,label\n'), b.subarray(10)]), /field 'magic': not a \.dpt file/],
    ['version', mutate((b) => b.writeUInt32LE(4, 8)), /field 'version': expected 1 or 2, found 4 \(written by another dpt version\?\)/],
    ['version (a sparse file)', mutate((b) => b.writeUInt32LE(3, 8)), /field 'version': this is a sparse \.dpt file \(version 3/],
    ['labelType', mutate((b) => b.writeUInt32LE(2, 8)), /field 'labelType': expected 2 \(uint16\) in a version-2 file, found 1/],
    ['featureType', mutate((b) => b.writeUInt8(2, 12)), /field 'featureType'/],
    ['rows', mutate((b) => b.writeBigUInt64LE(0n, 16)), /field 'rows': expected 1 to/],
    ['features', mutate((b) => b.writeUInt32LE(0, 24)), /field 'features'/],
    ['dataOffset', mutate((b) => b.writeBigUInt64LE(65n, 32)), /field 'dataOffset': expected 256 for 1000 rows × 7 features, found 65/],
    ['headerCrc', mutate((b) => b.writeUInt8(b[70]! ^ 1, 70)), /field 'headerCrc': .*corrupt/],
    ['a truncated file', (b: Buffer) => b.subarray(0, b.length - 100), /field 'rows': .*found \d+ \(truncated\)/],
    ['trailing bytes', (b: Buffer) => Buffer.concat([b, Buffer.alloc(3)]), /trailing bytes/],
    ['a file shorter than the header', (b: Buffer) => b.subarray(0, 20), /too short for a \.dpt header/],
  ])('rejects a bad header (%s) naming the file and the field', (_name, edit, message) => {
    const path = corrupted(sample, edit);
    const error = failure(() => BinaryDataset.open(path));
    expect(error.code).toBe('DPT_DATASET');
    expect(error.exitCode).toBe(2);
    expect(error.file).toBe(path);
    expect(error.message.startsWith(path)).toBe(true);
    expect(error.message).toMatch(message);
  });

  it('rejects names that do not match the header', () => {
    const path = freshPath();
    const writer = new BinaryDatasetWriter(path, { featureNames: ['a', 'b'], labelName: 'y' });
    writer.append(new Float32Array(2), new Uint8Array(1), 1);
    writer.finish();
    // Claim 3 features (the offsets stay the same after 64-byte alignment) with a valid header CRC.
    const patched = corrupted(path, (b) => {
      b.writeUInt32LE(3, 24);
      const namesBytes = b.readUInt32LE(28);
      b.writeUInt32LE(crc32(b.subarray(64, 64 + namesBytes), crc32(b.subarray(0, 60))), 60);
      return b;
    });
    expect(failure(() => BinaryDataset.open(patched)).message).toMatch(/field 'names': 2 feature names for 3 features/);
  });

  it('finds corrupt content with verify() and a crafted label on read, naming block and row', () => {
    const bytes = readFileSync(sample);
    const dataOffset = Number(bytes.readBigUInt64LE(32));
    const flipped = corrupted(
      sample,
      mutate((b) => b.writeUInt8(b[dataOffset + 100]! ^ 0x40, dataOffset + 100)),
    );
    const dataset = BinaryDataset.open(flipped);
    expect(failure(() => dataset.verify()).message).toMatch(/content block 0 of 1 .* fails its CRC-32 check/);
    dataset.close();
    const badLabel = BinaryDataset.open(
      corrupted(
        sample,
        mutate((b) => craftLabel(b, 42, 7)),
      ),
    );
    expect(failure(() => badLabel.readLabels(40, 50, new Uint8Array(10))).message).toMatch(/label of row 42 \(counting from 0\) is 7, not 0 or 1/);
    badLabel.close();
  });

  it('names a missing file and leaves no file behind when a write is aborted', () => {
    expect(failure(() => BinaryDataset.open(join(directory.path, 'missing.dpt'))).message).toMatch(/cannot read the file \(ENOENT\)/);
    const path = freshPath();
    const writer = new BinaryDatasetWriter(path, { featureNames: ['a'], labelName: 'y' });
    expect(() => writer.append(Float32Array.from([Number.NaN]), new Uint8Array(1), 1)).toThrow(/not finite/);
    writer.abort();
    expect(() => readFileSync(path)).toThrow();
    expect(BINARY_MAGIC.length).toBe(8);
  });
});

describe('the content checks of a .dpt file as its rows are read', () => {
  // 20,000 rows × 20 features: 1.6 MB of features, so the content spans two 1 MiB CRC blocks.
  const D = 20;
  const rows = 20_000;
  const sample = freshPath();
  const { x } = writeSample(sample, rows, D);
  const bytes = readFileSync(sample);
  const layout = dptLayout(bytes);
  // A row whose features lie wholly in block 1, and one wholly in block 0.
  const rowInBlock1 = 15_000;
  const rowInBlock0 = 100;

  function blockError(action: () => unknown): DataBlockError {
    const error = failure(action);
    expect(error).toBeInstanceOf(DataBlockError);
    expect(error.exitCode).toBe(2);
    expect(error.message.startsWith(error.file)).toBe(true);
    return error as DataBlockError;
  }

  it('has the sample span two blocks, rows 100 and 15,000 in different ones', () => {
    expect(Math.ceil((layout.tableOffset - layout.dataOffset) / layout.blockBytes)).toBe(2);
    expect(blockOf(layout, featureOffset(layout, rowInBlock0, D - 1))).toBe(0);
    expect(blockOf(layout, featureOffset(layout, rowInBlock1, 0))).toBe(1);
  });

  it('refuses rows from a block with a flipped byte, naming file, block and rows, and still reads the other block', () => {
    const at = featureOffset(layout, rowInBlock1, 3);
    const path = corrupted(
      sample,
      mutate((b) => b.writeUInt8(b[at]! ^ 0x01, at)),
    );
    const dataset = BinaryDataset.open(path);
    const into = new Float32Array(D);
    dataset.readRows(rowInBlock0, rowInBlock0 + 1, into);
    expect(into).toEqual(x.subarray(rowInBlock0 * D, (rowInBlock0 + 1) * D));
    // Any row of the bad block is refused, not only the flipped one: the block is the unit checked.
    for (const row of [rowInBlock1, rowInBlock1 + 10]) {
      const error = blockError(() => dataset.readRows(row, row + 1, into));
      expect(error.file).toBe(path);
      expect(error.block).toBe(1);
      expect(error.message).toMatch(
        /content block 1 of 2 \(file bytes \d+ to \d+: features of rows 13\d{3} to 19999, labels of rows 0 to \d+\) fails its CRC-32 check/,
      );
    }
    expect(blockError(() => dataset.readLabels(0, 10, new Uint8Array(10))).block).toBe(1); // labels share block 1
    dataset.close();
    expect(blockError(() => loadBinaryDataset(path)).block).toBe(1);
    const whole = BinaryDataset.open(path);
    expect(blockError(() => whole.verify()).block).toBe(1);
    whole.close();
  });

  it.each([
    ['Infinity', Number.POSITIVE_INFINITY, /row 15000 \(counting from 0\), feature 3 'feature 3 é' is Infinity, not a finite number \(content block 1/],
    ['-Infinity', Number.NEGATIVE_INFINITY, /row 15000 \(counting from 0\), feature 3 'feature 3 é' is -Infinity/],
    ['NaN', Number.NaN, /row 15000 \(counting from 0\), feature 3 'feature 3 é' is NaN/],
  ])('refuses a crafted %s whose block CRC is valid, naming the row and the feature', (_name, value, message) => {
    const path = corrupted(
      sample,
      mutate((b) => craftFeature(b, rowInBlock1, 3, value)),
    );
    expect(blockCrcMatches(readFileSync(path), 1)).toBe(true); // the craft is checksum-valid
    const dataset = BinaryDataset.open(path);
    const error = blockError(() => dataset.readRows(rowInBlock1 - 5, rowInBlock1 + 5, new Float32Array(10 * D)));
    expect(error.block).toBe(1);
    expect(error.message).toMatch(message);
    dataset.close();
    expect(blockError(() => loadBinaryDataset(path, (n, d) => createGradientKernel('wasm-simd').allocateRows(n, d))).message).toMatch(message);
  });

  it('checks a block once per open file, not at every read of its rows', () => {
    const path = freshPath();
    writeFileSync(path, bytes);
    const dataset = BinaryDataset.open(path);
    const into = new Float32Array(D);
    dataset.readRows(rowInBlock1, rowInBlock1 + 1, into);
    // Corrupt the checked block under the open file: this open file trusts what it checked...
    const at = featureOffset(layout, rowInBlock1 + 1, 0);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from([bytes[at]! ^ 0x80]), 0, 1, at);
    closeSync(fd);
    dataset.readRows(rowInBlock1 + 1, rowInBlock1 + 2, into);
    expect(into[0]).not.toBe(x[(rowInBlock1 + 1) * D]);
    dataset.close();
    // ...and the next open checks it again.
    const again = BinaryDataset.open(path);
    expect(blockError(() => again.readRows(rowInBlock1 + 1, rowInBlock1 + 2, into)).block).toBe(1);
    again.close();
  });

  it('checks any one block on demand, for a coordinator judging a worker report', () => {
    const at = featureOffset(layout, rowInBlock0, 0);
    const path = corrupted(
      sample,
      mutate((b) => b.writeUInt8(b[at]! ^ 0x10, at)),
    );
    const dataset = BinaryDataset.open(path);
    expect(dataset.blocks).toBe(2);
    dataset.checkBlock(1);
    expect(blockError(() => dataset.checkBlock(0)).block).toBe(0);
    expect(() => dataset.checkBlock(2)).toThrow(RangeError);
    dataset.close();
  });
});

/** Writes `cells` (one a row) with D = 2 features (row r: r, −r/4) through appendCells, in uneven batches; returns the features. */
function writeCells(path: string, cells: readonly string[], options: { maxClasses?: number; labelName?: string } = {}): Float32Array {
  const D = 2;
  const x = Float32Array.from({ length: cells.length * D }, (_, i) => (i % 2 === 0 ? i / 2 : -i / 8));
  const writer = new BinaryDatasetWriter(path, { featureNames: ['a', 'b'], labelName: options.labelName ?? 'y' }, { maxClasses: options.maxClasses });
  for (let start = 0, size = 1; start < cells.length; start += size, size = size * 2 + 3) {
    const count = Math.min(size, cells.length - start);
    writer.appendCells(x.subarray(start * D), cells.slice(start, start + count), count);
  }
  writer.finish();
  return x;
}

/**
 * A version-2 .dpt file encoded from the layout in shared/binary-dataset.ts's header comment, with
 * the reference CRC-32 of test/helpers/dpt-bytes.ts: written apart from the code under test.
 */
function encodeVersion2(featureNames: string[], labelName: string, classes: (string | number)[], x: number[], labels: number[]): Buffer {
  const align = (n: number): number => Math.ceil(n / 64) * 64;
  const BLOCK = 1 << 20;
  const names = Buffer.from(JSON.stringify({ features: featureNames, label: labelName, classes }), 'utf8');
  const rows = labels.length;
  const dataOffset = align(64 + names.length);
  const labelsOffset = align(dataOffset + 4 * x.length);
  const tableOffset = align(labelsOffset + 2 * rows);
  const blocks = Math.ceil((tableOffset - dataOffset) / BLOCK);
  const file = Buffer.alloc(tableOffset + 4 * blocks);
  Buffer.from([0x89, 0x44, 0x50, 0x54, 0x0d, 0x0a, 0x1a, 0x0a]).copy(file, 0);
  file.writeUInt32LE(2, 8);
  file.writeUInt8(1, 12);
  file.writeUInt8(2, 13);
  file.writeBigUInt64LE(BigInt(rows), 16);
  file.writeUInt32LE(featureNames.length, 24);
  file.writeUInt32LE(names.length, 28);
  file.writeBigUInt64LE(BigInt(dataOffset), 32);
  file.writeBigUInt64LE(BigInt(labelsOffset), 40);
  file.writeBigUInt64LE(BigInt(tableOffset), 48);
  file.writeUInt32LE(BLOCK, 56);
  names.copy(file, 64);
  for (const [i, value] of x.entries()) file.writeFloatLE(value, dataOffset + 4 * i);
  for (const [row, k] of labels.entries()) file.writeUInt16LE(k, labelsOffset + 2 * row);
  for (let block = 0; block < blocks; block++) {
    const start = dataOffset + block * BLOCK;
    file.writeUInt32LE(crc32Reference(file.subarray(start, Math.min(start + BLOCK, tableOffset))), tableOffset + 4 * block);
  }
  file.writeUInt32LE(crc32Reference(Buffer.concat([file.subarray(0, 60), names])), 60);
  return file;
}

function labelsOf(path: string): { dataset: BinaryDataset; y: Uint16Array } {
  const dataset = BinaryDataset.open(path);
  const y = new Uint16Array(dataset.rows);
  dataset.readLabels(0, dataset.rows, y);
  dataset.close();
  return { dataset, y };
}

describe('labels of any value: classes in a version-2 .dpt file', () => {
  it('writes string labels as uint16 class indices in code point order, with the classes in the names block', () => {
    const cells = ['cat', ' dog', 'ému', 'Zebra', 'cat ', 'dog', 'ému', 'cat'];
    const path = freshPath();
    const x = writeCells(path, cells);
    const { dataset, y } = labelsOf(path);
    expect(dataset.classes).toEqual({ isNumeric: false, values: ['Zebra', 'cat', 'dog', 'ému'] });
    expect([dataset.labelType, dataset.sections.version, dataset.sections.labelBytes]).toEqual(['uint16', 2, 2]);
    const expectedIndex = new Map([
      ['Zebra', 0],
      ['cat', 1],
      ['dog', 2],
      ['ému', 3],
    ]);
    expect(Array.from(y)).toEqual(cells.map((cell) => expectedIndex.get(cell.trim())));
    // Byte for byte the layout documented in the file header, encoded independently.
    expect(readFileSync(path)).toEqual(encodeVersion2(['a', 'b'], 'y', ['Zebra', 'cat', 'dog', 'ému'], Array.from(x), Array.from(y)));
    const loaded = loadBinaryDatasetClasses(path);
    expect([Array.from(loaded.y), Array.from(loaded.x)]).toEqual([Array.from(y), Array.from(x)]);
  });

  it('sorts numeric labels by value and takes 1 and 1.0 as one class (JSON numbers in the names block)', () => {
    const cells = ['3', '10', '2.5', '1', '1.0', '10', ' 3 ', '1e1', '-0.5'];
    const path = freshPath();
    writeCells(path, cells);
    const { dataset, y } = labelsOf(path);
    expect(dataset.classes).toEqual({ isNumeric: true, values: [-0.5, 1, 2.5, 3, 10] });
    expect(Array.from(y)).toEqual([3, 4, 2, 1, 1, 4, 3, 4, 0]);
    const names = readFileSync(path)
      .subarray(64, 64 + dataset.sections.namesBytes)
      .toString('utf8');
    expect(JSON.parse(names)).toEqual({ features: ['a', 'b'], label: 'y', classes: [-0.5, 1, 2.5, 3, 10] });
  });

  it('writes labels −1/+1 as version 2 (two classes, but not the numbers 0 and 1)', () => {
    const path = freshPath();
    writeCells(path, ['-1', '+1', '1', '-1']);
    const { dataset, y } = labelsOf(path);
    expect([dataset.classes, dataset.labelType, Array.from(y)]).toEqual([{ isNumeric: true, values: [-1, 1] }, 'uint16', [0, 1, 1, 0]]);
  });

  it('writes 0/1 label cells (however spelled, or only one of them) as version 1, byte for byte what append() writes', () => {
    for (const cells of [
      ['0', '1', ' 1', '1.0', '0.0', '+0', '1e0'],
      ['0', '0', '0.0'],
      ['1', '1'],
    ]) {
      const viaCells = freshPath();
      writeCells(viaCells, cells);
      const viaBytes = freshPath();
      const writer = new BinaryDatasetWriter(viaBytes, { featureNames: ['a', 'b'], labelName: 'y' });
      const x = Float32Array.from({ length: cells.length * 2 }, (_, i) => (i % 2 === 0 ? i / 2 : -i / 8));
      writer.append(
        x,
        Uint8Array.from(cells, (cell) => Number(cell)),
        cells.length,
      );
      const summary = writer.finish();
      expect(readFileSync(viaCells)).toEqual(readFileSync(viaBytes));
      expect([summary.classes, summary.labelType]).toEqual([{ isNumeric: true, values: [0, 1] }, 'uint8']);
      const dataset = BinaryDataset.open(viaCells);
      expect([dataset.classes, dataset.labelType, dataset.sections.version]).toEqual([{ isNumeric: true, values: [0, 1] }, 'uint8', 1]);
      dataset.close();
    }
  });

  it('refuses the label past maxClasses naming the source file, line and label column and --max-classes, leaving no file', () => {
    const path = freshPath();
    const writer = new BinaryDatasetWriter(path, { featureNames: ['a'], labelName: 'species' }, { maxClasses: 3, labelSource: { path: 'in.csv', column: 4 } });
    writer.appendCells(new Float32Array(3), ['a', 'b', 'a'], 3, [2, 3, 5]);
    const error = failure(() => writer.appendCells(new Float32Array(3), ['c', 'b', ' d'], 3, [6, 7, 9]));
    expect([error.code, error.exitCode, error.file, error.line, error.column]).toEqual(['DPT_DATASET', 2, 'in.csv', 9, 4]);
    expect(error.message).toMatch(
      /^in\.csv, line 9, column 4: label 'd' in column 'species': the label column holds at least 4 distinct classes, more than --max-classes 3 allows/,
    );
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(directory.path).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    // Without a source, the row of the file being written.
    const direct = freshPath();
    expect(failure(() => writeCells(direct, ['a', 'b', 'c'], { maxClasses: 2 })).message).toMatch(
      /data-\d+\.dpt: row 2 \(counting from 0\): label 'c' in column 'y': .*more than --max-classes 2 allows/,
    );
    expect(existsSync(direct)).toBe(false);
  });

  it('refuses an empty label cell, and a bound beyond what a uint16 class index holds', () => {
    expect(failure(() => writeCells(freshPath(), ['a', '  ', 'b'])).message).toMatch(/row 1 \(counting from 0\): column 'y' \(the label\) is empty/);
    expect(() => new BinaryDatasetWriter(freshPath(), { featureNames: ['a'], labelName: 'y' }, { maxClasses: 65_536 })).toThrow(
      /--max-classes must be an integer from 1 to 65,535/,
    );
  });

  it('refuses to mix 0/1 bytes and cells in one writer, and a version-2 file read into a Uint8Array (caller bugs)', () => {
    const writer = new BinaryDatasetWriter(freshPath(), { featureNames: ['a'], labelName: 'y' });
    writer.append(new Float32Array(1), new Uint8Array(1), 1);
    expect(() => writer.appendCells(new Float32Array(1), ['a'], 1)).toThrow(/not both/);
    writer.abort();
    const path = freshPath();
    writeCells(path, ['a', 'b']);
    const dataset = BinaryDataset.open(path);
    const error = (() => {
      try {
        dataset.readLabels(0, 2, new Uint8Array(2));
      } catch (caught) {
        return caught;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(DatasetError);
    expect((error as Error).message).toMatch(/readLabels into a Uint8Array, but this file stores uint16 class indices \(K = 2\)/);
    dataset.close();
    expect(failure(() => loadBinaryDataset(path)).message).toMatch(/its label 'y' holds 2 classes, not 0 and 1/);
  });

  it('refuses a names block whose classes are not in class order, or missing', () => {
    const path = freshPath();
    writeCells(path, ['b', 'a']);
    for (const [classes, message] of [
      [['b', 'a'], /field 'names': classes: class 1 \('a'\) does not follow class 0 in code point order/],
      [[2, 1], /field 'names': classes: class 1 \(1\) does not follow class 0 in increasing order/],
      [['a', 1], /classes must be all numbers or all strings/],
      [undefined, /expected "classes": \[class values\]/],
    ] as const) {
      // Same length as the original names so every offset stays valid; the header CRC recomputed.
      const patched = corrupted(path, (b) => {
        const namesBytes = b.readUInt32LE(28);
        const json = JSON.stringify(classes === undefined ? { features: ['a', 'b'], label: 'y' } : { features: ['a', 'b'], label: 'y', classes });
        const padded = Buffer.from(json.padEnd(namesBytes, ' '), 'utf8');
        expect(padded.length).toBe(namesBytes);
        padded.copy(b, 64);
        b.writeUInt32LE(crc32(b.subarray(64, 64 + namesBytes), crc32(b.subarray(0, 60))), 60);
        return b;
      });
      expect(failure(() => BinaryDataset.open(patched)).message).toMatch(message);
    }
  });

  describe('a version-2 file over three content blocks', () => {
    // 240,000 rows × 2 features: 1.92 MB of features (blocks 0 and 1), then 480 KB of uint16 labels
    // (blocks 1 and 2: the labels of rows from about 88,500 on lie in block 2, where one byte a
    // label would put them there from about 177,000 on). Long class names make the version-2 names
    // block pass the version-1 one's 64-byte aligned end, so the writer moved the features (in more
    // than one chunk) before the labels.
    const rows = 240_000;
    const classNames = Array.from({ length: 7 }, (_, k) => `class ${k} ${'x'.repeat(40)}`);
    const cells = Array.from({ length: rows }, (_, r) => classNames[(r * 7919) % 7]!);
    const path = freshPath();
    const x = writeCells(path, cells);
    const layout = dptLayout(readFileSync(path));
    const expected = Uint16Array.from(cells, (cell) => classNames.indexOf(cell));

    it('reads every row and label back after the features were moved', () => {
      expect(layout.dataOffset).toBeGreaterThan(128); // the version-1 names block ends before 128
      const dataset = BinaryDataset.open(path);
      const into = new Float32Array(rows * 2);
      dataset.readRows(0, rows, into);
      expect(Buffer.from(into.buffer).equals(Buffer.from(x.buffer))).toBe(true);
      const y = new Uint16Array(rows + 3);
      dataset.readLabels(0, rows, y, 3);
      expect(Buffer.from(y.buffer, 6).equals(Buffer.from(expected.buffer))).toBe(true);
      dataset.verify();
      dataset.close();
    });

    it('refuses a crafted class index ≥ K (valid CRC) at read, naming the block and the row', () => {
      const row = 123_456;
      const corrupt = corrupted(
        path,
        mutate((b) => craftLabelIndex(b, row, 7)),
      );
      const block = blockOf(layout, layout.labelsOffset + 2 * row);
      expect(block).toBe(2);
      expect(blockCrcMatches(readFileSync(corrupt), block)).toBe(true);
      const dataset = BinaryDataset.open(corrupt);
      const first = new Float32Array(2);
      dataset.readRows(0, 1, first); // block 0 is fine
      dataset.readLabels(0, 10, new Uint16Array(10)); // and so is block 1
      const error = failure(() => dataset.readLabels(row - 2, row + 2, new Uint16Array(4)));
      expect(error).toBeInstanceOf(DataBlockError);
      expect((error as DataBlockError).block).toBe(2);
      expect(error.message).toMatch(
        /the label of row 123456 \(counting from 0\) is class index 7, not below the file's 7 classes \(content block 2; corrupt file\?\)/,
      );
      dataset.close();
    });

    it("gives worker/block-needs the blocks a unit's uint16 labels lie in", () => {
      const dataset = BinaryDataset.open(path);
      const sections = dataset.sections;
      dataset.close();
      const unitRows = 40_000;
      for (let unit = 0; unit < rows / unitRows; unit++) {
        const blocks = new Set<number>();
        forEachBlockOfUnit(sections, unitRows, unit, (block) => blocks.add(block));
        const expectedBlocks = new Set<number>();
        for (let r = unit * unitRows; r < (unit + 1) * unitRows; r++) {
          for (const at of [featureOffset(layout, r, 0), featureOffset(layout, r, 1) + 3, layout.labelsOffset + 2 * r, layout.labelsOffset + 2 * r + 1]) {
            expectedBlocks.add(blockOf(layout, at));
          }
        }
        expect([...blocks].sort(), `unit ${unit}`).toEqual([...expectedBlocks].sort());
      }
    });
  });

  it("widens a version-1 file's 0/1 labels into a Uint16Array, any range, any offset, across blocks", () => {
    const D = 20;
    const rows = 20_000; // features over two blocks, labels in block 1
    const path = freshPath();
    const { y } = writeSample(path, rows, D);
    const dataset = BinaryDataset.open(path);
    expect([dataset.labelType, dataset.classes]).toEqual(['uint8', { isNumeric: true, values: [0, 1] }]);
    for (const [from, to, at] of [
      [0, rows, 0],
      [123, 4567, 7],
      [19_999, 20_000, 1],
      [10, 10, 0],
    ] as const) {
      const into = new Uint16Array(at + to - from + 2).fill(0xbeef);
      dataset.readLabels(from, to, into, at);
      expect(Array.from(into.subarray(at, at + to - from))).toEqual(Array.from(y.subarray(from, to)));
      expect([into[at + to - from], into[at + to - from + 1]]).toEqual([0xbeef, 0xbeef]); // nothing written past the range
      if (at > 0) expect(into[at - 1]).toBe(0xbeef);
    }
    dataset.close();
    const bad = BinaryDataset.open(
      corrupted(
        path,
        mutate((b) => craftLabel(b, 42, 7)),
      ),
    );
    expect(failure(() => bad.readLabels(40, 50, new Uint16Array(10))).message).toMatch(/label of row 42 \(counting from 0\) is 7, not 0 or 1/);
    bad.close();
  });
});

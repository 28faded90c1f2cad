import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BINARY_MAGIC, BinaryDataset, BinaryDatasetWriter, loadBinaryDataset } from '../../shared/binary-dataset.js';
import { DataBlockError, DatasetError } from '../../shared/errors.js';
import { createGradientKernel } from '../../shared/kernel.js';
import { temporaryDirectory } from '../helpers/cli.js';
import { blockCrcMatches, blockOf, craftFeature, craftLabel, dptLayout, featureOffset } from '../helpers/dpt-bytes.js';

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
    ['version', mutate((b) => b.writeUInt32LE(2, 8)), /field 'version': expected 1, found 2/],
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

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BINARY_MAGIC, BinaryDataset, BinaryDatasetWriter, loadBinaryDataset } from '../../shared/binary-dataset.js';
import { DatasetError } from '../../shared/errors.js';
import { createGradientKernel } from '../../shared/kernel.js';
import { temporaryDirectory } from '../helpers/cli.js';

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

  it('finds corrupt content with verify() and a corrupt label on read, naming block and row', () => {
    const bytes = readFileSync(sample);
    const labelsOffset = Number(bytes.readBigUInt64LE(40));
    const dataOffset = Number(bytes.readBigUInt64LE(32));
    const flipped = corrupted(
      sample,
      mutate((b) => b.writeUInt8(b[dataOffset + 100]! ^ 0x40, dataOffset + 100)),
    );
    const dataset = BinaryDataset.open(flipped);
    expect(failure(() => dataset.verify()).message).toMatch(/content block 0 .* fails its CRC-32 check/);
    dataset.close();
    const badLabel = BinaryDataset.open(
      corrupted(
        sample,
        mutate((b) => b.writeUInt8(7, labelsOffset + 42)),
      ),
    );
    expect(failure(() => badLabel.readLabels(40, 50, new Uint8Array(10))).message).toMatch(/label of row 42 is 7/);
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

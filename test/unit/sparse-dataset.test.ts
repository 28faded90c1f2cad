import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BinaryDataset } from '../../shared/binary-dataset.js';
import { convertCsvToBinary } from '../../shared/csv-convert.js';
import { DatasetError } from '../../shared/errors.js';
import { convertLibsvmToSparse } from '../../shared/libsvm.js';
import { isSparseDptFile, readSparseDataset, readSparseHeader, SparseDatasetWriter } from '../../shared/sparse-dataset.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());
let files = 0;

function path(name: string): string {
  return join(directory.path, `${files++}-${name}`);
}

/** A sparse file of `rows` rows, enough to span several 1 MiB content blocks when rows is large. */
async function sparseFile(rows: number): Promise<string> {
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) lines.push(`${i % 3 === 0 ? '+1' : '-1'} ${(i % 7) + 1}:${(i % 5) + 0.5} ${20 + (i % 11)}:-1 40:${i}`);
  const input = path('rows.svm');
  writeFileSync(input, `${lines.join('\n')}\n`);
  const output = path('rows.dpt');
  await convertLibsvmToSparse(input, output);
  return output;
}

function readError(file: string): DatasetError {
  try {
    readSparseDataset(file);
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).code).toBe('DPT_DATASET');
    return error as DatasetError;
  }
  throw new Error(`${file} was read without an error`);
}

/** A copy of `file` with `edit` applied to its bytes. */
function damaged(file: string, edit: (bytes: Buffer) => void): string {
  const copy = path('damaged.dpt');
  const bytes = readFileSync(file);
  edit(bytes);
  writeFileSync(copy, bytes);
  return copy;
}

/** The u64 header field at `at`, as a number. */
const field = (bytes: Buffer, at: number): number => Number(bytes.readBigUInt64LE(at));

describe('sparse .dpt files', () => {
  it('read back what the writer was given, with the header facts', async () => {
    const output = path('written.dpt');
    const writer = new SparseDatasetWriter(output, { labelName: 'y', dims: 16, hashing: null, labelSource: { path: 'test', column: 1 } });
    writer.appendRow(Uint32Array.from([0, 3, 15]), Float32Array.from([1, -2.5, 1e-3]), 3, 'b', 1);
    writer.appendRow(new Uint32Array(0), new Float32Array(0), 0, 'a', 2);
    writer.appendRow(Uint32Array.from([7, 9]), Float32Array.from([4, 5]), 1, 'c', 3);
    const summary = writer.finish();
    expect(summary).toMatchObject({ rows: 3, dims: 16, nnz: 4, classes: { isNumeric: false, values: ['a', 'b', 'c'] }, labelType: 'uint16' });
    const read = readSparseDataset(output);
    expect(Array.from(read.rowStart)).toEqual([0, 3, 3, 4]);
    expect(Array.from(read.indices)).toEqual([0, 3, 15, 7]);
    expect(Array.from(read.values)).toEqual([1, -2.5, Math.fround(1e-3), 4]);
    expect(Array.from(read.labels)).toEqual([1, 0, 2]);
    expect(read.labels).toBeInstanceOf(Uint16Array);
    expect(read.identity).toBe(summary.identity);
    const header = readSparseHeader(output);
    expect(header).toMatchObject({ rows: 3, dims: 16, nnz: 4, labelName: 'y', hashing: null, identity: summary.identity, bytes: summary.bytes });
    expect(isSparseDptFile(output)).toBe(true);
    expect(readdirSync(directory.path).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('detects a flipped byte in every section and in the padding (CRC-32 of each block)', async () => {
    const file = await sparseFile(120_000); // rowStart, indices, values, labels: several 1 MiB blocks
    const bytes = readFileSync(file);
    const sections = {
      rowStart: field(bytes, 40) + 4 * 1000,
      indices: field(bytes, 48) + 4 * 5000,
      values: field(bytes, 56) + 4 * 300_000,
      labels: field(bytes, 64) + 77_777,
      padding: field(bytes, 48) - 1, // behind rowStart: (rows + 1) × 4 bytes is not a multiple of 64
    };
    for (const [name, at] of Object.entries(sections)) {
      const error = readError(
        damaged(file, (content) => {
          content[at] = content[at]! ^ 0x10;
        }),
      );
      expect({ name, message: error.message }).toEqual({ name, message: expect.stringMatching(/content block \d+ .*fails its CRC-32 check/) });
    }
  });

  it('refuses a truncated file, trailing bytes, a damaged header and a damaged meta block, naming the field', async () => {
    const file = await sparseFile(100);
    const bytes = readFileSync(file);
    const truncated = path('truncated.dpt');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 3));
    expect(readError(truncated).message).toMatch(/header field 'rows': .*need a file of \d+ bytes, found \d+ \(truncated\)/);
    const longer = path('longer.dpt');
    writeFileSync(longer, Buffer.concat([bytes, Buffer.from([0])]));
    expect(readError(longer).message).toMatch(/\(trailing bytes\)/);
    expect(readError(damaged(file, (content) => content.writeUInt32LE(17, 24))).message).toMatch(/header field 'headerCrc'/); // D changed
    expect(readError(damaged(file, (content) => content.writeUInt8(0x41, 130))).message).toMatch(/header field 'headerCrc'/); // the meta JSON
    expect(readError(damaged(file, (content) => content.writeUInt32LE(9, 8))).message).toMatch(/header field 'version': expected 3 \(sparse\), found 9/);
    expect(readError(damaged(file, (content) => content.writeBigUInt64LE(1n, 32))).message).toMatch(/header field 'indicesOffset'|header field 'valuesOffset'/);
    expect(readError(damaged(file, (content) => content.write('NOTADPT!', 0))).message).toMatch(/header field 'magic'/);
    const empty = path('empty.dpt');
    writeFileSync(empty, '');
    expect(readError(empty).message).toMatch(/too short for a sparse \.dpt header/);
  });

  it('refuses rows that break the CSR rules even when the CRCs were recomputed to match', async () => {
    const file = await sparseFile(100);
    const bytes = readFileSync(file);
    const indicesOffset = field(bytes, 48);
    const valuesOffset = field(bytes, 56);
    const start = field(bytes, 40);
    const end = field(bytes, 72);
    const recrc = (content: Buffer): void => {
      // One block: the whole content of a small file.
      content.writeUInt32LE(crc32(content.subarray(start, end)), end);
    };
    // Row 0 is "+1 1:0.5 20:-1 40:0": entries (0, 0.5) and (19, −1); 40:0 is no entry but makes D = 40.
    const swapped = damaged(file, (content) => {
      const first = content.readUInt32LE(indicesOffset);
      content.writeUInt32LE(content.readUInt32LE(indicesOffset + 4), indicesOffset);
      content.writeUInt32LE(first, indicesOffset + 4);
      recrc(content);
    });
    expect(readError(swapped).message).toMatch(/row 0 \(counting from 0\): index 0 does not follow 19/);
    const zero = damaged(file, (content) => {
      content.writeFloatLE(0, valuesOffset);
      recrc(content);
    });
    expect(readError(zero).message).toMatch(/row 0 \(counting from 0\), index 0: value 0 is not finite and non-zero/);
    const outside = damaged(file, (content) => {
      content.writeUInt32LE(40, indicesOffset + 4); // D = 40: index 40 is out of range
      recrc(content);
    });
    expect(readError(outside).message).toMatch(/index 40 is not below D = 40/);
  });

  it('is refused by the dense reader, and a dense file by the sparse reader, each naming the other kind', async () => {
    const sparse = await sparseFile(10);
    expect(() => BinaryDataset.open(sparse)).toThrow(/this is a sparse \.dpt file \(version 3/);
    const csv = path('dense.csv');
    writeFileSync(csv, 'a,b,label\n1,2,0\n3,4,1\n');
    const dense = path('dense.dpt');
    await convertCsvToBinary(csv, dense);
    expect(readError(dense).message).toMatch(/this is a dense \.dpt file \(version 1\), not a sparse one/);
    expect(isSparseDptFile(dense)).toBe(false);
    const copy = path('copy.dpt');
    copyFileSync(sparse, copy);
    expect(readSparseDataset(copy).rows).toBe(10);
  });
});

import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DatasetError } from '../../shared/errors.js';
import { convertLibsvmToSparse } from '../../shared/libsvm.js';
import { openSparseDataFile, sparseFormatOf } from '../../shared/sparse-data-file.js';
import { readSparseDataset } from '../../shared/sparse-dataset.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
const previousCache = process.env.DPT_CACHE_DIR;
beforeAll(() => {
  process.env.DPT_CACHE_DIR = join(directory.path, 'cache');
});
afterAll(() => {
  if (previousCache === undefined) delete process.env.DPT_CACHE_DIR;
  else process.env.DPT_CACHE_DIR = previousCache;
  directory.remove();
});

/** A file written with an mtime a minute ago, so that the cache indexes it (its racy-write rule). */
function oldFile(name: string, content: string): string {
  const path = join(directory.path, name);
  writeFileSync(path, content);
  const past = new Date(Date.now() - 60_000);
  utimesSync(path, past, past);
  return path;
}

const FLIGHTS = join(import.meta.dirname, '../fixtures/flights/flights_cat_2000.csv');

describe('openSparseDataFile', () => {
  it('converts a LIBSVM file once, then finds its entry without reading the file again', async () => {
    const svm = oldFile('once.svm', '+1 1:0.5 3:1\n-1 2:2\n');
    const reads: string[] = [];
    const first = await openSparseDataFile(svm, { onWholeRead: (what) => reads.push(what) });
    expect(first).toMatchObject({ format: 'libsvm', rows: 2, dims: 3, nnz: 3, hashing: null, sourcePath: svm });
    expect(reads).toEqual(['hash', 'convert']);
    reads.length = 0;
    const second = await openSparseDataFile(svm, { onWholeRead: (what) => reads.push(what) });
    expect(reads).toEqual([]);
    expect(second.sparsePath).toBe(first.sparsePath);
    expect(second.identity).toBe(first.identity);
    expect(Array.from(readSparseDataset(second.sparsePath).values)).toEqual([0.5, 1, 2]);
  });

  it('converts a damaged cache entry again', async () => {
    const svm = oldFile('damage.svm', '1 1:1\n0 2:1\n');
    const first = await openSparseDataFile(svm);
    const bytes = readFileSync(first.sparsePath);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 1;
    writeFileSync(first.sparsePath, bytes);
    const reads: string[] = [];
    const again = await openSparseDataFile(svm, { onWholeRead: (what) => reads.push(what) });
    expect(reads).toContain('convert');
    expect(again.identity).toBe(first.identity);
  });

  it('keeps one entry per hashing choice of a CSV, recording the spec', async () => {
    const a = await openSparseDataFile(FLIGHTS, { hashing: { bits: 12, categorical: ['dow', 'month', 'origin', 'destination'], crosses: [] } });
    const b = await openSparseDataFile(FLIGHTS, {
      hashing: { bits: 12, categorical: ['dow', 'month', 'origin', 'destination'], crosses: ['origin:destination'] },
    });
    expect(a.format).toBe('csv');
    expect(a.sparsePath).not.toBe(b.sparsePath);
    expect(a.hashing?.crosses).toEqual([]);
    expect(b.hashing?.crosses).toEqual([['origin', 'destination']]);
    expect(b.nnz).toBeGreaterThan(a.nnz);
    expect(a.dims).toBe(4096);
  });

  it('opens a sparse .dpt as it is and refuses what does not fit, naming the flag', async () => {
    const svm = oldFile('plain.svm', '1 1:1\n0 2:1\n');
    const dpt = join(directory.path, 'plain.dpt');
    await convertLibsvmToSparse(svm, dpt);
    const opened = await openSparseDataFile(dpt);
    expect(opened).toMatchObject({ format: 'dpt', sparsePath: dpt });
    await expect(openSparseDataFile(dpt, { hashing: { bits: 4, categorical: [], crosses: [] } })).rejects.toThrow(ConfigError);
    await expect(openSparseDataFile(FLIGHTS)).rejects.toThrow(/needs --hash-bits/);
    await expect(openSparseDataFile(svm, { maxClasses: 1 })).rejects.toThrow(DatasetError);
    const text = oldFile('text.txt', '1 1:1\n');
    expect(sparseFormatOf(text, { format: 'libsvm' })).toBe('libsvm');
    expect(sparseFormatOf(text, {})).toBeNull();
    expect(sparseFormatOf('x.libsvm.gz', {})).toBe('libsvm');
  });
});

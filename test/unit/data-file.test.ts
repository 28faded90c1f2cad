import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryDatasetWriter } from '../../shared/binary-dataset.js';
import { checkDataBlock, openDataFile } from '../../shared/data-file.js';
import { DataBlockError, DatasetError } from '../../shared/errors.js';
import { temporaryDirectory } from '../helpers/cli.js';
import { craftFeature, dptLayout, featureOffset } from '../helpers/dpt-bytes.js';

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

describe('openDataFile', () => {
  it('converts a damaged CSV cache entry again instead of reusing it', async () => {
    const csv = join(directory.path, 'small.csv');
    writeFileSync(csv, `a,b,label\n${Array.from({ length: 50 }, (_, i) => `${i},${i / 4},${i % 2}`).join('\n')}\n`);
    const first = await openDataFile(csv, undefined);
    const cache = readFileSync(first.binaryPath);
    const at = featureOffset(dptLayout(cache), 7, 1);
    cache.writeUInt8(cache[at]! ^ 0x04, at); // a flipped bit the header check cannot see
    writeFileSync(first.binaryPath, cache);
    const lines: string[] = [];
    const second = await openDataFile(csv, undefined, (line) => lines.push(line));
    expect(lines.join('\n')).toMatch(/cache entry .* is damaged \(.*content block 0 of 1 .*CRC-32.*\); converting .*small\.csv again/);
    expect(second.identity).toBe(first.identity);
    expect(readFileSync(second.binaryPath)[at]).toBe(cache[at]! ^ 0x04); // the repaired bytes
  });
});

describe('checkDataBlock (the coordinator judging a worker report)', () => {
  const path = join(directory.path, 'judge.dpt');
  const writer = new BinaryDatasetWriter(path, { featureNames: ['a', 'b'], labelName: 'y' });
  writer.append(
    Float32Array.from({ length: 200 }, (_, i) => i),
    new Uint8Array(100),
    100,
  );
  writer.finish();

  it('passes an intact block and a block number the file does not have', () => {
    expect(checkDataBlock(path, 0)).toBeNull();
    expect(checkDataBlock(path, 5)).toBeNull();
  });

  it('returns the error of a block that fails here too', () => {
    const bad = join(directory.path, 'judge-bad.dpt');
    const bytes = readFileSync(path);
    craftFeature(bytes, 42, 1, Number.POSITIVE_INFINITY);
    writeFileSync(bad, bytes);
    const error = checkDataBlock(bad, 0);
    expect(error).toBeInstanceOf(DataBlockError);
    expect(error?.message).toMatch(/judge-bad\.dpt: row 42 \(counting from 0\), feature 1 'b' is Infinity/);
  });
});

describe('openDataFile with labels of any value (issue #12)', () => {
  /** A CSV (features shifted by `shift`, so each shift is its own cache entry) whose label column holds the 5 classes c0 … c4. */
  function speciesCsv(name: string, shift: number): string {
    const path = join(directory.path, name);
    const rows = Array.from({ length: 40 }, (_, i) => `${i + shift},${i / 2},c${i < 20 ? i % 4 : i % 5}`);
    writeFileSync(path, `a,b,species\n${rows.join('\n')}\n`);
    return path; // c4 first at row 24 (i = 24), file line 26
  }

  async function openFailure(open: () => Promise<unknown>): Promise<DatasetError> {
    try {
      await open();
    } catch (error) {
      if (error instanceof DatasetError) return error;
      throw error;
    }
    throw new Error('expected a DatasetError');
  }

  it('exposes the classes, the label type and the data bytes of a multiclass CSV', async () => {
    const file = await openDataFile(speciesCsv('species.csv', 0), undefined);
    expect([file.classes, file.labelType, file.rows, file.dataBytes]).toEqual([
      { isNumeric: false, values: ['c0', 'c1', 'c2', 'c3', 'c4'] },
      'uint16',
      40,
      40 * (4 * 2 + 2),
    ]);
    const dpt = await openDataFile(file.binaryPath, undefined);
    expect([dpt.classes, dpt.labelType, dpt.identity]).toEqual([file.classes, 'uint16', file.identity]);
  });

  it('refuses more classes than maxClasses: naming the line when it converts, the file when the entry or the .dpt exists', async () => {
    const fresh = speciesCsv('species-fresh.csv', 1);
    const converting = await openFailure(() => openDataFile(fresh, undefined, undefined, '--data', undefined, 4));
    expect([converting.file, converting.line, converting.column]).toEqual([fresh, 26, 3]);
    expect(converting.message).toMatch(/label 'c4' in column 'species': the label column holds at least 5 distinct classes, more than --max-classes 4 allows/);
    const cacheFiles = readdirSync(process.env.DPT_CACHE_DIR!);
    expect(cacheFiles.filter((name) => name.endsWith('.tmp'))).toEqual([]);
    const entries = cacheFiles.filter((name) => name.endsWith('.dpt')).length;

    const cached = speciesCsv('species-cached.csv', 2);
    const entry = (await openDataFile(cached, undefined)).binaryPath; // converted under the default bound
    expect(readdirSync(process.env.DPT_CACHE_DIR!).filter((name) => name.endsWith('.dpt'))).toHaveLength(entries + 1); // the refused conversion left none
    for (const path of [cached, entry]) {
      const error = await openFailure(() => openDataFile(path, undefined, undefined, '--data', undefined, 4));
      expect([error.code, error.file, error.line]).toEqual(['DPT_DATASET', path, undefined]);
      expect(error.message).toMatch(/the label column 'species' holds 5 distinct classes, more than --max-classes 4 allows/);
    }
    expect((await openDataFile(cached, undefined, undefined, '--data', undefined, 5)).classes.values).toHaveLength(5);
  });
});

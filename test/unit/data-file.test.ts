import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinaryDatasetWriter } from '../../shared/binary-dataset.js';
import { checkDataBlock, openDataFile } from '../../shared/data-file.js';
import { DataBlockError } from '../../shared/errors.js';
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

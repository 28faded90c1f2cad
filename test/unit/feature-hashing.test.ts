import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, DatasetError } from '../../shared/errors.js';
import { checkFeatureHashing, createFeatureHashing, createRowHasher, type FeatureHashing } from '../../shared/feature-hashing.js';
import { convertCsvToSparse } from '../../shared/sparse-convert.js';
import { readSparseDataset } from '../../shared/sparse-dataset.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());
let files = 0;

function file(name: string, content: string | Buffer): string {
  const path = join(directory.path, `${files++}-${name}`);
  writeFileSync(path, content);
  return path;
}

const FLIGHTS = join(import.meta.dirname, '../fixtures/flights/flights_cat_2000.csv');

/**
 * MurmurHash3_x86_32 written again for the reference, in BigInt arithmetic modulo 2^32 (the
 * production code uses Math.imul on int32): two implementations that agree on every key.
 */
function referenceMurmur3(text: string, seed: number): number {
  const bytes = new TextEncoder().encode(text);
  const M = (1n << 32n) - 1n;
  const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (32n - r))) & M;
  const mix = (k: bigint): bigint => (rotl((k * 0xcc9e2d51n) & M, 15n) * 0x1b873593n) & M;
  let h = BigInt(seed >>> 0);
  const blocks = Math.floor(bytes.length / 4);
  for (let i = 0; i < blocks; i++) {
    const k = BigInt(bytes[4 * i]! + 256 * bytes[4 * i + 1]! + 65536 * bytes[4 * i + 2]! + 16777216 * bytes[4 * i + 3]!);
    h = (rotl(h ^ mix(k), 13n) * 5n + 0xe6546b64n) & M;
  }
  let tail = 0n;
  for (let i = bytes.length - 1; i >= 4 * blocks; i--) tail = (tail << 8n) | BigInt(bytes[i]!);
  if (bytes.length % 4 !== 0) h ^= mix(tail);
  h ^= BigInt(bytes.length);
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M;
  h ^= h >> 16n;
  return Number(h);
}

interface Row {
  readonly indices: number[];
  readonly values: number[];
}

/**
 * The spec of the README applied by hand to one row given as {column: cell}: the keys as strings,
 * the buckets by the reference hash, collisions summed in order in float64, rounded to float32,
 * zeros dropped, sorted by bucket.
 */
function hashByHand(
  cells: Record<string, string>,
  bits: number,
  categorical: readonly string[],
  numeric: readonly string[],
  crosses: readonly [string, string][],
  order: readonly string[],
): Row {
  const entries: [string, number][] = [];
  for (const column of order) {
    const cell = cells[column]!;
    if (categorical.includes(column)) entries.push([`${column}=${cell.trim()}`, 1]);
    else if (numeric.includes(column) && Math.fround(Number(cell)) !== 0) entries.push([column, Math.fround(Number(cell))]);
  }
  for (const [a, b] of crosses) entries.push([`${a}=${cells[a]!.trim()}^${b}=${cells[b]!.trim()}`, 1]);
  const sums = new Map<number, number>();
  for (const [key, value] of entries) {
    const bucket = referenceMurmur3(key, 0) % 2 ** bits;
    sums.set(bucket, (sums.get(bucket) ?? 0) + value);
  }
  const sorted = [...sums].map(([bucket, sum]) => [bucket, Math.fround(sum)] as const).filter(([, value]) => value !== 0);
  sorted.sort((p, q) => p[0] - q[0]);
  return { indices: sorted.map(([bucket]) => bucket), values: sorted.map(([, value]) => value) };
}

function hashed(spec: FeatureHashing, header: string[], record: string[]): Row {
  const hasher = createRowHasher(spec, header);
  const count = hasher.hashRow(record, 2);
  return { indices: Array.from(hasher.indices.subarray(0, count)), values: Array.from(hasher.values.subarray(0, count)) };
}

describe('the reference murmur3 of this test', () => {
  it('matches published vectors (so the reference below is one)', () => {
    expect(referenceMurmur3('', 1)).toBe(0x514e28b7);
    expect(referenceMurmur3('hello', 0)).toBe(0x248bfa47);
    expect(referenceMurmur3('The quick brown fox jumps over the lazy dog', 0)).toBe(0x2e4ff723);
    expect(referenceMurmur3('special characters açb↓c', 0)).toBe(0xbe83b140);
  });
});

describe('createRowHasher', () => {
  const header = ['price', 'city', 'kind', 'weight', 'label'];
  const options = { bits: 3, categorical: ['city', 'kind'], crosses: ['city:kind'] };

  it('applies the spec as written by hand, collisions included (8 buckets for 5 entries)', () => {
    const spec = createFeatureHashing(options, header, 'x.csv', 1);
    expect(spec).toEqual({
      function: 'murmur3_x86_32',
      seed: 0,
      bits: 3,
      columns: ['price', 'city', 'kind', 'weight'],
      categorical: ['city', 'kind'],
      numeric: ['price', 'weight'],
      crosses: [['city', 'kind']],
      labelColumn: 'label',
    });
    const records = [
      ['2.5', 'Zürich', 'a', '-1e-3', '1'],
      ['0', ' Paris ', 'b', '7', '0'],
      ['-3.25', '', 'a', '0.1', '1'],
      ['1e30', '東京', 'ccc', '-2', '0'],
    ];
    let collisions = 0;
    for (const record of records) {
      const cells = Object.fromEntries(header.map((name, i) => [name, record[i]!]));
      const expected = hashByHand(cells, 3, ['city', 'kind'], ['price', 'weight'], [['city', 'kind']], spec.columns);
      expect(hashed(spec, header, record)).toEqual(expected);
      collisions += 5 - expected.indices.length;
    }
    expect(collisions).toBeGreaterThan(0); // the sums were exercised
  });

  it('drops a bucket whose colliding entries cancel, and keeps float64 sums rounded once', () => {
    // With 2 buckets, 'a' and 'b' collide or not; pick the numeric column names by the reference hash.
    const names = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5'];
    const [first, second] = names.filter((name) => referenceMurmur3(name, 0) % 2 === referenceMurmur3('n0', 0) % 2) as [string, string];
    const spec = createFeatureHashing({ bits: 1, categorical: [], crosses: [] }, [first, second, 'label'], 'x.csv', 1);
    expect(hashed(spec, [first, second, 'label'], ['1.5', '-1.5', '0'])).toEqual({ indices: [], values: [] });
    const sum = hashed(spec, [first, second, 'label'], ['0.1', '0.2', '0']);
    expect(sum.values).toEqual([Math.fround(Math.fround(0.1) + Math.fround(0.2))]);
  });

  it('finds the columns by name in another header order, without a label (prediction input)', () => {
    const spec = createFeatureHashing(options, header, 'x.csv', 1);
    const reordered = ['weight', 'kind', 'extra', 'city', 'price'];
    const row = hashed(spec, reordered, ['-1e-3', 'a', 'ignored', 'Zürich', '2.5']);
    expect(row).toEqual(hashed(spec, header, ['2.5', 'Zürich', 'a', '-1e-3', '1']));
    expect(createRowHasher(spec, reordered).labelIndex).toBe(-1);
    expect(() => createRowHasher(spec, ['kind', 'city', 'price'], 'new.csv', 1)).toThrow(/new\.csv, line 1: the hashed column 'weight' is missing/);
  });

  it('names file, line and column of a cell that is not a number, and a wrong column count', () => {
    const spec = createFeatureHashing(options, header, 'x.csv', 1);
    const hasher = createRowHasher(spec, header, 'x.csv', 1);
    expect(() => hasher.hashRow(['2.5', 'a', 'b', 'heavy', '1'], 7)).toThrow(/^x\.csv, line 7, column 4: column 'weight' 'heavy' is not a finite number$/);
    expect(() => hasher.hashRow(['2.5', 'a', 'b', '', '1'], 8)).toThrow(/^x\.csv, line 8, column 4: column 'weight' is empty$/);
    expect(() => hasher.hashRow(['2.5', 'a', 'b'], 9)).toThrow(/^x\.csv, line 9, column 4: expected 5 columns as in the header, found 3$/);
  });

  it('refuses bad options naming the flag', () => {
    const make = (changes: object): unknown => createFeatureHashing({ ...options, ...changes }, header, 'x.csv', 1);
    expect(() => make({ bits: 0 })).toThrow(ConfigError);
    expect(() => make({ bits: 31 })).toThrow(/--hash-bits must be an integer from 1 to 30, got 31/);
    expect(() => make({ crosses: ['city:price'] })).toThrow(/--cross city:price: column 'price' is not categorical/);
    expect(() => make({ crosses: ['city'] })).toThrow(/--cross expects two column names as a:b/);
    expect(() => make({ crosses: ['city:city'] })).toThrow(/crossed with itself/);
    expect(() => make({ categorical: ['town'] })).toThrow(/x\.csv, line 1: --categorical names column 'town', which the header does not have/);
    expect(() => make({ categorical: ['label'] })).toThrow(DatasetError);
  });

  it('survives JSON and refuses a tampered spec', () => {
    const spec = createFeatureHashing(options, header, 'x.csv', 1);
    expect(checkFeatureHashing(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
    expect(checkFeatureHashing({ ...spec, seed: 1 })).toMatch(/seed/);
    expect(checkFeatureHashing({ ...spec, bits: 40 })).toMatch(/bits/);
    expect(checkFeatureHashing({ ...spec, numeric: ['weight', 'price'] })).toMatch(/column order/);
    expect(checkFeatureHashing({ ...spec, crosses: [['city', 'price']] })).toMatch(/crosses/);
  });
});

describe('convertCsvToSparse', () => {
  it('writes the flights fixture hashed with a cross as the spec applied by hand gives, recording the spec', async () => {
    const text = readFileSync(FLIGHTS, 'utf8');
    const [headerLine, ...lines] = text.trim().split('\n');
    const header = headerLine!.split(',');
    const categorical = ['dow', 'month', 'origin', 'destination', 'dep_hour'];
    const output = join(directory.path, 'flights.dpt');
    const summary = await convertCsvToSparse(FLIGHTS, output, { bits: 22, categorical, crosses: ['origin:destination'] });
    const read = readSparseDataset(output);
    expect(summary).toMatchObject({ rows: 2000, dims: 2 ** 22 });
    expect(read.hashing).toEqual({
      function: 'murmur3_x86_32',
      seed: 0,
      bits: 22,
      columns: ['dep_hour', 'dow', 'month', 'distance_mi', 'origin', 'destination'],
      categorical: ['dep_hour', 'dow', 'month', 'origin', 'destination'],
      numeric: ['distance_mi'],
      crosses: [['origin', 'destination']],
      labelColumn: 'label',
    });
    const order = ['dep_hour', 'dow', 'month', 'distance_mi', 'origin', 'destination'];
    lines.forEach((line, i) => {
      const cells = Object.fromEntries(line.split(',').map((cell, k) => [header[k]!, cell]));
      const expected = hashByHand(cells, 22, categorical, ['distance_mi'], [['origin', 'destination']], order);
      const start = read.rowStart[i]!;
      const end = read.rowStart[i + 1]!;
      const row = { indices: Array.from(read.indices.subarray(start, end)), values: Array.from(read.values.subarray(start, end)) };
      if (JSON.stringify(row) !== JSON.stringify(expected)) expect({ line: i + 2, row }).toEqual({ line: i + 2, row: expected });
      expect(read.labels[i]).toBe(Number(cells.label));
    });
    expect(read.nnz).toBeGreaterThanOrEqual(2000 * 6); // 7 entries a row unless two collide in 2^22 buckets
  });

  it('reads gzip, finds classes in any label, and names the line of a bad cell without leaving files', async () => {
    const csv = 'color,size,label\nred,1.5,cat\nblue,2,dog\n"green",0,cat\n';
    const output = join(directory.path, 'classes.dpt');
    const summary = await convertCsvToSparse(file('c.csv.gz', gzipSync(csv)), output, { bits: 10, categorical: ['color'], crosses: [] });
    expect(summary.classes.values).toEqual(['cat', 'dog']);
    expect(Array.from(readSparseDataset(output).labels)).toEqual([0, 1, 0]);
    const bad = file('bad.csv', 'color,size,label\nred,1.5,1\nblue,big,0\n');
    await expect(convertCsvToSparse(bad, join(directory.path, 'bad.dpt'), { bits: 10, categorical: ['color'], crosses: [] })).rejects.toThrow(
      `${bad}, line 3, column 2: column 'size' 'big' is not a finite number`,
    );
    const empty = file('empty-label.csv', 'color,size,label\nred,1.5,1\nblue,2, \n');
    await expect(convertCsvToSparse(empty, join(directory.path, 'e.dpt'), { bits: 10, categorical: ['color'], crosses: [] })).rejects.toThrow(
      `${empty}, line 3, column 3:`,
    );
    expect(readdirSync(directory.path).filter((name) => name.endsWith('.tmp') || name === 'bad.dpt')).toEqual([]);
  });
});

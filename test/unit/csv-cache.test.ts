// The CSV cache's stat-keyed index (issue #11 item 5): an unchanged CSV is read whole once per
// host, a touched or modified one is hashed again (and converted again when its bytes differ), a
// CSV written moments ago is not indexed, a damaged or replaced entry is checked whole, and
// concurrent opens of one CSV agree.

import { createHash } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { BinaryDataset } from '../../shared/binary-dataset.js';
import type { WholeRead } from '../../shared/csv-cache.js';
import { convertCsvToBinary } from '../../shared/csv-convert.js';
import { openDataFile } from '../../shared/data-file.js';
import { temporaryDirectory } from '../helpers/cli.js';
import { dptLayout, featureOffset } from '../helpers/dpt-bytes.js';

const directory = temporaryDirectory();
const previousCache = process.env.DPT_CACHE_DIR;
let cacheCount = 0;
/** A fresh cache folder per test, so no test sees another's entries. */
beforeEach(() => {
  process.env.DPT_CACHE_DIR = join(directory.path, `cache-${++cacheCount}`);
});
afterAll(() => {
  if (previousCache === undefined) delete process.env.DPT_CACHE_DIR;
  else process.env.DPT_CACHE_DIR = previousCache;
  directory.remove();
});

const HOUR_AGO_S = Date.now() / 1000 - 3600;

/** Writes a CSV of `rows` rows whose first feature is offset by `shift`; its mtime an hour ago unless `isFresh`. */
function writeCsv(name: string, rows: number, shift = 0, isFresh = false): string {
  const path = join(directory.path, name);
  writeFileSync(path, `a,b,c,label\n${Array.from({ length: rows }, (_, i) => `${(i + shift) % 10},${i / 4},${(i + 1) % 2},${i % 2}`).join('\n')}\n`);
  if (!isFresh) utimesSync(path, HOUR_AGO_S, HOUR_AGO_S);
  return path;
}

/** Opens `path` and returns the file and every whole read it made. */
async function openCounting(path: string, labelColumn?: string): Promise<{ identity: string; binaryPath: string; reads: WholeRead[] }> {
  const reads: WholeRead[] = [];
  const file = await openDataFile(path, labelColumn, undefined, '--data', (what) => reads.push(what));
  return { identity: file.identity, binaryPath: file.binaryPath, reads };
}

/** The identity of `csv` converted on its own, outside the cache (an independent computation). */
async function identityOf(csv: string, name: string): Promise<string> {
  return (await convertCsvToBinary(csv, join(directory.path, `${name}.dpt`))).identity;
}

describe('the CSV cache index', () => {
  it('reads an unchanged CSV whole once: a second open reads no file whole and finds the same entry', async () => {
    const csv = writeCsv('unchanged.csv', 300);
    const first = await openCounting(csv);
    expect(first.reads).toEqual(['hash', 'convert']);
    const second = await openCounting(csv);
    expect(second.reads).toEqual([]);
    expect(second.binaryPath).toBe(first.binaryPath);
    expect(second.identity).toBe(first.identity);
    expect(first.identity).toBe(await identityOf(csv, 'unchanged-reference'));
  });

  it('keeps one record per label choice', async () => {
    const csv = writeCsv('labels.csv', 100);
    expect((await openCounting(csv)).reads).toEqual(['hash', 'convert']);
    const byName = await openCounting(csv, 'c'); // label c: other rows, another entry
    expect(byName.reads).toEqual(['hash', 'convert']);
    expect((await openCounting(csv)).reads).toEqual([]);
    expect((await openCounting(csv, 'c')).reads).toEqual([]);
  });

  it('hashes a touched CSV again but reuses its entry when the bytes are the same', async () => {
    const csv = writeCsv('touched.csv', 200);
    const first = await openCounting(csv);
    utimesSync(csv, HOUR_AGO_S - 60, HOUR_AGO_S - 60);
    const touched = await openCounting(csv);
    expect(touched.reads).toEqual(['hash']);
    expect(touched.identity).toBe(first.identity);
    expect((await openCounting(csv)).reads).toEqual([]); // indexed again under the new stat
  });

  it('converts a CSV rewritten in place with the same size and mtime again (its ctime changed)', async () => {
    const csv = writeCsv('rewritten.csv', 200);
    const first = await openCounting(csv);
    const before = readFileSync(csv);
    writeCsv('rewritten.csv', 200, 3); // the same digits moved: the same size, other values
    expect(readFileSync(csv).length).toBe(before.length);
    expect(readFileSync(csv).equals(before)).toBe(false);
    const rewritten = await openCounting(csv);
    expect(rewritten.reads).toEqual(['hash', 'convert']);
    expect(rewritten.identity).not.toBe(first.identity);
    expect(rewritten.identity).toBe(await identityOf(csv, 'rewritten-reference'));
  });

  it('does not index a CSV written moments ago: its next open hashes it again', async () => {
    const csv = writeCsv('fresh.csv', 100, 0, true);
    expect((await openCounting(csv)).reads).toEqual(['hash', 'convert']);
    // Not indexed: the entry is found by hashing, and checked whole since no record vouches for it.
    expect((await openCounting(csv)).reads).toEqual(['hash', 'verify']);
  });

  it('checks an entry whole when it changed since it was recorded, and converts a damaged one again', async () => {
    const csv = writeCsv('damaged.csv', 50);
    const first = await openCounting(csv);
    const bytes = readFileSync(first.binaryPath);
    const at = featureOffset(dptLayout(bytes), 7, 1);
    bytes.writeUInt8(bytes[at]! ^ 0x04, at); // a flipped bit the header check cannot see
    writeFileSync(first.binaryPath, bytes);
    const lines: string[] = [];
    const reads: WholeRead[] = [];
    const second = await openDataFile(
      csv,
      undefined,
      (line) => lines.push(line),
      '--data',
      (what) => reads.push(what),
    );
    expect(reads).toEqual(['verify', 'convert']); // no re-hash: the CSV itself is unchanged
    expect(lines.join('\n')).toMatch(/cache entry .* is damaged \(.*content block 0 of 1 .*CRC-32.*\); converting .*damaged\.csv again/);
    expect(second.identity).toBe(first.identity);
    expect(readFileSync(second.binaryPath)[at]).toBe(bytes[at]! ^ 0x04); // the repaired bytes
    expect((await openCounting(csv)).reads).toEqual([]);
  });

  it('refuses a CSV that changes while it is read, keeps no entry of it, and opens it once written', async () => {
    const csv = writeCsv('changing.csv', 120);
    let isChanged = false;
    const opening = openDataFile(csv, undefined, undefined, '--data', (what) => {
      // Between the hash and the conversion: the entry would be named after bytes it may not hold.
      if (what === 'convert' && !isChanged) {
        isChanged = true;
        writeCsv('changing.csv', 121);
      }
    });
    await expect(opening).rejects.toThrow(/changing\.csv: the file changed while it was being read; open it again once it is written/);
    expect(isChanged).toBe(true);
    const cache = process.env.DPT_CACHE_DIR!; // set in beforeEach
    expect(readdirSync(cache).filter((name) => name.endsWith('.dpt') || name.endsWith('.tmp'))).toEqual([]);
    const reopened = await openCounting(csv);
    expect(reopened.reads).toEqual(['hash', 'convert']);
    expect(reopened.identity).toBe(await identityOf(csv, 'changing-reference'));
  });

  it('treats a garbled index record as absent', async () => {
    const csv = writeCsv('garbled.csv', 80);
    const first = await openCounting(csv);
    const index = join(process.env.DPT_CACHE_DIR!, 'index'); // set in beforeEach
    for (const name of readdirSync(index)) writeFileSync(join(index, name), '{"version":1,"sha256":"not a hash"');
    const second = await openCounting(csv);
    expect(second.reads).toEqual(['hash', 'verify']);
    expect(second.identity).toBe(first.identity);
  });

  it('gives concurrent opens of one CSV the same whole entry and leaves no temporary file', async () => {
    const csv = writeCsv('concurrent.csv', 5000);
    const opened = await Promise.all([openCounting(csv), openCounting(csv), openCounting(csv)]);
    const reference = await identityOf(csv, 'concurrent-reference');
    for (const file of opened) {
      expect(file.identity).toBe(reference);
      expect(file.binaryPath).toBe(opened[0]!.binaryPath);
    }
    const entry = BinaryDataset.open(opened[0]!.binaryPath);
    try {
      entry.verify();
      expect(entry.identity).toBe(reference);
    } finally {
      entry.close();
    }
    const cache = process.env.DPT_CACHE_DIR!; // set in beforeEach
    expect(readdirSync(cache).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(join(cache, 'index')).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});

describe('the cache entry of a 0/1 CSV (issue #12: labels of any value)', () => {
  it('keeps the name and the bytes it had before classes existed', async () => {
    const csv = join(directory.path, 'binary-fixture.csv');
    copyFileSync(join(import.meta.dirname, '..', 'fixtures', 'labels', 'binary.csv'), csv);
    const opened = await openDataFile(csv, undefined);
    // The entry name of cache version 1: SHA-256 of "1\0<SHA-256 of the CSV>\0<label choice>", 32 hex digits.
    const digest = createHash('sha256').update(readFileSync(csv)).digest('hex');
    const name = `${createHash('sha256').update(`1\0${digest}\0`).digest('hex').slice(0, 32)}.dpt`;
    expect(opened.binaryPath).toBe(join(process.env.DPT_CACHE_DIR!, name));
    expect(readFileSync(opened.binaryPath).equals(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'labels', 'binary.dpt')))).toBe(true);
    expect([opened.classes, opened.labelType, opened.dataBytes]).toEqual([{ isNumeric: true, values: [0, 1] }, 'uint8', 8 * (4 * 3 + 1)]);
  });
});

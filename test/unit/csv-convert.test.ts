import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBinaryDataset } from '../../shared/binary-dataset.js';
import { convertCsvToBinary } from '../../shared/csv-convert.js';
import { parseDataset } from '../../shared/dataset.js';
import { DatasetError } from '../../shared/errors.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());
let files = 0;

function file(name: string, content: string | Buffer): string {
  const path = join(directory.path, `${files++}-${name}`);
  writeFileSync(path, content);
  return path;
}

/** A CSV of `rows` rows well past one 64 KiB read chunk: quoted cells, CRLF, a BOM, blank lines. */
function bigCsv(rows: number): string {
  const lines = ['\ufeff"x, first",y_second,"label"'];
  for (let i = 0; i < rows; i++) {
    const a = (((i * 7919) % 2001) - 1000) / 7; // not exact in float32: rounding must match
    const b = `${(i % 13) - 6}e-${i % 30}`;
    lines.push(i % 5 === 0 ? `"${a}",${b},"${i % 2}"` : `${a},"${b}",${i % 2}`);
    if (i % 1000 === 999) lines.push('');
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** `text` with line `index` (0-based, CRLF-separated) replaced by edit(line). */
function editLine(text: string, index: number, edit: (line: string) => string): string {
  const lines = text.split('\r\n');
  lines[index] = edit(lines[index] as string);
  return lines.join('\r\n');
}

async function convertFailure(input: string, output: string): Promise<DatasetError> {
  try {
    await convertCsvToBinary(input, output);
  } catch (error) {
    if (error instanceof DatasetError) return error;
    throw error;
  }
  throw new Error('expected a DatasetError');
}

function parseFailure(path: string): DatasetError {
  try {
    parseDataset(path, readFileSync(path));
  } catch (error) {
    if (error instanceof DatasetError) return error;
    throw error;
  }
  throw new Error('expected a DatasetError');
}

describe('convertCsvToBinary', () => {
  it.each([
    ['plain', false],
    ['gzip', true],
  ])('gives the same float32 bits, labels and names as shared/dataset.ts (%s)', async (_name, isGzip) => {
    const text = bigCsv(20_000);
    const input = file(isGzip ? 'big.csv.gz' : 'big.csv', isGzip ? gzipSync(text) : text);
    const output = join(directory.path, `${files++}-big.dpt`);
    const progress: number[] = [];
    const summary = await convertCsvToBinary(input, output, { onProgress: (p) => progress.push(p.bytesRead / p.totalBytes) });
    const expected = parseDataset(input, Buffer.from(text));
    const { dataset, x, y } = loadBinaryDataset(output);
    expect(summary.rows).toBe(20_000);
    expect([dataset.featureNames, dataset.labelName]).toEqual([expected.featureNames, expected.labelName]);
    expect(new Uint32Array(x.buffer)).toEqual(new Uint32Array(expected.x.buffer.slice(0, expected.x.byteLength)));
    expect(y).toEqual(expected.y);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(1);
  });

  it('takes the label column by name or index', async () => {
    const input = file('label.csv', 'y,a,b\n1,2,3\n0,4,5\n');
    for (const labelColumn of ['y', '0', '-3']) {
      const output = join(directory.path, `${files++}-label.dpt`);
      await convertCsvToBinary(input, output, { labelColumn });
      const { dataset, x, y } = loadBinaryDataset(output);
      expect([dataset.featureNames, dataset.labelName, Array.from(x), Array.from(y)]).toEqual([['a', 'b'], 'y', [2, 3, 4, 5], [1, 0]]);
    }
  });

  it.each([
    ['a non-numeric cell', (text: string) => text.replace(/\r\n(-?[\d.]+),/, '\r\nabc,'), /column 'x, first' 'abc' is not a finite number/],
    ['a label outside {0, 1} far into the file', (text: string) => editLine(text, 15_000, (line) => line.replace(/"?[01]"?$/, '2')), /label '2'/],
    ['a missing column after the first chunk', (text: string) => `${text.slice(0, 200_000)}\r\n1,2\r\n${text.slice(200_000)}`, /expected 3 columns/],
    ['a quote left open after the first chunk', (text: string) => `${text}"1.5,2,0\r\n`, /never closed/],
    ['a value beyond float32', (text: string) => `${text}1e39,0,1\r\n`, /outside the float32 range/],
  ])('rejects %s with the line and column shared/dataset.ts names', async (_name, edit, message) => {
    const text = edit(bigCsv(20_000));
    const input = file('bad.csv', text);
    const output = join(directory.path, `${files++}-bad.dpt`);
    const error = await convertFailure(input, output);
    const expected = parseFailure(input);
    expect(error.message).toMatch(message);
    expect([error.code, error.file, error.line, error.column, error.message]).toEqual([expected.code, input, expected.line, expected.column, expected.message]);
    expect(existsSync(output)).toBe(false);
    expect(existsSync(`${output}.${process.pid}.tmp`)).toBe(false);
  });

  it.each([
    ['an empty file', '', /the file is empty/],
    ['a header without rows', 'a,label\n\n', /header but no data rows/],
    ['a broken gzip stream', gzipSync(`a,label\n${'1,0\n'.repeat(5000)}`).subarray(0, 60), /not a valid gzip file/],
  ])('rejects %s', async (_name, content, message) => {
    const input = file('edge.csv', content);
    const error = await convertFailure(input, join(directory.path, `${files++}-edge.dpt`));
    expect(error.file).toBe(input);
    expect(error.message).toMatch(message);
  });
});

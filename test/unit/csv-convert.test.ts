import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BinaryDataset, loadBinaryDataset, loadBinaryDatasetClasses } from '../../shared/binary-dataset.js';
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

async function convertFailure(input: string, output: string, maxClasses?: number): Promise<DatasetError> {
  try {
    await convertCsvToBinary(input, output, { maxClasses });
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
    expect([summary.labelType, dataset.sections.version]).toEqual(['uint8', 1]); // 0/1 labels: version 1, as before
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

describe('convertCsvToBinary with labels of any value (issue #12)', () => {
  const fixtures = join(import.meta.dirname, '..', 'fixtures', 'labels');

  it('converts a 0/1 CSV to the very bytes of the converter before classes existed (version 1, same identity)', async () => {
    const output = join(directory.path, `${files++}-binary.dpt`);
    const summary = await convertCsvToBinary(join(fixtures, 'binary.csv'), output);
    // binary.dpt was written by the converter of commit dcc6102 (test/fixtures/labels/README.md).
    expect(readFileSync(output).equals(readFileSync(join(fixtures, 'binary.dpt')))).toBe(true);
    expect(summary.identity).toBe('67aff39d7c687920a489b11f64cf5678e5bed796139767ea6616e5c8827c8296');
    expect([summary.classes, summary.labelType]).toEqual([{ isNumeric: true, values: [0, 1] }, 'uint8']);
  });

  it('takes string labels as classes in code point order, over several batches', async () => {
    const species = ['cat', 'dog', 'ému', 'a, b', 'Zebra'];
    const rows = 30_000; // several append batches
    const lines = ['x,"the label",z'];
    for (let i = 0; i < rows; i++) {
      const label = species[(i * 31) % species.length]!;
      lines.push(`${i / 8},${label.includes(',') ? `"${label}"` : i % 3 === 0 ? ` ${label} ` : label},${-i}`);
    }
    const input = file('species.csv', `${lines.join('\n')}\n`);
    const output = join(directory.path, `${files++}-species.dpt`);
    const summary = await convertCsvToBinary(input, output, { labelColumn: 'the label' });
    const order = ['Zebra', 'a, b', 'cat', 'dog', 'ému']; // by code point: 'Z' < 'a' < 'c' < 'd' < 'é'
    expect([summary.classes, summary.labelType]).toEqual([{ isNumeric: false, values: order }, 'uint16']);
    const { dataset, x, y } = loadBinaryDatasetClasses(output);
    expect([dataset.rows, dataset.featureNames, dataset.labelName]).toEqual([rows, ['x', 'z'], 'the label']);
    for (let i = 0; i < rows; i += 997) {
      expect(y[i], `row ${i}`).toBe(order.indexOf(species[(i * 31) % species.length]!));
      expect([x[2 * i], x[2 * i + 1]]).toEqual([Math.fround(i / 8), i === 0 ? 0 : -i]); // the CSV spells -0 as 0
    }
    expect(Array.from(y).every((k, i) => k === order.indexOf(species[(i * 31) % species.length]!))).toBe(true);
  });

  it('sorts numeric labels by value (1 and 1.0 one class), and writes −1/+1 as version 2', async () => {
    const numeric = file('numeric.csv', 'a,label\n1,3\n2,10\n3,2.5\n4,1\n5,1.0\n6, 10 \n');
    const output = join(directory.path, `${files++}-numeric.dpt`);
    const summary = await convertCsvToBinary(numeric, output);
    expect(summary.classes).toEqual({ isNumeric: true, values: [1, 2.5, 3, 10] });
    expect(Array.from(loadBinaryDatasetClasses(output).y)).toEqual([2, 3, 1, 0, 0, 3]);
    const signs = file('signs.csv', 'a,label\n1,-1\n2,+1\n3,1\n');
    const signsOut = join(directory.path, `${files++}-signs.dpt`);
    expect((await convertCsvToBinary(signs, signsOut)).labelType).toBe('uint16');
    const dataset = BinaryDataset.open(signsOut);
    expect([dataset.classes, dataset.sections.version]).toEqual([{ isNumeric: true, values: [-1, 1] }, 2]);
    dataset.close();
  });

  it.each([
    [
      'more classes than --max-classes',
      (line: string) => line.replace(/"?[01]"?$/, 'third'),
      2,
      /label 'third' in column 'label': .*at least 3 distinct classes, more than --max-classes 2 allows/,
    ],
    ['an empty label cell', (line: string) => line.replace(/"?[01]"?$/, ' '), undefined, /the label in column 'label' is an empty cell/],
  ])('refuses %s far into the file naming the line and column shared/dataset.ts names, leaving no file', async (_name, edit, maxClasses, message) => {
    const text = editLine(bigCsv(20_000), 15_000, edit);
    const input = file('classes.csv', text);
    const output = join(directory.path, `${files++}-classes.dpt`);
    const error = await convertFailure(input, output, maxClasses);
    const expected = parseFailure(input); // shared/dataset.ts refuses that label too (not 0 or 1): same place
    expect([error.code, error.file, error.line, error.column]).toEqual(['DPT_DATASET', input, expected.line, expected.column]);
    expect(error.line).toBe(15_001);
    expect(error.message).toMatch(message);
    expect(existsSync(output)).toBe(false);
  });
});

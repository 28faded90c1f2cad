import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetError } from '../../shared/errors.js';
import { convertLibsvmToSparse } from '../../shared/libsvm.js';
import { createRandom } from '../../shared/rng.js';
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

/** What the test expects of a file, parsed here independently of shared/libsvm.ts (strings and split). */
interface Parsed {
  readonly rows: { indices: number[]; values: number[]; label: string }[];
  readonly dims: number;
}

function parseIndependently(text: string): Parsed {
  const rows: Parsed['rows'] = [];
  let dims = 0;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '').replace(/#.*$/, '').trim();
    if (line === '') continue;
    const [label, ...entries] = line.split(/[ \t]+/);
    const indices: number[] = [];
    const values: number[] = [];
    for (const entry of entries) {
      const [index, value] = entry.split(':');
      const j = Number.parseInt(index!, 10);
      dims = Math.max(dims, j);
      const v = Math.fround(Number.parseFloat(value!));
      if (v !== 0) {
        indices.push(j - 1);
        values.push(v);
      }
    }
    rows.push({ indices, values, label: label! });
  }
  return { rows, dims };
}

/** A LIBSVM text of `rows` rows: random indices and values in many spellings, comments, blank lines, tabs, CRLF. */
function randomLibsvm(rows: number, seed: number, labels: readonly string[]): string {
  const random = createRandom(seed, 0);
  const lines: string[] = ['# a LIBSVM file written by the test'];
  for (let i = 0; i < rows; i++) {
    const parts = [labels[Math.floor(random() * labels.length)]!];
    let j = 0;
    const nnz = Math.floor(random() * 12);
    for (let k = 0; k < nnz; k++) {
      j += 1 + Math.floor(random() * 40);
      const kind = Math.floor(random() * 6);
      const value =
        kind === 0
          ? '1'
          : kind === 1
            ? (random() * 2 - 1).toFixed(6)
            : kind === 2
              ? `${(random() * 10).toFixed(3)}e-${Math.floor(random() * 8)}`
              : kind === 3
                ? '0'
                : kind === 4
                  ? String(random() * 1e6 - 5e5) // 16-17 significant digits: the slow path
                  : `-.${Math.floor(random() * 1000)}`;
      parts.push(`${j}:${value}`);
    }
    const separator = i % 7 === 0 ? '\t' : i % 11 === 0 ? '  ' : ' ';
    let line = parts.join(separator);
    if (i % 9 === 0) line += ' # comment: 3:4 here is ignored';
    if (i % 13 === 0) line = `  ${line}  `;
    lines.push(line);
    if (i % 50 === 49) lines.push('', '   ', '# only a comment');
  }
  return `${lines.join(seed % 2 === 0 ? '\n' : '\r\n')}\n`;
}

function expectSameRows(path: string, expected: Parsed, labelOf: (label: string) => number): void {
  const read = readSparseDataset(path);
  expect(read.rows).toBe(expected.rows.length);
  expect(read.dims).toBe(expected.dims);
  // Flattened once and compared whole: a per-row expect costs seconds on 60,000 rows.
  const rowStart = [0];
  for (const row of expected.rows) rowStart.push(rowStart.at(-1)! + row.indices.length);
  expect(Array.from(read.rowStart)).toEqual(rowStart);
  expect(Array.from(read.indices)).toEqual(expected.rows.flatMap((row) => row.indices));
  expect(Array.from(read.values)).toEqual(expected.rows.flatMap((row) => row.values));
  expect(Array.from(read.labels)).toEqual(expected.rows.map((row) => labelOf(row.label)));
  expect(read.nnz).toBe(rowStart.at(-1));
}

async function failure(text: string | Buffer, maxClasses?: number): Promise<{ error: DatasetError; path: string }> {
  const path = file('bad.svm', text);
  const output = join(directory.path, `${files++}-out.dpt`);
  const error = await convertLibsvmToSparse(path, output, { maxClasses }).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DatasetError);
  expect(existsSync(output)).toBe(false);
  return { error: error as DatasetError, path };
}

describe('convertLibsvmToSparse', () => {
  it('converts a file with comments, blank lines, tabs and zeros to the rows an independent parser finds (−1/+1 labels)', async () => {
    const text = randomLibsvm(3000, 2, ['-1', '+1', '1']);
    const input = file('signed.svm', text);
    const output = join(directory.path, 'signed.dpt');
    const summary = await convertLibsvmToSparse(input, output);
    const expected = parseIndependently(text);
    expect(summary.classes.values).toEqual([-1, 1]);
    expect(summary.labelType).toBe('uint8');
    expectSameRows(output, expected, (label) => (Number(label) === 1 ? 1 : 0));
    expect(readSparseDataset(output).classes.values).toEqual([-1, 1]);
  });

  it('reads CRLF lines and lines that cross read chunks (a file of several MiB)', async () => {
    const text = randomLibsvm(60_000, 3, ['0', '1']);
    expect(text.length).toBeGreaterThan(2 << 20);
    const input = file('big.svm', text);
    const output = join(directory.path, 'big.dpt');
    await convertLibsvmToSparse(input, output);
    expectSameRows(output, parseIndependently(text), Number);
  });

  it('reads a gzip file as its content', async () => {
    const text = randomLibsvm(500, 4, ['0', '1']);
    const output = join(directory.path, 'gz.dpt');
    await convertLibsvmToSparse(file('data.svm.gz', gzipSync(text)), output);
    expectSameRows(output, parseIndependently(text), Number);
  });

  it('keeps 0/1 labels as the classes [0, 1] and other labels as classes for softmax (uint16 indices)', async () => {
    const binary = join(directory.path, 'binary.dpt');
    const summary = await convertLibsvmToSparse(file('b.svm', '0 1:1\n1 2:1\n1.0 3:2\n'), binary);
    expect(summary.classes.values).toEqual([0, 1]);
    expect(Array.from(readSparseDataset(binary).labels)).toEqual([0, 1, 1]);
    const text = randomLibsvm(400, 6, ['3', '1', '2', '10']);
    const multi = join(directory.path, 'multi.dpt');
    const classes = await convertLibsvmToSparse(file('m.svm', text), multi);
    expect(classes.classes.values).toEqual([1, 2, 3, 10]);
    expect(classes.labelType).toBe('uint16');
    expectSameRows(multi, parseIndependently(text), (label) => [1, 2, 3, 10].indexOf(Number(label)));
    const mixed = await convertLibsvmToSparse(file('mixed.svm', '-1 1:1\n0 1:2\n1 2:1\n'), join(directory.path, 'mixed.dpt'));
    expect(mixed.classes.values).toEqual([-1, 0, 1]);
  });

  it('sets D to the largest index, even when its value is 0 (weight j − 1 belongs to index j)', async () => {
    const output = join(directory.path, 'dims.dpt');
    const summary = await convertLibsvmToSparse(file('dims.svm', '1 2:1 7:0\n0\n0 3:-2.5\n'), output);
    expect(summary.dims).toBe(7);
    const read = readSparseDataset(output);
    expect(Array.from(read.rowStart)).toEqual([0, 1, 1, 2]);
    expect(Array.from(read.indices)).toEqual([1, 2]);
    expect(Array.from(read.values)).toEqual([1, -2.5]);
  });

  it('names file, line and column of every bad line, and leaves no output or temporary file', async () => {
    const cases: [string, number, number, RegExp][] = [
      ['1 1:1\n0 3:1 2:1\n', 2, 7, /index 2 follows index 3/],
      ['1 1:1\n0 3:1 3:2\n', 2, 7, /index 3 appears twice/],
      ['1 qid:3 1:1\n', 1, 3, /qid/],
      ['1 0:1\n', 1, 3, /index 0 is outside 1 to 4294967295/],
      ['1 4294967296:1\n', 1, 3, /outside 1 to 4294967295/],
      ['1 1:1 2 3:1\n', 1, 7, /'2' is not index:value/],
      ['1 1:1 x:1\n', 1, 7, /'x:1' is not index:value/],
      ['0 1:1\n1 2:abc\n', 2, 5, /value of index 2 'abc' is not a finite decimal number/],
      ['1 2:\n', 1, 5, /value of index 2 is empty/],
      ['1 2:1e39\n', 1, 5, /outside the float32 range/],
      ['1 2:NaN\n', 1, 5, /not a finite decimal number/],
      ['# header\n\nyes 1:1\n', 3, 1, /label 'yes' is not a finite decimal number/],
      ['1 1:1\r\n  1:2 3:4\r\n', 2, 3, /starts with '1:2', not with a label/],
    ];
    for (const [text, line, column, problem] of cases) {
      const { error, path } = await failure(text);
      expect(error.code).toBe('DPT_DATASET');
      expect(error.exitCode).toBe(2);
      expect({ text, file: error.file, line: error.line, column: error.column }).toEqual({ text, file: path, line, column });
      expect(error.message).toMatch(problem);
      expect(error.message.startsWith(`${path}, line ${line}, column ${column}: `)).toBe(true);
    }
    expect(readdirSync(directory.path).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('names the line of the first label past --max-classes', async () => {
    const { error } = await failure('1 1:1\n2 1:1\n3 1:1\n1 1:1\n', 2);
    expect({ line: error.line, column: error.column }).toEqual({ line: 3, column: 1 });
    expect(error.message).toMatch(/--max-classes/);
  });

  it('refuses a file without rows or without any feature', async () => {
    expect((await failure('# nothing\n\n')).error.message).toMatch(/no data rows/);
    expect((await failure('1\n0 # 3:1\n')).error.message).toMatch(/D would be 0/);
  });
});

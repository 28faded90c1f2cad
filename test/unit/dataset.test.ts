import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClassList } from '../../shared/classes.js';
import { type ClassReadOptions, parseClassDataset, parseDataset, readClassDataset, readDataset } from '../../shared/dataset.js';
import { DatasetError } from '../../shared/errors.js';
import { temporaryDirectory } from '../helpers/cli.js';

const parse = (text: string, labelColumn?: string) => parseDataset('t.csv', Buffer.from(text, 'utf8'), { labelColumn });

function failure(text: string, labelColumn?: string): DatasetError {
  try {
    parse(text, labelColumn);
  } catch (error) {
    if (error instanceof DatasetError) return error;
    throw error;
  }
  throw new Error('expected a DatasetError');
}

describe('parseDataset', () => {
  it('reads features row-major as float32 and the last column as the label', () => {
    const data = parse('a,b,label\n1,2.5,0\n-3,4e2,1\n');
    expect(data.featureNames).toEqual(['a', 'b']);
    expect(data.labelName).toBe('label');
    expect(Array.from(data.x)).toEqual([1, 2.5, -3, 400]);
    expect(Array.from(data.y)).toEqual([0, 1]);
    expect(data.identity).toMatch(/^[0-9a-f]{64}$/);
  });

  it('handles CRLF, a UTF-8 BOM, blank trailing lines and quoted fields', () => {
    const data = parse('\ufeff"a","b, with comma",y\r\n"1",2,"1"\r\n3,"4",0\r\n\r\n\n  \n');
    expect(data.featureNames).toEqual(['a', 'b, with comma']);
    expect(Array.from(data.x)).toEqual([1, 2, 3, 4]);
    expect(Array.from(data.y)).toEqual([1, 0]);
  });

  it('reads a quoted header spanning lines and keeps counting lines right after it', () => {
    const error = failure('"multi\nline",y\n1,0\n2,x\n');
    expect([error.line, error.column]).toEqual([4, 2]);
  });

  it('takes the label column by name or by 0-based index', () => {
    expect(Array.from(parse('y,a,b\n1,2,3\n', 'y').x)).toEqual([2, 3]);
    expect(Array.from(parse('y,a,b\n1,2,3\n', '0').y)).toEqual([1]);
    expect(parse('a,y,b\n2,0,3\n', '-2').featureNames).toEqual(['a', 'b']);
  });

  it.each([
    ['an empty file', '', undefined, undefined, /empty/],
    ['a header only', 'a,label\n', 2, undefined, /no data rows/],
    ['a non-numeric cell', 'a,b,label\n1,2,0\n3,abc,1\n', 3, 2, /'abc' is not a finite number/],
    ['an empty cell', 'a,b,label\n1,,0\n', 2, 2, /column 'b' is empty/],
    ['too few columns', 'a,b,label\n1,2,0\n1,0\n', 3, 3, /expected 3 columns as in the header, found 2/],
    ['too many columns', 'a,b,label\n1,2,0,5\n', 2, 4, /expected 3 columns as in the header, found 4/],
    ['a label outside {0,1}', 'a,label\n1,0\n2,2\n', 3, 2, /label '2' in column 'label' must be 0 or 1/],
    ['an empty label', 'a,label\n1,\n', 2, 2, /label an empty cell/],
    ['NaN', 'a,label\nNaN,1\n', 2, 1, /'NaN' is not a finite number/],
    ['Infinity', 'a,label\n1,0\n-Infinity,1\n', 3, 1, /'-Infinity' is not a finite number/],
    ['a hexadecimal number', 'a,label\n0x10,1\n', 2, 1, /not a finite number/],
    ['a value beyond float32', 'a,label\n1e39,1\n', 2, 1, /outside the float32 range/],
    ['a quote left open', 'a,label\n"1,0\n', 2, 1, /never closed/],
    ['a duplicate column name', 'a,a,label\n1,2,0\n', 1, 2, /twice/],
  ])('rejects %s naming file, line and column', (_name, text, line, column, message) => {
    const error = failure(text);
    expect(error.code).toBe('DPT_DATASET');
    expect(error.exitCode).toBe(2);
    expect(error.file).toBe('t.csv');
    expect(error.line).toBe(line);
    expect(error.column).toBe(column);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^t\.csv/);
  });

  it('rejects a label column that does not exist', () => {
    expect(failure('a,b\n1,0\n', 'nope').message).toMatch(/no column named 'nope'/);
    expect(failure('a,b\n1,0\n', '5').message).toMatch(/outside the 2 columns/);
  });
});

const parseClasses = (text: string, options: ClassReadOptions = {}) => parseClassDataset('c.csv', Buffer.from(text, 'utf8'), options);

function classFailure(text: string, options: ClassReadOptions = {}): DatasetError {
  try {
    parseClasses(text, options);
  } catch (error) {
    if (error instanceof DatasetError) return error;
    throw error;
  }
  throw new Error('expected a DatasetError');
}

describe('parseClassDataset', () => {
  it('discovers string classes, sorted by code point, and maps each row to its index', () => {
    const data = parseClasses('a,species,b\n1,virginica,2\n3, setosa ,4\n5,"versicolor, wild",6\n7,setosa,8\n', { labelColumn: 'species' });
    expect(data.classes).toEqual({ isNumeric: false, values: ['setosa', 'versicolor, wild', 'virginica'] });
    expect(Array.from(data.y)).toEqual([2, 0, 1, 0]);
    expect(data.labelName).toBe('species');
    expect(data.featureNames).toEqual(['a', 'b']);
    expect(Array.from(data.x)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('discovers numeric classes by value', () => {
    const data = parseClasses('a,y\n1,10\n2,2\n3,2.0\n4,-1\n');
    expect(data.classes).toEqual({ isNumeric: true, values: [-1, 2, 10] });
    expect(Array.from(data.y)).toEqual([2, 1, 1, 0]);
  });

  it("maps labels to a model's classes, in the model's order, numeric ones by value", () => {
    const strings: ClassList = { isNumeric: false, values: ['b', 'a', 'c'] };
    expect(Array.from(parseClasses('x,y\n1,a\n2,c\n', { classes: strings }).y)).toEqual([1, 2]);
    const numbers: ClassList = { isNumeric: true, values: [1, 2, 3] };
    expect(Array.from(parseClasses('x,y\n1,3\n2,1.0\n3,2e0\n', { classes: numbers }).y)).toEqual([2, 0, 1]);
  });

  it("refuses a label that is not one of the model's classes, naming file, line and column", () => {
    const error = classFailure('x,y,z\n1,a,2\n\n1,d,2\n', { labelColumn: 'y', classes: { isNumeric: false, values: ['a', 'b'] } });
    expect([error.code, error.file, error.line, error.column]).toEqual(['DPT_DATASET', 'c.csv', 4, 2]);
    expect(error.message).toMatch(/^c\.csv, line 4, column 2: label 'd' in column 'y' is not one of the model's classes \('a', 'b'\)$/);
    // A number is not a string class, and '1.5' is not numeric class 1.
    expect(classFailure('x,y\n1,1.5\n', { classes: { isNumeric: true, values: [1, 2] } }).message).toMatch(/line 2, column 2: label '1.5'.*\(1, 2\)/);
  });

  it.each([
    ['an empty label', 'x,y\n1,a\n2, \n', {}, 3, 2, /label in column 'y' is an empty cell/],
    ['a bad feature cell', 'x,y\n1,a\nz,b\n', {}, 3, 1, /column 'x' 'z' is not a finite number/],
    ['a short row', 'x,w,y\n1,2,a\n1,b\n', {}, 3, 3, /expected 3 columns/],
    ['more classes than allowed', 'x,y\n1,a\n2,b\n3,c\n', { maxClasses: 2 }, 4, 2, /at least 3 distinct classes, more than --max-classes 2/],
  ])('refuses %s naming file, line and column', (_name, text, options, line, column, message) => {
    const error = classFailure(text, options);
    expect([error.file, error.line, error.column]).toEqual(['c.csv', line, column]);
    expect(error.message).toMatch(message);
  });
});

describe('readDataset and readClassDataset on files', () => {
  const directory = temporaryDirectory();
  afterAll(() => directory.remove());
  const TEXT = 'a,b,label\n1,2.5,0\n-3,4e2,1\n7,8,1\n';
  const write = (name: string, bytes: Buffer): string => {
    const path = join(directory.path, name);
    writeFileSync(path, bytes);
    return path;
  };
  const thrown = (read: () => unknown): DatasetError => {
    try {
      read();
    } catch (error) {
      if (error instanceof DatasetError) return error;
      throw error;
    }
    throw new Error('expected a DatasetError');
  };

  it('reads a gzip file as the plain file it holds, whatever its name (as training does)', () => {
    const plain = readDataset(write('plain.csv', Buffer.from(TEXT)));
    for (const name of ['packed.csv.gz', 'packed-without-suffix.csv']) {
      const packed = readDataset(write(name, gzipSync(TEXT)));
      expect(packed.featureNames).toEqual(plain.featureNames);
      expect(Array.from(packed.x)).toEqual([1, 2.5, -3, 400, 7, 8]);
      expect(Array.from(packed.y)).toEqual([0, 1, 1]);
      // The identity is the CSV text's, so equal to the plain file's.
      expect(packed.identity).toBe(plain.identity);
    }
    const classes = readClassDataset(write('classes.csv.gz', gzipSync(TEXT)));
    expect(classes.classes.values).toEqual([0, 1]);
    expect(Array.from(classes.y)).toEqual([0, 1, 1]);
  });

  it('refuses a truncated gzip file with one line naming the file, not its bytes', () => {
    const packed = gzipSync(TEXT);
    const path = write('cut.csv.gz', packed.subarray(0, packed.length - 12));
    const error = thrown(() => readDataset(path));
    expect(error.code).toBe('DPT_DATASET');
    expect(error.message).toMatch(/cut\.csv\.gz: not a valid gzip file/);
  });

  it('keeps an error about a binary file one printable line of bounded length', () => {
    // A zip's first bytes, then 4000 fixed pseudo-random bytes (a multiplicative hash of the offset).
    const noise = Buffer.from(Array.from({ length: 4000 }, (_, i) => (Math.imul(i + 1, 2_654_435_761) >>> 13) & 0xff));
    const junk = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x0a, 0x0d, 0x00, 0x1b]), noise]);
    const error = thrown(() => readDataset(write('archive.csv', junk), { labelColumn: 'label' }));
    expect(error.code).toBe('DPT_DATASET');
    expect(error.message).toMatch(/^\S*archive\.csv, line 1/);
    expect(error.message.length).toBeLessThanOrEqual(1100);
    // No control character (a line break, an escape sequence for the terminal) survives.
    expect([...error.message].filter((character) => character.charCodeAt(0) < 0x20 || character.charCodeAt(0) === 0x7f)).toEqual([]);
  });
});

describe('DatasetError', () => {
  it('escapes control characters and cuts a long problem, and doing it again changes nothing', () => {
    const error = new DatasetError('f.csv', 3, 2, `cell 'a\nb\u001b[31m' ${'x'.repeat(5000)}`);
    expect(error.message.startsWith("f.csv, line 3, column 2: cell 'a\\u000ab\\u001b[31m' xxx")).toBe(true);
    expect(error.message).toMatch(/… \(cut at 940 of 5\d{3} characters\)$/);
    const problem = error.message.slice('f.csv, line 3, column 2: '.length);
    expect(new DatasetError('f.csv', 3, 2, problem).message).toBe(error.message);
  });
});

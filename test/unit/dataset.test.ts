import { describe, expect, it } from 'vitest';
import { parseDataset } from '../../shared/dataset.js';
import { DatasetError } from '../../shared/errors.js';

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

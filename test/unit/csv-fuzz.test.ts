// A fuzz test of the CSV reader: random bytes, huge lines, non-UTF-8, quotes left open, mixed
// line endings. Every input either parses into a consistent data set or gives a DatasetError
// (exit code 2) naming the file and a line; never another exception, never a hang.

import { describe, expect, it } from 'vitest';
import { parseDataset } from '../../shared/dataset.js';
import { DatasetError } from '../../shared/errors.js';

let state = 77;
function next(n: number): number {
  state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
  return state % n;
}

const PIECES = [
  '1',
  '0',
  '-2.5',
  '3e4',
  ',',
  ',',
  '\n',
  '\r\n',
  '\r',
  '"',
  '""',
  ' ',
  'x',
  'NaN',
  'Infinity',
  '\ufeff',
  'é',
  '1e39',
  '.',
  '-',
  '\t',
  'a,b,label\n',
];

function randomInput(): Buffer {
  switch (next(5)) {
    case 0:
      return Buffer.from(Array.from({ length: next(300) }, () => next(256))); // random bytes, mostly not UTF-8
    case 1:
      return Buffer.from(`a,b,label\n${Array.from({ length: next(40) }, () => PIECES[next(PIECES.length)]).join('')}`);
    case 2:
      return Buffer.from(`a,b,label\n1,2,0\n${'9'.repeat(200_000 + next(100_000))},1,0\n`); // a huge line
    case 3: {
      const rows = Array.from({ length: 1 + next(20) }, () => `${next(100)},${next(100) / 8},${next(2)}`);
      return Buffer.from(`a,b,label${['\n', '\r\n'][next(2)]}${rows.map((row) => row + ['\n', '\r\n', '\r'][next(3)]).join('')}`); // mixed endings
    }
    default:
      return Buffer.concat([Buffer.from('a,"b,label\n1,2,0\n'), Buffer.from([0xff, 0xfe, 0xc3])]); // an open quote, invalid UTF-8
  }
}

describe('the CSV reader under fuzzing', () => {
  it('parses or rejects 3,000 random inputs with a DatasetError naming file and line', () => {
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const input = randomInput();
      try {
        const data = parseDataset('fuzz.csv', input);
        expect(data.x.length).toBe(data.rows * data.features);
        expect(data.y.length).toBe(data.rows);
        for (const value of data.x) expect(Number.isFinite(value)).toBe(true);
        for (const label of data.y) expect(label === 0 || label === 1).toBe(true);
        parsed++;
      } catch (error) {
        if (!(error instanceof DatasetError)) throw new Error(`input ${i} threw ${String(error)}: ${JSON.stringify(input.toString('latin1').slice(0, 200))}`);
        expect(error.exitCode).toBe(2);
        expect(error.message.startsWith('fuzz.csv')).toBe(true);
        if (error.line === undefined) expect(error.message).toMatch(/empty|header/);
        rejected++;
      }
    }
    expect(parsed).toBeGreaterThan(50);
    expect(rejected).toBeGreaterThan(100);
  });
});

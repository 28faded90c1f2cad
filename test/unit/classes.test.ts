import { describe, expect, it } from 'vitest';
import { ClassCollector, compareCodePoints, createClassIndex, DEFAULT_MAX_CLASSES, discoverClasses, isBinaryClasses } from '../../shared/classes.js';
import { ConfigError } from '../../shared/errors.js';

describe('discoverClasses', () => {
  it('sorts numeric labels by value, not as text', () => {
    expect(discoverClasses(['2', '10', '1.5', ' 10 ', '-3', '1e1', '2'])).toEqual({ isNumeric: true, values: [-3, 1.5, 2, 10] });
  });

  it('treats numeric spellings of one value as one class', () => {
    const classes = discoverClasses(['1', '1.0', '01', '0', '-0']);
    expect(classes).toEqual({ isNumeric: true, values: [0, 1] });
    const index = createClassIndex(classes);
    expect(['1.00', ' 0 ', '-0', '1', '2', 'one'].map(index)).toEqual([1, 0, 0, 1, -1, -1]);
  });

  it('sorts string labels by code point: upper case before lower case, no locale', () => {
    expect(discoverClasses(['b', 'a', 'B', 'A', 'é', 'e', 'a'])).toEqual({ isNumeric: false, values: ['A', 'B', 'a', 'b', 'e', 'é'] });
  });

  it('orders by code point where UTF-16 unit order differs (astral characters)', () => {
    const astral = '\u{1F600}'; // U+1F600 is stored as 0xD83D 0xDE00, below U+FFFD in unit order
    expect(discoverClasses([astral, '\uFFFD', 'z']).values).toEqual(['z', '\uFFFD', astral]);
    expect(compareCodePoints('ab', 'a')).toBeGreaterThan(0);
    expect(compareCodePoints('a', 'ab')).toBeLessThan(0);
    expect(compareCodePoints('a\u{1F600}', 'a\u{1F600}')).toBe(0);
  });

  it('falls back to code point order for mixed labels, keeping each spelling', () => {
    const classes = discoverClasses(['10', '2', 'cat', '1.0', '1']);
    expect(classes).toEqual({ isNumeric: false, values: ['1', '1.0', '10', '2', 'cat'] });
    const index = createClassIndex(classes);
    expect(['1', ' 1.0', '2', 'cat', 'dog', '01'].map(index)).toEqual([0, 1, 3, 4, -1, -1]);
  });

  it('treats non-decimal and non-finite number spellings as strings', () => {
    for (const odd of ['0x10', 'Infinity', 'NaN', '1e999', '']) {
      expect(discoverClasses(['1', odd]).isNumeric).toBe(false);
    }
  });

  it('maps each label to the index of its class, duplicates included', () => {
    const cells = ['dog', 'cat', 'dog', 'bird', 'cat'];
    const index = createClassIndex(discoverClasses(cells));
    expect(cells.map(index)).toEqual([2, 1, 2, 0, 1]);
  });
});

describe('isBinaryClasses', () => {
  it('holds for labels that are exactly the numbers 0 and 1, in any spelling', () => {
    expect(isBinaryClasses(discoverClasses(['1', '0', '1.0', '0.0']))).toBe(true);
    expect(isBinaryClasses(discoverClasses(['1', '1']))).toBe(false);
    expect(isBinaryClasses(discoverClasses(['0', '1', '2']))).toBe(false);
    expect(isBinaryClasses(discoverClasses(['1', '2']))).toBe(false);
    expect(isBinaryClasses(discoverClasses(['0', '1', 'no']))).toBe(false);
  });
});

describe('the --max-classes bound', () => {
  it('defaults to 1,000', () => {
    expect(DEFAULT_MAX_CLASSES).toBe(1_000);
    expect(discoverClasses(Array.from({ length: 1000 }, (_, i) => `c${i}`)).values).toHaveLength(1000);
    expect(() => discoverClasses(Array.from({ length: 1001 }, (_, i) => `c${i}`))).toThrow(/at least 1,001 distinct classes, more than --max-classes 1000/);
  });

  it('refuses the first class past the bound with a DPT_CONFIG error naming the count and the flag', () => {
    const collector = new ClassCollector(3);
    for (const cell of ['a', 'b', 'a', 'c', 'c']) collector.add(cell);
    let error: unknown;
    try {
      collector.add('d');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('DPT_CONFIG');
    expect((error as ConfigError).exitCode).toBe(2);
    expect((error as ConfigError).message).toMatch(/at least 4 distinct classes, more than --max-classes 3/);
  });

  it('counts numeric classes by value, and strings once a label is not numeric', () => {
    const collector = new ClassCollector(2);
    for (const cell of ['1', '1.0', '2', '2.00']) collector.add(cell); // two values
    expect(collector.classes().values).toEqual([1, 2]);
    expect(() => collector.add('x')).toThrow(/at least 5 distinct classes/); // now 5 distinct strings
  });

  it('rejects a bound that is not a positive integer', () => {
    expect(() => new ClassCollector(0)).toThrow(/--max-classes must be a positive integer/);
    expect(() => new ClassCollector(2.5)).toThrow(ConfigError);
  });
});

// Class discovery for softmax regression (issue #12): the classes of a run are the distinct label
// cells, sorted numerically when every cell is a finite decimal number, else by Unicode code point;
// class k is the k-th. Pure: the statistics pass feeds cells in, the wiring maps cells to indices.
//
// Numeric labels are compared by value ('1' and '1.0' are one class, and '2' < '10' < '1e3');
// as soon as one cell is not a number, every label is a string ('1' and '1.0' become two classes)
// and the order is by code point, not by UTF-16 unit ('\uFFFD' < '\u{1F600}') nor by locale.

import { ConfigError } from './errors.js';

/** Default bound on distinct labels (--max-classes): a softmax part holds K·D + K + 1 float64. */
export const DEFAULT_MAX_CLASSES = 1_000;

/** The same decimal form as a feature cell (shared/csv-rules.ts): no hex, no Infinity, no NaN. */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The classes in index order: numbers when every label was numeric, else the trimmed strings. */
export type ClassList = { readonly isNumeric: true; readonly values: readonly number[] } | { readonly isNumeric: false; readonly values: readonly string[] };

/** The finite number a trimmed label cell spells, or null. */
function numericValue(cell: string): number | null {
  if (!NUMBER.test(cell)) return null;
  const value = Number(cell);
  return Number.isFinite(value) ? value : null; // '1e999' is decimal text but not finite
}

/** a − b in Unicode code point order (JavaScript's default sort compares UTF-16 units instead). */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!; // i < a.length
    const cb = b.codePointAt(j)!; // j < b.length
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j);
}

/**
 * Collects the distinct labels of a pass, bounded: `add` throws a ConfigError (DPT_CONFIG, exit 2)
 * naming the count and --max-classes as soon as more than `maxClasses` distinct classes are seen,
 * so a label column of row ids never fills memory.
 */
export class ClassCollector {
  private readonly maxClasses: number;
  /** Distinct trimmed cells (the classes once a cell is not numeric). */
  private readonly strings = new Set<string>();
  /** Distinct values while every cell so far is numeric (−0 and 0 are one key). */
  private readonly numbers = new Set<number>();
  private isNumeric = true;

  constructor(maxClasses: number = DEFAULT_MAX_CLASSES) {
    if (!(Number.isInteger(maxClasses) && maxClasses >= 1)) throw new ConfigError(`--max-classes must be a positive integer, got ${maxClasses}`);
    this.maxClasses = maxClasses;
  }

  /** Records one label cell (surrounding blanks ignored, as for feature cells). */
  add(cell: string): void {
    const label = cell.trim();
    if (this.strings.has(label)) return;
    if (this.isNumeric) {
      const value = numericValue(label);
      if (value === null) this.isNumeric = false;
      else this.numbers.add(value);
    }
    this.strings.add(label);
    const count = this.isNumeric ? this.numbers.size : this.strings.size;
    if (count > this.maxClasses) {
      throw new ConfigError(
        `the label column holds at least ${count.toLocaleString('en-US')} distinct classes, more than --max-classes ${this.maxClasses} allows (raise --max-classes, or check that the label column is the right one)`,
      );
    }
  }

  /** The classes seen so far, in class-index order. */
  classes(): ClassList {
    if (this.isNumeric) return { isNumeric: true, values: [...this.numbers].sort((a, b) => a - b) };
    return { isNumeric: false, values: [...this.strings].sort(compareCodePoints) };
  }
}

/** The classes of `cells` (see ClassCollector); throws a ConfigError past `maxClasses`. */
export function discoverClasses(cells: Iterable<string>, maxClasses: number = DEFAULT_MAX_CLASSES): ClassList {
  const collector = new ClassCollector(maxClasses);
  for (const cell of cells) collector.add(cell);
  return collector.classes();
}

/**
 * A lookup from a label cell to its class index, or −1 for a label that is not one of the classes
 * (the caller names file, line and column). Numeric classes match by value ('1.0' is class '1').
 */
export function createClassIndex(classes: ClassList): (cell: string) => number {
  if (classes.isNumeric) {
    const index = new Map(classes.values.map((value, k) => [value, k]));
    return (cell) => {
      const value = numericValue(cell.trim());
      return value === null ? -1 : (index.get(value) ?? -1);
    };
  }
  const index = new Map(classes.values.map((value, k) => [value, k]));
  return (cell) => index.get(cell.trim()) ?? -1;
}

/** True when the labels are exactly the numbers {0, 1}: issue #12's default model is then `logistic`, else `softmax`. */
export function isBinaryClasses(classes: ClassList): boolean {
  return classes.isNumeric && classes.values.length === 2 && classes.values[0] === 0 && classes.values[1] === 1;
}

/**
 * The classes for a message: the first `shown`, numbers as they are and strings JSON-quoted
 * (a label may hold commas or blanks), then how many more: `"setosa", "versicolor", … 3 more`.
 */
export function listClasses(classes: ClassList, shown: number): string {
  const values = (classes.values as readonly (string | number)[]).slice(0, shown).map((value) => (classes.isNumeric ? String(value) : JSON.stringify(value)));
  const more = classes.values.length - values.length;
  return `${values.join(', ')}${more > 0 ? `, … ${more.toLocaleString('en-US')} more` : ''}`;
}

// The label cells of a .dpt file as it is written (issue #12): each distinct cell gets an id in
// first-seen order while rows stream (bounded by --max-classes), and once every row is in, the ids
// map to what the file stores: the label 0 or 1 when the classes are numbers within {0, 1} (a
// version-1 file, today's bytes), else the class index of shared/classes.ts. Also the check of a
// class list read back from a file. Not the file layout (shared/binary-dataset.ts).

import { ClassCollector, type ClassList, compareCodePoints, createClassIndex } from './classes.js';

/** The classes of every version-1 .dpt file (labels 0 or 1). */
export const BINARY_CLASSES: ClassList = Object.freeze({ isNumeric: true, values: Object.freeze([0, 1]) });

/** Most classes a .dpt file holds: a class index is a uint16. */
export const MAX_DPT_CLASSES = 65_535;

/** What the cells of a whole file become (see LabelCells.settle). */
export interface SettledLabels {
  readonly classes: ClassList;
  /** True when the classes are numbers within {0, 1}: the file stores the labels as uint8 0/1 (version 1). */
  readonly isBinary: boolean;
  /** Per first-seen id, the stored label: the value 0 or 1 when binary, else the class index. */
  readonly storedOfId: Uint16Array;
}

/**
 * Distinct label cells in first-seen order. Memory: one map entry per distinct trimmed cell (the
 * classes, plus other spellings of numeric ones such as '1.0'), nothing per row.
 */
export class LabelCells {
  private readonly ids = new Map<string, number>();
  private readonly cells: string[] = [];
  private readonly collector: ClassCollector;

  /** `maxClasses` as for ClassCollector (a ConfigError names --max-classes), at most MAX_DPT_CLASSES. */
  constructor(maxClasses: number) {
    this.collector = new ClassCollector(maxClasses);
    if (maxClasses > MAX_DPT_CLASSES) throw new RangeError(`a .dpt file holds at most ${MAX_DPT_CLASSES} classes, --max-classes is ${maxClasses}`);
  }

  /**
   * The id of `cell` (blanks around it ignored, as for features), or −1 for a blank cell (the caller
   * says where it was). A cell not seen before is a new id; the ClassCollector's ConfigError when it
   * makes more classes than allowed.
   */
  idOf(cell: string): number {
    const known = this.ids.get(cell);
    if (known !== undefined) return known;
    const label = cell.trim();
    const id = this.ids.get(label);
    if (id !== undefined) return id;
    if (label === '') return -1;
    this.collector.add(label);
    this.ids.set(label, this.cells.length);
    this.cells.push(label);
    return this.cells.length - 1;
  }

  /** The classes and the stored label of every id (call once every cell is in). */
  settle(): SettledLabels {
    const classes = this.collector.classes();
    const isBinary = classes.isNumeric && classes.values.every((value) => value === 0 || value === 1);
    const indexOf = createClassIndex(classes);
    const storedOfId = new Uint16Array(this.cells.length);
    this.cells.forEach((cell, id) => {
      const k = indexOf(cell); // every cell went through the collector, so k >= 0
      storedOfId[id] = isBinary ? (classes.values[k] as number) : k;
    });
    return { classes: isBinary ? BINARY_CLASSES : classes, isBinary, storedOfId };
  }
}

/**
 * The class list of a .dpt names block: K values, all finite numbers in increasing order or all
 * strings in increasing code point order (shared/classes.ts's order), 1 ≤ K ≤ MAX_DPT_CLASSES.
 * Returns the problem as a sentence, or the list.
 */
export function checkClassList(value: unknown): ClassList | string {
  if (!Array.isArray(value)) return 'expected "classes": [class values]';
  const values: unknown[] = value;
  if (values.length < 1 || values.length > MAX_DPT_CLASSES) return `expected 1 to ${MAX_DPT_CLASSES} classes, found ${values.length}`;
  if (values.every((v): v is number => typeof v === 'number' && Number.isFinite(v))) {
    for (let k = 1; k < values.length; k++)
      if (!(values[k - 1]! < values[k]!)) return `class ${k} (${values[k]}) does not follow class ${k - 1} in increasing order`;
    return { isNumeric: true, values };
  }
  if (values.every((v): v is string => typeof v === 'string')) {
    for (let k = 1; k < values.length; k++) {
      if (!(compareCodePoints(values[k - 1]!, values[k]!) < 0)) return `class ${k} ('${values[k]}') does not follow class ${k - 1} in code point order`;
    }
    return { isNumeric: false, values };
  }
  return 'the classes must be all numbers or all strings';
}

/** The sentence for a label column with more classes than --max-classes allows (writer and readers alike). */
export function tooManyClassesProblem(labelName: string, count: number, maxClasses: number): string {
  return (
    `the label column '${labelName}' holds ${count.toLocaleString('en-US')} distinct classes, more than --max-classes ${maxClasses} allows ` +
    '(raise --max-classes, or check that the label column is the right one)'
  );
}

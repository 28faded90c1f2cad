// Seeded LIBSVM text for the sparse integration tests (issue #13): 1 to 12 entries a row over
// indices 1..maxIndex (a few popular ones every batch touches, and a long tail), values multiples of
// 1/8 in [−4, 4] (exact in float32), labels drawn from a logistic rule, shifted by `bias` (a
// negative one makes the positive class rare: imbalanced data for --class-weight).

import { lcg } from './sparse-random.js';

export interface LibsvmTextOptions {
  readonly rows: number;
  readonly maxIndex: number;
  readonly seed: number;
  /** Added to every row's score before its label is drawn (default 0.2). */
  readonly bias?: number;
}

export function libsvmText(options: LibsvmTextOptions): string {
  const next = lcg(options.seed);
  const trueW = Array.from({ length: options.maxIndex + 1 }, () => next() * 2 - 1);
  const lines: string[] = ['# seeded sparse rows for dpt tests'];
  for (let i = 0; i < options.rows; i++) {
    const count = 1 + Math.floor(next() * 12);
    const indices = new Set<number>();
    while (indices.size < count) indices.add(next() < 0.3 ? 1 + Math.floor(next() * 10) : 1 + Math.floor(next() * options.maxIndex));
    const entries = [...indices].sort((a, b) => a - b).map((j) => [j, (Math.floor(next() * 64) - 32 || 1) / 8] as const);
    const z = entries.reduce((sum, [j, x]) => sum + x * trueW[j]!, options.bias ?? 0.2);
    const label = next() < 1 / (1 + Math.exp(-z)) ? '+1' : '-1';
    lines.push(`${label} ${entries.map(([j, x]) => `${j}:${x}`).join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** LIBSVM rows as the tests' float64 references read them, independently of dpt's reader. */
export interface ReferenceRows {
  /** The largest index present (1-based), which dpt takes as D. */
  readonly D: number;
  /** Per row its (0-based index, value) entries. */
  readonly x: (readonly (readonly [number, number])[])[];
  /** Class indices: the sorted distinct labels' positions (−1/+1 and 0/1 become 0/1). */
  readonly y: number[];
  readonly K: number;
}

/** The references' own reading of LIBSVM text: `#` comments, 1-based indices to 0-based, labels to class indices by sorted value. */
export function parseLibsvmReference(text: string): ReferenceRows {
  const x: [number, number][][] = [];
  const labels: number[] = [];
  let D = 0;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [label, ...fields] = line.split(/\s+/);
    labels.push(Number(label));
    x.push(
      fields.map((field) => {
        const [j, value] = field.split(':');
        D = Math.max(D, Number(j));
        return [Number(j) - 1, Number(value)];
      }),
    );
  }
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  return { D, x, y: labels.map((label) => classes.indexOf(label)), K: classes.length };
}

// The model file over sparse inputs (issue #13): the form chosen by size, a round trip through
// the file, and a refusal naming the field for each kind of bad sparse record.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFileError } from '../../shared/errors.js';
import { isSparseModel, type ModelHashing, modelDims, readModelFile, sparseModelFields, sparseModelFile, writeModelFile } from '../../shared/model-file.js';
import { logisticShape, softmaxShape } from '../../shared/model-shape.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());
let written = 0;
const freshPath = (): string => join(directory.path, `s${written++}.json`);

const HASHING: ModelHashing = {
  function: 'murmur3_x86_32',
  seed: 0,
  bits: 4,
  columns: ['dow', 'distance', 'origin'],
  categorical: ['dow', 'origin'],
  numeric: ['distance'],
  crosses: [['dow', 'origin']],
  labelColumn: 'delayed',
};
const DETAILS = { label: 'delayed', trainedOn: { data: 'f.csv' }, metrics: {} };

describe('sparseModelFields', () => {
  it('writes w = scale·v in the sparse form when it holds fewer numbers, zeros left out', () => {
    const v = new Float64Array(16);
    v[3] = 2;
    v[11] = -0.5;
    const fields = sparseModelFields({ v, scale: 0.25, bias: Float64Array.of(0.125) }, logisticShape(16), HASHING);
    expect(fields).toEqual({ input: 'hashed-csv', hashing: HASHING, weights: { dims: 16, indices: [3, 11], values: [0.5, -0.125] }, bias: 0.125 });
  });

  it('writes the dense form when the sparse one would not be smaller (nz·(1 + O) ≥ O·D)', () => {
    const v = Float64Array.of(1, 0, 3, 4);
    const fields = sparseModelFields({ v, scale: 2, bias: Float64Array.of(-1) }, logisticShape(4), null);
    expect(fields).toEqual({ input: 'libsvm', weights: [2, 0, 6, 8], bias: -1 });
  });

  it('keeps K values per touched index for softmax, an index kept when any class has a non-zero weight', () => {
    // K = 3, D = 8, v row-major (row k = class k): only feature 5 touched, by class 1 alone.
    const v = new Float64Array(24);
    v[8 + 5] = 4;
    const fields = sparseModelFields({ v, scale: 0.5, bias: Float64Array.of(1, 2, 3) }, softmaxShape(3, 8), null);
    expect(fields.weights).toEqual({ dims: 8, indices: [5], values: [0, 2, 0] });
    expect(fields.bias).toEqual([1, 2, 3]);
  });

  it('refuses a hashing record whose bits do not match D', () => {
    expect(() => sparseModelFields({ v: new Float64Array(8), scale: 1, bias: new Float64Array(1) }, logisticShape(8), HASHING)).toThrow(RangeError);
  });
});

describe('sparse model files', () => {
  it('round-trip, weights on one line, and read back as sparse with their D', () => {
    const v = new Float64Array(16);
    v[7] = 1 / 3;
    const model = sparseModelFile({ v, scale: 1, bias: Float64Array.of(0.5) }, logisticShape(16), HASHING, null, DETAILS);
    const path = freshPath();
    writeModelFile(path, model);
    const text = readFileSync(path, 'utf8');
    expect(text).toContain(`"weights": {"dims":16,"indices":[7],"values":[${1 / 3}]}`);
    const read = readModelFile(path);
    expect(read).toEqual(model);
    expect(isSparseModel(read)).toBe(true);
    expect(modelDims(read)).toBe(16);
    writeModelFile(path, read);
    expect(readFileSync(path, 'utf8')).toBe(text);
    expect(Object.keys(read)).toEqual(['format', 'version', 'kind', 'input', 'hashing', 'weights', 'bias', 'label', 'standardization', 'trainedOn', 'metrics']);
  });

  it('round-trip a LIBSVM softmax model with string classes', () => {
    const v = new Float64Array(2 * 5);
    v[4] = -2;
    const model = sparseModelFile({ v, scale: 1, bias: Float64Array.of(0, 1) }, softmaxShape(2, 5), null, { isNumeric: false, values: ['a', 'b'] }, DETAILS);
    const path = freshPath();
    writeModelFile(path, model);
    const read = readModelFile(path);
    expect(read).toEqual(model);
    expect(modelDims(read)).toBe(5);
    expect(read).toMatchObject({ input: 'libsvm', classes: ['a', 'b'], weights: { dims: 5, indices: [4], values: [-2, 0] } });
  });

  const BASE = {
    format: 'dpt-model',
    version: 1,
    kind: 'logistic-regression',
    input: 'hashed-csv',
    hashing: HASHING,
    weights: { dims: 16, indices: [1, 5], values: [0.5, -1] },
    bias: 0,
    label: 'y',
    standardization: null,
  };
  const refusals: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown input', { ...BASE, input: 'parquet' }, /field 'input' must be 'hashed-csv' or 'libsvm'/],
    ['a hashed model without its hashing', { ...BASE, hashing: undefined }, /field 'hashing' must be an object/],
    ['a hashing function other than murmur3', { ...BASE, hashing: { ...HASHING, function: 'fnv1a' } }, /field 'hashing.function'/],
    ['31 hash bits', { ...BASE, hashing: { ...HASHING, bits: 31 } }, /field 'hashing.bits' must be an integer from 1 to 30/],
    ['a cross of an unknown column', { ...BASE, hashing: { ...HASHING, crosses: [['dow', 'dest']] } }, /field 'hashing.crosses\[0\]'/],
    ['a column both categorical and numeric', { ...BASE, hashing: { ...HASHING, numeric: ['dow', 'distance'] } }, /field 'hashing.numeric'/],
    ['a seed other than 0', { ...BASE, hashing: { ...HASHING, seed: 7 } }, /field 'hashing.seed' must be 0/],
    ['the label among the columns', { ...BASE, hashing: { ...HASHING, labelColumn: 'dow' } }, /field 'hashing.labelColumn'/],
    ['a column named twice', { ...BASE, hashing: { ...HASHING, columns: ['dow', 'dow', 'origin'] } }, /field 'hashing.columns' names column 'dow' twice/],
    ['dims other than 2^bits', { ...BASE, weights: { dims: 32, indices: [], values: [] } }, /field 'weights' must hold 2\^4 = 16 weights/],
    [
      'indices out of order',
      { ...BASE, weights: { dims: 16, indices: [5, 1], values: [1, 1] } },
      /field 'weights.indices\[1\]' must be an integer above the previous/,
    ],
    ['an index ≥ dims', { ...BASE, weights: { dims: 16, indices: [16], values: [1] } }, /field 'weights.indices\[0\]'/],
    ['values of the wrong length', { ...BASE, weights: { dims: 16, indices: [1], values: [1, 2] } }, /field 'weights.values' must be an array of 1 numbers/],
    ['a non-number value', { ...BASE, weights: { dims: 16, indices: [1], values: ['1'] } }, /field 'weights.values\[0\]' must be a finite number/],
    ['an unknown weights field', { ...BASE, weights: { dims: 16, indices: [], values: [], scale: 1 } }, /field 'weights.scale' is not a field/],
    ['features on a sparse model', { ...BASE, features: ['a'] }, /field 'features' is not a field of a sparse-input/],
    ['a standardization', { ...BASE, standardization: { mean: [0], std: [1] } }, /field 'standardization' must be null/],
    ['hashing on a LIBSVM model', { ...BASE, input: 'libsvm' }, /field 'hashing' is not a field of an 'input': 'libsvm'/],
    [
      'softmax rows of unequal length',
      { ...BASE, input: 'libsvm', hashing: undefined, kind: 'softmax-regression', classes: [0, 1], weights: [[1, 2], [1]], bias: [0, 0] },
      /field 'weights\[1\]' must be an array of 2 finite numbers/,
    ],
  ];
  for (const [what, value, message] of refusals) {
    it(`refuses ${what}, naming the field`, () => {
      const path = freshPath();
      writeFileSync(path, JSON.stringify(value));
      expect(() => readModelFile(path)).toThrow(ModelFileError);
      expect(() => readModelFile(path)).toThrow(message);
    });
  }
});

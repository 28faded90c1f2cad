import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFileError } from '../../shared/errors.js';
import {
  isSparseModel,
  type LogisticModelFile,
  type ModelFile,
  modelClasses,
  readModelFile,
  type SoftmaxModelFile,
  type SparseModelFile,
  softmaxModelFile,
  softmaxTheta,
  writeModelFile,
} from '../../shared/model-file.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());

let written = 0;
/** Writes `text` to a fresh file and reads it back as a model file. */
function readText(text: string): ModelFile {
  const path = join(directory.path, `m${written++}.json`);
  writeFileSync(path, text);
  return denseModel(readModelFile(path));
}

function roundTrip(model: ModelFile): { read: ModelFile; text: string } {
  const path = join(directory.path, `m${written++}.json`);
  writeModelFile(path, model);
  return { read: denseModel(readModelFile(path)), text: readFileSync(path, 'utf8') };
}

function denseModel(model: ModelFile | SparseModelFile): ModelFile {
  if (isSparseModel(model)) throw new Error('expected a model file over dense columns');
  return model;
}

function refusal(value: Record<string, unknown>): ModelFileError {
  try {
    readText(JSON.stringify(value));
  } catch (error) {
    if (error instanceof ModelFileError) return error;
    throw error;
  }
  throw new Error('expected a ModelFileError');
}

/** A logistic model file as coordinator/run.ts builds it (the same keys in the same order). */
const LOGISTIC: LogisticModelFile = {
  format: 'dpt-model',
  version: 1,
  kind: 'logistic-regression',
  weights: [0.5, -1.25],
  bias: -0.1,
  features: ['a', 'b'],
  label: 'y',
  standardization: { mean: [1, 2], std: [0.5, 4] },
  trainedOn: { data: 'd.csv', epochs: 3 },
  metrics: { trainLoss: 0.25 },
};

// θ for K = 3, D = 2: W row k = class k, then the 3 biases.
const THETA = Float64Array.from([0.1, -0.2, 1 / 3, 2e-300, -7.5, 1e20, 0.25, -0.5, 0.125]);
const DETAILS = { features: ['a', 'b'], label: 'species', standardization: null, trainedOn: { data: 'iris.csv' }, metrics: {} };

describe('logistic-regression model files', () => {
  it('keeps the exact bytes dpt has always written', () => {
    const { read, text } = roundTrip(LOGISTIC);
    // Written out by hand: the format other tools read (README, "Interfaces").
    expect(text).toBe(
      [
        '{',
        '  "format": "dpt-model",',
        '  "version": 1,',
        '  "kind": "logistic-regression",',
        '  "weights": [',
        '    0.5,',
        '    -1.25',
        '  ],',
        '  "bias": -0.1,',
        '  "features": [',
        '    "a",',
        '    "b"',
        '  ],',
        '  "label": "y",',
        '  "standardization": {',
        '    "mean": [',
        '      1,',
        '      2',
        '    ],',
        '    "std": [',
        '      0.5,',
        '      4',
        '    ]',
        '  },',
        '  "trainedOn": {',
        '    "data": "d.csv",',
        '    "epochs": 3',
        '  },',
        '  "metrics": {',
        '    "trainLoss": 0.25',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    expect(read).toEqual(LOGISTIC);
    expect(roundTrip(read).text).toBe(text); // read then written again: the same bytes
  });

  it('reads a hand-written file without label, trainedOn and metrics', () => {
    const model = readText('{"format":"dpt-model","version":1,"kind":"logistic-regression","weights":[1],"bias":0,"features":["a"],"standardization":null}');
    expect(model).toEqual({ ...LOGISTIC, weights: [1], bias: 0, features: ['a'], label: null, standardization: null, trainedOn: {}, metrics: {} });
  });
});

describe('softmax-regression model files', () => {
  it('round-trips θ, string classes and the details exactly', () => {
    const model = softmaxModelFile(THETA, 3, 2, { isNumeric: false, values: ['setosa', 'versicolor', 'virginica, dark'] }, DETAILS);
    expect(model.weights).toEqual([
      [0.1, -0.2],
      [1 / 3, 2e-300],
      [-7.5, 1e20],
    ]);
    expect(model.bias).toEqual([0.25, -0.5, 0.125]);
    const { read, text } = roundTrip(model);
    expect(read).toEqual(model);
    expect(Object.keys(JSON.parse(text))).toEqual([
      'format',
      'version',
      'kind',
      'classes',
      'weights',
      'bias',
      'features',
      'label',
      'standardization',
      'trainedOn',
      'metrics',
    ]);
    expect(read.kind).toBe('softmax-regression');
    const softmax = read as SoftmaxModelFile;
    expect(Array.from(softmaxTheta(softmax))).toEqual(Array.from(THETA)); // bit for bit
    expect(modelClasses(softmax)).toEqual({ isNumeric: false, values: ['setosa', 'versicolor', 'virginica, dark'] });
  });

  it('keeps numeric classes as numbers, and an early-stopping record', () => {
    const earlyStopping = { patience: 3, bestEpoch: 4, stoppedAfterEpoch: 7 };
    const model = softmaxModelFile(THETA, 3, 2, { isNumeric: true, values: [-1, 2.5, 10] }, { ...DETAILS, earlyStopping });
    const { read, text } = roundTrip(model);
    expect(JSON.parse(text).classes).toEqual([-1, 2.5, 10]);
    expect(modelClasses(read as SoftmaxModelFile)).toEqual({ isNumeric: true, values: [-1, 2.5, 10] });
    expect(read.earlyStopping).toEqual(earlyStopping);
    expect(roundTrip({ ...LOGISTIC, earlyStopping: { ...earlyStopping, stoppedAfterEpoch: null } }).read.earlyStopping).toEqual({
      ...earlyStopping,
      stoppedAfterEpoch: null,
    });
  });

  it('refuses to build from a θ that does not fit K and D', () => {
    const classes = { isNumeric: true, values: [0, 1, 2] } as const;
    expect(() => softmaxModelFile(THETA.subarray(1), 3, 2, classes, DETAILS)).toThrow(RangeError);
    expect(() => softmaxModelFile(THETA, 3, 2, { isNumeric: true, values: [0, 1] }, DETAILS)).toThrow(RangeError);
    expect(() => softmaxModelFile(THETA, 3, 2, classes, { ...DETAILS, features: ['a'] })).toThrow(RangeError);
  });
});

const SOFTMAX = JSON.parse(JSON.stringify(softmaxModelFile(THETA, 3, 2, { isNumeric: false, values: ['x', 'y', 'z'] }, DETAILS))) as Record<string, unknown>;
const LOGISTIC_JSON = JSON.parse(JSON.stringify(LOGISTIC)) as Record<string, unknown>;

describe('readModelFile refuses', () => {
  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['a foreign format', { ...SOFTMAX, format: 'onnx' }, 'format', /must be 'dpt-model'/],
    ['another version', { ...SOFTMAX, version: 2 }, 'version', /must be 1/],
    ['an unknown kind', { ...SOFTMAX, kind: 'tree' }, 'kind', /'logistic-regression' or 'softmax-regression'/],
    ['a field of neither kind', { ...SOFTMAX, comment: 'hi' }, 'comment', /is not a field of a 'softmax-regression' model file/],
    ['classes in a logistic file', { ...LOGISTIC_JSON, classes: [0, 1] }, 'classes', /not a field of a 'logistic-regression'/],
    ['one class (K = 1)', { ...SOFTMAX, classes: ['x'], weights: [[1, 2]], bias: [0] }, 'classes', /at least 2 class labels/],
    ['no classes', { ...SOFTMAX, classes: undefined }, 'classes', /at least 2/],
    ['a repeated class', { ...SOFTMAX, classes: ['x', 'y', 'x'] }, 'classes[2]', /repeats class "x"/],
    ['a repeated numeric class (0 and −0)', { ...SOFTMAX, classes: [0, 1, -0] }, 'classes[2]', /repeats class/],
    ['numbers mixed with strings', { ...SOFTMAX, classes: [1, 'y', 'z'] }, 'classes[1]', /must be a finite number/],
    ['an empty class name', { ...SOFTMAX, classes: ['x', '', 'z'] }, 'classes[1]', /non-empty/],
    ['a class name with edge blanks', { ...SOFTMAX, classes: ['x', ' y', 'z'] }, 'classes[1]', /without surrounding blanks/],
    ['a class that is neither', { ...SOFTMAX, classes: ['x', null, 'z'] }, 'classes[1]', /must be a string/],
    ['weights with a row missing', { ...SOFTMAX, weights: [[1, 2]] }, 'weights', /3 rows \(one per class\)/],
    ['a weight row of the wrong length', { ...SOFTMAX, weights: [[1, 2], [3], [4, 5]] }, 'weights[1]', /2 finite numbers/],
    [
      'a weight that is not a number',
      {
        ...SOFTMAX,
        weights: [
          [1, 2],
          [3, '4'],
          [4, 5],
        ],
      },
      'weights[1]',
      /2 finite numbers/,
    ],
    ['flat softmax weights', { ...SOFTMAX, weights: [1, 2, 3] }, 'weights[0]', /2 finite numbers/],
    ['a scalar softmax bias', { ...SOFTMAX, bias: 0 }, 'bias', /array of 3 finite numbers/],
    ['a softmax bias of the wrong length', { ...SOFTMAX, bias: [0, 0] }, 'bias', /array of 3 finite numbers/],
    ['a logistic bias that is an array', { ...LOGISTIC_JSON, bias: [0] }, 'bias', /must be a finite number/],
    ['logistic weights of the wrong length', { ...LOGISTIC_JSON, weights: [1] }, 'weights', /array of 2 finite numbers/],
    ['no features', { ...SOFTMAX, features: [] }, 'features', /non-empty array/],
    ['a repeated feature', { ...SOFTMAX, features: ['a', 'a'] }, 'features', /names column 'a' twice/],
    ['standardization of the wrong length', { ...SOFTMAX, standardization: { mean: [0], std: [1] } }, 'standardization.mean', /2 finite numbers/],
    ['a standard deviation of 0', { ...SOFTMAX, standardization: { mean: [0, 0], std: [1, 0] } }, 'standardization.std', /positive/],
    ['a label that is not a name', { ...SOFTMAX, label: 3 }, 'label', /column name or null/],
    ['trainedOn that is not an object', { ...SOFTMAX, trainedOn: [] }, 'trainedOn', /must be an object/],
    ['metrics that is not an object', { ...LOGISTIC_JSON, metrics: 'good' }, 'metrics', /must be an object/],
    ['earlyStopping that is not an object', { ...SOFTMAX, earlyStopping: 3 }, 'earlyStopping', /must be an object/],
    [
      'earlyStopping with patience 0',
      { ...SOFTMAX, earlyStopping: { patience: 0, bestEpoch: 1, stoppedAfterEpoch: 2 } },
      'earlyStopping.patience',
      /positive integer/,
    ],
    [
      'earlyStopping stopped before its best epoch',
      { ...SOFTMAX, earlyStopping: { patience: 2, bestEpoch: 5, stoppedAfterEpoch: 4 } },
      'earlyStopping.stoppedAfterEpoch',
      /an epoch after bestEpoch/,
    ],
    [
      'earlyStopping with an unknown field',
      { ...SOFTMAX, earlyStopping: { patience: 2, bestEpoch: 1, stoppedAfterEpoch: 3, extra: 1 } },
      'earlyStopping.extra',
      /not a field/,
    ],
  ])('%s, naming the field', (_name, value, field, message) => {
    const error = refusal(value);
    expect(error.code).toBe('DPT_MODEL_FILE');
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(`field '${field}' `);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^\/.*\.json: /); // names the file first
  });

  it('a file that is not JSON, or not an object', () => {
    expect(() => readText('{"format":')).toThrow(/cannot read the model file/);
    expect(() => readText('[1, 2]')).toThrow(/field '\(root\)' must be a JSON object/);
  });
});

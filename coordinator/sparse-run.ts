// What makes a coordinator's run sparse (issue #13) and what changes with it: the flags that
// describe how the data becomes sparse rows (sent to the workers in the welcome), the config a
// sparse run trains with (never standardized), its model, and its data file as the coordinator
// describes it. The update and the broadcast live in sparse-model.ts and sparse-broadcast.ts.
//
// Exports: sparseRunSpec, sparseConfig, chooseSparseModel, sparseDataFile.

import type { DataFile } from '../shared/data-file.js';
import { ConfigError } from '../shared/errors.js';
import { logisticShape, type ModelShape } from '../shared/model-shape.js';
import type { SparseRunSpec } from '../shared/protocol.js';
import type { SparseRunData } from '../shared/sparse-run-data.js';
import type { CoordinatorConfig } from './config.js';
import { chooseModel } from './model-choice.js';

/** Features a sparse run trains at most: the protocol's bound on D (2^24, --hash-bits 24). */
const MAX_SPARSE_FEATURES = 1 << 24;

/** The welcome's description of how the data becomes sparse rows: the coordinator's flags, lists split. */
export function sparseRunSpec(config: CoordinatorConfig): SparseRunSpec {
  const list = (text: string | null): string[] =>
    text === null
      ? []
      : text
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item !== '');
  return {
    format: config.dataFormat === 'libsvm' ? 'libsvm' : null,
    hashBits: config.hashBits,
    categorical: list(config.categorical),
    crosses: list(config.crosses),
  };
}

/**
 * The config of a sparse run: standardization off (centering would fill every row; a scale-only
 * form is not offered). An explicit --standardize is refused rather than ignored.
 */
export function sparseConfig(config: CoordinatorConfig): CoordinatorConfig {
  if (config.standardizeGiven && config.standardize) {
    throw new ConfigError(`--standardize: ${config.dataPath} is sparse data, which is never standardized (centering would fill every row); drop the flag`);
  }
  return Object.freeze({ ...config, standardize: false });
}

/**
 * The model of sparse data: logistic when its labels are two classes (LIBSVM's −1/+1 or 0/1, class
 * 1 the positive one) unless --model softmax, else as for dense data (model-choice.ts).
 */
export function chooseSparseModel(config: CoordinatorConfig, data: SparseRunData): ModelShape {
  if (data.dims > MAX_SPARSE_FEATURES) {
    throw new ConfigError(`${config.dataPath} has ${data.dims} features; training takes at most ${MAX_SPARSE_FEATURES} (--hash-bits 24)`);
  }
  if (data.labelType === 'uint8' && config.model !== 'softmax' && data.classes.values.length === 2) return logisticShape(data.dims);
  return chooseModel(config.model, data.classes, config.maxClasses, data.dims);
}

/** The sparse data as the coordinator describes any data file: no feature names (hashed buckets or LIBSVM indices). */
export function sparseDataFile(data: SparseRunData): DataFile {
  return {
    sourcePath: data.sourcePath,
    binaryPath: data.path,
    identity: data.identity,
    rows: data.rows,
    features: data.dims,
    featureNames: [],
    labelName: data.labelName,
    classes: data.classes,
    labelType: data.labelType,
    dataBytes: data.bytes,
  };
}

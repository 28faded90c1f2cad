// `dpt predict` and `dpt evaluate`: apply a model file to a CSV file or a .dpt file. Both read only
// regular files, and a .dpt file only through its checked blocks: corrupt data is refused (exit 2),
// never turned into NaN predictions or metrics.

import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { loadBinaryDataset } from '../shared/binary-dataset.js';
import { type Dataset, readDataset } from '../shared/dataset.js';
import { DatasetError } from '../shared/errors.js';
import { evaluateModel, type Metrics } from '../shared/evaluation.js';
import { linearScore, predictClass, sigmoid } from '../shared/model.js';
import { type ModelFile, readModelFile } from '../shared/model-file.js';
import { requireRegularFile } from '../shared/regular-file.js';
import { applyStandardization } from '../shared/standardize.js';
import { checkOutputPaths } from './output-paths.js';

/** Reads the model's feature columns (by name) from `dataPath`, standardized as in training. */
function loadForModel(model: ModelFile, dataPath: string, labelColumn: string | null | undefined): Dataset {
  const data = dataPath.endsWith('.dpt')
    ? readBinaryForModel(model, dataPath)
    : readDataset(dataPath, { labelColumn, featureColumns: model.features }, '--data');
  if (model.standardization !== null) {
    applyStandardization(data.x, data.features, { mean: Float64Array.from(model.standardization.mean), std: Float64Array.from(model.standardization.std) });
  }
  return data;
}

/** A .dpt file, its columns picked by the model's feature names (its label is fixed by the file). */
function readBinaryForModel(model: ModelFile, path: string): Dataset {
  const { dataset, x, y } = loadBinaryDataset(path, undefined, '--data');
  const columns = model.features.map((name) => {
    const index = dataset.featureNames.indexOf(name);
    if (index === -1) throw new DatasetError(path, undefined, undefined, `the model's feature column '${name}' is missing from the file`);
    return index;
  });
  const D = columns.length;
  const picked = new Float32Array(dataset.rows * D);
  for (let row = 0; row < dataset.rows; row++) {
    for (let j = 0; j < D; j++) picked[row * D + j] = x[row * dataset.features + columns[j]!]!;
  }
  return { path, identity: dataset.identity, featureNames: model.features, labelName: dataset.labelName, rows: dataset.rows, features: D, x: picked, y };
}

/** Writes `probability,prediction` per row (header first) to `outPath`, or stdout when null. */
export function predictCommand(modelPath: string, dataPath: string, outPath: string | null): void {
  requireInputs(modelPath, dataPath);
  if (outPath !== null)
    checkOutputPaths(
      [{ flag: '--out', path: outPath }],
      [
        { flag: '--model', path: modelPath },
        { flag: '--data', path: dataPath },
      ],
    );
  const model = readModelFile(modelPath);
  const data = loadForModel(model, dataPath, null);
  const w = Float64Array.from(model.weights);
  const lines = ['probability,prediction'];
  for (let row = 0; row < data.rows; row++) {
    const z = linearScore(data.x, data.features, row, w, model.bias);
    lines.push(`${sigmoid(z)},${predictClass(z)}`);
  }
  const text = `${lines.join('\n')}\n`;
  if (outPath === null) process.stdout.write(text);
  else {
    writeFileAtomic(outPath, text);
    process.stderr.write(`${data.rows} predictions written to ${outPath}\n`);
  }
}

/**
 * Refuses a FIFO or device before anything is read from it (a read would block past Ctrl-C). A
 * missing model file is left to readModelFile, whose DPT_MODEL_FILE error says so.
 */
function requireInputs(modelPath: string, dataPath: string): void {
  if (existsSync(modelPath)) requireRegularFile(modelPath, '--model');
  requireRegularFile(dataPath, '--data');
}

export function evaluateCommand(modelPath: string, dataPath: string, labelColumn: string | undefined, asJson: boolean): Metrics {
  requireInputs(modelPath, dataPath);
  const model = readModelFile(modelPath);
  const data = loadForModel(model, dataPath, labelColumn ?? model.label ?? undefined);
  const metrics = evaluateModel(data.x, data.y, data.features, Float64Array.from(model.weights), model.bias);
  if (asJson) process.stdout.write(`${JSON.stringify(metrics)}\n`);
  else {
    const rows: [string, string][] = [
      ['rows', String(metrics.rows)],
      ['log-loss', metrics.logLoss.toFixed(6)],
      ['accuracy', metrics.accuracy.toFixed(4)],
      ['precision', metrics.precision.toFixed(4)],
      ['recall', metrics.recall.toFixed(4)],
      ['F1', metrics.f1.toFixed(4)],
      ['ROC AUC', metrics.rocAuc === null ? 'n/a (one class only)' : metrics.rocAuc.toFixed(4)],
    ];
    for (const [name, value] of rows) process.stdout.write(`${name.padEnd(10)} ${value}\n`);
  }
  return metrics;
}

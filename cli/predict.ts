// `dpt predict` and `dpt evaluate`: apply a model file (logistic or softmax) to a CSV file or a .dpt
// file. Both read only regular files, and a .dpt file only through its checked blocks: corrupt data
// is refused (exit 2), never turned into NaN predictions or metrics. Models over sparse inputs
// (issue #13: hashed CSV, LIBSVM) are read and scored row by row in cli/sparse-predict.ts.

import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { loadBinaryDataset, loadBinaryDatasetClasses } from '../shared/binary-dataset.js';
import { type ClassList, createClassIndex } from '../shared/classes.js';
import { type Dataset, readClassDataset, readDataset } from '../shared/dataset.js';
import { ConfigError, DatasetError } from '../shared/errors.js';
import { evaluateModel, evaluateSoftmax, type Metrics, type SoftmaxMetrics } from '../shared/evaluation.js';
import { linearScore, predictClass, sigmoid } from '../shared/model.js';
import { isSparseModel, type ModelFile, modelClasses, readModelFile, type SoftmaxModelFile, softmaxTheta } from '../shared/model-file.js';
import { requireRegularFile } from '../shared/regular-file.js';
import { predictSoftmax } from '../shared/softmax.js';
import { applyStandardization } from '../shared/standardize.js';
import { checkOutputPaths } from './output-paths.js';
import { evaluateSparseLogistic, evaluateSparseSoftmax, type InputFormat, inputFormatOf, predictSparseLines } from './sparse-predict.js';

/** The features of `data`, standardized in place as in training. */
function standardize<T extends { readonly x: Float32Array; readonly features: number }>(model: ModelFile, data: T): T {
  if (model.standardization !== null) {
    applyStandardization(data.x, data.features, { mean: Float64Array.from(model.standardization.mean), std: Float64Array.from(model.standardization.std) });
  }
  return data;
}

/** Reads the model's feature columns (by name) from `dataPath`, and 0/1 labels unless `labelColumn` is null. */
function loadForModel(model: ModelFile, dataPath: string, labelColumn: string | null | undefined): Dataset {
  const data = dataPath.endsWith('.dpt')
    ? readBinaryForModel(model, dataPath)
    : readDataset(dataPath, { labelColumn, featureColumns: model.features }, '--data');
  return standardize(model, data);
}

/** Reads the model's feature columns from `dataPath` and its labels as indices into the model's classes. */
function loadForSoftmax(
  model: SoftmaxModelFile,
  dataPath: string,
  labelColumn: string | undefined,
): { x: Float32Array; y: Uint32Array; rows: number; features: number } {
  const classes = modelClasses(model);
  if (!dataPath.endsWith('.dpt')) {
    return standardize(model, readClassDataset(dataPath, { labelColumn, featureColumns: model.features, classes }, '--data'));
  }
  // A .dpt file's labels are indices into its own classes: each must be one of the model's.
  const { dataset, x, y: fileClass } = loadBinaryDatasetClasses(dataPath, '--data');
  const indexOf = createClassIndex(classes);
  const toModel = dataset.classes.values.map((value) => indexOf(String(value)));
  const y = new Uint32Array(dataset.rows);
  for (let row = 0; row < dataset.rows; row++) {
    const k = toModel[fileClass[row]!]!;
    if (k === -1) {
      const label = dataset.classes.values[fileClass[row]!];
      throw new DatasetError(
        dataPath,
        undefined,
        undefined,
        `row ${row + 1}: label ${JSON.stringify(label)} is not one of the model's classes (${classes.values.join(', ')})`,
      );
    }
    y[row] = k;
  }
  const picked = pickColumns(model, dataPath, dataset.featureNames, dataset.rows, x);
  return standardize(model, { x: picked, y, rows: dataset.rows, features: model.features.length });
}

/** The model's feature columns of rows × (the file's columns) x, by name, in the model's order. */
function pickColumns(model: ModelFile, path: string, featureNames: readonly string[], rows: number, x: Float32Array): Float32Array {
  const columns = model.features.map((name) => {
    const index = featureNames.indexOf(name);
    if (index === -1) throw new DatasetError(path, undefined, undefined, `the model's feature column '${name}' is missing from the file`);
    return index;
  });
  const D = columns.length;
  const width = featureNames.length;
  const picked = new Float32Array(rows * D);
  for (let row = 0; row < rows; row++) {
    for (let j = 0; j < D; j++) picked[row * D + j] = x[row * width + columns[j]!]!;
  }
  return picked;
}

/** A .dpt file, its columns picked by the model's feature names (its label is fixed by the file). */
function readBinaryForModel(model: ModelFile, path: string): Dataset {
  const { dataset, x, y } = loadBinaryDataset(path, undefined, '--data');
  const picked = pickColumns(model, path, dataset.featureNames, dataset.rows, x);
  return {
    path,
    identity: dataset.identity,
    featureNames: model.features,
    labelName: dataset.labelName,
    rows: dataset.rows,
    features: model.features.length,
    x: picked,
    y,
  };
}

/** A CSV field: quoted (RFC 4180, "" for a quote) when it holds a comma, a quote, a line break or edge blanks. */
function csvField(text: string): string {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A class label as predict and evaluate print it: a number in JavaScript's shortest round-trip form, or the string. */
function classText(classes: ClassList, k: number): string {
  return String(classes.values[k]);
}

/**
 * Writes one line per row (header first) to `outPath`, or stdout when null. Logistic:
 * `probability,prediction` (σ(z), then 1 iff z > 0). Softmax: `prediction,p_<class>…`, the
 * predicted class label, then p_k for each class in class-index order (quoted when a label needs it).
 */
export async function predictCommand(modelPath: string, dataPath: string, outPath: string | null, format?: string): Promise<void> {
  requireInputs(modelPath, dataPath);
  const inputFormat = inputFormatOf(dataPath, format);
  if (outPath !== null)
    checkOutputPaths(
      [{ flag: '--out', path: outPath }],
      [
        { flag: '--model', path: modelPath },
        { flag: '--data', path: dataPath },
      ],
    );
  const model = readModelFile(modelPath);
  let lines: string[];
  if (isSparseModel(model)) lines = await predictSparseLines(model, dataPath, inputFormat);
  else {
    refuseLibsvm(modelPath, dataPath, inputFormat);
    const data = loadForModel(model, dataPath, null);
    lines = model.kind === 'logistic-regression' ? predictLogistic(model.weights, model.bias, data) : predictClasses(model, data);
  }
  const text = `${lines.join('\n')}\n`;
  if (outPath === null) process.stdout.write(text);
  else {
    writeFileAtomic(outPath, text);
    process.stderr.write(`${lines.length - 1} predictions written to ${outPath}\n`);
  }
}

function predictLogistic(weights: number[], bias: number, data: Dataset): string[] {
  const w = Float64Array.from(weights);
  const lines = ['probability,prediction'];
  for (let row = 0; row < data.rows; row++) {
    const z = linearScore(data.x, data.features, row, w, bias);
    lines.push(`${sigmoid(z)},${predictClass(z)}`);
  }
  return lines;
}

function predictClasses(model: SoftmaxModelFile, data: Dataset): string[] {
  const classes = modelClasses(model);
  const K = classes.values.length;
  const D = data.features;
  const theta = softmaxTheta(model);
  const labels = classes.values.map((_, k) => csvField(classText(classes, k)));
  const lines = [['prediction', ...classes.values.map((_, k) => csvField(`p_${classText(classes, k)}`))].join(',')];
  const p = new Float64Array(K);
  for (let row = 0; row < data.rows; row++) {
    const k = predictSoftmax(theta, K, D, data.x, row * D, p);
    lines.push(`${labels[k]},${Array.from(p).join(',')}`);
  }
  return lines;
}

/**
 * Refuses a FIFO or device before anything is read from it (a read would block past Ctrl-C). A
 * missing model file is left to readModelFile, whose DPT_MODEL_FILE error says so.
 */
/** A model over dense columns reads CSV or .dpt: a LIBSVM input is refused by name (exit 2). */
function refuseLibsvm(modelPath: string, dataPath: string, format: InputFormat): void {
  if (format === 'libsvm') throw new ConfigError(`--data ${dataPath}: ${modelPath} is a model over named CSV columns; it cannot read LIBSVM input`);
}

function requireInputs(modelPath: string, dataPath: string): void {
  if (existsSync(modelPath)) requireRegularFile(modelPath, '--model');
  requireRegularFile(dataPath, '--data');
}

/** The softmax report as `evaluate --json` prints it (README, "dpt predict and dpt evaluate"). */
export interface SoftmaxReport {
  readonly kind: 'softmax-regression';
  readonly rows: number;
  readonly logLoss: number;
  readonly accuracy: number;
  readonly classes: readonly (number | string)[];
  readonly perClass: readonly { class: number | string; precision: number; recall: number; f1: number; support: number; predicted: number }[];
  readonly macro: SoftmaxMetrics['macro'];
  readonly confusion: SoftmaxMetrics['confusion'];
}

export async function evaluateCommand(
  modelPath: string,
  dataPath: string,
  labelColumn: string | undefined,
  asJson: boolean,
  format?: string,
): Promise<Metrics | SoftmaxReport> {
  requireInputs(modelPath, dataPath);
  const inputFormat = inputFormatOf(dataPath, format);
  const model = readModelFile(modelPath);
  if (isSparseModel(model)) {
    if (model.kind === 'softmax-regression') {
      const tally = await evaluateSparseSoftmax(model, dataPath, inputFormat, labelColumn);
      return printSoftmaxReport(tally.metrics(), modelClasses(model), asJson);
    }
    return printMetrics(await evaluateSparseLogistic(model, dataPath, inputFormat, labelColumn), asJson);
  }
  refuseLibsvm(modelPath, dataPath, inputFormat);
  if (model.kind === 'softmax-regression') return evaluateSoftmaxCommand(model, dataPath, labelColumn ?? model.label ?? undefined, asJson);
  const data = loadForModel(model, dataPath, labelColumn ?? model.label ?? undefined);
  return printMetrics(evaluateModel(data.x, data.y, data.features, Float64Array.from(model.weights), model.bias), asJson);
}

/** Prints binary metrics as one JSON line or as a table. */
function printMetrics(metrics: Metrics, asJson: boolean): Metrics {
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

function evaluateSoftmaxCommand(model: SoftmaxModelFile, dataPath: string, labelColumn: string | undefined, asJson: boolean): SoftmaxReport {
  const data = loadForSoftmax(model, dataPath, labelColumn);
  const classes = modelClasses(model);
  const K = classes.values.length;
  return printSoftmaxReport(evaluateSoftmax(data.x, data.y, data.features, K, softmaxTheta(model)), classes, asJson);
}

/** Prints the softmax report of `metrics` as one JSON line or as tables. */
function printSoftmaxReport(metrics: SoftmaxMetrics, classes: ClassList, asJson: boolean): SoftmaxReport {
  const report: SoftmaxReport = {
    kind: 'softmax-regression',
    rows: metrics.rows,
    logLoss: metrics.logLoss,
    accuracy: metrics.accuracy,
    classes: classes.values,
    perClass: metrics.perClass.map((c, k) => ({ class: classes.values[k]!, ...c })),
    macro: metrics.macro,
    confusion: metrics.confusion,
  };
  process.stdout.write(asJson ? `${JSON.stringify(report)}\n` : formatSoftmaxReport(report, classes));
  return report;
}

/** The human-readable softmax report: totals, a per-class table with macro averages, the confusion matrix. */
function formatSoftmaxReport(report: SoftmaxReport, classes: ClassList): string {
  const names = classes.values.map((_, k) => classText(classes, k));
  const lines = [
    `${'rows'.padEnd(10)} ${report.rows}`,
    `${'log-loss'.padEnd(10)} ${report.logLoss.toFixed(6)}`,
    `${'accuracy'.padEnd(10)} ${report.accuracy.toFixed(4)}`,
    '',
  ];
  const width = Math.max(9, ...names.map((name) => name.length));
  const table = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(width) : cell.padStart(10))).join(' ');
  lines.push(table(['class', 'precision', 'recall', 'F1', 'support']));
  report.perClass.forEach((c, k) => {
    lines.push(table([names[k]!, c.precision.toFixed(4), c.recall.toFixed(4), c.f1.toFixed(4), String(c.support)]));
  });
  const { macro } = report;
  lines.push(table(['macro avg', macro.precision.toFixed(4), macro.recall.toFixed(4), macro.f1.toFixed(4), String(report.rows)]));
  lines.push('', 'confusion matrix (rows: true class, columns: predicted class)');
  const cellWidth = Math.max(...names.map((name) => name.length), ...report.confusion.flat().map((count) => String(count).length));
  lines.push([''.padEnd(width), ...names.map((name) => name.padStart(cellWidth))].join(' '));
  report.confusion.forEach((counts, t) => {
    lines.push([names[t]!.padEnd(width), ...counts.map((count) => String(count).padStart(cellWidth))].join(' '));
  });
  return `${lines.join('\n')}\n`;
}

// `dpt predict` and `dpt evaluate` for models over sparse inputs (issue #13). A hashed model
// ('input': 'hashed-csv') hashes each CSV (.csv, .csv.gz) record with the hashing its file records
// (shared/feature-hashing.ts's createRowHasher); a LIBSVM model reads LIBSVM lines (.svm, .libsvm,
// or --format libsvm). Rows are streamed and scored in O(nnz) each (shared/sparse-predict.ts):
// never a dense D-vector per row. A LIBSVM index beyond the model's D adds nothing (weight 0, as
// liblinear-predict does); labels are read as training reads them. A sparse .dpt file (`dpt data
// convert`) is read too, when its features were made as the model's.

import { type ClassList, createClassIndex } from '../shared/classes.js';
import { streamCsvRecords } from '../shared/csv-stream.js';
import { ConfigError, DatasetError } from '../shared/errors.js';
import { binaryMetrics, type Metrics, SoftmaxTally } from '../shared/evaluation.js';
import { createRowHasher, type RowHasher } from '../shared/feature-hashing.js';
import { BINARY_CLASSES } from '../shared/label-cells.js';
import { streamLibsvmRows } from '../shared/libsvm.js';
import { sigmoid } from '../shared/model.js';
import { type ModelHashing, modelClasses, type SparseModelFile, type SparseSoftmaxModelFile } from '../shared/model-file.js';
import { isSparseDptFile, readSparseDataset } from '../shared/sparse-dataset.js';
import { scoreSparseRow, softmaxProbabilities, sparseScorer } from '../shared/sparse-predict.js';

/** The input formats --format names. */
export const SPARSE_INPUT_FORMATS = ['csv', 'libsvm'] as const;
export type InputFormat = (typeof SPARSE_INPUT_FORMATS)[number];

/** One streamed row: its entries in indices/values [0, count) (reused by the next row), its label cell (null when the input has none) and 1-based line. */
type RowHandler = (indices: ArrayLike<number>, values: ArrayLike<number>, count: number, label: string | null, line: number) => void;

/** The format of `path`: --format when given, else LIBSVM for .svm/.libsvm (optionally .gz), else CSV. */
export function inputFormatOf(path: string, format: string | undefined): InputFormat {
  if (format !== undefined) {
    if (!(SPARSE_INPUT_FORMATS as readonly string[]).includes(format))
      throw new ConfigError(`--format ${format} is not one of ${SPARSE_INPUT_FORMATS.join(', ')}`);
    return format as InputFormat;
  }
  return /\.(svm|libsvm)(\.gz)?$/i.test(path) ? 'libsvm' : 'csv';
}

/**
 * Streams the rows of `dataPath` as the model reads them. The input must be what the model was
 * trained on: CSV for a hashed model, LIBSVM for a LIBSVM model (ConfigError, exit 2, otherwise).
 * `labelColumn` (CSV) overrides the hashing record's label column; `needsLabel` makes a missing
 * label column an error.
 */
async function streamModelRows(
  model: SparseModelFile,
  dataPath: string,
  format: InputFormat,
  labelColumn: string | undefined,
  needsLabel: boolean,
  onRow: RowHandler,
): Promise<void> {
  if (format === 'csv' && dataPath.endsWith('.dpt') && isSparseDptFile(dataPath)) {
    readSparseRows(model, dataPath, onRow);
    return;
  }
  if (model.input === 'libsvm') {
    if (format !== 'libsvm')
      throw new ConfigError(`--data ${dataPath}: the model was trained on LIBSVM input; give a .svm/.libsvm file, --format libsvm or its sparse .dpt`);
    await streamLibsvmRows(dataPath, (indices, values, count, label, line) => onRow(indices, values, count, label, line));
    return;
  }
  if (format !== 'csv')
    throw new ConfigError(`--data ${dataPath}: the model hashes CSV columns (${model.hashing!.columns.join(', ')}); give a CSV file or its sparse .dpt`);
  const spec = labelColumn === undefined ? model.hashing! : { ...model.hashing!, labelColumn };
  let hasher: RowHasher | null = null;
  await streamCsvRecords(dataPath, (fields, line) => {
    if (hasher === null) {
      hasher = createRowHasher(spec, fields, dataPath, line);
      if (needsLabel && hasher.labelIndex < 0) throw new DatasetError(dataPath, line, undefined, `no label column '${spec.labelColumn}' in the header`);
      return;
    }
    const count = hasher.hashRow(fields, line);
    onRow(hasher.indices, hasher.values, count, hasher.labelIndex < 0 ? null : fields[hasher.labelIndex]!, line);
  });
  if (hasher === null) throw new DatasetError(dataPath, undefined, undefined, 'the file is empty (no header)');
}

/**
 * The rows of a sparse .dpt file (`dpt data convert`), checked whole by readSparseDataset. Its
 * features must be the model's: the same hashing record (the label column aside), or LIBSVM
 * indices for a LIBSVM model. Labels are passed on as their class values' text.
 */
function readSparseRows(model: SparseModelFile, dataPath: string, onRow: RowHandler): void {
  const data = readSparseDataset(dataPath, '--data');
  const features = (hashing: ModelHashing | null | undefined): string =>
    hashing === null || hashing === undefined ? 'LIBSVM indices' : JSON.stringify({ ...hashing, labelColumn: null });
  if (features(data.hashing) !== features(model.hashing)) {
    throw new ConfigError(
      `--data ${dataPath}: its features (${data.hashing === null ? 'LIBSVM indices' : `hashed into 2^${data.hashing.bits} buckets`}) were not made as the model's (${model.input === 'libsvm' ? 'LIBSVM indices' : 'its hashing record'})`,
    );
  }
  const cells = data.classes.values.map((value) => String(value));
  for (let row = 0; row < data.rows; row++) {
    const from = data.rowStart[row]!;
    const to = data.rowStart[row + 1]!;
    onRow(data.indices.subarray(from, to), data.values.subarray(from, to), to - from, cells[data.labels[row]!]!, row + 1);
  }
}

/** A class index of the model for a label cell: LIBSVM binary labels −1/+1 (and 0/1) are 0/1. */
function labelIndexer(model: SparseModelFile, dataPath: string): (cell: string, line: number) => number {
  const classes: ClassList = model.kind === 'logistic-regression' ? BINARY_CLASSES : modelClasses(model);
  const indexOf = createClassIndex(classes);
  const isLibsvmBinary = model.input === 'libsvm' && model.kind === 'logistic-regression';
  return (cell, line) => {
    const k = isLibsvmBinary && Number(cell) === -1 ? 0 : indexOf(cell);
    if (k < 0) {
      const expected = isLibsvmBinary ? '−1/+1 or 0/1' : classes.values.join(', ');
      throw new DatasetError(dataPath, line, undefined, `label ${JSON.stringify(cell)} is not one of the model's classes (${expected})`);
    }
    return k;
  };
}

/** A CSV field, quoted when it needs to be (as cli/predict.ts writes class labels). */
function csvField(text: string): string {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The lines `dpt predict` writes for a sparse-input model: the same columns as for a dense one. */
export async function predictSparseLines(model: SparseModelFile, dataPath: string, format: InputFormat): Promise<string[]> {
  const scorer = sparseScorer(model);
  const z = new Float64Array(scorer.outputs);
  if (model.kind === 'logistic-regression') {
    const lines = ['probability,prediction'];
    await streamModelRows(model, dataPath, format, undefined, false, (indices, values, count) => {
      scoreSparseRow(scorer, indices, values, 0, count, z);
      lines.push(`${sigmoid(z[0]!)},${z[0]! > 0 ? 1 : 0}`);
    });
    return lines;
  }
  const K = model.classes.length;
  const labels = model.classes.map((label) => csvField(String(label)));
  const lines = [['prediction', ...model.classes.map((label) => csvField(`p_${String(label)}`))].join(',')];
  const p = new Float64Array(K);
  await streamModelRows(model, dataPath, format, undefined, false, (indices, values, count) => {
    scoreSparseRow(scorer, indices, values, 0, count, z);
    const k = softmaxProbabilities(z, K, p);
    lines.push(`${labels[k]},${Array.from(p).join(',')}`);
  });
  return lines;
}

/** Binary metrics of a logistic sparse-input model over a labelled file (scores kept for the AUC: 8 bytes a row). */
export async function evaluateSparseLogistic(model: SparseModelFile, dataPath: string, format: InputFormat, labelColumn: string | undefined): Promise<Metrics> {
  const scorer = sparseScorer(model);
  const z = new Float64Array(1);
  const indexOf = labelIndexer(model, dataPath);
  let scores = new Float64Array(1 << 16);
  let y = new Uint8Array(1 << 16);
  let n = 0;
  await streamModelRows(model, dataPath, format, labelColumn, true, (indices, values, count, label, line) => {
    if (n === scores.length) {
      const grown = new Float64Array(2 * n);
      grown.set(scores);
      scores = grown;
      const grownY = new Uint8Array(2 * n);
      grownY.set(y);
      y = grownY;
    }
    scoreSparseRow(scorer, indices, values, 0, count, z);
    scores[n] = z[0]!;
    y[n] = indexOf(label!, line); // needsLabel: every row has one
    n++;
  });
  if (n === 0) throw new DatasetError(dataPath, undefined, undefined, 'no data rows to evaluate');
  return binaryMetrics(scores.subarray(0, n), y.subarray(0, n));
}

/** The softmax tally of a softmax sparse-input model over a labelled file. */
export async function evaluateSparseSoftmax(
  model: SparseSoftmaxModelFile,
  dataPath: string,
  format: InputFormat,
  labelColumn: string | undefined,
): Promise<SoftmaxTally> {
  const scorer = sparseScorer(model);
  const z = new Float64Array(scorer.outputs);
  const indexOf = labelIndexer(model, dataPath);
  const tally = new SoftmaxTally(scorer.outputs);
  let n = 0;
  await streamModelRows(model, dataPath, format, labelColumn, true, (indices, values, count, label, line) => {
    scoreSparseRow(scorer, indices, values, 0, count, z);
    tally.add(z, indexOf(label!, line)); // needsLabel: every row has one
    n++;
  });
  if (n === 0) throw new DatasetError(dataPath, undefined, undefined, 'no data rows to evaluate');
  return tally;
}

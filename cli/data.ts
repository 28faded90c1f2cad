// `dpt data …`: convert a CSV file to the binary .dpt format (or LIBSVM and hashed CSV to a sparse
// .dpt, issue #13), generate a synthetic data set, and show (and verify) a dense or sparse .dpt file. Progress goes to stderr: a redrawn bar on a TTY, a plain line
// every few seconds on a pipe; the result goes to stdout.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { BinaryDataset } from '../shared/binary-dataset.js';
import { type ClassList, DEFAULT_MAX_CLASSES, listClasses } from '../shared/classes.js';
import { convertCsvToBinary } from '../shared/csv-convert.js';
import { ConfigError } from '../shared/errors.js';
import type { FeatureHashing } from '../shared/feature-hashing.js';
import { MAX_DPT_CLASSES } from '../shared/label-cells.js';
import { convertLibsvmToSparse } from '../shared/libsvm.js';
import { requireRegularFile } from '../shared/regular-file.js';
import { convertCsvToSparse } from '../shared/sparse-convert.js';
import { sparseFormatOf } from '../shared/sparse-data-file.js';
import { isSparseDptFile, readSparseDataset, type SparseDatasetSummary } from '../shared/sparse-dataset.js';
import { generateDatasetInterruptibly, type SyntheticFormat } from '../shared/synthetic.js';
import { integerIn, MAX_GENERATED_FEATURES, MAX_ROWS, seed } from './options.js';
import { checkOutputPaths } from './output-paths.js';
import { addSparseInputOptions, type SparseInputFlags, sparseInputOf } from './sparse-flags.js';

/** Redraw interval on a TTY and line interval on a pipe. */
const TTY_REDRAW_MS = 100;
const PIPE_LINE_MS = 5000;
const BAR_WIDTH = 24;
/** `dpt data info` lists this many classes, then how many more. */
const SHOWN_CLASSES = 20;

/** One progress display: the fraction done drives the bar and the ETA; rows drive the rate. */
class Progress {
  private readonly label: string;
  private readonly isQuiet: boolean;
  private readonly isTty = process.stderr.isTTY === true;
  private readonly started = performance.now();
  private lastShown = this.started;

  constructor(label: string, isQuiet: boolean) {
    this.label = label;
    this.isQuiet = isQuiet;
  }

  update(fraction: number, rows: number): void {
    const now = performance.now();
    if (this.isQuiet || now - this.lastShown < (this.isTty ? TTY_REDRAW_MS : PIPE_LINE_MS)) return;
    this.lastShown = now;
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? rows / seconds : 0;
    const eta = fraction > 0 ? (seconds * (1 - fraction)) / fraction : Number.NaN;
    const percent = `${Math.floor(Math.min(1, fraction) * 100)}%`;
    const counts = `${rows.toLocaleString('en-US')} rows  ${Math.round(rate).toLocaleString('en-US')} rows/s  ETA ${formatDuration(eta)}`;
    if (this.isTty) {
      const filled = Math.round(Math.min(1, fraction) * BAR_WIDTH);
      process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${percent.padStart(4)}  ${counts}\x1b[K`);
    } else {
      process.stderr.write(`${this.label}: ${percent}, ${counts}\n`);
    }
  }

  /** Clears the bar (TTY) and returns the elapsed seconds. */
  finish(): number {
    if (this.isTty && !this.isQuiet && this.lastShown !== this.started) process.stderr.write('\r\x1b[K');
    return (performance.now() - this.started) / 1000;
  }
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** The classes as `dpt data info` shows them: K, then the first SHOWN_CLASSES values ("cat", 2.5). */
function describeClasses(classes: ClassList): string {
  return `${classes.values.length} (${listClasses(classes, SHOWN_CLASSES)})`;
}

function format(value: string): SyntheticFormat {
  if (value !== 'dpt' && value !== 'csv') throw new InvalidArgumentError('expected dpt or csv.');
  return value;
}

/**
 * Ctrl-C or SIGTERM while a file is written: say so and exit 130; process.exit runs the exit hook
 * of shared/atomic-file.ts, which removes the temporary files, so no partial output is left.
 */
function exitOnSignal(): void {
  const stop = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\ndpt: stopped by ${signal}; the output was not written\n`);
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function addDataCommands(program: Command): void {
  const data = program.command('data').description('convert, generate and inspect data files');

  const convert = data
    .command('convert')
    .description('convert a CSV file (or .csv.gz) to the binary .dpt format, streaming; LIBSVM or CSV with --hash-bits to a sparse .dpt')
    .argument('<in>', 'CSV file with a header row, or LIBSVM file (.svm, .libsvm), plain or gzip')
    .argument('<out>', '.dpt file to write')
    .option('--label-column <name|index>', 'label column: header name or 0-based index (default: the last column)')
    .addOption(
      new Option('--max-classes <n>', 'most distinct labels (classes) the label column may hold')
        .argParser(integerIn(1, MAX_DPT_CLASSES))
        .default(DEFAULT_MAX_CLASSES),
    )
    .option('--quiet', 'no progress display');
  addSparseInputOptions(convert).action(
    async (input: string, output: string, flags: { labelColumn?: string; maxClasses: number; quiet?: boolean } & SparseInputFlags) => {
      requireRegularFile(input, '<in>');
      checkOutputPaths([{ flag: '<out>', path: output }], [{ flag: '<in>', path: input }]);
      const sparse = sparseInputOf(flags);
      const format = sparseFormatOf(input, sparse);
      if (format === 'dpt') throw new ConfigError(`<in> ${input} is already a sparse .dpt file`);
      exitOnSignal();
      const progress = new Progress(`converting ${input}`, flags.quiet === true);
      if (format !== null) {
        if (format === 'libsvm' && flags.labelColumn !== undefined)
          throw new ConfigError('--label-column applies to CSV input; a LIBSVM label is the first field');
        const onProgress = ({ bytesRead, totalBytes, rows }: { bytesRead: number; totalBytes: number; rows: number }): void =>
          progress.update(totalBytes > 0 ? bytesRead / totalBytes : 1, rows);
        const summary =
          format === 'libsvm'
            ? await convertLibsvmToSparse(input, output, { maxClasses: flags.maxClasses, onProgress })
            : await convertCsvToSparse(input, output, { ...sparse.hashing!, labelColumn: flags.labelColumn, maxClasses: flags.maxClasses, onProgress }); // 'csv' comes with hashing
        writeSparseSummary(input, output, summary, progress.finish());
        return;
      }
      const summary = await convertCsvToBinary(input, output, {
        labelColumn: flags.labelColumn,
        maxClasses: flags.maxClasses,
        onProgress: ({ bytesRead, totalBytes, rows }) => progress.update(totalBytes > 0 ? bytesRead / totalBytes : 1, rows),
      });
      const seconds = progress.finish();
      process.stdout.write(
        `converted ${input} to ${output}: ${summary.rows.toLocaleString('en-US')} rows × ${summary.features} features, ${formatBytes(summary.bytes)}, ` +
          `in ${seconds.toFixed(1)} s (${Math.round(summary.rows / seconds).toLocaleString('en-US')} rows/s); classes ${describeClasses(summary.classes)}; identity ${summary.identity}\n`,
      );
    },
  );

  data
    .command('generate')
    .description('write a synthetic logistic-regression data set from known true weights (saved as OUT.weights.json)')
    .addOption(new Option('--rows <n>', 'rows to generate').argParser(integerIn(1, MAX_ROWS)).makeOptionMandatory())
    .addOption(new Option('--features <d>', 'features per row').argParser(integerIn(1, MAX_GENERATED_FEATURES)).makeOptionMandatory())
    .addOption(new Option('--seed <n>', 'seed of the weights and the rows').argParser(seed).default(1))
    .requiredOption('--out <path>', 'file to write')
    .addOption(new Option('--format <format>', 'dpt or csv (default: csv for a .csv name, else dpt)').argParser(format))
    .option('--quiet', 'no progress display')
    .action(async (flags: { rows: number; features: number; seed: number; out: string; format?: SyntheticFormat; quiet?: boolean }) => {
      checkOutputPaths(
        [
          { flag: '--out', path: flags.out },
          { flag: '--out (its .weights.json)', path: `${flags.out}.weights.json` },
        ],
        [],
      );
      exitOnSignal();
      const chosen = flags.format ?? (flags.out.toLowerCase().endsWith('.csv') ? 'csv' : 'dpt');
      const progress = new Progress(`generating ${flags.out}`, flags.quiet === true);
      const result = await generateDatasetInterruptibly({ rows: flags.rows, features: flags.features, seed: flags.seed }, flags.out, chosen, (rows) =>
        progress.update(rows / flags.rows, rows),
      );
      const seconds = progress.finish();
      process.stdout.write(
        `generated ${flags.out}: ${result.rows.toLocaleString('en-US')} rows × ${flags.features} features (${chosen}), ${formatBytes(result.bytes)}, ` +
          `in ${seconds.toFixed(1)} s (${formatBytes(result.bytes / seconds)}/s); true weights in ${result.weightsPath}\n`,
      );
    });

  data
    .command('info')
    .description('show the header of a .dpt file; --verify also checks every content block (a sparse .dpt is always read and checked whole)')
    .argument('<file>', '.dpt file')
    .option('--verify', 'read the whole file and check every block: its CRC-32, finite features, labels 0 or 1 (or class indices below K)')
    .option('--json', 'print one JSON object')
    .action((path: string, flags: { verify?: boolean; json?: boolean }) => {
      if (isSparseDptFile(path)) {
        showSparseInfo(path, flags.json === true);
        return;
      }
      const dataset = BinaryDataset.open(path, '<file>');
      try {
        const started = performance.now();
        if (flags.verify === true) dataset.verify();
        const seconds = (performance.now() - started) / 1000;
        const info = {
          path,
          rows: dataset.rows,
          features: dataset.features,
          label: dataset.labelName,
          featureNames: dataset.featureNames,
          version: dataset.sections.version,
          labelType: dataset.labelType,
          classes: dataset.classes.values,
          bytes: dataset.bytes,
          identity: dataset.identity,
          verified: flags.verify === true,
        };
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(info)}\n`);
          return;
        }
        const names =
          dataset.featureNames.length > 8 ? `${dataset.featureNames.slice(0, 8).join(', ')}, … (${dataset.features})` : dataset.featureNames.join(', ');
        process.stdout.write(
          `${path}: ${dataset.rows.toLocaleString('en-US')} rows × ${dataset.features} features, label '${dataset.labelName}', ${formatBytes(dataset.bytes)}\n` +
            `features: ${names}\nclasses: ${describeClasses(dataset.classes)}; labels stored as ${dataset.labelType} ` +
            `(version ${dataset.sections.version}: ${dataset.labelType === 'uint8' ? 'the 0/1 label itself' : 'the class index'})\nidentity: ${dataset.identity}\n` +
            (flags.verify === true
              ? `content verified: every block's CRC-32 matches, every feature is finite, every label ${dataset.labelType === 'uint8' ? '0 or 1' : `a class index below ${dataset.classes.values.length}`} (${formatBytes(dataset.bytes / Math.max(seconds, 1e-9))}/s)\n`
              : 'content not verified here (--verify reads every block; training, predict and evaluate check each block before using its rows)\n'),
        );
      } finally {
        dataset.close();
      }
    });
}

function writeSparseSummary(input: string, output: string, summary: SparseDatasetSummary, seconds: number): void {
  process.stdout.write(
    `converted ${input} to ${output} (sparse): ${summary.rows.toLocaleString('en-US')} rows, D = ${summary.dims.toLocaleString('en-US')}, ` +
      `${summary.nnz.toLocaleString('en-US')} non-zeros (${(summary.nnz / summary.rows).toFixed(2)} a row), ${formatBytes(summary.bytes)}, ` +
      `in ${seconds.toFixed(1)} s (${Math.round(summary.rows / seconds).toLocaleString('en-US')} rows/s); classes ${describeClasses(summary.classes)}; identity ${summary.identity}\n`,
  );
}

/** The hashing spec in one line: function, buckets, columns by kind, crosses, label. */
function describeHashing(hashing: FeatureHashing): string {
  const list = (names: readonly string[]): string => (names.length === 0 ? 'none' : names.join(', '));
  return (
    `${hashing.function} seed ${hashing.seed} mod 2^${hashing.bits}; categorical: ${list(hashing.categorical)}; numeric: ${list(hashing.numeric)}; ` +
    `crosses: ${list(hashing.crosses.map(([a, b]) => `${a}:${b}`))}; label '${hashing.labelColumn}'`
  );
}

/** `dpt data info` of a sparse .dpt: read and checked whole (the row lengths need the rows). */
function showSparseInfo(path: string, isJson: boolean): void {
  const started = performance.now();
  const dataset = readSparseDataset(path, '<file>');
  const seconds = (performance.now() - started) / 1000;
  let maxPerRow = 0;
  for (let i = 0; i < dataset.rows; i++) maxPerRow = Math.max(maxPerRow, dataset.rowStart[i + 1]! - dataset.rowStart[i]!);
  const meanPerRow = dataset.nnz / dataset.rows;
  const density = dataset.nnz / (dataset.rows * dataset.dims);
  if (isJson) {
    const info = {
      path,
      kind: 'sparse',
      rows: dataset.rows,
      dims: dataset.dims,
      nnz: dataset.nnz,
      nnzPerRowMean: meanPerRow,
      nnzPerRowMax: maxPerRow,
      density,
      label: dataset.labelName,
      labelType: dataset.labelType,
      classes: dataset.classes.values,
      hashing: dataset.hashing,
      bytes: dataset.bytes,
      identity: dataset.identity,
      verified: true,
    };
    process.stdout.write(`${JSON.stringify(info)}\n`);
    return;
  }
  process.stdout.write(
    `${path}: sparse .dpt, ${dataset.rows.toLocaleString('en-US')} rows, D = ${dataset.dims.toLocaleString('en-US')} features, ` +
      `${dataset.nnz.toLocaleString('en-US')} non-zeros, label '${dataset.labelName}', ${formatBytes(dataset.bytes)}\n` +
      `non-zeros per row: mean ${meanPerRow.toFixed(2)}, max ${maxPerRow}; density ${density < 1e-3 ? density.toExponential(2) : density.toPrecision(3)}\n` +
      `classes: ${describeClasses(dataset.classes)}; labels stored as ${dataset.labelType} (the class index)\n` +
      `features: ${dataset.hashing === null ? 'LIBSVM indices (feature j − 1 is index j), no hashing' : `hashed: ${describeHashing(dataset.hashing)}`}\n` +
      `identity: ${dataset.identity}\n` +
      `content verified: every block's CRC-32 matches, every row's indices increase below D, every value is finite and non-zero, every label a class index (${formatBytes(dataset.bytes / Math.max(seconds, 1e-9))}/s)\n`,
  );
}

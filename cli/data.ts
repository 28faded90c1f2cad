// `dpt data …`: convert a CSV file to the binary .dpt format, generate a synthetic data set, and
// show (and verify) a .dpt file. Progress goes to stderr: a redrawn bar on a TTY, a plain line
// every few seconds on a pipe; the result goes to stdout.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { BinaryDataset } from '../shared/binary-dataset.js';
import { type ClassList, DEFAULT_MAX_CLASSES, listClasses } from '../shared/classes.js';
import { convertCsvToBinary } from '../shared/csv-convert.js';
import { MAX_DPT_CLASSES } from '../shared/label-cells.js';
import { requireRegularFile } from '../shared/regular-file.js';
import { generateDatasetInterruptibly, type SyntheticFormat } from '../shared/synthetic.js';
import { integerIn, MAX_GENERATED_FEATURES, MAX_ROWS, seed } from './options.js';
import { checkOutputPaths } from './output-paths.js';

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

  data
    .command('convert')
    .description('convert a CSV file (or .csv.gz) to the binary .dpt format, streaming')
    .argument('<in>', 'CSV file with a header row, plain or gzip')
    .argument('<out>', '.dpt file to write')
    .option('--label-column <name|index>', 'label column: header name or 0-based index (default: the last column)')
    .addOption(
      new Option('--max-classes <n>', 'most distinct labels (classes) the label column may hold')
        .argParser(integerIn(1, MAX_DPT_CLASSES))
        .default(DEFAULT_MAX_CLASSES),
    )
    .option('--quiet', 'no progress display')
    .action(async (input: string, output: string, flags: { labelColumn?: string; maxClasses: number; quiet?: boolean }) => {
      requireRegularFile(input, '<in>');
      checkOutputPaths([{ flag: '<out>', path: output }], [{ flag: '<in>', path: input }]);
      exitOnSignal();
      const progress = new Progress(`converting ${input}`, flags.quiet === true);
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
    });

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
    .description('show the header of a .dpt file; --verify also checks every content block')
    .argument('<file>', '.dpt file')
    .option('--verify', 'read the whole file and check every block: its CRC-32, finite features, labels 0 or 1 (or class indices below K)')
    .option('--json', 'print one JSON object')
    .action((path: string, flags: { verify?: boolean; json?: boolean }) => {
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

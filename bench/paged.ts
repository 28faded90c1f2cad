// `npm run bench:paged`: rows/s of paged reads against rows in memory (issue #15 item 3). Generates
// a .dpt file (`dpt data generate`, default 1,000,000 × 100: 400 MB), then trains on it with W local
// workers holding the rows in memory (the default --memory-budget) and reading them from the file
// (--memory-budget 0) two ways: positioned reads (DPT_PAGED_READS=reads) and the memory map
// (native/mapped-file.c; the default where the addon is built), with --shuffle rows and --shuffle
// blocks, and prints rows/s from the --metrics step events (Σ rows / Σ stepMs, the first 10 % of
// steps excluded) and the ratios paged / in memory. Warm cache: the file was just written or read.
// --cold also drops the page cache before each paged run (needs root: /proc/sys/vm/drop_caches), so
// the first epoch reads from disk. --repeat N runs each configuration N times, interleaved (memory,
// reads, mapped, memory, …), and prints the range. --cli PATH runs another build (e.g. an older
// commit's dist/cli/main.js, for before/after).
//
// --warm-epochs K times only the steps after the first K epochs (a worker's first touch of each
// mapped page, paid once per process, then falls outside the timing, as an in-memory worker's
// load does).
//
// Flags: --rows N, --features D, --batch-size B, --workers W, --epochs E, --warm-epochs K, --data PATH (an existing
// .dpt instead of generating one), --cold, --repeat N, --shuffle rows|blocks (one only), --cli PATH,
// --out PATH (JSON; default bench/results/paged.json).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { StepEvent } from '../shared/events.js';
import { formatNumber, formatTable, REPO, RESULTS_DIR, writeJson } from './harness.js';

const RUN_TIMEOUT_MS = 600_000;

interface Args {
  rows: number;
  features: number;
  batchSize: number;
  workers: number;
  epochs: number;
  /** Epochs whose steps are not timed (0: the first 10 % of steps are not). */
  warmEpochs: number;
  data: string | null;
  isCold: boolean;
  repeat: number;
  shuffles: Array<'rows' | 'blocks'>;
  cli: string;
  out: string;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    rows: 1_000_000,
    features: 100,
    batchSize: 8192,
    workers: 2,
    epochs: 1,
    warmEpochs: 0,
    data: null,
    isCold: false,
    repeat: 1,
    shuffles: ['rows', 'blocks'],
    cli: join(REPO, 'dist', 'cli', 'main.js'),
    out: join(RESULTS_DIR, 'paged.json'),
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const count = (): number => {
      const text = value();
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, found '${text}'`);
      return n;
    };
    if (flag === '--rows') args.rows = count();
    else if (flag === '--features') args.features = count();
    else if (flag === '--batch-size') args.batchSize = count();
    else if (flag === '--workers') args.workers = count();
    else if (flag === '--epochs') args.epochs = count();
    else if (flag === '--data') args.data = value();
    else if (flag === '--warm-epochs') {
      const text = value();
      args.warmEpochs = Number(text);
      if (!Number.isInteger(args.warmEpochs) || args.warmEpochs < 0) throw new Error(`--warm-epochs: expected a non-negative integer, found '${text}'`);
    } else if (flag === '--cold') args.isCold = true;
    else if (flag === '--repeat') args.repeat = count();
    else if (flag === '--shuffle') {
      const shuffle = value();
      if (shuffle !== 'rows' && shuffle !== 'blocks') throw new Error(`--shuffle: expected rows or blocks, found '${shuffle}'`);
      args.shuffles = [shuffle];
    } else if (flag === '--cli') args.cli = value();
    else if (flag === '--out') args.out = value();
    else throw new Error(`unknown flag ${flag}`);
  }
  return args;
}

/** Drops the page cache (root only); false when it cannot. */
function dropCaches(): boolean {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** Rows/s over the timed steps of one `dpt train` run, or null (with a message) on failure. */
/** How a run holds its rows: in memory, paged by positioned reads, paged through the memory map. */
type Holding = 'memory' | 'reads' | 'mapped';

function train(args: Args, data: string, shuffle: 'rows' | 'blocks', holding: Holding, directory: string): { rowsPerSec: number; steps: number } | null {
  const budgetMb = holding === 'memory' ? null : 0;
  const metrics = join(directory, `metrics-${shuffle}-${budgetMb ?? 'default'}.jsonl`);
  const flags = ['train', '--data', data, '--workers', String(args.workers), '--epochs', String(args.epochs), '--eval-every', String(args.epochs)];
  flags.push('--batch-size', String(args.batchSize), '--lr', '0.1', '--no-standardize', '--shuffle', shuffle, '--metrics', metrics);
  flags.push('--out', join(directory, 'model.json'));
  if (budgetMb !== null) flags.push('--memory-budget', String(budgetMb));
  const env = { ...process.env, DPT_PAGED_READS: holding === 'reads' ? 'reads' : 'auto' };
  const result = spawnSync(process.execPath, [args.cli, ...flags], { encoding: 'utf8', timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20, env });
  if (result.status !== 0) {
    process.stdout.write(`  dpt train failed (exit ${result.status ?? result.signal}): ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}\n`);
    return null;
  }
  const events = readFileSync(metrics, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { type: string })
    .filter((event): event is StepEvent => event.type === 'step');
  rmSync(metrics, { force: true });
  const timed = args.warmEpochs > 0 ? events.filter((event) => event.epoch >= args.warmEpochs) : events.slice(Math.ceil(events.length / 10));
  const ms = timed.reduce((sum, event) => sum + event.stepMs, 0);
  const rows = timed.reduce((sum, event) => sum + event.rows, 0);
  return timed.length === 0 || ms <= 0 ? null : { rowsPerSec: (rows * 1000) / ms, steps: timed.length };
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const directory = mkdtempSync(join(tmpdir(), 'dpt-bench-paged-'));
  try {
    let data = args.data;
    if (data === null) {
      data = join(directory, 'paged.dpt');
      const generated = spawnSync(
        process.execPath,
        [args.cli, 'data', 'generate', '--rows', String(args.rows), '--features', String(args.features), '--out', data, '--quiet'],
        { encoding: 'utf8', timeout: RUN_TIMEOUT_MS },
      );
      if (generated.status !== 0) throw new Error(`dpt data generate failed: ${generated.stderr}`);
    }
    const timing = args.warmEpochs > 0 ? `steps of epochs ${args.warmEpochs + 1}–${args.epochs} timed` : 'the first 10 % of steps not timed';
    process.stdout.write(
      `paged reads: ${data}, B = ${args.batchSize}, W = ${args.workers}, ${args.epochs} epoch(s) (${timing}), --no-standardize, ${args.cli}\n`,
    );
    const table: string[][] = [];
    const results: Record<string, unknown>[] = [];
    // A mapped run without the addon would silently measure reads: skip it instead.
    const addon = join(dirname(args.cli), '..', '..', 'build', 'native', 'mapped-file.node');
    const holdings: Holding[] = existsSync(addon) ? ['memory', 'reads', 'mapped'] : ['memory', 'reads'];
    if (holdings.length === 2) process.stdout.write(`  ${addon} not built: no mapped runs\n`);
    for (const shuffle of args.shuffles) {
      const warm: Record<Holding, number[]> = { memory: [], reads: [], mapped: [] };
      const cold: Record<Holding, number[]> = { memory: [], reads: [], mapped: [] };
      for (let round = 0; round < args.repeat; round++) {
        for (const holding of holdings) {
          const run = train(args, data, shuffle, holding, directory);
          if (run !== null) warm[holding].push(run.rowsPerSec);
          if (args.isCold && holding !== 'memory') {
            if (!dropCaches()) {
              process.stdout.write('  --cold: cannot write /proc/sys/vm/drop_caches (not root): cold runs skipped\n');
              args.isCold = false;
              continue;
            }
            const coldRun = train(args, data, shuffle, holding, directory);
            if (coldRun !== null) cold[holding].push(coldRun.rowsPerSec);
          }
        }
      }
      const memory = warm.memory;
      const span = (values: number[]): string =>
        values.length === 0
          ? '—'
          : values.length === 1
            ? formatNumber(values[0]!)
            : `${formatNumber(Math.min(...values))}–${formatNumber(Math.max(...values))}`;
      // Ratios of run k of a paged kind to run k in memory (interleaved, so under the same load), as a range.
      const ratio = (paged: number[]): string => {
        const ratios = paged.slice(0, memory.length).map((value, k) => value / memory[k]!);
        if (ratios.length === 0) return '—';
        const low = Math.min(...ratios);
        const high = Math.max(...ratios);
        return low === high ? `${formatNumber(low)}×` : `${formatNumber(low)}–${formatNumber(high)}×`;
      };
      table.push([
        shuffle,
        span(memory),
        span(warm.reads),
        ratio(warm.reads),
        span(warm.mapped),
        ratio(warm.mapped),
        span(cold.reads),
        ratio(cold.reads),
        span(cold.mapped),
        ratio(cold.mapped),
      ]);
      results.push({
        shuffle,
        memoryRowsPerSec: memory,
        readsWarmRowsPerSec: warm.reads,
        mappedWarmRowsPerSec: warm.mapped,
        readsColdRowsPerSec: cold.reads,
        mappedColdRowsPerSec: cold.mapped,
      });
    }
    process.stdout.write(
      `${formatTable(
        ['shuffle', 'in memory rows/s', 'reads warm', '/ memory', 'mapped warm', '/ memory', 'reads cold', '/ memory', 'mapped cold', '/ memory'],
        table,
      )}\n`,
    );
    process.stdout.write(
      `load average at the end: ${loadavg()
        .map((load) => load.toFixed(2))
        .join(', ')} (${cpus().length} CPUs)\n`,
    );
    writeJson(args.out, { args, results });
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

main();

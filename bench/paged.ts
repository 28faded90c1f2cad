// `npm run bench:paged`: rows/s of paged reads against rows in memory (issue #15 item 3). Generates
// a .dpt file (`dpt data generate`, default 1,000,000 × 100: 400 MB), then trains on it with W local
// workers holding the rows in memory (the default --memory-budget) and reading them from the file
// (--memory-budget 0), with --shuffle rows and --shuffle blocks, and prints rows/s from the
// --metrics step events (Σ rows / Σ stepMs, the first 10 % of steps excluded) and the ratio
// paged / in memory. Warm cache: the file was just written or read. --cold also drops the page
// cache before each paged run (needs root: /proc/sys/vm/drop_caches), so the first epoch reads
// from disk. --cli PATH runs another build (e.g. an older commit's dist/cli/main.js, for before/after).
//
// Flags: --rows N, --features D, --batch-size B, --workers W, --epochs E, --data PATH (an existing
// .dpt instead of generating one), --cold, --cli PATH, --out PATH (JSON; default bench/results/paged.json).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StepEvent } from '../shared/events.js';
import { formatNumber, formatTable, REPO, RESULTS_DIR, writeJson } from './harness.js';

const RUN_TIMEOUT_MS = 600_000;

interface Args {
  rows: number;
  features: number;
  batchSize: number;
  workers: number;
  epochs: number;
  data: string | null;
  isCold: boolean;
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
    data: null,
    isCold: false,
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
    else if (flag === '--cold') args.isCold = true;
    else if (flag === '--cli') args.cli = value();
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
function train(args: Args, data: string, shuffle: 'rows' | 'blocks', budgetMb: number | null, directory: string): { rowsPerSec: number; steps: number } | null {
  const metrics = join(directory, `metrics-${shuffle}-${budgetMb ?? 'default'}.jsonl`);
  const flags = ['train', '--data', data, '--workers', String(args.workers), '--epochs', String(args.epochs), '--eval-every', String(args.epochs)];
  flags.push('--batch-size', String(args.batchSize), '--lr', '0.1', '--no-standardize', '--shuffle', shuffle, '--metrics', metrics);
  flags.push('--out', join(directory, 'model.json'));
  if (budgetMb !== null) flags.push('--memory-budget', String(budgetMb));
  const result = spawnSync(process.execPath, [args.cli, ...flags], { encoding: 'utf8', timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20 });
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
  const timed = events.slice(Math.ceil(events.length / 10));
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
    process.stdout.write(`paged reads: ${data}, B = ${args.batchSize}, W = ${args.workers}, ${args.epochs} epoch(s), --no-standardize, ${args.cli}\n`);
    const table: string[][] = [];
    const results: Record<string, unknown>[] = [];
    for (const shuffle of ['rows', 'blocks'] as const) {
      const memory = train(args, data, shuffle, null, directory);
      const warm = train(args, data, shuffle, 0, directory);
      let cold: { rowsPerSec: number } | null = null;
      if (args.isCold) {
        if (dropCaches()) cold = train(args, data, shuffle, 0, directory);
        else process.stdout.write('  --cold: cannot write /proc/sys/vm/drop_caches (not root): cold runs skipped\n');
      }
      const ratio = (paged: { rowsPerSec: number } | null): string =>
        memory === null || paged === null ? '—' : `${formatNumber(paged.rowsPerSec / memory.rowsPerSec)}×`;
      table.push([
        shuffle,
        formatNumber(memory?.rowsPerSec ?? null),
        formatNumber(warm?.rowsPerSec ?? null),
        ratio(warm),
        formatNumber(cold?.rowsPerSec ?? null),
        ratio(cold),
      ]);
      results.push({
        shuffle,
        memoryRowsPerSec: memory?.rowsPerSec ?? null,
        pagedWarmRowsPerSec: warm?.rowsPerSec ?? null,
        pagedColdRowsPerSec: cold?.rowsPerSec ?? null,
      });
    }
    process.stdout.write(
      `${formatTable(['shuffle', 'in memory rows/s', 'paged warm rows/s', 'warm / memory', 'paged cold rows/s', 'cold / memory'], table)}\n`,
    );
    writeJson(args.out, { args, results });
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

main();

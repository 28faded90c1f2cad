// What the benchmarks share: repository paths, flag parsing for the grid filters, medians, number
// formatting and a plain-text table. Benchmarks only; nothing here is used by the product.

import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/bench/harness.js). */
export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const RESULTS_DIR = join(REPO, 'bench', 'results');

export interface GridArgs {
  readonly D: readonly number[];
  readonly B: readonly number[];
  readonly W: readonly number[];
  readonly quick: boolean;
  readonly flags: ReadonlySet<string>;
  /** --name value pairs not listed above. */
  readonly values: ReadonlyMap<string, string>;
}

/** Parses `--d 10,100 --b 64 --w 2 --quick --no-torch …`; repeated list flags accumulate. */
export function parseGridArgs(argv: readonly string[], defaults: { D: number[]; B: number[]; W: number[] }): GridArgs {
  const lists: Record<string, number[]> = { d: [], b: [], w: [] };
  const flags = new Set<string>();
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.replace(/^--/, '');
    const list = lists[name];
    if (list !== undefined) {
      const value = argv[++i] ?? '';
      for (const part of value.split(',')) {
        const n = Number(part);
        if (!Number.isInteger(n) || n < 1) throw new Error(`${arg}: expected positive integers, got '${value}'`);
        list.push(n);
      }
    } else if (
      arg.startsWith('--') &&
      argv[i + 1] !== undefined &&
      !argv[i + 1]!.startsWith('--') &&
      ['steps', 'seconds', 'out', 'trials', 'fan-in'].includes(name)
    ) {
      values.set(name, argv[++i]!);
    } else if (arg.startsWith('--')) flags.add(name);
    else throw new Error(`unexpected argument '${arg}'`);
  }
  const pick = (key: 'd' | 'b' | 'w', fallback: number[]): number[] => (lists[key]!.length > 0 ? lists[key]! : fallback);
  return { D: pick('d', defaults.D), B: pick('b', defaults.B), W: pick('w', defaults.W), quick: flags.has('quick'), flags, values };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** 3 significant digits, thousands separated: 1,234,000 / 56.7 / 0.123. */
export function formatNumber(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(3)).toString();
}

/** A GitHub-flavoured Markdown table (also readable as plain text). */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  return [line(headers), `|${widths.map((width, i) => (i < 2 ? ` ${'-'.repeat(width)} ` : ` ${'-'.repeat(width - 1)}: `)).join('|')}|`, ...rows.map(line)].join(
    '\n',
  );
}

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** The compiler flags of the C reference (the peers README: without the last three GCC loses lanes). */
export const C_FLAGS = ['-O3', '-march=native', '-fassociative-math', '-fno-signed-zeros', '-fno-trapping-math'];

/** Compiles bench/kernel.c into `directory`; returns the binary's path, or the reason it could not. */
export function buildCKernel(directory: string): { path: string } | { skipped: string } {
  const source = join(REPO, 'bench', 'kernel.c');
  const binary = join(directory, 'kernel-c');
  const result = spawnSync('cc', [...C_FLAGS, '-o', binary, source, '-lm'], { encoding: 'utf8' });
  if (result.error !== undefined) return { skipped: `no C compiler (cc: ${(result.error as NodeJS.ErrnoException).code ?? result.error.message})` };
  if (result.status !== 0) return { skipped: `cc failed: ${result.stderr.trim().split('\n')[0] ?? ''}` };
  return { path: binary };
}

/** Rows of a benchmark data set for batch size B: B·k, k = min(16, max(1, 2^23 / (D·B))) — at most ~32 MB of float32. */
export function benchRows(D: number, B: number): number {
  return B * Math.min(16, Math.max(1, Math.floor(2 ** 23 / (D * B))));
}

/** A buffered writer of lines (one write call per ~1 MB). */
export function lineWriter(path: string): { write(line: string): void; close(): Promise<void> } {
  const stream: WriteStream = createWriteStream(path);
  let buffer: string[] = [];
  let size = 0;
  return {
    write(line: string): void {
      buffer.push(line);
      size += line.length + 1;
      if (size > 1 << 20) {
        stream.write(`${buffer.join('\n')}\n`);
        buffer = [];
        size = 0;
      }
    },
    close(): Promise<void> {
      if (buffer.length > 0) stream.write(`${buffer.join('\n')}\n`);
      return new Promise((resolve, reject) => {
        stream.end((error?: Error | null) => (error ? reject(error) : resolve()));
      });
    },
  };
}

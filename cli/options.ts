// Flag parsers for commander: each names the flag and what it expected, so a bad flag fails
// fast with one clear line (exit code 2).

import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { parseCpuList } from '../shared/cpus.js';
import { ConfigError } from '../shared/errors.js';

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer.');
  return n;
}

export function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a non-negative integer.');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a non-negative number.');
  return n;
}

export function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('expected a fraction in [0, 1).');
  return n;
}

export function port(value: string): number {
  const n = nonNegativeInteger(value);
  if (n > 65_535) throw new InvalidArgumentError('expected a port in [0, 65535].');
  return n;
}

/** `--shuffle` alone means true; `--shuffle false` or DPT_SHUFFLE=false means false. */
export function booleanFlag(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new InvalidArgumentError('expected true or false.');
}

/** The token from --token, else from --token-file (trailing newline dropped), else null. */
export function resolveToken(token: string | undefined, tokenFile: string | undefined): string | null {
  if (token !== undefined) return token;
  if (tokenFile === undefined) return null;
  let text: string;
  try {
    text = readFileSync(tokenFile, 'utf8');
  } catch (error) {
    throw new ConfigError(`--token-file ${tokenFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new ConfigError(`--token-file ${tokenFile}: the file is empty`);
  return value;
}

export function readCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`--ca ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

/** `--shuffle` alone or rows/true: shuffle rows; blocks: shuffle blocks of --block-rows rows; none/false: file order. */
export function shuffleMode(value: string): 'rows' | 'blocks' | 'none' {
  const v = value.trim().toLowerCase();
  if (['rows', 'true', '1', 'yes', 'on'].includes(v)) return 'rows';
  if (v === 'blocks') return 'blocks';
  if (['none', 'false', '0', 'no', 'off'].includes(v)) return 'none';
  throw new InvalidArgumentError('expected rows, blocks or none.');
}

export function kernelKind(value: string): 'wasm-simd' | 'js' {
  if (value === 'wasm-simd' || value === 'js') return value;
  throw new InvalidArgumentError('expected wasm-simd or js.');
}

/** A CPU list flag ("1", "2-3,6"): the CPUs in order. */
export function cpuList(value: string): number[] {
  const cpus = parseCpuList(value);
  if (cpus === null || cpus.length === 0) throw new InvalidArgumentError(`expected a CPU list such as 1 or 2-3,6, got '${value}'`);
  return cpus;
}

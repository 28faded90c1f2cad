// Flag parsers for commander: each names what it expected, and commander names the flag, so a
// bad flag fails fast with one clear line (exit code 2) before any work starts. Every numeric
// parser has an upper bound: a value the CLI accepts never breaks a later limit (a timer, the
// protocol, the .dpt format) in the middle of a run (issue #10, item 18).

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { parseCpuList } from '../shared/cpus.js';
import { ConfigError } from '../shared/errors.js';

/** Node's timers hold a signed 32-bit millisecond delay: a longer one fires at once (TimeoutOverflowWarning). */
export const MAX_DURATION_MS = 2_147_483_647;
/** Row counts, batch sizes and block sizes: the protocol and the .dpt format carry them as uint32. */
export const MAX_ROWS = 4_294_967_295;
/** Epochs (and --eval-every): a billion passes is beyond any run, and keeps epochs × steps an exact integer. */
export const MAX_EPOCHS = 1_000_000_000;
/** Features of a generated data set: its names block (f0 … f999999, about 8 MB) stays well within the .dpt format's 64 MiB, a row within 4 MB. */
export const MAX_GENERATED_FEATURES = 1_000_000;
/** Chunks per batch: the protocol's limit. */
export const MAX_CHUNKS = 65_536;
/** Seeds are uint32 (the schedule's RNG). */
export const MAX_SEED = 4_294_967_295;
/** Compute threads of one worker: far above any machine's CPUs, far below what would exhaust threads or memory. */
export const MAX_THREADS = 1024;
/** Connections authenticating at once: each holds a socket and a timer. */
export const MAX_PENDING_HANDSHAKES = 65_536;

const decimal = (n: number): string => n.toLocaleString('en-US');

function integerWithin(value: string, min: number, max: number, expected: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n < min) throw new InvalidArgumentError(`expected ${expected}.`);
  // Every max is a safe integer: a digit string beyond it (exact or not) is out of range.
  if (n > max) throw new InvalidArgumentError(`expected ${expected} of at most ${decimal(max)}.`);
  return n;
}

/** A parser for an integer in [min, max]. */
export function integerIn(min: number, max: number): (value: string) => number {
  const expected = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer of at least ${min}`;
  return (value) => integerWithin(value, min, max, expected);
}

/** Any positive safe integer (counts with no limit beyond exactness, e.g. --checkpoint-every). */
export function positiveInteger(value: string): number {
  return integerWithin(value, 1, Number.MAX_SAFE_INTEGER, 'a positive integer');
}

export function nonNegativeInteger(value: string): number {
  return integerWithin(value, 0, Number.MAX_SAFE_INTEGER, 'a non-negative integer');
}

/** A duration in milliseconds that a timer can hold: [1, 2147483647] (about 24.8 days). */
export function durationMs(value: string): number {
  return integerWithin(value, 1, MAX_DURATION_MS, 'a positive number of milliseconds');
}

/** A poll time in milliseconds (0: off), fractional allowed, within what a timer can hold. */
export function pollMs(value: string): number {
  const n = nonNegativeNumber(value);
  if (n > MAX_DURATION_MS) throw new InvalidArgumentError(`expected a non-negative number of milliseconds of at most ${decimal(MAX_DURATION_MS)}.`);
  return n;
}

export function seed(value: string): number {
  return integerWithin(value, 0, MAX_SEED, 'a non-negative integer');
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

/** 0 (off) or a factor of at least 1: a backup sooner than the first worker's own time would only duplicate work. */
export function backupFactor(value: string): number {
  const n = nonNegativeNumber(value);
  if (n !== 0 && n < 1) throw new InvalidArgumentError('expected 0 (off) or a number of at least 1.');
  return n;
}

export function port(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n > 65_535) throw new InvalidArgumentError('expected a port in [0, 65535].');
  return n;
}

/** A coordinator address a worker can dial: ws://, wss://, http(s):// (taken as ws(s)://) or ws+unix://. */
export function coordinatorUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected a URL such as ws://host:8787 or wss://host:8787.');
  }
  if (!['ws:', 'wss:', 'http:', 'https:', 'ws+unix:'].includes(url.protocol)) {
    throw new InvalidArgumentError(`expected a ws://, wss://, http://, https:// or ws+unix:// URL, got ${url.protocol}//.`);
  }
  if (url.protocol !== 'ws+unix:' && url.hostname === '') throw new InvalidArgumentError('expected a URL with a host, such as ws://host:8787.');
  return value;
}

/** A comma-separated list of coordinator or relay addresses (dpt worker --connect), each as coordinatorUrl checks it. */
export function coordinatorUrls(value: string): string[] {
  const urls = value.split(',').map((url) => url.trim());
  if (urls.some((url) => url === '')) throw new InvalidArgumentError('expected URLs separated by commas, such as ws://relay:8788,ws://host:8787.');
  return urls.map(coordinatorUrl);
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

/** The --ca file, checked to hold a PEM certificate (TLS would otherwise ignore garbage and fail each connect). */
export function readCa(path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    throw new ConfigError(`--ca ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    new X509Certificate(pem);
  } catch (error) {
    throw new ConfigError(`--ca ${path}: not a PEM certificate (${(error as Error).message})`);
  }
  return pem;
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

/** --model: logistic or softmax ('auto' also accepted: pick by the labels). */
/** --class-weight: none (every row weighs 1) or balanced (n / (K·n_k)). */
export function classWeightMode(value: string): 'none' | 'balanced' {
  if (value === 'none' || value === 'balanced') return value;
  throw new InvalidArgumentError('expected none or balanced.');
}

export function modelKind(value: string): 'auto' | 'logistic' | 'softmax' {
  if (value === 'auto' || value === 'logistic' || value === 'softmax') return value;
  throw new InvalidArgumentError('expected logistic or softmax.');
}

// Flag parsers for commander: each names what it expected, and commander names the flag, so a
// bad flag fails fast with one clear line (exit code 2) before any work starts. The value
// parsers themselves are pure (shared/option-values.ts, where the options table takes them from);
// here they throw commander's InvalidArgumentError. Every numeric parser has an upper bound: a
// value the CLI accepts never breaks a later limit (a timer, the protocol, the .dpt format) in the
// middle of a run (issue #10, item 18).

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { parseCpuList } from '../shared/cpus.js';
import { ConfigError } from '../shared/errors.js';
import * as values from '../shared/option-values.js';
import { type OptionParser, OptionValueError } from '../shared/option-values.js';

// The limits other commands' flags share with the training flags (declared with the parsers).
export { MAX_CHUNKS, MAX_DURATION_MS, MAX_EPOCHS, MAX_PENDING_HANDSHAKES, MAX_ROWS, MAX_SEED } from '../shared/option-values.js';

/** Features of a generated data set: its names block (f0 … f999999, about 8 MB) stays well within the .dpt format's 64 MiB, a row within 4 MB. */
export const MAX_GENERATED_FEATURES = 1_000_000;
/** Compute threads of one worker: far above any machine's CPUs, far below what would exhaust threads or memory. */
export const MAX_THREADS = 1024;

/** The parser as commander takes it: its OptionValueError becomes InvalidArgumentError, which commander prints naming the flag (exit 2). */
export function forCommander<T>(parse: OptionParser<T>): OptionParser<T> {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      if (error instanceof OptionValueError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  };
}

/** A parser for an integer in [min, max]. */
export const integerIn = (min: number, max: number): OptionParser<number> => forCommander(values.integerIn(min, max));
/** Any positive safe integer (counts with no limit beyond exactness, e.g. --checkpoint-every). */
export const positiveInteger = forCommander(values.positiveInteger);
export const nonNegativeInteger = forCommander(values.nonNegativeInteger);
/** A duration in milliseconds that a timer can hold: [1, 2147483647] (about 24.8 days). */
export const durationMs = forCommander(values.durationMs);
/** A poll time in milliseconds (0: off), fractional allowed, within what a timer can hold. */
export const pollMs = forCommander(values.pollMs);
export const seed = forCommander(values.seed);
export const positiveNumber = forCommander(values.positiveNumber);
export const nonNegativeNumber = forCommander(values.nonNegativeNumber);
export const fraction = forCommander(values.fraction);
/** 0 (off) or a factor of at least 1. */
export const backupFactor = forCommander(values.backupFactor);
export const port = forCommander(values.port);
/** `--shuffle` alone means true; `--shuffle false` or DPT_SHUFFLE=false means false. */
export const booleanFlag = forCommander(values.booleanFlag);
/** `--shuffle` alone or rows/true: shuffle rows; blocks: shuffle blocks of --block-rows rows; none/false: file order. */
export const shuffleMode = forCommander(values.shuffleMode);
export const kernelKind = forCommander(values.kernelKind);

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

/** A CPU list flag ("1", "2-3,6"): the CPUs in order. */
export function cpuList(value: string): number[] {
  const cpus = parseCpuList(value);
  if (cpus === null || cpus.length === 0) throw new InvalidArgumentError(`expected a CPU list such as 1 or 2-3,6, got '${value}'`);
  return cpus;
}

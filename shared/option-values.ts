// Text to value for the options a user types (flags and DPT_ variables): each parser returns the
// value or throws an OptionValueError saying what it expected ("expected a positive integer.").
// Pure and free of commander, so the options table (coordinator/options-table.ts) can hold them;
// the CLI turns the error into commander's, which names the flag (cli/options.ts). Every numeric
// parser has an upper bound: a value accepted here never breaks a later limit (a timer, the
// protocol, the .dpt format) in the middle of a run (issue #10, item 18).

/** A value that is not one its option accepts; the message starts with "expected". Never escapes the CLI. */
export class OptionValueError extends Error {}

/** A parser of one option's text. */
export type OptionParser<T> = (text: string) => T;

/** Node's timers hold a signed 32-bit millisecond delay: a longer one fires at once (TimeoutOverflowWarning). */
export const MAX_DURATION_MS = 2_147_483_647;
/** Row counts, batch sizes and block sizes: the protocol and the .dpt format carry them as uint32. */
export const MAX_ROWS = 4_294_967_295;
/** Epochs (and --eval-every): a billion passes is beyond any run, and keeps epochs × steps an exact integer. */
export const MAX_EPOCHS = 1_000_000_000;
/** Chunks per batch: the protocol's limit. */
export const MAX_CHUNKS = 65_536;
/** Seeds are uint32 (the schedule's RNG). */
export const MAX_SEED = 4_294_967_295;
/** Connections authenticating at once: each holds a socket and a timer. */
export const MAX_PENDING_HANDSHAKES = 65_536;

const decimal = (n: number): string => n.toLocaleString('en-US');

function integerWithin(value: string, min: number, max: number, expected: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n < min) throw new OptionValueError(`expected ${expected}.`);
  // Every max is a safe integer: a digit string beyond it (exact or not) is out of range.
  if (n > max) throw new OptionValueError(`expected ${expected} of at most ${decimal(max)}.`);
  return n;
}

/** A parser for an integer in [min, max]. */
export function integerIn(min: number, max: number): OptionParser<number> {
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
  if (n > MAX_DURATION_MS) throw new OptionValueError(`expected a non-negative number of milliseconds of at most ${decimal(MAX_DURATION_MS)}.`);
  return n;
}

export function seed(value: string): number {
  return integerWithin(value, 0, MAX_SEED, 'a non-negative integer');
}

/** Any finite number (ranges that depend on other options are checked once the options are merged). */
export function finiteNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new OptionValueError('expected a number.');
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new OptionValueError('expected a positive number.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new OptionValueError('expected a non-negative number.');
  return n;
}

export function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new OptionValueError('expected a fraction in [0, 1).');
  return n;
}

/** 0 (off) or a factor of at least 1: a backup sooner than the first worker's own time would only duplicate work. */
export function backupFactor(value: string): number {
  const n = nonNegativeNumber(value);
  if (n !== 0 && n < 1) throw new OptionValueError('expected 0 (off) or a number of at least 1.');
  return n;
}

export function port(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n > 65_535) throw new OptionValueError('expected a port in [0, 65535].');
  return n;
}

/** `--shuffle` alone means true; `--shuffle false` or DPT_SHUFFLE=false means false. */
export function booleanFlag(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new OptionValueError('expected true or false.');
}

/** `--shuffle` alone or rows/true: shuffle rows; blocks: shuffle blocks of --block-rows rows; none/false: file order. */
export function shuffleMode(value: string): 'rows' | 'blocks' | 'none' {
  const v = value.trim().toLowerCase();
  if (['rows', 'true', '1', 'yes', 'on'].includes(v)) return 'rows';
  if (v === 'blocks') return 'blocks';
  if (['none', 'false', '0', 'no', 'off'].includes(v)) return 'none';
  throw new OptionValueError('expected rows, blocks or none.');
}

export function kernelKind(value: string): 'wasm-simd' | 'js' {
  if (value === 'wasm-simd' || value === 'js') return value;
  throw new OptionValueError('expected wasm-simd or js.');
}

/** A parser for one of `names` (surrounding blanks ignored): "expected one of a, b, c." otherwise. */
export function oneOf<T extends string>(names: readonly T[]): OptionParser<T> {
  return (text) => {
    const value = text.trim();
    if (!(names as readonly string[]).includes(value)) throw new OptionValueError(`expected one of ${names.join(', ')}.`);
    return value as T; // one of names, checked above
  };
}

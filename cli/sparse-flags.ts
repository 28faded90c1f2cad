// The flags that make an input sparse (issue #13): --format libsvm, and for CSV --hash-bits with
// --categorical and --cross. Shared by `dpt data convert` and the training commands, so every
// command reads them the same way. Exports: addSparseInputOptions, SparseInputFlags, sparseInputOf.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../shared/errors.js';
import { MAX_HASH_BITS, MIN_HASH_BITS } from '../shared/feature-hashing.js';
import type { SparseOpenOptions } from '../shared/sparse-data-file.js';
import { integerIn } from './options.js';

/** The flags as commander leaves them (lists accumulate over repeated flags). */
export interface SparseInputFlags {
  readonly format?: 'libsvm' | 'csv' | undefined;
  readonly hashBits?: number | undefined;
  readonly categorical?: readonly string[] | undefined;
  readonly cross?: readonly string[] | undefined;
}

function inputFormat(value: string): 'libsvm' | 'csv' {
  if (value !== 'libsvm' && value !== 'csv') throw new InvalidArgumentError('expected libsvm or csv.');
  return value;
}

/** "a,b" (repeatable): the names, blanks around each trimmed, none empty. */
function nameList(value: string, previous: readonly string[] | undefined): string[] {
  const names = value.split(',').map((name) => name.trim());
  if (names.some((name) => name === '')) throw new InvalidArgumentError(`expected column names separated by commas, got '${value}'.`);
  return [...(previous ?? []), ...names];
}

/** "a:b,c:d" (repeatable): each a pair of column names. */
function crossList(value: string, previous: readonly string[] | undefined): string[] {
  const crosses = value.split(',').map((cross) => cross.trim());
  for (const cross of crosses) {
    const parts = cross.split(':');
    if (parts.length !== 2 || parts.some((part) => part.trim() === '')) throw new InvalidArgumentError(`expected a:b (two column names), got '${cross}'.`);
  }
  return [
    ...(previous ?? []),
    ...crosses.map((cross) =>
      cross
        .split(':')
        .map((part) => part.trim())
        .join(':'),
    ),
  ];
}

/** Adds --format, --hash-bits, --categorical and --cross to `command`. */
export function addSparseInputOptions(command: Command): Command {
  return command
    .addOption(new Option('--format <format>', 'libsvm or csv (default: libsvm for .svm/.libsvm names, else by the name)').argParser(inputFormat))
    .addOption(
      new Option('--hash-bits <B>', `CSV: hash every column into 2^B buckets (sparse data), B from ${MIN_HASH_BITS} to ${MAX_HASH_BITS}`).argParser(
        integerIn(MIN_HASH_BITS, MAX_HASH_BITS),
      ),
    )
    .addOption(new Option('--categorical <columns>', 'with --hash-bits: columns whose values are categories (a,b; repeatable)').argParser(nameList))
    .addOption(new Option('--cross <a:b>', 'with --hash-bits: add the cross of two categorical columns (a:b,c:d; repeatable)').argParser(crossList));
}

/** The sparse options of the flags; --categorical or --cross without --hash-bits, or with LIBSVM, is a ConfigError. */
export function sparseInputOf(flags: SparseInputFlags): Pick<SparseOpenOptions, 'format' | 'hashing'> {
  const hasLists = (flags.categorical?.length ?? 0) > 0 || (flags.cross?.length ?? 0) > 0;
  if (flags.hashBits === undefined) {
    if (hasLists) throw new ConfigError('--categorical and --cross need --hash-bits (the number of hash buckets is 2^B)');
    return { format: flags.format };
  }
  if (flags.format === 'libsvm') throw new ConfigError('--hash-bits applies to CSV input, not to --format libsvm');
  return { format: flags.format, hashing: { bits: flags.hashBits, categorical: flags.categorical ?? [], crosses: flags.cross ?? [] } };
}

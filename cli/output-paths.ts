// Checks every file a command will write before any work starts (issue #10, items 10-12): the
// directory exists and accepts a new file, an existing target is a regular file (a device or a
// FIFO would be replaced by a rename), and no output is the same file as an input or as another
// output. A problem is a ConfigError (exit 2) naming the flag; nothing is created or changed.

import { accessSync, closeSync, constants, openSync, realpathSync, type Stats, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { describeFailure } from '../shared/atomic-file.js';
import { ConfigError } from '../shared/errors.js';

export interface OutputPath {
  /** How the user named it: a flag (`--out`) or an argument (`<out>`). */
  readonly flag: string;
  readonly path: string;
  /**
   * true: written in place as a stream (--metrics), so a FIFO or a device such as /dev/stdout is
   * fine; false: replaced by a rename, so an existing target must be a regular file.
   */
  readonly isStream?: boolean;
}

export interface InputPath {
  readonly flag: string;
  readonly path: string;
}

/** Where a path points: device and inode for an existing file, else its absolute path in a resolved directory. */
interface Identity {
  readonly key: string;
  readonly stats: Stats | undefined;
}

/**
 * Throws ConfigError for the first output that cannot be written, or that is the same file as an
 * input or another output. Undefined/null entries (flags not given) are skipped. Pairs in `allowed`
 * (e.g. `--checkpoint` and `--resume`) may name the same file.
 */
export function checkOutputPaths(
  outputs: readonly (OutputPath | null)[],
  inputs: readonly (InputPath | null)[],
  allowed: readonly (readonly [string, string])[] = [],
): void {
  const checked: { flag: string; path: string; identity: Identity }[] = [];
  for (const output of outputs) {
    if (output === null) continue;
    checked.push({ flag: output.flag, path: output.path, identity: checkOutput(output) });
  }
  const isAllowed = (a: string, b: string): boolean => allowed.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
  for (const [i, output] of checked.entries()) {
    for (const input of inputs) {
      if (input === null || isAllowed(output.flag, input.flag)) continue;
      if (identityOf(input.path).key === output.identity.key) {
        throw new ConfigError(
          `${output.flag} ${output.path} and ${input.flag} ${input.path} are the same file: writing ${output.flag} would destroy the input`,
        );
      }
    }
    for (const other of checked.slice(0, i)) {
      // Two streams on one device (e.g. /dev/stdout) do not replace each other.
      const isDevice = output.identity.stats !== undefined && !output.identity.stats.isFile();
      if (other.identity.key === output.identity.key && !isDevice && !isAllowed(output.flag, other.flag)) {
        throw new ConfigError(`${other.flag} ${other.path} and ${output.flag} ${output.path} are the same file: one would overwrite the other`);
      }
    }
  }
}

/** The output's identity, after checking that it can be written. */
function checkOutput(output: OutputPath): Identity {
  const { flag, path } = output;
  const fail = (problem: string): never => {
    throw new ConfigError(`${flag} ${path}: ${problem}`);
  };
  if (path === '') fail('the path is empty');
  let stats: Stats | undefined;
  try {
    stats = statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    return fail(`cannot be written (${describeFailure(error)})`);
  }
  if (stats?.isDirectory() === true) fail('is a directory; name a file');
  if (stats?.isSocket() === true) fail('is a socket, which cannot be opened as a file (e.g. /dev/stdout when it is a socket); use a file or a FIFO');
  if (stats !== undefined && !stats.isFile()) {
    if (output.isStream === true) return { key: `${stats.dev}:${stats.ino}`, stats };
    fail(`is not a regular file (${kindOf(stats)}); dpt replaces its output files whole, so it writes only to regular files`);
  }
  // An existing target (through its links) is replaced in its own directory.
  const target = stats === undefined ? resolve(path) : realpathSync(path);
  const directory = dirname(target);
  const directoryStats = statSync(directory, { throwIfNoEntry: false });
  if (directoryStats === undefined) fail(`the directory ${directory} does not exist`);
  if (directoryStats?.isDirectory() !== true) fail(`${directory} is not a directory`);
  probeDirectory(directory, fail);
  if (stats !== undefined && output.isStream === true) {
    try {
      accessSync(target, constants.W_OK); // a stream is written in place, not replaced
    } catch (error) {
      fail(`cannot be written (${describeFailure(error)})`);
    }
  }
  if (stats !== undefined) return { key: `${stats.dev}:${stats.ino}`, stats };
  return { key: resolve(realpathSync(directory), basename(target)), stats: undefined };
}

/**
 * Creates and removes a file in `directory`: the one test that holds for root (who ignores
 * permission bits), read-only mounts, immutable directories and a full inode table alike.
 */
function probeDirectory(directory: string, fail: (problem: string) => never): void {
  const probe = resolve(directory, `.dpt-write-check-${process.pid}-${Math.random().toString(16).slice(2, 10)}.tmp`);
  let fd: number;
  try {
    fd = openSync(probe, 'wx');
  } catch (error) {
    fail(`cannot create files in ${directory} (${describeFailure(error)})`);
    return;
  }
  closeSync(fd);
  unlinkSync(probe);
}

function identityOf(path: string): Identity {
  try {
    const stats = statSync(path, { throwIfNoEntry: false });
    if (stats !== undefined) return { key: `${stats.dev}:${stats.ino}`, stats };
  } catch {
    // An unreadable input is reported by whoever reads it; here it only matches by path.
  }
  return { key: resolve(path), stats: undefined };
}

function kindOf(stats: Stats): string {
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  return 'not a file';
}

/** The files `dpt train` and `dpt coordinator` write, checked against the files they read. */
export function checkTrainingPaths(flags: {
  data: string;
  out?: string | undefined;
  metrics?: string | undefined;
  checkpoint?: string | undefined;
  resume?: string | undefined;
  tokenFile?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}): void {
  const output = (flag: string, path: string | undefined, isStream = false): OutputPath | null => (path === undefined ? null : { flag, path, isStream });
  const input = (flag: string, path: string | undefined): InputPath | null => (path === undefined ? null : { flag, path });
  checkOutputPaths(
    [output('--out', flags.out), output('--checkpoint', flags.checkpoint), output('--metrics', flags.metrics, true)],
    [
      input('--data', flags.data),
      input('--resume', flags.resume),
      input('--token-file', flags.tokenFile),
      input('--tls-cert', flags.tlsCert),
      input('--tls-key', flags.tlsKey),
    ],
    // Resuming continues the same checkpoint file: the normal way to run with --resume.
    [['--checkpoint', '--resume']],
  );
}

// Data files are opened only when they are regular files (symlinks resolved): a FIFO, a device or
// a socket would block the open or a read forever, past Ctrl-C (issue #10 item 8), or never end.
// The check opens without blocking and asks the open file what it is, so nothing waits on a writer.

import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs';
import { DatasetError } from './errors.js';

/**
 * Opens `path` for reading and returns the descriptor if it is a regular file; otherwise throws a
 * DatasetError naming the path, `role` (the flag or argument that named it, e.g. "--data"; null: none) and
 * what it is. O_NONBLOCK makes opening a FIFO return at once; on a regular file it changes nothing.
 */
export function openRegularFile(path: string, role: string | null): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new DatasetError(
      path,
      undefined,
      undefined,
      `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})${role === null ? '' : `, given as ${role}`}`,
    );
  }
  let stats: Stats;
  try {
    stats = fstatSync(fd);
  } catch (error) {
    closeSync(fd);
    throw new DatasetError(
      path,
      undefined,
      undefined,
      `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})${role === null ? '' : `, given as ${role}`}`,
    );
  }
  if (!stats.isFile()) {
    closeSync(fd);
    throw new DatasetError(
      path,
      undefined,
      undefined,
      `${role} must name a regular file; this is ${describeType(stats)} (dpt reads data only from regular files)`,
    );
  }
  return fd;
}

/** Throws as openRegularFile does unless `path` is a regular file; opens nothing that stays open. */
export function requireRegularFile(path: string, role: string | null): void {
  closeSync(openRegularFile(path, role));
}

function describeType(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

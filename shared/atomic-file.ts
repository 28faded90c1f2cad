// Durable, atomic replacement of an output file (issue #10, item 9): the bytes go to a temporary
// file beside the target, every write's byte count is checked (short writes are continued, a
// write of 0 bytes or an error such as ENOSPC stops), the temporary file is fsynced and checked
// (size, and for whole buffers a SHA-256 of what reads back), renamed over the target, and the
// directory is fsynced. On any failure the temporary file is removed and the previous file is
// left exactly as it was. Temporary files still open when the process exits (process.exit, e.g.
// after Ctrl-C) are removed by an exit hook. Not here: deciding whether a path may be written
// (cli/output-paths.ts checks flags before a run starts).

import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { WriteError } from './errors.js';

/**
 * The file-system calls this module makes; a test passes one that fails or writes short to
 * prove that the previous file survives. Signatures follow node:fs.
 */
export interface FileSystem {
  openSync(path: string, flags: string): number;
  /** Bytes actually written, which may be fewer than `length` (a nearly full disk). */
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  fstatSync(fd: number): { readonly size: number };
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
}

export const NODE_FS: FileSystem = {
  openSync: (path, flags) => fs.openSync(path, flags),
  writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  fstatSync: (fd) => fs.fstatSync(fd),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (from, to) => fs.renameSync(from, to),
  unlinkSync: (path) => fs.unlinkSync(path),
};

/** Bytes per write call and per read-back call (Node caps one call near 2 GiB). */
const MAX_IO_BYTES = 1 << 30;
const VERIFY_CHUNK_BYTES = 1 << 20;

/** Temporary files this process has open; the exit hook removes what is left. */
const liveTemporaries = new Set<string>();
let isExitHookInstalled = false;

/**
 * Registers a temporary file to be removed if the process exits before it is renamed or
 * removed (process.exit after Ctrl-C, an uncaught error). Call untrackTemporary once it is gone.
 */
export function trackTemporary(path: string): void {
  if (!isExitHookInstalled) {
    isExitHookInstalled = true;
    process.on('exit', removeLiveTemporaries);
  }
  liveTemporaries.add(path);
}

export function untrackTemporary(path: string): void {
  liveTemporaries.delete(path);
}

function removeLiveTemporaries(): void {
  for (const path of liveTemporaries) {
    try {
      fs.unlinkSync(path);
    } catch {
      // Already gone (renamed or removed by its writer): nothing to clean.
    }
  }
  liveTemporaries.clear();
}

/** The error code of a failed call (ENOSPC, EACCES, …) or its message. */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Node's system errors read "ENOSPC: no space left on device, write": keep what precedes the call's name.
  return typeof (error as NodeJS.ErrnoException).code === 'string' ? (error.message.split(', ')[0] ?? error.message) : error.message;
}

/**
 * Writes all of `bytes` at `position` (null: the file position), continuing after short
 * writes. Throws the underlying error (e.g. ENOSPC), or an Error when a call writes nothing.
 */
export function writeFully(fd: number, bytes: Uint8Array, position: number | null, fileSystem: FileSystem = NODE_FS): void {
  let done = 0;
  while (done < bytes.length) {
    const written = fileSystem.writeSync(fd, bytes, done, Math.min(bytes.length - done, MAX_IO_BYTES), position === null ? null : position + done);
    if (!(written > 0)) throw new Error(`a write stored no bytes after ${done} of ${bytes.length} (disk full?)`);
    done += written;
  }
}

/**
 * The path that will be replaced: an existing symbolic link is followed (its target is updated,
 * the link stays), and an existing target that is not a regular file (a device, a FIFO, a
 * directory) is refused: renaming over it would replace the node itself.
 */
function resolveTarget(path: string): string {
  let target = path;
  try {
    target = fs.realpathSync(path);
  } catch {
    return path; // does not exist yet (or a dangling link, replaced like a missing file)
  }
  const stats = fs.statSync(target, { throwIfNoEntry: false });
  if (stats !== undefined && !stats.isFile()) {
    throw new WriteError(`${path}: not a regular file; refusing to replace it`);
  }
  return target;
}

/**
 * A file written under a temporary name beside its target and renamed into place by commit().
 * Writes may be positional (a .dpt file is written out of order). Until commit() succeeds the
 * target is untouched; abort() (or any failed call) removes the temporary file.
 */
export class AtomicFileWriter {
  /** The path as given, for messages. */
  readonly path: string;
  private readonly target: string;
  private readonly temporaryPath: string;
  private readonly fileSystem: FileSystem;
  private fd: number | null;
  private isDone = false;

  /** Throws WriteError when the temporary file cannot be created (missing directory, read-only, full). */
  constructor(path: string, fileSystem: FileSystem = NODE_FS) {
    this.path = path;
    this.fileSystem = fileSystem;
    this.target = resolveTarget(path);
    this.temporaryPath = `${this.target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      this.fd = fileSystem.openSync(this.temporaryPath, 'wx+'); // read too: commit() can check what reads back
    } catch (error) {
      throw new WriteError(`${path}: cannot create a file beside it (${describeFailure(error)})`, { cause: error });
    }
    trackTemporary(this.temporaryPath);
  }

  /** Where the bytes go until commit(), for tests and messages. */
  get temporary(): string {
    return this.temporaryPath;
  }

  /** Writes all of `bytes` at `position` (default: after the last write). Throws WriteError; the writer is then aborted. */
  write(bytes: Uint8Array, position: number | null = null): void {
    const fd = this.openFd();
    try {
      writeFully(fd, bytes, position, this.fileSystem);
    } catch (error) {
      this.abort();
      throw new WriteError(`${this.path}: cannot write (${describeFailure(error)}); the previous file, if any, is unchanged`, { cause: error });
    }
  }

  /**
   * Makes the bytes durable and puts them in place: fsync, size check (`expectedBytes`), optional
   * `verify` of the synced file (it reads through `read`), rename over the target, fsync of the
   * directory. Throws WriteError and removes the temporary file when any of it fails.
   */
  commit(expectedBytes: number, verify?: (read: (buffer: Uint8Array, position: number) => number) => string | null): void {
    const fd = this.openFd();
    try {
      this.fileSystem.fsyncSync(fd);
      const size = this.fileSystem.fstatSync(fd).size;
      if (size !== expectedBytes) throw new Error(`the written file holds ${size} bytes, expected ${expectedBytes}`);
      const problem = verify?.((buffer, position) => this.fileSystem.readSync(fd, buffer, 0, buffer.length, position)) ?? null;
      if (problem !== null) throw new Error(problem);
      this.fd = null;
      this.fileSystem.closeSync(fd);
      this.fileSystem.renameSync(this.temporaryPath, this.target);
    } catch (error) {
      this.abort();
      throw new WriteError(`${this.path}: cannot write (${describeFailure(error)}); the previous file, if any, is unchanged`, { cause: error });
    }
    this.isDone = true;
    untrackTemporary(this.temporaryPath);
    try {
      const directory = this.fileSystem.openSync(dirname(this.target), 'r');
      try {
        this.fileSystem.fsyncSync(directory); // the rename itself survives a crash
      } finally {
        this.fileSystem.closeSync(directory);
      }
    } catch (error) {
      // The new file is in place and its bytes are synced; only the rename's durability is in doubt.
      throw new WriteError(`${this.path}: written, but the directory could not be synced (${describeFailure(error)})`, { cause: error });
    }
  }

  /** Closes and removes the temporary file; safe to call more than once. */
  abort(): void {
    if (this.isDone) return;
    this.isDone = true;
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      try {
        this.fileSystem.closeSync(fd);
      } catch {
        // Closing can report a deferred write error; the file is removed below either way.
      }
    }
    try {
      this.fileSystem.unlinkSync(this.temporaryPath);
    } catch {
      // Already gone: nothing to clean.
    }
    untrackTemporary(this.temporaryPath);
  }

  private openFd(): number {
    if (this.isDone || this.fd === null) throw new WriteError(`${this.path}: write after commit or abort`);
    return this.fd;
  }
}

/**
 * Replaces `path` with `data` durably and atomically (see the file header). The synced file is
 * read back and its SHA-256 compared with the data's before the rename. Throws WriteError; the
 * previous file is then unchanged and no temporary file is left.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, fileSystem: FileSystem = NODE_FS): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const writer = new AtomicFileWriter(path, fileSystem);
  writer.write(bytes, 0);
  writer.commit(bytes.length, (read) => {
    const expected = createHash('sha256').update(bytes).digest('hex');
    const hash = createHash('sha256');
    const buffer = new Uint8Array(Math.min(VERIFY_CHUNK_BYTES, Math.max(bytes.length, 1)));
    for (let position = 0; position < bytes.length; ) {
      const count = read(buffer.subarray(0, Math.min(buffer.length, bytes.length - position)), position);
      if (!(count > 0)) return `the written file reads back short at byte ${position} of ${bytes.length}`;
      hash.update(buffer.subarray(0, count));
      position += count;
    }
    return hash.digest('hex') === expected ? null : 'the written file reads back with another checksum';
  });
}

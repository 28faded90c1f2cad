// Writes the loss stream as JSONL: one event per line, appended as it happens. On resume the
// file keeps the events the checkpoint covers and drops the ones that will be redone. Every
// append is checked: when one fails (disk full), the file is cut back to its last complete line,
// one warning says so, and the stream stops there; training goes on.

import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, statSync } from 'node:fs';
import { describeFailure, type FileSystem, NODE_FS, writeFileAtomic, writeFully } from '../shared/atomic-file.js';
import { WriteError } from '../shared/errors.js';
import type { TrainingEvent } from '../shared/events.js';

type LossEvent = Extract<TrainingEvent, { type: 'step' | 'eval' }>;

/** Buffered lines are written when they reach this size, or after FLUSH_MS, or on flush(). */
const FLUSH_BYTES = 65_536;
const FLUSH_MS = 200;

export class MetricsFile {
  private readonly path: string;
  private readonly fd: number;
  private readonly log: (line: string) => void;
  private readonly fileSystem: FileSystem;
  /** A regular file can be cut back to its last complete line; a pipe or /dev/stdout cannot. */
  private readonly isRegular: boolean;
  /** Bytes of complete lines in the file (regular files). */
  private bytesWritten: number;
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  private hasFailed = false;

  /**
   * `keep` (on resume): which existing events stay; null starts the file afresh. `log` gets the
   * one warning of a failed append. The path may also be a pipe or a device (e.g. /dev/stdout).
   */
  constructor(path: string, keep: ((event: LossEvent) => boolean) | null, log: (line: string) => void, fileSystem: FileSystem = NODE_FS) {
    this.path = path;
    this.log = log;
    this.fileSystem = fileSystem;
    try {
      this.fd = openMetrics(path, keep);
    } catch (error) {
      throw new WriteError(`--metrics ${path}: cannot open the file (${describeFailure(error)})`, { cause: error });
    }
    this.isRegular = fstatSync(this.fd).isFile();
    this.bytesWritten = this.isRegular ? fstatSync(this.fd).size : 0;
  }

  /**
   * Step and eval events (the loss stream); other events are left to the log and monitors.
   * Buffered: a write per step would cost a system call on the step's critical path.
   */
  write(event: TrainingEvent): void {
    if (this.hasFailed || (event.type !== 'step' && event.type !== 'eval')) return;
    this.pending += `${JSON.stringify(event)}\n`;
    if (this.pending.length >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  /** Writes what is buffered (before a checkpoint, so the file covers every step it names). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === '' || this.hasFailed) return;
    const bytes = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    try {
      writeFully(this.fd, bytes, null, this.fileSystem);
      this.bytesWritten += bytes.length;
    } catch (error) {
      this.fail(error);
    }
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  /** Cuts a torn last line off (so the file stays valid JSONL), warns once, and stops the stream. */
  private fail(error: unknown): void {
    this.hasFailed = true;
    let cut = '';
    if (this.isRegular) {
      try {
        ftruncateSync(this.fd, this.bytesWritten);
        cut = `; the file ends at its last complete line (${this.bytesWritten} bytes)`;
      } catch (truncateError) {
        cut = `; its last line may be torn (${describeFailure(truncateError)})`;
      }
    }
    this.log(`dpt: warning: --metrics ${this.path}: cannot append (${describeFailure(error)}): the loss stream stops here${cut}; training goes on`);
  }
}

/** Opens the stream for appending; on resume a regular file first keeps only the events `keep` accepts. */
function openMetrics(path: string, keep: ((event: LossEvent) => boolean) | null): number {
  if (keep === null || !existsSync(path) || !statSync(path).isFile()) return openSync(path, 'w');
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      if (line.trim() === '') return false;
      try {
        return keep(JSON.parse(line) as LossEvent);
      } catch {
        return false; // a line torn by the crash that made us resume
      }
    });
  // Atomic: a failed trim leaves the old stream whole rather than half of it.
  writeFileAtomic(path, kept.map((line) => `${line}\n`).join(''));
  return openSync(path, 'a');
}

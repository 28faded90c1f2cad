// Writes the loss stream as JSONL: one event per line, appended as it happens. On resume the
// file keeps the events the checkpoint covers and drops the ones that will be redone.

import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import type { TrainingEvent } from '../shared/events.js';

type LossEvent = Extract<TrainingEvent, { type: 'step' | 'eval' }>;

/** Buffered lines are written when they reach this size, or after FLUSH_MS, or on flush(). */
const FLUSH_BYTES = 65_536;
const FLUSH_MS = 200;

export class MetricsFile {
  private readonly fd: number;
  private pending = '';
  private timer: NodeJS.Timeout | undefined;

  /** `keep` (on resume): which existing events stay; null starts the file afresh. */
  constructor(path: string, keep: ((event: LossEvent) => boolean) | null) {
    if (keep !== null && existsSync(path)) {
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
      writeFileSync(path, kept.map((line) => `${line}\n`).join(''));
      this.fd = openSync(path, 'a');
    } else {
      this.fd = openSync(path, 'w');
    }
  }

  /**
   * Step and eval events (the loss stream); other events are left to the log and monitors.
   * Buffered: a write per step would cost a system call on the step's critical path.
   */
  write(event: TrainingEvent): void {
    if (event.type !== 'step' && event.type !== 'eval') return;
    this.pending += `${JSON.stringify(event)}\n`;
    if (this.pending.length >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  /** Writes what is buffered (before a checkpoint, so the file covers every step it names). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === '') return;
    writeSync(this.fd, this.pending);
    this.pending = '';
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

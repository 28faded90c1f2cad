// Writes the loss stream as JSONL: one event per line, appended as it happens.

import { closeSync, openSync, writeSync } from 'node:fs';
import type { TrainingEvent } from '../shared/events.js';

export class MetricsFile {
  private readonly fd: number;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  /** Step and eval events (the loss stream); membership events are left to the log. */
  write(event: TrainingEvent): void {
    if (event.type === 'worker') return;
    writeSync(this.fd, `${JSON.stringify(event)}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

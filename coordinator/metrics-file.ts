// Writes the loss stream as JSONL: one event per line, appended as it happens. On resume the
// file keeps the events the checkpoint covers and drops the ones that will be redone.

import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import type { TrainingEvent } from '../shared/events.js';

type LossEvent = Extract<TrainingEvent, { type: 'step' | 'eval' }>;

export class MetricsFile {
  private readonly fd: number;

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

  /** Step and eval events (the loss stream); other events are left to the log and monitors. */
  write(event: TrainingEvent): void {
    if (event.type !== 'step' && event.type !== 'eval') return;
    writeSync(this.fd, `${JSON.stringify(event)}\n`);
  }

  close(): void {
    closeSync(this.fd);
  }
}

// Per-worker accounting for monitors and /metrics: rows of accepted parts, part latency, share
// of the last step, last seen, failures. Fed by the trainer's part hook and by the loss stream;
// nothing here allocates per part or per step.

import type { StreamEvent, WorkerSummary } from '../shared/events.js';

interface WorkerRecord {
  readonly workerId: number;
  readonly address: string;
  /** Which code runs its kernel, as it said when it joined; null when it did not say. */
  readonly kernel: string | null;
  isConnected: boolean;
  /** Rows of accepted parts over the run. */
  rows: number;
  /** Rows of accepted parts in the step in flight. */
  stepRows: number;
  /** Fraction of the last committed step's rows, in [0, 1]. */
  share: number;
  /** Mean time from a step's scatter to an accepted part over the last snapshot interval, ms; NaN before the first part. */
  latencyMs: number;
  /** Sum and count of part latencies since the last snapshot, ms. */
  latencySum: number;
  latencyParts: number;
  /** Date.now() of the last accepted part; 0 = none yet. */
  lastSeen: number;
  failures: number;
  /** rows and performance.now() at the last snapshot, for rows/s between snapshots. */
  rowsAtSnapshot: number;
  snapshotAt: number;
}

/** Departed workers kept for the table and /metrics; older ones are forgotten. */
const MAX_DEPARTED = 64;
/** A straggler's latency exceeds the median of the other workers' by this factor… */
const STRAGGLER_FACTOR = 1.5;
/** …and by at least this much, so that sub-millisecond jitter flags nobody (ms). */
const STRAGGLER_MIN_GAP_MS = 2;

export class WorkerStats {
  /** In join order; iterated by index so that no iterator is allocated per step. */
  private readonly records: WorkerRecord[] = [];
  /** performance.now() when the step in flight was (about to be) scattered. */
  private stepStarted = performance.now();
  private isTraining = false;
  private hasChanged = false;

  /**
   * The trainer's hook: a part of `rows` rows from `workerId` was accepted. Called on the hot
   * path, before the step's event; allocation-free.
   */
  partAccepted(workerId: number, rows: number): void {
    const record = this.find(workerId);
    if (record === undefined) return;
    const latency = performance.now() - this.stepStarted;
    record.rows += rows;
    record.stepRows += rows;
    record.latencySum += latency;
    record.latencyParts++;
    record.lastSeen = Date.now();
    this.hasChanged = true;
  }

  handle(event: StreamEvent): void {
    switch (event.type) {
      case 'step':
        for (let i = 0; i < this.records.length; i++) {
          const record = this.records[i]!; // i < length
          record.share = event.rows > 0 ? record.stepRows / event.rows : 0;
          record.stepRows = 0;
        }
        // The next step is scattered right after this one commits (or after the epoch's evaluation).
        this.stepStarted = performance.now();
        return;
      case 'eval':
        this.stepStarted = performance.now();
        return;
      case 'worker':
        if (event.event === 'joined') this.join(event.workerId, event.address, event.kernel ?? null);
        else this.leave(event.workerId);
        this.hasChanged = true;
        return;
      case 'run':
        this.isTraining = event.event === 'start';
        this.stepStarted = performance.now();
        return;
    }
  }

  /** Whether anything changed since the last snapshot. */
  get isChanged(): boolean {
    return this.hasChanged;
  }

  /** Every known worker (connected first, then departed), with rows/s since the previous snapshot. */
  snapshot(): WorkerSummary[] {
    const now = performance.now();
    for (const record of this.records) {
      // A worker without parts in the interval keeps its last latency.
      if (record.latencyParts > 0) record.latencyMs = record.latencySum / record.latencyParts;
      record.latencySum = 0;
      record.latencyParts = 0;
    }
    const connected = this.records.filter((record) => record.isConnected);
    const summaries: WorkerSummary[] = [];
    for (const record of [...connected, ...this.records.filter((r) => !r.isConnected)]) {
      const seconds = (now - record.snapshotAt) / 1000;
      const rowsPerSec = seconds > 0 ? (record.rows - record.rowsAtSnapshot) / seconds : 0;
      record.rowsAtSnapshot = record.rows;
      record.snapshotAt = now;
      summaries.push({
        workerId: record.workerId,
        address: record.address,
        kernel: record.kernel,
        connected: record.isConnected,
        rows: record.rows,
        rowsPerSec: record.isConnected ? rowsPerSec : 0,
        share: record.share,
        latencyMs: Number.isNaN(record.latencyMs) ? 0 : record.latencyMs,
        straggler:
          record.isConnected &&
          !Number.isNaN(record.latencyMs) &&
          isStraggler(
            record.latencyMs,
            connected.filter((r) => r !== record && !Number.isNaN(r.latencyMs)).map((r) => r.latencyMs),
          ),
        lastSeen: record.lastSeen === 0 ? null : record.lastSeen,
        failures: record.failures,
      });
    }
    this.hasChanged = false;
    return summaries;
  }

  /** Calls `visit` for each known worker (for /metrics). */
  forEach(visit: (workerId: number, rows: number, failures: number) => void): void {
    for (const record of this.records) visit(record.workerId, record.rows, record.failures);
  }

  private find(workerId: number): WorkerRecord | undefined {
    for (let i = 0; i < this.records.length; i++) {
      if (this.records[i]!.workerId === workerId) return this.records[i]; // i < length
    }
    return undefined;
  }

  private join(workerId: number, address: string, kernel: string | null): void {
    if (this.find(workerId) !== undefined) return;
    const now = performance.now();
    this.records.push({
      workerId,
      address,
      kernel,
      isConnected: true,
      rows: 0,
      stepRows: 0,
      share: 0,
      latencyMs: Number.NaN,
      latencySum: 0,
      latencyParts: 0,
      lastSeen: 0,
      failures: 0,
      rowsAtSnapshot: 0,
      snapshotAt: now,
    });
  }

  private leave(workerId: number): void {
    const record = this.find(workerId);
    if (record === undefined || !record.isConnected) return;
    record.isConnected = false;
    // Leaving mid-run is a failure (disconnect, timeout, bad message); leaving at the end is not.
    if (this.isTraining) record.failures++;
    let departed = 0;
    for (const r of this.records) if (!r.isConnected) departed++;
    if (departed > MAX_DEPARTED) {
      const oldest = this.records.findIndex((r) => !r.isConnected);
      this.records.splice(oldest, 1);
    }
  }
}

/** A latency (ms) far above the median of the other workers' latencies: over 1.5× it and 2 ms more. */
export function isStraggler(latencyMs: number, othersMs: readonly number[]): boolean {
  if (othersMs.length === 0) return false;
  const sorted = [...othersMs].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2; // indices within length
  return latencyMs > STRAGGLER_FACTOR * median && latencyMs - median > STRAGGLER_MIN_GAP_MS;
}

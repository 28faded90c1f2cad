// The state and the text of `dpt monitor`'s live terminal view: step and epoch, loss and its
// exponential moving average, a sparkline of recent losses, throughput, ETA, and each worker's
// rows/s and last-seen time. Pure: messages in, lines out; the caller draws them.

import { formatDuration } from '../coordinator/progress.js';
import type { EvalEvent, MonitorMessage, RunEndEvent, RunStartEvent, StepEvent, WorkersEvent } from '../shared/events.js';

/** Weight of the newest loss in the smoothed loss: ema ← ema + α·(loss − ema). */
export const EMA_ALPHA = 0.05;
/** Smoothed losses kept for the sparkline. */
const SPARK_HISTORY = 2048;
/** Step events kept for throughput, which is measured over the last RATE_WINDOW_MS of them. */
const RATE_WINDOW = 8192;
const RATE_WINDOW_MS = 1000;
const SPARK_CHARS = '▁▂▃▄▅▆▇█';
/** Lines of membership and dropped notices kept on screen. */
const NOTES = 3;

/** A sparkline of `values` in `width` columns: each column the mean of its share of the values, scaled min..max. */
export function sparkline(values: ArrayLike<number>, width: number): string {
  const n = values.length;
  if (n === 0 || width <= 0) return '';
  const columns = Math.min(width, n);
  const means: number[] = [];
  for (let c = 0; c < columns; c++) {
    const from = Math.floor((c * n) / columns);
    const to = Math.floor(((c + 1) * n) / columns);
    let sum = 0;
    let count = 0;
    for (let i = from; i < to; i++) {
      const v = values[i]!; // i < n
      if (Number.isFinite(v)) {
        sum += v;
        count++;
      }
    }
    means.push(count > 0 ? sum / count : Number.NaN);
  }
  const finite = means.filter(Number.isFinite);
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  const top = SPARK_CHARS.length - 1;
  return means
    .map((m) => {
      if (!Number.isFinite(m)) return ' ';
      const level = high > low ? Math.round(((m - low) / (high - low)) * top) : 0;
      return SPARK_CHARS[level];
    })
    .join('');
}

export class MonitorView {
  private status = 'connecting';
  private readonly source: string;
  private run: RunStartEvent | null = null;
  private end: RunEndEvent | null = null;
  private lastStep: StepEvent | null = null;
  private lastEval: EvalEvent | null = null;
  private workers: WorkersEvent | null = null;
  private ema = Number.NaN;
  private readonly losses = new Float64Array(SPARK_HISTORY);
  private lossCount = 0;
  /** (time, step, rows so far) of recent step events, for steps/s and rows/s. */
  private readonly rateTimes = new Float64Array(RATE_WINDOW);
  private readonly rateSteps = new Float64Array(RATE_WINDOW);
  private readonly rateRows = new Float64Array(RATE_WINDOW);
  /** Rows up to the last step, estimated across steps a sampled history skipped. */
  private rowsSoFar = 0;
  private rateCount = 0;
  private readonly notes: string[] = [];

  constructor(source: string) {
    this.source = source;
  }

  setStatus(status: string): void {
    this.status = status;
  }

  handle(message: MonitorMessage): void {
    switch (message.type) {
      case 'history':
        // A new session (first connect or a restarted coordinator): its history replaces ours.
        this.reset();
        return;
      case 'step':
        this.onStep(message);
        return;
      case 'eval':
        this.lastEval = message;
        return;
      case 'worker':
        this.note(
          `worker ${message.workerId} ${message.event}${message.event === 'joined' ? ` from ${message.address}${message.kernel === undefined ? '' : ` (kernel: ${message.kernel})`}` : ` (${message.reason})`}`,
        );
        return;
      case 'run':
        if (message.event === 'start') this.run = message;
        else this.end = message;
        return;
      case 'workers':
        this.workers = message;
        return;
      case 'dropped':
        this.note(`${message.count} event(s) not received: this monitor fell behind`);
        return;
    }
  }

  /** Smoothed loss (NaN before the first step). */
  get smoothedLoss(): number {
    return this.ema;
  }

  /** Steps per second over the last few step events (0 when unknown). */
  get stepsPerSec(): number {
    return this.rate(this.rateSteps);
  }

  /** Rows per second over the last few step events (0 when unknown). */
  get rowsPerSec(): number {
    return this.rate(this.rateRows);
  }

  /** The view as lines of at most `width` characters; `now` in ms since the Unix epoch. */
  render(now: number, width: number): string[] {
    const lines: string[] = [];
    const step = this.lastStep;
    const run = this.run;
    lines.push(
      `dpt monitor  ${this.source}  ${this.end === null ? this.status : this.end.outcome === 'finished' ? 'run finished' : `run failed: ${this.end.reason ?? ''}`}`,
    );
    if (run === null && step === null) {
      lines.push('waiting for the run to start');
    } else {
      const done = step === null ? (run?.firstStep ?? 0) : step.step + 1;
      const total = run?.totalSteps ?? 0;
      const percent = total > 0 ? ` (${((100 * done) / total).toFixed(1)}%)` : '';
      const epochs = run === null ? '' : `/${run.epochs}`;
      const epoch = step === null ? '' : `  epoch ${step.epoch + 1}${epochs}`;
      const rate = this.stepsPerSec;
      const eta = rate > 0 && total > done && this.end === null ? `  ETA ${formatDuration(((total - done) / rate) * 1000)}` : '';
      const elapsed = run === null ? '' : `  elapsed ${formatDuration((this.end?.time ?? now) - run.time)}`;
      // The model (issue #12): accuracy is the fraction of rows whose predicted class is their label, for K classes as for 2.
      const model = run?.config.model;
      const kind = model === undefined || model.kind === 'logistic' ? '' : `  softmax, ${count(model.classCount)} classes`;
      lines.push(`step ${count(done)}${total > 0 ? `/${count(total)}` : ''}${percent}${epoch}${elapsed}${eta}${kind}`);
      const evaluation = this.lastEval;
      const val =
        evaluation === null
          ? ''
          : `  train ${fixed(evaluation.trainLoss)} (acc ${fixed(evaluation.trainAccuracy)})${evaluation.valLoss === null ? '' : `  val ${fixed(evaluation.valLoss)} (acc ${fixed(evaluation.valAccuracy ?? Number.NaN)})`} @ epoch ${evaluation.epoch + 1}`;
      lines.push(`loss ${step === null ? '-' : fixed(step.loss)}  smoothed ${fixed(this.ema)}${val}`);
      lines.push(`rows/s ${count(this.rowsPerSec)}  steps/s ${count(rate)}  workers ${step?.workers ?? '-'}`);
      const shown = Math.min(this.lossCount, SPARK_HISTORY);
      const recent = this.recentLosses(shown);
      const finite = Array.from(recent).filter(Number.isFinite);
      const range = finite.length > 0 ? ` ${fixed(Math.min(...finite))}–${fixed(Math.max(...finite))}` : '';
      const label = ` smoothed loss, last ${count(shown)} steps${range}`;
      lines.push(`${sparkline(recent, Math.max(8, width - label.length - 1))}${label}`);
    }
    const workers = this.workers?.workers ?? [];
    if (workers.length > 0) {
      lines.push(
        `${'worker'.padStart(6)}  ${'address'.padEnd(22)}${'rows/s'.padStart(10)}${'share'.padStart(7)}${'latency'.padStart(10)}  ${'kernel'.padEnd(15)}last seen`,
      );
      for (const worker of workers) {
        const seen = worker.lastSeen === null ? 'never' : `${formatAgo(now - worker.lastSeen)} ago`;
        const flags = `${worker.connected ? '' : '  left'}${worker.straggler ? '  straggler' : ''}`;
        lines.push(
          `${String(worker.workerId).padStart(6)}  ${worker.address.padEnd(22)}${count(worker.rowsPerSec).padStart(10)}${`${Math.round(worker.share * 100)}%`.padStart(7)}${`${worker.latencyMs.toFixed(1)} ms`.padStart(10)}  ${(worker.kernel ?? '–').padEnd(15)}${seen}${flags}`,
        );
      }
    }
    for (const note of this.notes) lines.push(`  ${note}`);
    return lines.map((line) => (line.length > width ? line.slice(0, Math.max(0, width)) : line));
  }

  private onStep(event: StepEvent): void {
    this.lastStep = event;
    if (Number.isFinite(event.loss)) this.ema = Number.isNaN(this.ema) ? event.loss : this.ema + EMA_ALPHA * (event.loss - this.ema);
    this.losses[this.lossCount % SPARK_HISTORY] = this.ema;
    this.lossCount++;
    const previous = this.rateCount > 0 ? this.rateSteps[(this.rateCount - 1) % RATE_WINDOW]! : event.step - 1;
    this.rowsSoFar += event.rows * Math.max(1, event.step - previous);
    this.rateTimes[this.rateCount % RATE_WINDOW] = event.time;
    this.rateSteps[this.rateCount % RATE_WINDOW] = event.step;
    this.rateRows[this.rateCount % RATE_WINDOW] = this.rowsSoFar;
    this.rateCount++;
  }

  /** Growth per second of `values` from the oldest event within RATE_WINDOW_MS of the newest to the newest. */
  private rate(values: Float64Array): number {
    if (this.rateCount < 2) return 0;
    const newest = (this.rateCount - 1) % RATE_WINDOW;
    const kept = Math.min(this.rateCount, RATE_WINDOW);
    let oldest = (this.rateCount - 2) % RATE_WINDOW;
    for (let back = 2; back < kept; back++) {
      const candidate = (this.rateCount - 1 - back) % RATE_WINDOW;
      if (this.rateTimes[newest]! - this.rateTimes[candidate]! > RATE_WINDOW_MS) break;
      oldest = candidate;
    }
    const seconds = (this.rateTimes[newest]! - this.rateTimes[oldest]!) / 1000;
    return seconds > 0 ? (values[newest]! - values[oldest]!) / seconds : 0;
  }

  /** The newest `n` losses, oldest first. */
  private recentLosses(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.losses[(this.lossCount - n + i) % SPARK_HISTORY]!;
    return out;
  }

  private note(text: string): void {
    this.notes.push(text);
    if (this.notes.length > NOTES) this.notes.shift();
  }

  private reset(): void {
    this.run = null;
    this.end = null;
    this.lastStep = null;
    this.lastEval = null;
    this.workers = null;
    this.ema = Number.NaN;
    this.lossCount = 0;
    this.rateCount = 0;
    this.rowsSoFar = 0;
    this.notes.length = 0;
  }
}

function fixed(value: number): string {
  return Number.isFinite(value) ? value.toFixed(4) : '-';
}

function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function formatAgo(ms: number): string {
  return ms < 10_000 ? `${(Math.max(0, ms) / 1000).toFixed(1)}s` : formatDuration(ms);
}

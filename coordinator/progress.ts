// Human progress output: on a TTY one line per epoch, rewritten in place as steps commit
// (step, loss, rows/s, ETA); on a pipe one plain line per finished epoch.

import type { EvalEvent, StepEvent, TrainingEvent } from '../shared/events.js';
import { evaluatesAfterEpoch } from '../shared/schedule.js';

const REDRAW_MS = 100;

export class ProgressPrinter {
  private readonly stream: NodeJS.WriteStream;
  private readonly isTty: boolean;
  private readonly totalSteps: number;
  private readonly epochs: number;
  private readonly started = performance.now();
  private lastDraw = 0;
  private epochLossSum = 0;
  private epochSteps = 0;
  private epochRows = 0;
  private epochStarted = performance.now();
  private lastStep: StepEvent | null = null;

  /** Epochs between evaluations (--eval-every): an epoch without one ends its line at its last step. */
  private readonly evalEvery: number;

  constructor(stream: NodeJS.WriteStream, totalSteps: number, epochs: number, evalEvery = 1) {
    this.stream = stream;
    this.isTty = stream.isTTY === true;
    this.totalSteps = totalSteps;
    this.epochs = epochs;
    this.evalEvery = evalEvery;
  }

  handle(event: TrainingEvent): void {
    if (event.type === 'step') this.onStep(event);
    else if (event.type === 'eval') this.onEval(event);
  }

  private onStep(event: StepEvent): void {
    this.lastStep = event;
    this.epochLossSum += event.loss;
    this.epochSteps++;
    this.epochRows += event.rows;
    const stepsPerEpoch = this.totalSteps / this.epochs;
    const isEpochEnd = (event.step + 1) % stepsPerEpoch === 0;
    if (isEpochEnd && !evaluatesAfterEpoch(event.epoch, this.epochs, this.evalEvery)) {
      this.endLine(this.line(event.epoch, this.epochLossSum / this.epochSteps));
      return;
    }
    const now = performance.now();
    if (this.isTty && now - this.lastDraw >= REDRAW_MS) {
      this.lastDraw = now;
      this.stream.write(`\r\x1b[2K${this.line(event.epoch, this.epochLossSum / this.epochSteps)}`);
    }
  }

  private onEval(event: EvalEvent): void {
    const base = this.line(event.epoch, this.epochLossSum / Math.max(1, this.epochSteps));
    const validation = event.valLoss === null ? '' : `  val loss ${event.valLoss.toFixed(4)} acc ${(event.valAccuracy ?? 0).toFixed(4)}`;
    this.endLine(`${base}  train acc ${event.trainAccuracy.toFixed(4)}${validation}`);
  }

  /** Writes an epoch's final line and starts the next epoch's sums. */
  private endLine(text: string): void {
    this.stream.write(`${this.isTty ? '\r\x1b[2K' : ''}${text}\n`);
    this.epochLossSum = 0;
    this.epochSteps = 0;
    this.epochRows = 0;
    this.epochStarted = performance.now();
  }

  private line(epoch: number, meanLoss: number): string {
    const step = (this.lastStep?.step ?? -1) + 1;
    const elapsedMs = performance.now() - this.started;
    const etaMs = step > 0 ? (elapsedMs / step) * (this.totalSteps - step) : 0;
    const epochMs = performance.now() - this.epochStarted;
    const rowsPerSec = epochMs > 0 ? (this.epochRows * 1000) / epochMs : 0;
    return `epoch ${epoch + 1}/${this.epochs}  step ${step}/${this.totalSteps}  loss ${meanLoss.toFixed(4)}  ${Math.round(rowsPerSec).toLocaleString('en-US')} rows/s  ETA ${formatDuration(etaMs)}`;
  }
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

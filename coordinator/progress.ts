// Human progress output of a coordinator, drawn through its TerminalPrinter: on a TTY a live
// line, rewritten in place as steps commit (step, loss, rows/s, and an ETA once it means
// something) and while a data pass runs (its share done); one line per finished epoch, on a TTY
// or not, followed by that epoch's count of backup tasks when there were any (issue #14 item 1).

import type { EvalEvent, StepEvent, TrainingEvent } from '../shared/events.js';
import { evaluatesAfterEpoch } from '../shared/schedule.js';
import type { TerminalPrinter } from './terminal.js';
import type { PassProgress } from './trainer.js';

const REDRAW_MS = 100;
/**
 * The ETA is shown once the rate behind it is measured over at least ETA_MIN_MS and ETA_MIN_SHARE
 * of the run's steps (issue #14 item 1: at step 1 the first step's wait, the statistics pass and
 * the workers' warm-up made it absurd, e.g. 20h56m). Before that the line says nothing of it.
 */
export const ETA_MIN_MS = 3000;
export const ETA_MIN_SHARE = 0.02;

/**
 * Milliseconds left at the rate measured since this process's first step started, or null while
 * that rate is not yet meaningful (see ETA_MIN_MS, ETA_MIN_SHARE) or nothing is left.
 * `stepsDone`: steps committed since then (the first included), in `elapsedMs`; `stepsLeft`: the
 * run's steps still to run.
 */
export function remainingMs(stepsDone: number, stepsLeft: number, elapsedMs: number, totalSteps: number): number | null {
  if (stepsDone <= 0 || stepsLeft <= 0 || elapsedMs < ETA_MIN_MS || stepsDone < ETA_MIN_SHARE * totalSteps) return null;
  return (elapsedMs / stepsDone) * stepsLeft;
}

/** What a pass is doing, in a user's words: "computing feature statistics over 1,234,567 training rows". */
export function describePass(pass: Omit<PassProgress, 'rowsDone'>): string {
  const rows = `${pass.rows.toLocaleString('en-US')} ${pass.set === 'train' ? 'training' : 'validation'} rows`;
  return pass.purpose === 'stats' ? `computing feature statistics over ${rows}` : `evaluating the model on ${rows}`;
}

export class ProgressPrinter {
  private readonly terminal: TerminalPrinter;
  private readonly totalSteps: number;
  private readonly epochs: number;
  private lastDraw = 0;
  private epochLossSum = 0;
  private epochSteps = 0;
  private epochRows = 0;
  private epochStarted = performance.now();
  private lastStep: StepEvent | null = null;
  /** The first step this process committed (a resumed run starts past 0) and when: the ETA's rate is measured from there. */
  private firstStep: { step: number; at: number } | null = null;
  /** Backup tasks of the epoch so far: chunks given twice, and the steps or passes they were in. */
  private epochBackupChunks = 0;
  private epochBackupJobs = 0;
  private lastBackupLabel = '';

  /** Epochs between evaluations (--eval-every): an epoch without one ends its line at its last step. */
  private readonly evalEvery: number;

  /** Steps in one epoch: an epoch's line ends at its last step (totalSteps / epochs unless --max-steps cut the run). */
  private readonly stepsPerEpoch: number;

  constructor(terminal: TerminalPrinter, totalSteps: number, epochs: number, evalEvery = 1, stepsPerEpoch = totalSteps / epochs) {
    this.terminal = terminal;
    this.totalSteps = totalSteps;
    this.epochs = epochs;
    this.evalEvery = evalEvery;
    this.stepsPerEpoch = stepsPerEpoch;
  }

  handle(event: TrainingEvent): void {
    if (event.type === 'step') this.onStep(event);
    else if (event.type === 'eval') this.onEval(event);
  }

  /**
   * A data pass moved on (the statistics pass before the first step, an evaluation after an
   * epoch). On a TTY the live line shows its share done; off one, the statistics pass is
   * announced once when it starts, so a long pass is not silence (a 2 M-row file: ~10 s).
   */
  pass(progress: PassProgress): void {
    if (!this.terminal.isLive) {
      if (progress.rowsDone === 0 && progress.purpose === 'stats') this.terminal.log(`${describePass(progress)}…`);
      return;
    }
    const now = performance.now();
    if (progress.rowsDone !== 0 && progress.rowsDone !== progress.rows && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const percent = progress.rows === 0 ? 100 : Math.floor((100 * progress.rowsDone) / progress.rows);
    this.terminal.setLive(`${describePass(progress)}… ${percent}%`);
  }

  /**
   * Units of a step or a pass were also given to idle workers (backup tasks): counted, and said
   * once per epoch after its line. The details (which step, how many) are the caller's to log
   * under --verbose.
   */
  backups(label: string, chunks: number): void {
    this.epochBackupChunks += chunks;
    // A pass hands out its backups slice by slice, in several rounds: one pass counts once.
    if (label !== this.lastBackupLabel) this.epochBackupJobs++;
    this.lastBackupLabel = label;
  }

  /** The run ended (finished, failed or stopped): says the backups not yet summarised and leaves the live line readable. */
  finish(): void {
    this.sayBackups(this.lastStep?.epoch ?? 0);
    this.terminal.keepLive();
  }

  private onStep(event: StepEvent): void {
    const now = performance.now();
    if (this.firstStep === null) {
      // Timed from the first step's start: the statistics pass and the wait for workers are not steps.
      this.firstStep = { step: event.step, at: now - event.stepMs };
      this.epochStarted = now - event.stepMs;
    }
    this.lastStep = event;
    this.epochLossSum += event.loss;
    this.epochSteps++;
    this.epochRows += event.rows;
    const isEpochEnd = (event.step + 1) % this.stepsPerEpoch === 0;
    const isLast = event.step + 1 === this.totalSteps;
    // The trainer's rule: an evaluation follows the run's last step and every --eval-every epochs (none with 0); its event ends the line.
    const isEvaluated = this.evalEvery > 0 && (isLast || (isEpochEnd && evaluatesAfterEpoch(event.epoch, this.epochs, this.evalEvery)));
    if ((isEpochEnd || isLast) && !isEvaluated) {
      this.endLine(event.epoch, this.line(event.epoch, this.epochLossSum / this.epochSteps));
      return;
    }
    if (this.terminal.isLive && now - this.lastDraw >= REDRAW_MS) {
      this.lastDraw = now;
      this.terminal.setLive(this.line(event.epoch, this.epochLossSum / this.epochSteps));
    }
  }

  private onEval(event: EvalEvent): void {
    const base = this.line(event.epoch, this.epochLossSum / Math.max(1, this.epochSteps));
    const validation = event.valLoss === null ? '' : `  val loss ${event.valLoss.toFixed(4)} acc ${(event.valAccuracy ?? 0).toFixed(4)}`;
    this.endLine(event.epoch, `${base}  train acc ${event.trainAccuracy.toFixed(4)}${validation}`);
  }

  /** Writes an epoch's final line (and its backup count) and starts the next epoch's sums. */
  private endLine(epoch: number, text: string): void {
    this.terminal.clearLive();
    this.terminal.print(text);
    this.sayBackups(epoch);
    this.epochLossSum = 0;
    this.epochSteps = 0;
    this.epochRows = 0;
    this.epochStarted = performance.now();
  }

  private sayBackups(epoch: number): void {
    if (this.epochBackupChunks === 0) return;
    this.terminal.log(
      `epoch ${epoch + 1}: ${this.epochBackupChunks} straggling chunk(s) in ${this.epochBackupJobs} step(s) or pass(es) were also given to idle workers (backup tasks; --verbose lists them)`,
    );
    this.epochBackupChunks = 0;
    this.epochBackupJobs = 0;
    this.lastBackupLabel = '';
  }

  private line(epoch: number, meanLoss: number): string {
    const step = (this.lastStep?.step ?? -1) + 1;
    const first = this.firstStep;
    const etaMs = first === null ? null : remainingMs(step - first.step, this.totalSteps - step, performance.now() - first.at, this.totalSteps);
    const eta = etaMs === null ? '' : `  ETA ${formatDuration(etaMs)}`;
    const epochMs = performance.now() - this.epochStarted;
    const rowsPerSec = epochMs > 0 ? (this.epochRows * 1000) / epochMs : 0;
    return `epoch ${epoch + 1}/${this.epochs}  step ${step}/${this.totalSteps}  loss ${meanLoss.toFixed(4)}  ${Math.round(rowsPerSec).toLocaleString('en-US')} rows/s${eta}`;
  }
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

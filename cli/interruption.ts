// What a run stopped by a signal (Ctrl-C on `dpt coordinator` or `dpt train`) has lost, said in
// one line (issue #14 item 4): the steps done of the total, and whether a checkpoint keeps them.
// Fed by the run's events and checkpoint hook; it holds no training state itself.

import type { TrainingEvent } from '../shared/events.js';

export class RunProgress {
  /** Steps of the whole run, once the schedule is known; null before. */
  private totalSteps: number | null = null;
  /** The step this run started at (a resumed run starts past 0); null before its first step. */
  private firstStep: number | null = null;
  /** Steps committed, counted from step 0 of the run (a resumed run's included). */
  private stepsDone = 0;
  /** The step of the last checkpoint this run wrote; null: none yet. */
  private checkpointStep: number | null = null;

  started(totalSteps: number): void {
    this.totalSteps = totalSteps;
  }

  handle(event: TrainingEvent): void {
    if (event.type !== 'step') return;
    this.firstStep ??= event.step;
    this.stepsDone = event.step + 1;
  }

  /** A checkpoint of `step` was written (the run's onCheckpoint hook). */
  checkpointed(step: number): void {
    this.checkpointStep = step;
  }

  /**
   * The line to print when `signal` stops the run, without a trailing newline. `checkpointPath`:
   * --checkpoint, or null without it.
   */
  describe(signal: NodeJS.Signals, checkpointPath: string | null): string {
    const stopped = `dpt: stopped by ${signal}`;
    if (this.totalSteps === null || this.firstStep === null) {
      return `${stopped} before the first step: nothing was trained${this.totalSteps === null ? '' : ` (0 of ${this.totalSteps} steps)`}`;
    }
    const at = `${stopped} at step ${this.stepsDone} of ${this.totalSteps}`;
    const done = this.stepsDone - this.firstStep;
    const since = this.firstStep === 0 ? '' : ` since step ${this.firstStep}`;
    if (checkpointPath === null) {
      return `${at}: the ${done} step(s) done${since} are lost, and no model was written (with --checkpoint FILE they would be kept, and --resume FILE goes on)`;
    }
    if (this.checkpointStep === null) {
      return `${at}: the ${done} step(s) done${since} are lost: no checkpoint was written to ${checkpointPath} yet (see --checkpoint-every)`;
    }
    const lost = this.stepsDone - this.checkpointStep;
    return `${at}: ${checkpointPath} holds step ${this.checkpointStep} (${lost} later step(s) lost); --resume ${checkpointPath} goes on from there`;
  }
}

// The loss stream (DESIGN.md, "Interfaces others rely on"): one event per committed step and
// one per evaluated epoch, as JSON on the monitor socket and as lines of the --metrics file.

export interface StepEvent {
  readonly type: 'step';
  readonly step: number;
  readonly epoch: number;
  /** Mean negative log-likelihood of the batch before the update. */
  readonly loss: number;
  readonly rows: number;
  /** Workers whose parts entered this step. */
  readonly workers: number;
  readonly stepMs: number;
  readonly rowsPerSec: number;
  /** Milliseconds since the Unix epoch. */
  readonly time: number;
}

export interface EvalEvent {
  readonly type: 'eval';
  readonly epoch: number;
  /** Mean loss and accuracy over all training rows with the weights at the end of the epoch. */
  readonly trainLoss: number;
  readonly trainAccuracy: number;
  /** null without a validation split. */
  readonly valLoss: number | null;
  readonly valAccuracy: number | null;
  readonly time: number;
}

/** Workers joining and leaving; `reason` says why a worker left. */
export interface MembershipEvent {
  readonly type: 'worker';
  readonly event: 'joined' | 'left';
  readonly workerId: number;
  readonly address: string;
  readonly reason: string;
  readonly workers: number;
  readonly time: number;
}

export type TrainingEvent = StepEvent | EvalEvent | MembershipEvent;

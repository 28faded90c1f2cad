// Early stopping (issue #12, --early-stopping P): after each evaluation, keeps a copy of the
// parameters of the best one so far (the lowest validation loss, strictly lower to count) and
// counts the evaluations since it; P evaluations in a row without improvement stop the run. Its
// state goes into checkpoints, so a resumed run stops where the uninterrupted one does. Not the
// evaluation itself (trainer.ts) nor the model file (run.ts).

import { CheckpointError } from '../shared/errors.js';
import type { EarlyStoppingMark, EvalEvent } from '../shared/events.js';

/** The state a checkpoint holds (as JSON: the parameters as a number array, which round-trips float64). */
export interface SavedEarlyStopping {
  /** The best evaluation so far (its epoch and validation loss), null before the first. */
  readonly bestEval: EvalEvent | null;
  /** The parameter vector at the end of the best evaluation's epoch, null before the first. */
  readonly bestParams: number[] | null;
  /** Evaluations since the best one, none of which improved on it. */
  readonly evalsSinceBest: number;
  /** The epoch whose evaluation stopped the run, or null while it goes on. */
  readonly stoppedAfterEpoch: number | null;
}

/** What the model file says (its "earlyStopping" field) and the model's metrics come from. */
export interface EarlyStoppingOutcome {
  readonly patience: number;
  readonly bestEpoch: number;
  /** The best evaluation: the model file's metrics. */
  readonly bestEval: EvalEvent;
  /** Null when the run went through all its epochs. */
  readonly stoppedAfterEpoch: number | null;
  /** The best evaluation's parameters (owned by the EarlyStopping: do not write). */
  readonly params: Float64Array;
}

export class EarlyStopping {
  /** P: evaluations in a row without improvement that stop the run. */
  readonly patience: number;
  private bestEval: EvalEvent | null = null;
  /** Allocated at the first evaluation, then overwritten in place at each improvement. */
  private bestParams: Float64Array | null = null;
  private evalsSinceBest = 0;
  private stoppedAfterEpoch: number | null = null;

  /** `saved`: a checkpoint's state (null: a fresh start); throws CheckpointError if it does not fit. */
  constructor(patience: number, parameterCount: number, saved: SavedEarlyStopping | null) {
    if (!Number.isSafeInteger(patience) || patience < 1) throw new Error(`invariant broken: early-stopping patience ${patience}`);
    this.patience = patience;
    if (saved === null) return;
    const { bestEval, bestParams, evalsSinceBest, stoppedAfterEpoch } = saved;
    const isEmpty = bestEval === null && bestParams === null && evalsSinceBest === 0 && stoppedAfterEpoch === null;
    const isConsistent =
      bestEval !== null &&
      bestParams !== null &&
      typeof bestEval.valLoss === 'number' &&
      Number.isSafeInteger(evalsSinceBest) &&
      evalsSinceBest >= 0 &&
      evalsSinceBest <= patience &&
      // Stopped exactly when P evaluations went by without improvement.
      (stoppedAfterEpoch === null) === evalsSinceBest < patience &&
      (stoppedAfterEpoch === null || stoppedAfterEpoch > bestEval.epoch);
    if (!isEmpty && !isConsistent) {
      throw new CheckpointError(
        `the early-stopping state (best epoch, ${evalsSinceBest} evaluations since it, stopped after ${stoppedAfterEpoch}) does not fit --early-stopping ${patience}`,
      );
    }
    if (bestParams !== null && bestParams.length !== parameterCount) {
      throw new CheckpointError(`the early-stopping state holds ${bestParams.length} parameters, the model has ${parameterCount}`);
    }
    this.bestEval = bestEval;
    this.bestParams = bestParams === null ? null : Float64Array.from(bestParams);
    this.evalsSinceBest = evalsSinceBest;
    this.stoppedAfterEpoch = stoppedAfterEpoch;
  }

  /** The run has met its stopping rule: no further step is to run. */
  get isStopped(): boolean {
    return this.stoppedAfterEpoch !== null;
  }

  /**
   * Takes one evaluation of `params` (copied if it is the best so far) and returns the evaluation
   * marked with the verdict. Improved iff valLoss < the best valLoss (the first always improves;
   * NaN never does); after P evaluations in a row without improvement the run is stopped.
   */
  observe(evaluation: EvalEvent, params: Float64Array): EvalEvent {
    if (this.isStopped) throw new Error('invariant broken: an evaluation after early stopping');
    const valLoss = evaluation.valLoss;
    if (valLoss === null) throw new Error('invariant broken: early stopping without validation rows');
    const best = this.bestEval?.valLoss ?? null;
    if (best === null || valLoss < best) {
      this.bestEval = evaluation;
      this.bestParams ??= new Float64Array(params.length);
      this.bestParams.set(params);
      this.evalsSinceBest = 0;
    } else {
      this.evalsSinceBest++;
      if (this.evalsSinceBest >= this.patience) this.stoppedAfterEpoch = evaluation.epoch;
    }
    // Set just above (the first evaluation always improves).
    const bestEval = this.bestEval as EvalEvent;
    const mark: EarlyStoppingMark = {
      bestEpoch: bestEval.epoch,
      bestValLoss: bestEval.valLoss as number, // a number: observed evaluations have validation rows
      evalsSinceBest: this.evalsSinceBest,
      stop: this.isStopped,
    };
    return { ...evaluation, earlyStopping: mark };
  }

  /** The best evaluation and its parameters, or null before the first evaluation. */
  outcome(): EarlyStoppingOutcome | null {
    if (this.bestEval === null || this.bestParams === null) return null;
    return {
      patience: this.patience,
      bestEpoch: this.bestEval.epoch,
      bestEval: this.bestEval,
      stoppedAfterEpoch: this.stoppedAfterEpoch,
      params: this.bestParams,
    };
  }

  /** A copy of the state, for a checkpoint. */
  save(): SavedEarlyStopping {
    return {
      bestEval: this.bestEval,
      bestParams: this.bestParams === null ? null : Array.from(this.bestParams),
      evalsSinceBest: this.evalsSinceBest,
      stoppedAfterEpoch: this.stoppedAfterEpoch,
    };
  }
}

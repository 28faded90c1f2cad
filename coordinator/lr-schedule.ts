// The learning rate of each step (issue #12): a pure function of the step index, so a resumed run
// uses the same rates as an uninterrupted one. Not the optimizer (optimizers.ts takes η per step).
//
// At step t (0-based, counted from the run's first step, resumes included), with T the run's total
// steps, S the steps per epoch, N = --warmup-steps, E = --lr-decay-epochs, G = --lr-gamma:
//   η(t) = lr · c(t) · u(t) · d(t)
//   c(t) = 0.5·(1 + cos(π·t/T)) for --lr-schedule cosine, 1 for constant   (torch's CosineAnnealingLR, eta_min 0, T_max T)
//   u(t) = (t+1)/N for t < N, else 1                                        (linear warm-up, reaches lr at step N−1)
//   d(t) = G^⌊e/E⌋ with e = ⌊t/S⌋ the step's 0-based epoch, 1 without --lr-decay-epochs   (torch's StepLR stepped per epoch)
// The three factors multiply (as torch's ChainedScheduler composes schedulers), evaluated left to right:
// ((lr·c)·u)·d. With cosine, c already decays to ~0 over the run, so a step decay on top of it
// shrinks the late rates further; that is allowed and defined, not refused.
// G^k is correctly rounded (power.ts; Python's ** agrees but for rare glibc misroundings). cos is V8's Math.cos (fdlibm), which
// differs from glibc's cos (what torch's schedulers use) by one ulp on ~4% of arguments: the rates
// then differ by ~1e-17, never bit-for-bit guaranteed against torch; V8's cos is the same on every platform.

import { ConfigError } from '../shared/errors.js';
import { powerOfFraction } from './power.js';

export const LR_SCHEDULE_NAMES = ['constant', 'cosine'] as const;
export type LrScheduleName = (typeof LR_SCHEDULE_NAMES)[number];

/** A validated, frozen schedule configuration: all of it changes the result (run fingerprint). */
export interface LrScheduleSpec {
  /** The base rate lr (--lr), > 0. */
  readonly lr: number;
  readonly schedule: LrScheduleName;
  /** N, steps of linear warm-up; 0 for none. */
  readonly warmupSteps: number;
  /** E, epochs between decays; 0 for no step decay. */
  readonly decayEpochs: number;
  /** G, the factor per decay, in (0, 1]; 1 without step decay. */
  readonly gamma: number;
}

export type LrScheduleOptions = { [K in keyof LrScheduleSpec]?: LrScheduleSpec[K] | undefined };

export const LR_SCHEDULE_DEFAULTS = { lr: 0.1, schedule: 'constant', warmupSteps: 0, decayEpochs: 0, gamma: 0.1 } as const;

/** Merges the defaults and validates; errors name the flag. --lr-gamma without --lr-decay-epochs is refused. */
export function resolveLrScheduleSpec(options: LrScheduleOptions): LrScheduleSpec {
  const schedule = options.schedule ?? LR_SCHEDULE_DEFAULTS.schedule;
  if (!(LR_SCHEDULE_NAMES as readonly string[]).includes(schedule)) {
    throw new ConfigError(`--lr-schedule must be one of ${LR_SCHEDULE_NAMES.join(', ')}, got ${JSON.stringify(schedule)}`);
  }
  const lr = options.lr ?? LR_SCHEDULE_DEFAULTS.lr;
  if (!(lr > 0 && Number.isFinite(lr))) throw new ConfigError(`--lr must be a positive finite number, got ${lr}`);
  const warmupSteps = options.warmupSteps ?? LR_SCHEDULE_DEFAULTS.warmupSteps;
  if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 0) throw new ConfigError(`--warmup-steps must be a non-negative integer, got ${warmupSteps}`);
  const decayEpochs = options.decayEpochs ?? LR_SCHEDULE_DEFAULTS.decayEpochs;
  if (!Number.isSafeInteger(decayEpochs) || decayEpochs < 0) throw new ConfigError(`--lr-decay-epochs must be a non-negative integer, got ${decayEpochs}`);
  if (options.gamma !== undefined && decayEpochs === 0) throw new ConfigError('--lr-gamma needs --lr-decay-epochs (the epochs between decays)');
  const gamma = decayEpochs === 0 ? 1 : (options.gamma ?? LR_SCHEDULE_DEFAULTS.gamma);
  if (!(gamma > 0 && gamma <= 1)) throw new ConfigError(`--lr-gamma must be a number in (0, 1], got ${gamma}`);
  return Object.freeze({ lr, schedule, warmupSteps, decayEpochs, gamma });
}

/** The rate of every step of one run: built once the run's length is known. */
export interface LrSchedule {
  readonly spec: LrScheduleSpec;
  /** η at step t, 0 ≤ t < totalSteps. */
  rateAt(step: number): number;
}

/**
 * The schedule of a run of totalSteps steps, stepsPerEpoch per epoch. Throws ConfigError naming
 * --warmup-steps when the warm-up is longer than the run (the full rate would never be reached).
 */
export function createLrSchedule(spec: LrScheduleSpec, totalSteps: number, stepsPerEpoch: number): LrSchedule {
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 1) throw new Error(`invariant broken: total steps ${totalSteps}`);
  if (!Number.isSafeInteger(stepsPerEpoch) || stepsPerEpoch < 1) throw new Error(`invariant broken: steps per epoch ${stepsPerEpoch}`);
  if (spec.warmupSteps > totalSteps) {
    throw new ConfigError(`--warmup-steps ${spec.warmupSteps} is longer than the run (${totalSteps} steps)`);
  }
  const { lr, schedule, warmupSteps, decayEpochs, gamma } = spec;
  return {
    spec,
    rateAt(step: number): number {
      if (!Number.isSafeInteger(step) || step < 0 || step >= totalSteps) throw new Error(`invariant broken: step ${step} outside [0, ${totalSteps})`);
      let rate = lr;
      if (schedule === 'cosine') rate *= 0.5 * (1 + Math.cos((Math.PI * step) / totalSteps));
      if (step < warmupSteps) rate *= (step + 1) / warmupSteps;
      if (decayEpochs > 0) rate *= powerOfFraction(gamma, Math.floor(Math.floor(step / stepsPerEpoch) / decayEpochs));
      return rate;
    },
  };
}

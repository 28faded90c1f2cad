// The one-line warning for a run on raw features (--no-standardize) whose scales make plain SGD
// overshoot from the first step (issue #14 item 5: breast_cancer.csv at --lr 0.1 ended at loss
// 14,338 with no hint). Judged from the statistics pass, before the first step.
//
// The rule. At the start (θ = 0) the loss's Hessian is c·E[x̃x̃ᵀ] with x̃ = (x, 1): c = σ'(0) = 1/4
// for logistic regression, and for softmax the largest eigenvalue of diag(p) − ppᵀ at p = 1/K,
// i.e. 1/K. Its largest eigenvalue h is at least c·max(max_j E[x_j²], 1 + Σ_j mean_j²) (a diagonal
// entry; and E[x̃x̃ᵀ] ⪰ μ̃μ̃ᵀ). On a quadratic of curvature h, gradient descent at rate η is stable
// only while a = η·h stays below 2 (sgd), 2(1 + μ) (heavy-ball momentum, torch's `momentum`) or
// 2(1 + μ)/(1 + 2μ) (torch's Nesterov). Past that the first steps overshoot and grow until the
// sigmoid saturates: the loss jumps by orders of magnitude and oscillates. Measured on the bundled
// data (20 epochs): breast_cancer's bound is η < 6.5e-6 — at 5e-6 the loss falls smoothly, at
// 2e-5 it first jumps to 1.9, at 0.1 to 10,167; digits' is η < 0.0076 — at 0.005 smooth, at 0.1
// 21 after the first epoch. Adaptive optimizers (adagrad, adam, adamw) scale each parameter's
// step by its own gradients and are not judged; neither are class weights (the mean weight is 1).

import type { ModelKind } from '../shared/model-shape.js';
import type { MergedStats } from '../shared/passes.js';
import type { OptimizerSpec } from './optimizers.js';

export interface ScaleCheck {
  readonly standardize: boolean;
  /** The peak learning rate (--lr: every schedule starts from it or warms up to it). */
  readonly lr: number;
  readonly optimizer: Pick<OptimizerSpec, 'name' | 'momentum'>;
  readonly model: ModelKind;
  /** K: 2 for logistic regression. */
  readonly classes: number;
  readonly featureNames: readonly string[];
  /** The raw training rows' statistics (the statistics pass). */
  readonly stats: Pick<MergedStats, 'mean' | 'std' | 'min' | 'max'>;
}

/** The largest a = η·h at which the optimizer is stable on a quadratic of curvature h, or null when it is not judged. */
export function stableStepLimit(optimizer: ScaleCheck['optimizer']): number | null {
  const mu = optimizer.momentum;
  switch (optimizer.name) {
    case 'sgd':
      return 2;
    case 'momentum':
      return 2 * (1 + mu);
    case 'nesterov':
      return (2 * (1 + mu)) / (1 + 2 * mu);
    case 'adagrad':
    case 'adam':
    case 'adamw':
    case 'ftrl':
      return null;
    default: {
      const unknown: never = optimizer.name;
      throw new Error(`invariant broken: no step limit for optimizer ${String(unknown)}`);
    }
  }
}

/**
 * h, the lower bound on the loss's curvature at θ = 0 that the rule uses (see the file's comment),
 * and what it comes from, in words.
 */
export function startCurvature(check: Pick<ScaleCheck, 'model' | 'classes' | 'featureNames' | 'stats'>): { h: number; source: string } {
  const { mean, std, min, max } = check.stats;
  // E[x_j²] = var_j + mean_j² (MergedStats reports std 1 for a constant column: its variance is 0).
  let largest = 0;
  let largestFeature = -1;
  let meanSquares = 1; // ‖μ̃‖², starting with the bias's x̃ = 1
  for (let j = 0; j < mean.length; j++) {
    const variance = min[j] === max[j] ? 0 : std[j]! * std[j]!;
    const secondMoment = variance + mean[j]! * mean[j]!;
    if (secondMoment > largest) {
      largest = secondMoment;
      largestFeature = j;
    }
    meanSquares += mean[j]! * mean[j]!;
  }
  const c = check.model === 'softmax' ? 1 / check.classes : 0.25;
  const source =
    largest >= meanSquares
      ? `feature '${check.featureNames[largestFeature] ?? largestFeature + 1}' has mean x² ${formatNumber(largest)}`
      : `the features' Σ mean² is ${formatNumber(meanSquares - 1)}`;
  return { h: c * Math.max(largest, meanSquares), source };
}

/** The warning line (without a trailing newline), or null when the run is not diverge-prone by the rule above. */
export function scaleWarning(check: ScaleCheck): string | null {
  if (check.standardize) return null;
  const limit = stableStepLimit(check.optimizer);
  if (limit === null) return null;
  const { h, source } = startCurvature(check);
  if (!(check.lr * h > limit)) return null;
  return (
    `dpt: warning: --no-standardize: these feature scales make --optimizer ${check.optimizer.name} stable only below --lr ${formatNumber(limit / h)} ` +
    `(${source}), not at ${check.lr}: expect the loss to jump and oscillate; drop --no-standardize or lower --lr`
  );
}

/** Two significant digits: 6.5e-6, 0.0076, 1.1e6. */
function formatNumber(value: number): string {
  const isTinyOrHuge = value !== 0 && (Math.abs(value) >= 1e4 || Math.abs(value) < 1e-3);
  return isTinyOrHuge ? value.toExponential(1).replace('e+', 'e') : String(Number(value.toPrecision(2)));
}

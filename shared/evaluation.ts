// Classification metrics of a linear model over a set of rows. Binary logistic: mean log-loss,
// accuracy, precision, recall, F1 and ROC AUC (rank statistic, ties counted half). Softmax over K
// classes (issue #12): mean log-loss, accuracy, per-class precision/recall/F1/support, their macro
// averages and the confusion matrix.

import { exp, log1p } from './fdlibm.js';
import { linearScore, logLoss, predictClass } from './model.js';

export interface Metrics {
  readonly rows: number;
  readonly logLoss: number;
  readonly accuracy: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** null when only one class is present (AUC is undefined then). */
  readonly rocAuc: number | null;
}

export function evaluateModel(x: Float32Array, y: Uint8Array, D: number, w: Float64Array, b: number): Metrics {
  const n = y.length;
  const scores = new Float64Array(n);
  for (let row = 0; row < n; row++) scores[row] = linearScore(x, D, row, w, b);
  return binaryMetrics(scores, y);
}

/** The binary metrics of rows with scores z = w·x + b and 0/1 labels y (sparse inputs score their rows themselves). */
export function binaryMetrics(scores: Float64Array, y: Uint8Array): Metrics {
  const n = y.length;
  let lossSum = 0;
  let truePositive = 0;
  let falsePositive = 0;
  let falseNegative = 0;
  let correct = 0;
  for (let row = 0; row < n; row++) {
    const z = scores[row]!;
    const label = y[row]!;
    lossSum += logLoss(z, label);
    const predicted = predictClass(z);
    if (predicted === label) correct++;
    if (predicted === 1 && label === 1) truePositive++;
    if (predicted === 1 && label === 0) falsePositive++;
    if (predicted === 0 && label === 1) falseNegative++;
  }
  const precision = truePositive + falsePositive === 0 ? 0 : truePositive / (truePositive + falsePositive);
  const recall = truePositive + falseNegative === 0 ? 0 : truePositive / (truePositive + falseNegative);
  return {
    rows: n,
    logLoss: lossSum / n,
    accuracy: correct / n,
    precision,
    recall,
    f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
    rocAuc: rocAuc(scores, y),
  };
}

/** AUC = P(score of a random positive > score of a random negative), ties counting 1/2. */
export function rocAuc(scores: Float64Array, y: Uint8Array): number | null {
  const n = scores.length;
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSumPositives = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const averageRank = (i + j) / 2 + 1; // 1-based mid-rank of the tie group
    for (let k = i; k <= j; k++) {
      if (y[order[k]!] === 1) {
        positives++;
        rankSumPositives += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (rankSumPositives - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** One class's row of a multiclass report (sklearn's definitions, zero_division = 0). */
export interface ClassMetrics {
  /** tp / (tp + fp): of the rows predicted as this class, the share that are; 0 when none is predicted. */
  readonly precision: number;
  /** tp / (tp + fn): of the rows of this class, the share predicted as it; 0 when it has no rows. */
  readonly recall: number;
  /** 2·tp / (2·tp + fp + fn), the harmonic mean of precision and recall; 0 when tp + fp + fn = 0 and when tp = 0. */
  readonly f1: number;
  /** Rows whose true class this is (tp + fn). */
  readonly support: number;
  /** Rows predicted as this class (tp + fp). */
  readonly predicted: number;
}

export interface SoftmaxMetrics {
  readonly rows: number;
  /** Mean of −log p_y over the rows, from the scores by log-sum-exp (never a log of a rounded p). */
  readonly logLoss: number;
  readonly accuracy: number;
  /** Index k: class k. */
  readonly perClass: readonly ClassMetrics[];
  /**
   * Unweighted means over the classes that occur among the true labels or the predictions (sklearn's
   * default label set): a class of the model absent from both would add a 0 that says nothing.
   */
  readonly macro: { readonly precision: number; readonly recall: number; readonly f1: number; readonly classes: number };
  /** K rows of K counts: confusion[t][p] rows of true class t predicted as p. */
  readonly confusion: readonly (readonly number[])[];
}

/**
 * Metrics of softmax regression θ (shared/softmax.ts layout: W row-major K×D, then b) over rows x
 * (rows × D) with class indices y (< K). The predicted class is argmax_k z_k, the lowest index
 * among ties, with z_k = b_k + Σ_j W_kj·x_j summed in j order: the class predictSoftmax returns.
 */
export function evaluateSoftmax(x: Float32Array, y: Uint32Array, D: number, K: number, theta: Float64Array): SoftmaxMetrics {
  const n = y.length;
  const z = new Float64Array(K);
  const tally = new SoftmaxTally(K);
  for (let row = 0; row < n; row++) {
    const base = row * D;
    for (let k = 0; k < K; k++) {
      let zk = theta[K * D + k]!;
      for (let j = 0; j < D; j++) zk += theta[k * D + j]! * x[base + j]!;
      z[k] = zk;
    }
    tally.add(z, y[row]!);
  }
  return tally.metrics();
}

/**
 * The softmax metrics of rows added one at a time as their K scores z and class index y (< K):
 * evaluateSoftmax's rows, and the rows of sparse inputs, which are scored where they are read.
 */
export class SoftmaxTally {
  private readonly K: number;
  private readonly confusion: Float64Array;
  private lossSum = 0;
  private correct = 0;
  private n = 0;

  constructor(K: number) {
    this.K = K;
    this.confusion = new Float64Array(K * K);
  }

  /** Adds one row; z is read, not kept. */
  add(z: Float64Array, label: number): void {
    const K = this.K;
    let m = 0;
    let a = 0;
    for (let k = 0; k < K; k++) {
      if (k === 0 || z[k]! > m) {
        m = z[k]!;
        a = k;
      }
    }
    // −log p_y = log Σ_k e^(z_k) − z_y = log1p(T) + (m − z_y), T = Σ_{k≠a} e^(z_k − m) (each ≤ 1: no overflow,
    // and log1p keeps the loss exact when p_y ≈ 1, as the training kernel does).
    let T = 0;
    for (let k = 0; k < K; k++) if (k !== a) T += exp(z[k]! - m);
    this.lossSum += log1p(T) + (m - z[label]!);
    if (a === label) this.correct++;
    this.confusion[label * K + a]!++;
    this.n++;
  }

  metrics(): SoftmaxMetrics {
    const { K, confusion, n } = this;
    const perClass: ClassMetrics[] = [];
    for (let k = 0; k < K; k++) {
      let support = 0;
      let predicted = 0;
      for (let other = 0; other < K; other++) {
        support += confusion[k * K + other]!;
        predicted += confusion[other * K + k]!;
      }
      const tp = confusion[k * K + k]!;
      const fp = predicted - tp;
      const fn = support - tp;
      perClass.push({
        precision: predicted === 0 ? 0 : tp / predicted,
        recall: support === 0 ? 0 : tp / support,
        f1: tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn),
        support,
        predicted,
      });
    }
    const present = perClass.filter((c) => c.support > 0 || c.predicted > 0);
    const mean = (pick: (c: ClassMetrics) => number): number => (present.length === 0 ? 0 : present.reduce((sum, c) => sum + pick(c), 0) / present.length);
    return {
      rows: n,
      logLoss: this.lossSum / n,
      accuracy: this.correct / n,
      perClass,
      macro: { precision: mean((c) => c.precision), recall: mean((c) => c.recall), f1: mean((c) => c.f1), classes: present.length },
      confusion: Array.from({ length: K }, (_, t) => Array.from(confusion.subarray(t * K, (t + 1) * K))),
    };
  }
}

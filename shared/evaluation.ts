// Classification metrics of a linear model over a set of rows: mean log-loss, accuracy,
// precision, recall, F1 and ROC AUC (rank statistic, ties counted half).

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
  let lossSum = 0;
  let truePositive = 0;
  let falsePositive = 0;
  let falseNegative = 0;
  let correct = 0;
  for (let row = 0; row < n; row++) {
    const z = linearScore(x, D, row, w, b);
    scores[row] = z;
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

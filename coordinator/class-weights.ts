// --class-weight balanced (issue #12): the per-class weights c_k = n / (K·n_k) of sklearn's
// "balanced" rule, from the class counts n_k of the run's training rows (n of them, K classes).
// The coordinator counts the labels alone (never the features), in bounded batches, over the
// training rows of the seeded split (shared/schedule.ts splitRows: the rows the workers train on).
// Not here: applying the weights (the kernels weigh each row's loss and gradient by c_y).

/** Labels of file rows [from, to) as class indices (index 0 is row `from`); the reader owns the buffer. */
export type LabelReader = (from: number, to: number) => ArrayLike<number>;

/** Rows of labels read at a time: bounds the memory of the count, whatever the file's size. */
export const LABEL_BATCH_ROWS = 65_536;

/**
 * n_k: how many of the rows `train` (file row indices, ascending, as splitRows returns them) have
 * class k, k < K. Reads the labels of rows [train[0], train[last]] in batches of `batchRows`.
 * Throws RangeError on a label ≥ K (labels are checked when the file is written: an invariant).
 */
export function countClasses(train: Uint32Array, K: number, read: LabelReader, batchRows: number = LABEL_BATCH_ROWS): Float64Array {
  const counts = new Float64Array(K);
  if (train.length === 0) return counts;
  const end = train[train.length - 1]! + 1;
  let next = 0; // the next training row to count, as an index into `train`
  while (next < train.length) {
    const from = train[next]!; // a batch starts at the next training row: validation gaps are skipped
    const to = Math.min(end, from + batchRows);
    const labels = read(from, to);
    for (; next < train.length && train[next]! < to; next++) {
      const label = labels[train[next]! - from]!;
      if (!(label < K)) throw new RangeError(`row ${train[next]}: class ${label} is not below the run's ${K} classes`);
      counts[label]! += 1;
    }
  }
  return counts;
}

/**
 * sklearn's balanced weights: c_k = n / (K·n_k), n = Σ n_k (the training rows), so that every
 * class weighs n/K in all. A class with n_k = 0 (present only in validation rows, or not at all)
 * gets c_k = 0 rather than ∞: it weighs no training row, so its weight changes no step.
 */
export function balancedClassWeights(counts: Float64Array): Float64Array {
  const K = counts.length;
  let n = 0;
  for (const count of counts) n += count;
  return counts.map((count) => (count === 0 ? 0 : n / (K * count)));
}

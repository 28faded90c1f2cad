// How a step's chunks are shared among workers: contiguous ranges aligned to the reduction tree
// (shared/reduce.ts), a pure function of (chunk count, worker count), so a worker keeps the same
// range from step to step while the membership is unchanged (it re-reads the same region of the
// data) and each range is few subtrees (a worker sends few parts: DESIGN.md invariant 4).

/**
 * Boundaries of `workers` shares of chunks [0, chunks): share i is [bounds[i], bounds[i + 1]).
 * Ranges are cut on multiples of g, the largest power of two ≤ chunks / workers (the granule),
 * as evenly as whole granules allow; with at least as many chunks as workers none is empty, and
 * with chunks and workers powers of two each share is exactly one subtree. Caller guarantees
 * 1 ≤ workers ≤ chunks.
 */
export function alignedShares(chunks: number, workers: number): number[] {
  let granule = 1;
  while (granule * 2 * workers <= chunks) granule *= 2;
  const granules = Math.ceil(chunks / granule);
  const bounds: number[] = [];
  for (let i = 0; i <= workers; i++) bounds.push(Math.min(chunks, granule * Math.floor((i * granules) / workers)));
  return bounds;
}

/** Splits ascending unit ids into maximal contiguous runs, as [first, end) pairs appended to `out`. */
export function contiguousRuns(units: readonly number[], out: number[] = []): number[] {
  let i = 0;
  while (i < units.length) {
    const first = units[i]!;
    let end = first + 1;
    while (i + 1 < units.length && units[i + 1] === end) {
      end++;
      i++;
    }
    out.push(first, end);
    i++;
  }
  return out;
}

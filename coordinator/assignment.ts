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

/**
 * Boundaries of shares of chunks [0, chunks) weighted by `capacities` (a worker 1, a relay its
 * ready workers: issue #11 item 3): share i is [bounds[i], bounds[i + 1]), about
 * chunks·capacity_i / Σcapacity chunks, cut on multiples of g, the largest power of two ≤ chunks /
 * Σcapacity, so a relay's share stays few aligned subtrees and every worker behind it can get a
 * chunk. With all capacities 1 these are exactly alignedShares' bounds. When the capacity exceeds
 * the chunks (g = 1 and fewer chunks than capacity), shares are filled in order, up to each
 * capacity: some are then empty. Caller guarantees chunks ≥ 1 and positive integer capacities.
 */
export function weightedAlignedShares(chunks: number, capacities: readonly number[]): number[] {
  let total = 0;
  for (const capacity of capacities) total += capacity;
  let granule = 1;
  while (granule * 2 * total <= chunks) granule *= 2;
  const granules = Math.ceil(chunks / granule);
  const bounds: number[] = [0];
  let before = 0;
  for (const capacity of capacities) {
    before += capacity;
    bounds.push(total <= granules ? Math.min(chunks, granule * Math.floor((before * granules) / total)) : Math.min(chunks, before));
  }
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

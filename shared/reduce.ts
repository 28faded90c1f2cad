// The reduction of gradient parts. Parts arrive per chunk, in any order and from any worker;
// summing them in chunk order makes the batch sum independent of who computed what and when
// (DESIGN.md invariants 2 and 6).

/**
 * out[k] = Σ_c parts[c·width + k] for c = 0 … chunks−1, always in that order.
 * `parts` is chunks × width, row-major; `out` has `width` entries and is overwritten.
 */
export function sumChunksInOrder(parts: Float64Array, chunks: number, width: number, out: Float64Array): void {
  out.fill(0);
  for (let c = 0; c < chunks; c++) {
    const base = c * width;
    for (let k = 0; k < width; k++) out[k]! += parts[base + k]!;
  }
}

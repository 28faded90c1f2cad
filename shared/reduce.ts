// The reduction of gradient parts. Parts arrive per chunk, in any order, from any worker, and
// a chunk may be computed twice (a backup task); the first copy of each chunk is kept, by chunk
// id, and the batch sum adds chunks in id order. So the sum does not depend on who computed
// what or when its part arrived (DESIGN.md invariants 2, 3 and 6).

/** The parts of one step, held by chunk id. Reused from step to step: no per-step allocation. */
export class ChunkParts {
  /** Values per chunk: D gradient sums, the bias sum, the loss sum. */
  readonly width: number;
  private readonly sums: Float64Array;
  private readonly isDone: Uint8Array;
  private chunks = 0;
  private remaining = 0;

  constructor(maxChunks: number, width: number) {
    this.width = width;
    this.sums = new Float64Array(maxChunks * width);
    this.isDone = new Uint8Array(maxChunks);
  }

  /** Starts a step of `chunks` chunks, all pending. */
  reset(chunks: number): void {
    this.chunks = chunks;
    this.remaining = chunks;
    this.isDone.fill(0, 0, chunks);
  }

  has(chunk: number): boolean {
    return this.isDone[chunk] === 1;
  }

  get pending(): number {
    return this.remaining;
  }

  /** Keeps `values[offset .. offset+width)` as chunk `chunk`'s part; a second copy is ignored. Returns whether it was kept. */
  accept(chunk: number, values: Float64Array, offset: number): boolean {
    if (this.isDone[chunk] === 1) return false;
    this.sums.set(values.subarray(offset, offset + this.width), chunk * this.width);
    this.isDone[chunk] = 1;
    this.remaining--;
    return true;
  }

  /** Copies the parts of chunks 0 … chunks−1, in chunk order, into `out` (chunks × width). */
  copyOut(out: Float64Array): void {
    out.set(this.sums.subarray(0, this.chunks * this.width));
  }

  /** Adds every chunk's part in chunk-id order into `out` (overwritten, `width` values). */
  reduce(out: Float64Array): void {
    sumChunksInOrder(this.sums, this.chunks, this.width, out);
  }
}

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

// The reduction of gradient parts: how the parts of a batch's chunks add up to the batch sum.
//
// DEFINITION (reduction 'tree2-v1', DESIGN.md invariant 6). A batch is cut into C chunks (a
// function of the batch alone, shared/schedule.ts). The batch sum is a fixed binary tree over
// chunk ids 0 … C−1, padded to P = 2^L ≥ C leaves (L = ceil(log2 C)):
//   - node (0, c) is chunk c's part, as one kernel call computed it;
//   - node (l, i) covers chunks [i·2^l, (i+1)·2^l) ∩ [0, C); it exists iff i·2^l < C;
//   - a node with one existing child is that child, bit for bit (no addition with zero);
//   - a node with two is left + right, in float64, in that order, component by component;
//   - the batch sum is the root (L, 0).
// A worker holding chunks [from, to) sends one value per maximal aligned subtree inside that
// range (decomposeRange), computed along the same tree (reduceSubtreeInPlace); the coordinator
// stores those values by (level, index) and finishes the tree (TreeParts). Every node's value is
// a function of the chunks' parts alone, so who computed which subtree, how a range was cut,
// and the order parts arrived in never change a bit: any W, failures, backups and recomputes
// give the same sum. A subtree that overlaps chunks already covered is refused (never counted
// twice: invariant 3); its uncovered chunks are the scatter's to reassign.
//
// The earlier reduction (chunk parts added left to right in id order, 8 chunks by default)
// gave other bits: models trained before 'tree2-v1' are not bit-identical to today's.

/** The reduction's id: in the welcome and the run's fingerprint (checkpoints, model files). */
export const REDUCTION_ID = 'tree2-v1';

/** Levels of the tree over `chunks` leaves: L = ceil(log2(chunks)) (0 for one chunk). */
export function treeLevels(chunks: number): number {
  let levels = 0;
  while (2 ** levels < chunks) levels++;
  return levels;
}

/** First chunk of node (level, index). */
export function subtreeStart(level: number, index: number): number {
  return index * 2 ** level;
}

/** End (exclusive) of node (level, index) over `chunks` chunks: clipped to the batch. */
export function subtreeEnd(level: number, index: number, chunks: number): number {
  return Math.min((index + 1) * 2 ** level, chunks);
}

/**
 * The maximal aligned subtrees that exactly cover chunks [from, to) of a C-chunk tree, in chunk
 * order, as (level, index) pairs appended to `out`. At most ~2·log2(to − from) of them; one when
 * the range is a whole subtree (e.g. [0, C), or [k·2^l, (k+1)·2^l)).
 */
export function decomposeRange(from: number, to: number, chunks: number, out: number[] = []): number[] {
  const levels = treeLevels(chunks);
  let at = from;
  while (at < to) {
    let level = 0;
    // Grow while the parent is still aligned at `at`, exists, and ends inside the range.
    while (level < levels && at % 2 ** (level + 1) === 0 && subtreeEnd(level + 1, at / 2 ** (level + 1), chunks) <= to) level++;
    const index = at / 2 ** level;
    out.push(level, index);
    at = subtreeEnd(level, index, chunks);
  }
  return out;
}

/**
 * values[a + k] = values[a + k] + values[b + k] for k < width: one node's addition of its right
 * child into its left, component by component. Through two subarrays: V8 compiles the loop over
 * them ~1.5× faster than over offsets into the whole array (measured: 31 additions of 1,002
 * values, 88 → 58 µs), with the same additions, so the same bits.
 */
export function addInPlace(values: Float64Array, a: number, b: number, width: number): void {
  const left = values.subarray(a, a + width);
  const right = values.subarray(b, b + width);
  for (let k = 0; k < width; k++) left[k] = left[k]! + right[k]!;
}

/**
 * Reduces node (level, index) of a C-chunk tree in place: `values` holds its chunks' parts, chunk c
 * at slot (c − base)·width; afterwards the node's value is at the slot of its first chunk (the
 * other slots hold intermediate nodes). Same operations, same order as the definition above.
 */
export function reduceSubtreeInPlace(values: Float64Array, width: number, base: number, level: number, index: number, chunks: number): void {
  const start = subtreeStart(level, index);
  const end = subtreeEnd(level, index, chunks);
  for (let l = 1; l <= level; l++) {
    const half = 2 ** (l - 1);
    for (let left = start; left + half < end; left += 2 * half) {
      addInPlace(values, (left - base) * width, (left + half - base) * width, width);
    }
  }
}

/**
 * Which chunks of one step's tree are covered by accepted subtrees, and the order in which the
 * tree is finished over the values that sit at the slot of each node's first chunk. Shared by the
 * dense (TreeParts) and sparse (SparseTreeParts, shared/sparse-reduce.ts) holders of a step's
 * values, which differ only in what a value is and how two add. Reused from step to step.
 */
export class TreeCoverage {
  private readonly isCovered: Uint8Array;
  /** Per chunk slot: the level of the node whose value sits there, −1 when none starts there. */
  private readonly slotLevel: Int8Array;
  private chunks = 0;
  private remaining = 0;

  constructor(maxChunks: number) {
    this.isCovered = new Uint8Array(maxChunks);
    this.slotLevel = new Int8Array(maxChunks);
  }

  /**
   * Starts a step of `chunks` chunks, all uncovered; or, with `only` (ascending chunk ids), a
   * partial tree: the chunks outside `only` belong to other holders (a relay holds a share of the
   * step), count as covered and are never summed here, so only finishing a node inside `only` applies.
   */
  reset(chunks: number, only?: readonly number[]): void {
    this.chunks = chunks;
    this.slotLevel.fill(-1, 0, chunks);
    if (only === undefined) {
      this.remaining = chunks;
      this.isCovered.fill(0, 0, chunks);
      return;
    }
    this.remaining = only.length;
    this.isCovered.fill(1, 0, chunks);
    for (const chunk of only) this.isCovered[chunk] = 0;
  }

  /** Chunks in the current step. */
  get size(): number {
    return this.chunks;
  }

  /** Whether chunk `chunk` is covered by an accepted subtree. */
  has(chunk: number): boolean {
    return this.isCovered[chunk] === 1;
  }

  /** Chunks not yet covered. */
  get pending(): number {
    return this.remaining;
  }

  /**
   * Covers node (level, index) when none of its chunks is covered yet and returns the slot its
   * value goes to (its first chunk); otherwise (a backup's copy, or a range cut differently)
   * changes nothing and returns −1: never counted twice. The caller has checked that the node exists.
   */
  claim(level: number, index: number): number {
    const start = subtreeStart(level, index);
    const end = subtreeEnd(level, index, this.chunks);
    for (let c = start; c < end; c++) if (this.isCovered[c] === 1) return -1;
    this.isCovered.fill(1, start, end);
    this.remaining -= end - start;
    this.slotLevel[start] = level;
    return start;
  }

  /**
   * Finishes node (level, index) (every chunk it covers must be covered): level by level, each
   * node not received whole becomes left + right (`add(leftSlot, rightSlot)` leaves the sum at
   * the left slot) or its only child. Nodes received whole are the same bits as if computed here,
   * so the result is too. Slots inside a node received whole hold no value and are skipped.
   * Returns the slot holding the node's value.
   */
  finish(level: number, index: number, add: (left: number, right: number) => void): number {
    const { slotLevel } = this;
    const start = subtreeStart(level, index);
    const end = subtreeEnd(level, index, this.chunks);
    for (let c = start; c < end; c++)
      if (this.isCovered[c] !== 1) throw new Error(`invariant broken: reducing node (${level}, ${index}) with chunk ${c} uncovered`);
    for (let l = 1; l <= level; l++) {
      const half = 2 ** (l - 1);
      for (let left = start; left < end; left += 2 * half) {
        const at = slotLevel[left]!;
        if (at >= l) continue; // received whole at this level or above
        if (at < 0) continue; // inside a node received whole at a higher level: no value here
        slotLevel[left] = l;
        const right = left + half;
        if (right >= end) continue; // one child: the node is that child
        add(left, right);
      }
    }
    return start;
  }

  /** Finishes the whole tree (every chunk must be covered); returns slot 0. */
  finishRoot(add: (left: number, right: number) => void): number {
    if (this.remaining !== 0) throw new Error(`invariant broken: reducing with ${this.remaining} chunk(s) uncovered`);
    return this.finish(treeLevels(this.chunks), 0, add);
  }
}

/**
 * The subtree values of one step, held by (level, index) at the slot of their first chunk, and
 * finished up the tree once every chunk is covered. Reused from step to step: no per-step
 * allocation. Not for data passes (ChunkParts: per-block values merged in block order).
 */
export class TreeParts {
  /** Values per node: D gradient sums, the bias sum, the loss sum. */
  readonly width: number;
  private readonly sums: Float64Array;
  private readonly coverage: TreeCoverage;
  /** sums[left] += sums[right], component by component (made once: no per-step closure). */
  private readonly add: (left: number, right: number) => void;

  constructor(maxChunks: number, width: number) {
    this.width = width;
    this.sums = new Float64Array(maxChunks * width);
    this.coverage = new TreeCoverage(maxChunks);
    this.add = (left, right) => addInPlace(this.sums, left * width, right * width, width);
  }

  /** Starts a step: as TreeCoverage.reset. */
  reset(chunks: number, only?: readonly number[]): void {
    this.coverage.reset(chunks, only);
  }

  /** Whether chunk `chunk` is covered by an accepted subtree. */
  has(chunk: number): boolean {
    return this.coverage.has(chunk);
  }

  /** Chunks not yet covered. */
  get pending(): number {
    return this.coverage.pending;
  }

  /**
   * Keeps `values[offset .. offset+width)` as node (level, index) when none of its chunks is
   * covered yet; otherwise (a backup's copy, or a range cut differently) refuses it and changes
   * nothing. The caller has checked that the node exists. Returns whether it was kept.
   */
  accept(level: number, index: number, values: Float64Array, offset: number): boolean {
    const slot = this.coverage.claim(level, index);
    if (slot < 0) return false;
    this.sums.set(values.subarray(offset, offset + this.width), slot * this.width);
    return true;
  }

  /** Finishes the tree into `out` (`width` values, overwritten). Every chunk must be covered. */
  reduce(out: Float64Array): void {
    const slot = this.coverage.finishRoot(this.add);
    out.set(this.sums.subarray(slot * this.width, (slot + 1) * this.width));
  }

  /**
   * Finishes node (level, index) alone into out[offset .. offset+width): every chunk it covers
   * must be covered. The same order as reduce(), restricted to the node, so its value has the
   * bits the whole tree gives it (a relay sends it up as one subtree).
   */
  reduceNode(level: number, index: number, out: Float64Array, offset: number): void {
    const slot = this.coverage.finish(level, index, this.add);
    out.set(this.sums.subarray(slot * this.width, (slot + 1) * this.width), offset);
  }
}

/** The per-block values of a data pass, held by block id (passes merge them in block order). Reused from pass to pass. */
export class ChunkParts {
  /** Values per block. */
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

  /** Starts a pass of `chunks` blocks, all pending; with `only` (ascending block ids), only those (the others are another holder's). */
  reset(chunks: number, only?: readonly number[]): void {
    this.chunks = chunks;
    if (only === undefined) {
      this.remaining = chunks;
      this.isDone.fill(0, 0, chunks);
      return;
    }
    this.remaining = only.length;
    this.isDone.fill(1, 0, chunks);
    for (const chunk of only) this.isDone[chunk] = 0;
  }

  /** Copies block `chunk`'s part into out[offset .. offset+width). */
  read(chunk: number, out: Float64Array, offset: number): void {
    out.set(this.sums.subarray(chunk * this.width, (chunk + 1) * this.width), offset);
  }

  has(chunk: number): boolean {
    return this.isDone[chunk] === 1;
  }

  get pending(): number {
    return this.remaining;
  }

  /** Keeps `values[offset .. offset+width)` as block `chunk`'s part; a second copy is ignored. Returns whether it was kept. */
  accept(chunk: number, values: Float64Array, offset: number): boolean {
    if (this.isDone[chunk] === 1) return false;
    this.sums.set(values.subarray(offset, offset + this.width), chunk * this.width);
    this.isDone[chunk] = 1;
    this.remaining--;
    return true;
  }

  /** Copies the parts of blocks 0 … chunks−1, in block order, into `out` (chunks × width). */
  copyOut(out: Float64Array): void {
    out.set(this.sums.subarray(0, this.chunks * this.width));
  }

  /** Adds every block's part in block-id order into `out` (overwritten, `width` values). */
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

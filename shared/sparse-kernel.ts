// The sparse gradient kernels of issue #13 (logistic and softmax over CSR rows): the interface, the
// operation order that defines their bits, and the TypeScript implementation of that definition.
// shared/sparse-kernel-wasm.ts computes the same bits in WebAssembly (tested); both carry one id.
//
// Exports: SPARSE_LOGISTIC_KERNEL_ID, SPARSE_SOFTMAX_KERNEL_ID, sparseKernelId(shape), SparseKernel,
// SparseRowStorage, createSparseTsKernel(shape, classWeights?, { isEntryMode? }?), scoresInto(...),
// evaluateSparse(...), PartAssembler, ENTRY_MODE_FROM_D. Most callers want createSparseKernel
// (shared/sparse-kernel-wasm.ts): the wasm kernel where available, else this one.
//
// DEFINITION ('sparse-logistic-f64-1', O = 1; 'sparse-softmax-f64-1', O = K). Parameters w = s·v
// (SparseParams: v O×D row-major, scale s, bias b). For each row i of the range, in range order
// (rows order[from..to), or from..to), with entries k = rowStart[i] … rowStart[i+1]−1 (index j_k,
// value x_k widened exactly from float32), every operation one IEEE-754 float64 operation, no FMA:
//   1. dot_o = 0, then dot_o = dot_o + v[o·D + j_k]·x_k for k ascending;  z_o = s·dot_o + b_o.
//   2. logistic: e = exp(−|z|); a = (z ≥ 0 ? 1 : e)/(1 + e); r = (a − y)·c_y;
//                L = ((log1p(e) + max(z, 0)) − y·z)·c_y   (the dense binary kernel's per-row form)
//      softmax:  m = z_a, a the lowest index of the largest z; e_o = exp(z_o − m); T = Σ_{o≠a} e_o
//                from 0, o ascending; S = 1 + T; L = (log1p(T) + (m − z_y))·c_y;
//                r_o = (e_o/S − [o = y])·c_y   (steps 2-6 of shared/softmax.ts, from z)
//      exp and log1p are the fdlibm ports of shared/fdlibm.ts (the wasm kernels' own functions);
//      c_y is the class weight of the row's label, or 1 without weights (x·1 = x: the unweighted bits).
//   3. bias_o = bias_o + r_o; loss = loss + L   (the open part's sums, from 0, one addition per row).
//   4. g[o, j_k] = g[o, j_k] + r_o·x_k for each entry k; a coordinate first touched starts at 0.
// A part (takePart) holds the coordinates some row touched, ascending, with their O values, the O
// bias sums and the loss sum, then the kernel starts a new part from zeros. Each coordinate receives
// one addition per row in row order, so the bits depend on the rows and their order only, never on
// how they were split into accumulate calls, nor on where g is stored. The touched set depends on
// the data alone (stored entries are never 0), not on the parameters.
//
// Cost: O(nnz·O) per call plus O(t) per part for t touched coordinates (a radix sort), never O(D):
// the scratch (a slot per coordinate, D uint32, and t·O float64 sums; above ENTRY_MODE_FROM_D a
// slot per entry instead) is allocated once per kernel and never cleared in full per part
// (PartAssembler).

import { exp, log1p } from './fdlibm.js';
import type { LabelArray } from './model-kernel.js';
import type { ModelShape } from './model-shape.js';
import type { SparseParams, SparsePart, SparseRows } from './sparse-rows.js';

/** The sparse logistic kernel's id (TypeScript and WebAssembly alike: the same bits). */
export const SPARSE_LOGISTIC_KERNEL_ID = 'sparse-logistic-f64-1';
/** The sparse softmax kernel's id (TypeScript and WebAssembly alike: the same bits). */
export const SPARSE_SOFTMAX_KERNEL_ID = 'sparse-softmax-f64-1';

/** The sparse kernel id of a model shape. */
export function sparseKernelId(shape: ModelShape): string {
  return shape.kind === 'logistic' ? SPARSE_LOGISTIC_KERNEL_ID : SPARSE_SOFTMAX_KERNEL_ID;
}

/** CSR storage for rows (SparseRows without its counts), as a kernel allocates it. */
export interface SparseRowStorage {
  readonly rowStart: Uint32Array;
  readonly indices: Uint32Array;
  readonly values: Float32Array;
  readonly labels: LabelArray;
}

export interface SparseKernel {
  /** Equal ids give equal bits for equal inputs, on any machine and Node.js version. */
  readonly id: string;
  readonly shape: ModelShape;
  /** c_k per class (--class-weight), applied by accumulate (never evaluate); null when unweighted. */
  readonly classWeights: Float64Array | null;
  /**
   * CSR storage for `rows` rows of `nnz` entries where this kernel reads them without a copy
   * (the wasm kernel's memory; plain arrays for the TypeScript kernel). Labels are uint8 for
   * logistic, uint16 for softmax. Rows held elsewhere work too (the wasm kernel copies a call's
   * rows, O(nnz) per call).
   */
  allocateRows(rows: number, nnz: number): SparseRowStorage;
  /**
   * Zero parameters (v O×D, scale 1, bias O) where this kernel reads them. The wasm kernel reads v
   * by address: accumulate and evaluate only accept a v it allocated (copying it would be O(D)).
   */
  allocateParams(): SparseParams;
  /**
   * Adds rows order[from..to) (or from..to when order is null) of `rows` to the open part (steps
   * 1-4 above). Labels must be 0/1 (logistic) or < K (softmax): checked where rows are read, not
   * here. An index ≥ D throws a RangeError and discards the open part (never a write out of bounds).
   */
  accumulate(rows: SparseRows, order: Uint32Array | null, from: number, to: number, params: SparseParams): void;
  /** The open part (fresh arrays the caller owns); the kernel then starts an empty one. */
  takePart(): SparsePart;
  /** Discards the open part. */
  resetPart(): void;
  /**
   * Adds the plain loss (no class weights) and the count of correct predictions (logistic: class 1
   * iff z > 0; softmax: argmax z, the lowest class among ties) to out[offset], out[offset + 1], row
   * by row in order, z as in step 1. Leaves the open part alone.
   */
  evaluate(rows: SparseRows, order: Uint32Array | null, from: number, to: number, params: SparseParams, out: Float64Array, offset: number): void;
}

/**
 * Step 1 for one row: z_o into z[0..O), returns the lowest index of the largest z_o (softmax's a).
 * Shared by the TypeScript kernel and the evaluation of both kernels.
 */
export function scoresInto(rows: SparseRows, row: number, params: SparseParams, D: number, O: number, z: Float64Array): number {
  const { indices, values } = rows;
  const start = rows.rowStart[row]!;
  const end = rows.rowStart[row + 1]!;
  const { v, scale, bias } = params;
  let m = 0;
  let a = 0;
  for (let o = 0; o < O; o++) {
    const base = o * D;
    let dot = 0;
    for (let k = start; k < end; k++) dot += v[base + indices[k]!]! * values[k]!;
    const zo = scale * dot + bias[o]!;
    z[o] = zo;
    if (o === 0 || zo > m) {
      m = zo;
      a = o;
    }
  }
  return a;
}

/** Initial capacity of the touched list (coordinates), doubled on demand up to D. */
const INITIAL_TOUCHED = 1024;
/**
 * Above this D the kernels run in entry mode: a slot per stored entry, merged by a stable radix
 * sort when the part is taken, instead of a slot per coordinate found through slotOf (D uint32).
 * Beyond the caches a slotOf lookup is a second random memory access per entry (after v's); the
 * entries are written in sequence. The bits are the same: both add a coordinate's terms to 0 in
 * entry order (rows in order), one float64 addition each.
 */
export const ENTRY_MODE_FROM_D = 2 ** 20;
/** Most bits per radix-sort digit (2^12 buckets: the histogram stays in L1); D = 2^24 sorts in 2 passes. */
const MAX_DIGIT_BITS = 12;
/** A part scans all D slots instead of sorting when D ≤ this × the touched count (a dense part). */
const SCAN_FACTOR = 32;

/**
 * The slots of a kernel's open part and their turning into a part. slotOf (D uint32) marks the
 * coordinates of the open part: j is touched iff slotOf[j] > base, at slot slotOf[j] − base − 1,
 * and touched[k] is the coordinate at slot k (first-touch order), as both kernels fill them. A part
 * (indices ascending, their O sums, bias, loss) costs O(t) for t touched coordinates: an LSD radix
 * sort of (index, slot) pairs, or one sweep over the D slots when the part is dense. Closing a part
 * moves base past its slots instead of clearing them (no random writes over D), and clears slotOf
 * only when base nears 2^32 − D (every ~2^32/t parts: amortised O(D·t/2^32) per part).
 * Sort scratch grows with the largest part and is kept.
 */
export class PartAssembler {
  private readonly D: number;
  private readonly O: number;
  private readonly bits: number;
  private readonly digitBits: number;
  private readonly histogram: Uint32Array;
  private keys = new Uint32Array(0);
  private slots = new Uint32Array(0);
  private keysOut = new Uint32Array(0);
  private slotsOut = new Uint32Array(0);
  /** Slot values ≤ base belong to closed parts. */
  base = 0;

  constructor(D: number, O: number) {
    this.D = D;
    this.O = O;
    this.bits = Math.max(1, Math.ceil(Math.log2(D)));
    this.digitBits = Math.ceil(this.bits / Math.ceil(this.bits / MAX_DIGIT_BITS));
    this.histogram = new Uint32Array(2 ** this.digitBits);
  }

  /** The part of `count` touched coordinates (fresh arrays); closes it (its sums back to 0, base past its slots). */
  take(slotOf: Uint32Array, touched: Uint32Array, sums: Float64Array, count: number, bias: Float64Array, loss: number): SparsePart {
    const part = this.assemble(slotOf, touched, sums, count, bias, loss);
    this.discard(slotOf, sums, count);
    return part;
  }

  /** Whether a part of `count` coordinates is found by sweeping slotOf (else by sorting the touched list). */
  isDense(count: number): boolean {
    return this.D <= SCAN_FACTOR * count;
  }

  /**
   * The part of `count` touched coordinates (fresh arrays), changing nothing: slotOf is read only
   * when isDense(count), touched only when not (the caller may pass copies; see discard).
   */
  assemble(slotOf: Uint32Array, touched: Uint32Array, sums: Float64Array, count: number, bias: Float64Array, loss: number): SparsePart {
    const O = this.O;
    const indices = new Uint32Array(count);
    const values = new Float64Array(count * O);
    if (this.isDense(count)) this.sweep(slotOf, sums, indices, values);
    else this.gather(touched, sums, count, indices, values);
    return { indices, values, bias: Float64Array.from(bias.subarray(0, O)), loss };
  }

  /**
   * The part of `n` entries (entry mode: touched[e] the coordinate of entry e, sums[e·O + o] its
   * terms 0 + r_o·x, entries in row order), changing nothing: a stable radix sort by coordinate,
   * then each coordinate's terms added to 0 in entry order (the bits of the slot path).
   */
  assembleEntries(touched: Uint32Array, sums: Float64Array, n: number, bias: Float64Array, loss: number): SparsePart {
    const O = this.O;
    const [keys, entries] = this.sortPairs(touched, n);
    let distinct = 0;
    for (let k = 0; k < n; k++) if (k === 0 || keys[k] !== keys[k - 1]) distinct++;
    const indices = new Uint32Array(distinct);
    const values = new Float64Array(distinct * O);
    if (n > 0) indices[0] = keys[0]!;
    for (let k = 0, at = 0; k < n; k++) {
      const key = keys[k]!;
      if (key !== indices[at]) indices[++at] = key;
      if (O === 1) values[at]! += sums[entries[k]!]!;
      else for (let o = 0, from = entries[k]! * O; o < O; o++) values[at * O + o]! += sums[from + o]!;
    }
    return { indices, values, bias: Float64Array.from(bias.subarray(0, O)), loss };
  }

  /** A dense part: the slots of the open part, found by one sweep over the D coordinates. */
  private sweep(slotOf: Uint32Array, sums: Float64Array, indices: Uint32Array, values: Float64Array): void {
    const { D, O, base } = this;
    for (let j = 0, k = 0; j < D; j++) {
      const slot = slotOf[j]! - base;
      if (slot <= 0) continue;
      indices[k] = j;
      for (let o = 0, from = (slot - 1) * O; o < O; o++) values[k * O + o] = sums[from + o]!;
      k++;
    }
  }

  /** A sparse part: the touched list sorted with its slots. */
  private gather(touched: Uint32Array, sums: Float64Array, count: number, indices: Uint32Array, values: Float64Array): void {
    const O = this.O;
    const [keys, slots] = this.sortPairs(touched, count);
    for (let k = 0; k < count; k++) {
      indices[k] = keys[k]!;
      for (let o = 0, from = slots[k]! * O; o < O; o++) values[k * O + o] = sums[from + o]!;
    }
  }

  /** Closes the open part of `count` slots without reading it. */
  discard(slotOf: Uint32Array, sums: Float64Array, count: number): void {
    sums.fill(0, 0, count * this.O);
    this.base += count;
    // Slot values of the next part reach base + D at most: they must fit in a uint32.
    if (this.base > 2 ** 32 - 1 - this.D) this.clear(slotOf, sums);
  }

  /** Clears every slot and sum (O(D)): after an error left the open part's extent unknown, or when base wraps. */
  clear(slotOf: Uint32Array, sums: Float64Array): void {
    slotOf.fill(0);
    sums.fill(0);
    this.base = 0;
  }

  /** (touched[k], k) for k < count, sorted by the first (keys < 2^bits), stably (equal keys keep k ascending): LSD radix, digitBits at a time. */
  private sortPairs(touched: Uint32Array, count: number): [Uint32Array, Uint32Array] {
    if (this.keys.length < count) {
      const capacity = Math.max(count, 2 * this.keys.length);
      this.keys = new Uint32Array(capacity);
      this.slots = new Uint32Array(capacity);
      this.keysOut = new Uint32Array(capacity);
      this.slotsOut = new Uint32Array(capacity);
    }
    let [keys, slots, keysOut, slotsOut] = [this.keys, this.slots, this.keysOut, this.slotsOut];
    keys.set(touched.subarray(0, count));
    for (let k = 0; k < count; k++) slots[k] = k;
    const histogram = this.histogram;
    const mask = 2 ** this.digitBits - 1;
    for (let shift = 0; shift < this.bits; shift += this.digitBits) {
      histogram.fill(0);
      for (let k = 0; k < count; k++) histogram[(keys[k]! >>> shift) & mask]!++;
      for (let d = 0, total = 0; d <= mask; d++) {
        const n = histogram[d]!;
        histogram[d] = total;
        total += n;
      }
      for (let k = 0; k < count; k++) {
        const key = keys[k]!;
        const at = histogram[(key >>> shift) & mask]!++;
        keysOut[at] = key;
        slotsOut[at] = slots[k]!;
      }
      [keys, keysOut] = [keysOut, keys];
      [slots, slotsOut] = [slotsOut, slots];
    }
    return [keys, slots];
  }
}

class TsSparseKernel implements SparseKernel {
  readonly id: string;
  readonly shape: ModelShape;
  readonly classWeights: Float64Array | null;
  private readonly D: number;
  private readonly O: number;
  /** Per coordinate: its slot + 1 + base when touched in the open part (PartAssembler). */
  private readonly slotOf: Uint32Array;
  /** Touched coordinates in first-touch order; sums[slot·O + o] their values. */
  private touched: Uint32Array;
  private sums: Float64Array;
  private count = 0;
  private readonly biasSums: Float64Array;
  private lossSum = 0;
  /** Per-row scratch: z_o, then r_o. */
  private readonly z: Float64Array;
  private readonly r: Float64Array;
  private readonly assembler: PartAssembler;
  /** Entry mode (ENTRY_MODE_FROM_D): a slot per stored entry, no slotOf. */
  private readonly isEntryMode: boolean;

  constructor(shape: ModelShape, classWeights: Float64Array | null, isEntryMode: boolean) {
    this.id = sparseKernelId(shape);
    this.shape = shape;
    this.classWeights = classWeights === null ? null : Float64Array.from(classWeights);
    this.D = shape.features;
    this.O = shape.outputs;
    this.isEntryMode = isEntryMode;
    this.slotOf = new Uint32Array(isEntryMode ? 0 : this.D);
    const capacity = Math.min(this.D, INITIAL_TOUCHED);
    this.touched = new Uint32Array(capacity);
    this.sums = new Float64Array(capacity * this.O);
    this.biasSums = new Float64Array(this.O);
    this.z = new Float64Array(this.O);
    this.r = new Float64Array(this.O);
    this.assembler = new PartAssembler(this.D, this.O);
  }

  allocateRows(rows: number, nnz: number): SparseRowStorage {
    const labels = this.shape.kind === 'logistic' ? new Uint8Array(rows) : new Uint16Array(rows);
    return { rowStart: new Uint32Array(rows + 1), indices: new Uint32Array(nnz), values: new Float32Array(nnz), labels };
  }

  allocateParams(): SparseParams {
    return { v: new Float64Array(this.O * this.D), scale: 1, bias: new Float64Array(this.O) };
  }

  accumulate(rows: SparseRows, order: Uint32Array | null, from: number, to: number, params: SparseParams): void {
    const { D, O, z, r, biasSums, slotOf } = this;
    const { base } = this.assembler;
    const { indices, values, labels, rowStart } = rows;
    const weights = this.classWeights;
    const isLogistic = O === 1 && this.shape.kind === 'logistic';
    for (let i = from; i < to; i++) {
      const row = order === null ? i : order[i]!;
      const label = labels[row]!;
      const c = weights === null ? 1 : weights[label]!;
      const a = scoresInto(rows, row, params, D, O, z);
      let L: number;
      if (isLogistic) {
        const zz = z[0]!;
        const e = exp(-Math.abs(zz));
        r[0] = ((zz >= 0 ? 1 : e) / (1 + e) - label) * c;
        L = (log1p(e) + Math.max(zz, 0) - label * zz) * c;
      } else {
        const m = z[a]!;
        let T = 0;
        for (let o = 0; o < O; o++) {
          const e = exp(z[o]! - m);
          r[o] = e;
          if (o !== a) T += e;
        }
        const S = 1 + T;
        L = (log1p(T) + (m - z[label]!)) * c;
        for (let o = 0; o < O; o++) {
          const p = r[o]! / S;
          r[o] = (o === label ? p - 1 : p) * c;
        }
      }
      for (let o = 0; o < O; o++) biasSums[o]! += r[o]!;
      this.lossSum += L;
      const end = rowStart[row + 1]!;
      for (let k = rowStart[row]!; k < end; k++) {
        const j = indices[k]!;
        if (j >= D) {
          this.resetPart();
          throw new RangeError(`sparse kernel: row ${row} has feature index ${j}, not below D = ${D}`);
        }
        let slot = this.isEntryMode ? 0 : slotOf[j]! - base;
        if (slot <= 0) {
          if (this.count === this.touched.length) this.grow();
          this.touched[this.count] = j;
          slot = ++this.count;
          if (!this.isEntryMode) slotOf[j] = base + slot;
        }
        const x = values[k]!;
        const at = (slot - 1) * O;
        for (let o = 0; o < O; o++) this.sums[at + o]! += r[o]! * x;
      }
    }
  }

  takePart(): SparsePart {
    const { assembler, count } = this;
    const part = this.isEntryMode
      ? assembler.assembleEntries(this.touched, this.sums, count, this.biasSums, this.lossSum)
      : assembler.assemble(this.slotOf, this.touched, this.sums, count, this.biasSums, this.lossSum);
    assembler.discard(this.slotOf, this.sums, count);
    this.count = 0;
    this.biasSums.fill(0);
    this.lossSum = 0;
    return part;
  }

  resetPart(): void {
    this.assembler.discard(this.slotOf, this.sums, this.count);
    this.count = 0;
    this.biasSums.fill(0);
    this.lossSum = 0;
  }

  evaluate(rows: SparseRows, order: Uint32Array | null, from: number, to: number, params: SparseParams, out: Float64Array, offset: number): void {
    evaluateSparse(this.shape, rows, order, from, to, params, out, offset, this.z);
  }

  /** Doubles the touched list and its sums (at most D coordinates); amortised, never per row. */
  private grow(): void {
    const capacity = this.isEntryMode ? 2 * this.touched.length : Math.min(this.D, 2 * this.touched.length);
    const touched = new Uint32Array(capacity);
    touched.set(this.touched);
    const sums = new Float64Array(capacity * this.O);
    sums.set(this.sums);
    this.touched = touched;
    this.sums = sums;
  }
}

/**
 * The evaluation pass over sparse rows (SparseKernel.evaluate), with z as the kernels compute it:
 * logistic L = log1p(e^(−|z|)) + max(z, 0) − y·z, softmax L = log1p(T) + (m − z_y) as in step 2.
 * `z` is caller-owned scratch of at least O float64.
 */
export function evaluateSparse(
  shape: ModelShape,
  rows: SparseRows,
  order: Uint32Array | null,
  from: number,
  to: number,
  params: SparseParams,
  out: Float64Array,
  offset: number,
  z: Float64Array,
): void {
  const D = shape.features;
  const O = shape.outputs;
  for (let i = from; i < to; i++) {
    const row = order === null ? i : order[i]!;
    const label = rows.labels[row]!;
    const a = scoresInto(rows, row, params, D, O, z);
    if (shape.kind === 'logistic') {
      const zz = z[0]!;
      out[offset]! += log1p(exp(-Math.abs(zz))) + Math.max(zz, 0) - label * zz;
      if ((zz > 0 ? 1 : 0) === label) out[offset + 1]! += 1;
    } else {
      const m = z[a]!;
      let T = 0;
      for (let o = 0; o < O; o++) if (o !== a) T += exp(z[o]! - m);
      out[offset]! += log1p(T) + (m - z[label]!);
      if (a === label) out[offset + 1]! += 1;
    }
  }
}

/**
 * The TypeScript sparse kernel of `shape` (the reference definition of the bits). `classWeights`
 * (shape.classes values, copied) weighs each row's gradient and loss; null for none.
 */
export function createSparseTsKernel(
  shape: ModelShape,
  classWeights: Float64Array | null = null,
  options: { readonly isEntryMode?: boolean } = {},
): SparseKernel {
  if (classWeights !== null && classWeights.length !== shape.classes) {
    throw new Error(`invariant broken: ${classWeights.length} class weights for ${shape.classes} classes`);
  }
  return new TsSparseKernel(shape, classWeights, options.isEntryMode ?? shape.features > ENTRY_MODE_FROM_D);
}

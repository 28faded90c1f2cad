// The reduction of sparse gradient parts (issue #13) along the tree 'tree2-v1' of shared/reduce.ts,
// and the wire form of a list of parts. Not the kernel (sparse-kernel.ts) nor the protocol.
//
// Exports: addSparseParts(left, right, O), reduceSparseSubtree(parts, base, level, index, chunks, O),
// reduceSparseRange(parts, from, to, chunks, O), SparseTreeParts, SparseSubtree,
// sparsePartsToWire(parts, O), sparsePartsFromWire(wire, O, D, kind, field), SparsePartsWire.
//
// The same tree as the dense parts, with the same operations: a node with one existing child is
// that child; a node with two is left + right component by component in float64, in that order,
// where a coordinate present in only one child keeps that child's value unchanged. That is the
// dense sum bit for bit: the dense child holds +0 where the sparse one holds nothing, v + 0 = v
// for every v but −0, and a kernel's sums never are −0 (they start at +0, and x + y is −0 only
// when both are). So a sparse batch sum is the dense batch sum of the same chunks, whoever
// computed which subtree (DESIGN.md invariant 6), and only the touched coordinates travel.

import { ProtocolError } from './errors.js';
import { decomposeRange, subtreeStart, TreeCoverage } from './reduce.js';
import type { SparsePart } from './sparse-rows.js';

/**
 * left + right: indices merged ascending; values[o] = left + right (in that order) where both
 * hold the coordinate, else the one holder's value; bias component by component; loss left + right.
 * O values per index. Fresh arrays; the inputs are not changed.
 */
export function addSparseParts(left: SparsePart, right: SparsePart, O: number): SparsePart {
  const li = left.indices;
  const ri = right.indices;
  const lv = left.values;
  const rv = right.values;
  // Size of the union first, so the output is allocated once at its final size.
  let union = 0;
  for (let a = 0, b = 0; a < li.length || b < ri.length; union++) {
    if (b === ri.length || (a < li.length && li[a]! < ri[b]!)) a++;
    else if (a === li.length || ri[b]! < li[a]!) b++;
    else {
      a++;
      b++;
    }
  }
  const indices = new Uint32Array(union);
  const values = new Float64Array(union * O);
  let a = 0;
  let b = 0;
  for (let k = 0; k < union; k++) {
    const at = k * O;
    if (b === ri.length || (a < li.length && li[a]! < ri[b]!)) {
      indices[k] = li[a]!;
      for (let o = 0; o < O; o++) values[at + o] = lv[a * O + o]!;
      a++;
    } else if (a === li.length || ri[b]! < li[a]!) {
      indices[k] = ri[b]!;
      for (let o = 0; o < O; o++) values[at + o] = rv[b * O + o]!;
      b++;
    } else {
      indices[k] = li[a]!;
      for (let o = 0; o < O; o++) values[at + o] = lv[a * O + o]! + rv[b * O + o]!;
      a++;
      b++;
    }
  }
  const bias = new Float64Array(O);
  for (let o = 0; o < O; o++) bias[o] = left.bias[o]! + right.bias[o]!;
  return { indices, values, bias, loss: left.loss + right.loss };
}

/**
 * The value of node (level, index) of a C-chunk tree, from the parts of its chunks: chunk c's part
 * at parts[c − base]. The same nodes and additions as reduceSubtreeInPlace (shared/reduce.ts).
 */
export function reduceSparseSubtree(parts: readonly SparsePart[], base: number, level: number, index: number, chunks: number, O: number): SparsePart {
  if (level === 0) {
    const part = parts[index - base];
    if (part === undefined) throw new Error(`invariant broken: no part for chunk ${index}`);
    return part;
  }
  const left = reduceSparseSubtree(parts, base, level - 1, 2 * index, chunks, O);
  if (subtreeStart(level - 1, 2 * index + 1) >= chunks) return left; // one child: the node is that child
  return addSparseParts(left, reduceSparseSubtree(parts, base, level - 1, 2 * index + 1, chunks, O), O);
}

/** One value a worker sends: node (level, index) of the tree and its part. */
export interface SparseSubtree {
  readonly level: number;
  readonly index: number;
  readonly part: SparsePart;
}

/**
 * The subtree values for a holder of chunks [from, to) of a C-chunk tree (parts[c − from] is chunk
 * c's part): one per maximal aligned subtree of decomposeRange, in chunk order.
 */
export function reduceSparseRange(parts: readonly SparsePart[], from: number, to: number, chunks: number, O: number): SparseSubtree[] {
  const nodes = decomposeRange(from, to, chunks);
  const out: SparseSubtree[] = [];
  for (let n = 0; n < nodes.length; n += 2) {
    const level = nodes[n]!;
    const index = nodes[n + 1]!;
    out.push({ level, index, part: reduceSparseSubtree(parts, from, level, index, chunks, O) });
  }
  return out;
}

/**
 * The sparse subtree values of one step by (level, index), finished up the tree once every chunk
 * is covered: TreeParts (shared/reduce.ts) for SparseParts, with the same methods and order.
 * Reused from step to step (it holds references to the accepted parts, never copies them).
 */
export class SparseTreeParts {
  /** O: values per coordinate. */
  readonly outputs: number;
  /** Per chunk slot: the value of the node that starts there, as far as reduced. */
  private readonly parts: (SparsePart | null)[];
  private readonly coverage: TreeCoverage;
  private readonly add: (left: number, right: number) => void;

  constructor(maxChunks: number, outputs: number) {
    this.outputs = outputs;
    this.parts = new Array<SparsePart | null>(maxChunks).fill(null);
    this.coverage = new TreeCoverage(maxChunks);
    this.add = (left, right) => {
      this.parts[left] = addSparseParts(this.at(left), this.at(right), this.outputs);
    };
  }

  /** Starts a step: as TreeCoverage.reset. */
  reset(chunks: number, only?: readonly number[]): void {
    this.coverage.reset(chunks, only);
    this.parts.fill(null);
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
   * Keeps `part` as node (level, index) when none of its chunks is covered yet; otherwise refuses
   * it and changes nothing (never counted twice). The caller has checked that the node exists.
   */
  accept(level: number, index: number, part: SparsePart): boolean {
    const slot = this.coverage.claim(level, index);
    if (slot < 0) return false;
    this.parts[slot] = part;
    return true;
  }

  /** The root: every chunk must be covered. In TreeParts.reduce's order. */
  reduce(): SparsePart {
    return this.at(this.coverage.finishRoot(this.add));
  }

  /** Node (level, index) alone (every chunk it covers must be covered), as TreeParts.reduceNode: a relay sends it up as one subtree. */
  reduceNode(level: number, index: number): SparsePart {
    return this.at(this.coverage.finish(level, index, this.add));
  }

  private at(slot: number): SparsePart {
    const part = this.parts[slot];
    if (part === null || part === undefined) throw new Error(`invariant broken: no value at chunk ${slot} (a chunk of another holder)`);
    return part;
  }
}

/**
 * A list of P parts as flat typed arrays (what a message carries): counts[p] coordinates of part p;
 * their indices concatenated (Σ counts), their values concatenated (Σ counts · O); sums holds per
 * part its O bias sums then its loss (P · (O + 1)).
 */
export interface SparsePartsWire {
  readonly counts: Uint32Array;
  readonly indices: Uint32Array;
  readonly values: Float64Array;
  readonly sums: Float64Array;
}

/** The wire form of `parts` (fresh arrays). */
export function sparsePartsToWire(parts: readonly SparsePart[], O: number): SparsePartsWire {
  let total = 0;
  for (const part of parts) total += part.indices.length;
  const counts = new Uint32Array(parts.length);
  const indices = new Uint32Array(total);
  const values = new Float64Array(total * O);
  const sums = new Float64Array(parts.length * (O + 1));
  let at = 0;
  parts.forEach((part, p) => {
    counts[p] = part.indices.length;
    indices.set(part.indices, at);
    values.set(part.values, at * O);
    sums.set(part.bias, p * (O + 1));
    sums[p * (O + 1) + O] = part.loss;
    at += part.indices.length;
  });
  return { counts, indices, values, sums };
}

/**
 * The parts of a wire form, checked: every length agrees, each part's indices strictly increase
 * and are < D, every value is finite. The parts are views into the wire's arrays (no copy).
 * Throws a ProtocolError naming message `kind` and `field` (e.g. 'parts.indices') otherwise; a
 * non-finite value is flagged isNonFinite (an honest worker's bad data, not a hostile message).
 */
export function sparsePartsFromWire(wire: SparsePartsWire, O: number, D: number, kind: string, field: string): SparsePart[] {
  const { counts, indices, values, sums } = wire;
  const P = counts.length;
  if (sums.length !== P * (O + 1))
    throw new ProtocolError(kind, `${field}.sums`, `expected ${P * (O + 1)} values for ${P} part(s) of ${O} output(s), got ${sums.length}`);
  let total = 0;
  for (let p = 0; p < P; p++) total += counts[p]!;
  if (indices.length !== total) throw new ProtocolError(kind, `${field}.indices`, `expected ${total} indices (the sum of counts), got ${indices.length}`);
  if (values.length !== total * O)
    throw new ProtocolError(kind, `${field}.values`, `expected ${total * O} values (${total} indices × ${O}), got ${values.length}`);
  for (let i = 0; i < sums.length; i++)
    if (!Number.isFinite(sums[i]!)) throw new ProtocolError(kind, `${field}.sums`, `value ${i} is not finite (${sums[i]})`, true);
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i]!)) throw new ProtocolError(kind, `${field}.values`, `value ${i} is not finite (${values[i]})`, true);
  const parts: SparsePart[] = [];
  let at = 0;
  for (let p = 0; p < P; p++) {
    const end = at + counts[p]!;
    for (let k = at; k < end; k++) {
      const j = indices[k]!;
      if (j >= D) throw new ProtocolError(kind, `${field}.indices`, `index ${k} (part ${p}) is ${j}, not below D = ${D}`);
      if (k > at && j <= indices[k - 1]!)
        throw new ProtocolError(kind, `${field}.indices`, `index ${k} (part ${p}) is ${j}, not above the previous ${indices[k - 1]}`);
    }
    parts.push({
      indices: indices.subarray(at, end),
      values: values.subarray(at * O, end * O),
      bias: sums.subarray(p * (O + 1), p * (O + 1) + O),
      loss: sums[p * (O + 1) + O]!,
    });
    at = end;
  }
  return parts;
}

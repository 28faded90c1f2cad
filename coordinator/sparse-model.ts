// The parameters of a sparse run (issue #13) as the coordinator owns them: w = scale·v, bias, a
// version (the steps committed), the optimizer's per-coordinate state, and the update of one step
// in O(touched coordinates), plus what changed in that step (the delta the workers' replicas get).
// Not the trainer loop, not the messages (sparse-broadcast.ts).
//
// Exports: SparseModel, SPARSE_OPTIMIZERS, checkSparseOptimizer, MIN_SCALE, MAX_SCALE.
//
// THE UPDATE of step t, with n the batch's rows, η the step's rate, λ = λ2 = --l2, λ1 = --l1, T the
// coordinates the batch touched (the reduced part's indices), G the part's sums (every operation
// one float64 op, in the order written):
//   g_j = G_j / n for j in T;  g_b = G_b / n                       (the exact batch mean)
//   sgd:      s' = s·(1 − η·λ)   (s' = s when λ = 0; bias never decayed)
//             v_j ← v_j − (η·g_j) / s'   for j in T;   b ← b − η·g_b
//             so w_j = s'·v_j = (1 − η·λ)·w_j − η·g_j up to rounding for every j, the dense rule
//             w ← w − η·(g + λ·w); with λ = 0, s = 1 and the bits are the dense sgd's exactly.
//             With λ1 > 0 (--l1), the dense proximal step w ← sgn(u)·max(0, |u| − η·λ1), u the
//             step above, for EVERY weight, exactly but lazily. soft(x, c) = a > 0 ? sgn(x)·a : 0
//             with a = |x| − c. In v's units an untouched weight's prox is soft(v, η·λ1/s'), and
//             soft(soft(v, a), b) = soft(v, a + b), so a coordinate may pay its penalties late, at
//             once: P (penalty) sums c_t = (η_t·λ1)/s'_t over the steps, P_j (penaltyAt) is P at
//             j's last payment, and j's current value is soft(v_j, P − P_j). Step t:
//               c = (η·λ1) / s'
//               for j in T: x = soft(v_j, P − P_j) (j's debt, 0 when paid as below);
//                           v_j ← soft(x − (η·g_j)/s', c)
//               P ← P + c;  P_j ← P for j in T
//               for j in U (the next step's batch coordinates, batch-coordinates.ts):
//                           v_j ← soft(v_j, P − P_j); P_j ← P        (skipped when P − P_j = 0)
//             so the workers, which read the coordinates of their rows only, compute the next
//             gradient at the dense formula's weights; the delta carries T ∪ U. A full vector
//             (a late joiner, an evaluation pass: exposeAll moves the version on without a step)
//             and the model file carry every soft(v_j, P − P_j) without changing the state, so
//             evaluations change no bit. At a renormalisation every coordinate pays first, then
//             P = P_j = 0. Equal to the dense formula to rounding (1e-12 in the unit test).
//             When s' leaves [MIN_SCALE, MAX_SCALE]: v ← s'·v for every coordinate, s' ← 1 (O(D),
//             deterministic, and the step's params go out in full).
//   adagrad:  (λ must be 0) sum_j ← sum_j + g_j·g_j;  v_j ← v_j + (−η·g_j) / (√sum_j + ε) for j in
//             T and the bias: an untouched coordinate has g = 0, for which the dense rule changes
//             nothing, so this is the dense adagrad's bits exactly (coordinator/optimizers.ts).
//   ftrl:     FTRL-Proximal (McMahan et al. 2013, Algorithm 1), one update per step with the batch
//             mean as the gradient; α = η (the rate schedule must be constant), β = --ftrl-beta,
//             s stays 1 (v is w). Per coordinate j in T, w = v_j (the weight its z_j, n_j define):
//               q = n_j + g_j·g_j;  r = √q;  σ = (r − √n_j) / α
//               z_j ← (z_j + g_j) − σ·w;  n_j ← q
//               v_j ← |z_j| ≤ λ1 ? 0 : −(z_j − sgn(z_j)·λ1) / ((β + r) / α + λ2)
//             The bias is a coordinate of its own z_b, n_b without L1 or L2 (λ1 = λ2 = 0 there):
//             b ← −z_b / ((β + r) / α). An untouched coordinate has g = 0, hence σ = 0 and z, n, w
//             unchanged: FTRL's own lazy definition, so updating T alone is exact, not approximate.
// Other optimizers move every coordinate every step (momentum, adam) and are refused.

import { CheckpointError, ConfigError, DivergedError } from '../shared/errors.js';
import type { ModelShape } from '../shared/model-shape.js';
import type { SparsePart } from '../shared/sparse-rows.js';
import type { LrScheduleSpec } from './lr-schedule.js';
import { NON_NEGATIVE_BUFFERS, type OptimizerName, type OptimizerSpec, type OptimizerState } from './optimizers.js';

/** Optimizers whose step costs O(touched coordinates). */
export const SPARSE_OPTIMIZERS: readonly OptimizerName[] = ['sgd', 'adagrad', 'ftrl'];
/** The scale is renormalised into v when it leaves this range (far from float64's limits either way). */
export const MIN_SCALE = 1e-100;
export const MAX_SCALE = 1e100;

/** Throws a ConfigError naming the flag when the optimizer cannot run on sparse data. */
export function checkSparseOptimizer(spec: OptimizerSpec, lr: number, schedule: LrScheduleSpec): void {
  if (!SPARSE_OPTIMIZERS.includes(spec.name)) {
    throw new ConfigError(
      `--optimizer ${spec.name} updates every coordinate every step, which sparse data cannot afford; use --optimizer ${SPARSE_OPTIMIZERS.join(', ')} (with --l2 for sgd and ftrl only)`,
    );
  }
  if (spec.name === 'adagrad' && spec.weightDecay !== 0) {
    throw new ConfigError('--l2 with --optimizer adagrad moves every coordinate every step on sparse data; use --optimizer sgd or ftrl for L2');
  }
  if (spec.name === 'ftrl') {
    // α sits inside z's history (σ) and every weight's denominator: a varying α has no single FTRL.
    const flag =
      schedule.schedule !== 'constant'
        ? `--lr-schedule ${schedule.schedule}`
        : schedule.warmupSteps > 0
          ? '--warmup-steps'
          : schedule.decayEpochs > 0
            ? '--lr-decay-epochs'
            : null;
    if (flag !== null) throw new ConfigError(`${flag}: --optimizer ftrl takes a constant α (--lr); drop the schedule`);
    return;
  }
  // s' = s·(1 − η·λ) must stay positive; η never exceeds --lr under any schedule.
  if (!(lr * spec.weightDecay < 1))
    throw new ConfigError(`--lr × --l2 must be below 1 on sparse data (the weights' scale 1 − η·λ), got ${lr * spec.weightDecay}`);
}

export class SparseModel {
  /** v, O×D row-major (model-shape.ts's weight layout). */
  readonly v: Float64Array;
  readonly bias: Float64Array;
  scale = 1;
  /** Steps committed: the version of the parameters. */
  version: number;
  private readonly spec: OptimizerSpec;
  private readonly D: number;
  private readonly O: number;
  /** adagrad's sums, or ftrl's z, parameterCount values in θ's layout (v's then the biases'); empty for sgd. */
  private readonly sums: Float64Array;
  /** ftrl's n (sums of squared gradients), in θ's layout; empty otherwise. */
  private readonly squares: Float64Array;
  /** sgd with --l1: P, the L1 penalty per unit of v summed over the steps since the last renormalisation (Σ η·λ1/s'). */
  private penalty = 0;
  /** sgd with --l1: P at coordinate j's last catch-up (D values; the O outputs of j share it); empty otherwise. */
  private readonly penaltyAt: Float64Array;
  private steps: number;
  /** The coordinates the last update changed (ascending), or null when it changed v everywhere (a renormalisation). */
  private changed: Uint32Array | null = null;
  /** Scratch for the new values of a step (touched · O), grown as needed. */
  private scratch = new Float64Array(0);

  /**
   * From θ in the shape's layout (w then b) with scale 1, or v, scale and version from a checkpoint
   * with the optimizer's state. Throws CheckpointError when that state does not fit the model.
   */
  constructor(shape: ModelShape, spec: OptimizerSpec, theta: Float64Array, scale: number, version: number, optimizer: OptimizerState | null) {
    this.D = shape.features;
    this.O = shape.outputs;
    this.spec = spec;
    this.v = Float64Array.from(theta.subarray(0, shape.biasIndex));
    this.bias = Float64Array.from(theta.subarray(shape.biasIndex));
    this.scale = scale;
    this.version = version;
    const names = spec.name === 'adagrad' ? ['sum'] : spec.name === 'ftrl' ? ['z', 'n'] : [];
    this.sums = new Float64Array(names.length >= 1 ? shape.parameterCount : 0);
    this.squares = new Float64Array(names.length >= 2 ? shape.parameterCount : 0);
    this.steps = optimizer?.step ?? 0;
    this.penaltyAt = new Float64Array(this.hasLazyL1 ? this.D : 0);
    if (optimizer === null) {
      // FTRL's weights are a function of z and n, which start at 0: so must θ (the trainer starts from zeros).
      if (spec.name === 'ftrl' && theta.some((value) => value !== 0)) throw new Error('invariant broken: ftrl starts from non-zero parameters');
      return;
    }
    if (optimizer.optimizer !== spec.name) {
      throw new CheckpointError(`optimizer state: the checkpoint holds ${JSON.stringify(optimizer.optimizer)} state, the run uses ${spec.name}`);
    }
    names.forEach((name, index) => {
      const buffer = optimizer.buffers[name];
      if (buffer === undefined || buffer.length !== shape.parameterCount) {
        throw new CheckpointError(`optimizer state: ${spec.name} needs a buffer ${name} of ${shape.parameterCount} values, got ${buffer?.length ?? 'none'}`);
      }
      for (let i = 0; i < buffer.length; i++) {
        const value = buffer[i]!;
        if (!Number.isFinite(value) || (NON_NEGATIVE_BUFFERS.has(name) && value < 0)) {
          throw new CheckpointError(
            `optimizer state: buffer ${name}[${i}] is ${value}, expected a finite${NON_NEGATIVE_BUFFERS.has(name) ? ' non-negative' : ''} number`,
          );
        }
      }
      (index === 0 ? this.sums : this.squares).set(buffer);
    });
    if (this.hasLazyL1) this.restorePenalties(optimizer);
  }

  /** Whether this is sgd with --l1, whose untouched coordinates owe a penalty until their next catch-up. */
  get hasLazyL1(): boolean {
    return this.spec.name === 'sgd' && this.spec.l1 !== 0;
  }

  private restorePenalties(optimizer: OptimizerState): void {
    const total = optimizer.buffers.penalty;
    const at = optimizer.buffers.penaltyAt;
    if (total === undefined || total.length !== 1 || at === undefined || at.length !== this.D) {
      throw new CheckpointError(`optimizer state: sgd with --l1 needs buffers penalty (1 value) and penaltyAt (${this.D} values)`);
    }
    const P = total[0]!;
    if (!(P >= 0 && Number.isFinite(P))) throw new CheckpointError(`optimizer state: penalty is ${P}, expected a finite non-negative number`);
    for (let j = 0; j < at.length; j++) {
      if (!(at[j]! >= 0 && at[j]! <= P)) throw new CheckpointError(`optimizer state: penaltyAt[${j}] is ${at[j]}, expected a number in [0, ${P}]`);
    }
    this.penalty = P;
    this.penaltyAt.set(at);
  }

  /** The coordinates the last update changed, ascending, or null when every one may have (send the parameters in full). */
  get lastChanged(): Uint32Array | null {
    return this.changed;
  }

  /**
   * One step (the rule above) from the batch's reduced part over n rows at rate lr. Computed in
   * full, checked finite, then written: a DivergedError leaves the parameters as they were. With
   * sgd and --l1, `upcoming` (sorted, distinct) are the coordinates the next step's batch touches:
   * they are brought up to date after this step, so that the workers compute at the dense
   * formula's weights (null at the last step; ignored by the other rules).
   */
  update(part: SparsePart, n: number, lr: number, upcoming: Uint32Array | null = null): void {
    const { O, D, v, bias } = this;
    const T = part.indices.length;
    if (this.scratch.length < T * O + O) this.scratch = new Float64Array(Math.max(T * O + O, 2 * this.scratch.length));
    const next = this.scratch;
    let scale = this.scale;
    let c = 0;
    if (this.spec.name === 'sgd') {
      if (this.spec.weightDecay !== 0) scale = scale * (1 - lr * this.spec.weightDecay);
      c = (lr * this.spec.l1) / scale;
      const P = this.penalty;
      const at = this.penaltyAt;
      for (let k = 0; k < T; k++) {
        const j = part.indices[k]!;
        // The penalty j still owes (0 when it was caught up for this step, as the trainer does).
        const owed = this.hasLazyL1 ? P - at[j]! : 0;
        for (let o = 0; o < O; o++) {
          const g = part.values[k * O + o]! / n;
          const caughtUp = owed === 0 ? v[o * D + j]! : soft(v[o * D + j]!, owed);
          next[k * O + o] = caughtUp - (lr * g) / scale;
        }
      }
      if (this.hasLazyL1) for (let i = 0; i < T * O; i++) next[i] = soft(next[i]!, c);
      for (let o = 0; o < O; o++) next[T * O + o] = bias[o]! - lr * (part.bias[o]! / n);
    } else if (this.spec.name === 'ftrl') {
      this.ftrl(part, n, lr, next);
    } else {
      const eps = this.spec.eps;
      const negativeLr = -lr;
      const sums = this.sums;
      const biasBase = O * D;
      // Sums are written at once: nothing reads them again if the run diverges (it ends).
      for (let k = 0; k < T; k++) {
        const j = part.indices[k]!;
        for (let o = 0; o < O; o++) {
          const g = part.values[k * O + o]! / n;
          const s = sums[o * D + j]! + g * g;
          sums[o * D + j] = s;
          next[k * O + o] = v[o * D + j]! + (negativeLr * g) / (Math.sqrt(s) + eps);
        }
      }
      for (let o = 0; o < O; o++) {
        const g = part.bias[o]! / n;
        const s = sums[biasBase + o]! + g * g;
        sums[biasBase + o] = s;
        next[T * O + o] = bias[o]! + (negativeLr * g) / (Math.sqrt(s) + eps);
      }
    }
    for (let i = 0; i < T * O + O; i++) {
      if (!Number.isFinite(next[i]!)) {
        throw new DivergedError(`the update made the model non-finite (learning rate ${lr} too large?); the last good model is kept`);
      }
    }
    this.steps++;
    for (let k = 0; k < T; k++) {
      const j = part.indices[k]!;
      for (let o = 0; o < O; o++) v[o * D + j] = next[k * O + o]!;
    }
    for (let o = 0; o < O; o++) bias[o] = next[T * O + o]!;
    this.changed = part.indices;
    if (this.hasLazyL1) {
      const P = this.penalty + c;
      this.penalty = P;
      for (let k = 0; k < T; k++) this.penaltyAt[part.indices[k]!] = P;
      if (upcoming !== null) {
        for (let k = 0; k < upcoming.length; k++) this.catchUp(upcoming[k]!);
        this.changed = mergeSorted(part.indices, upcoming);
      }
    }
    if (scale < MIN_SCALE || scale > MAX_SCALE) {
      // Every coordinate pays what it owes at the old scale first: P counts in units of v.
      if (this.hasLazyL1) for (let j = 0; j < D; j++) this.catchUp(j);
      this.penalty = 0;
      this.penaltyAt.fill(0);
      for (let i = 0; i < v.length; i++) v[i] = v[i]! * scale;
      scale = 1;
      this.changed = null;
    }
    this.scale = scale;
    this.version++;
  }

  /** Coordinate j pays the L1 penalty it owes: v_j ← soft(v_j, P − P_j) for each output, P_j ← P. */
  private catchUp(j: number): void {
    const owed = this.penalty - this.penaltyAt[j]!;
    if (owed === 0) return;
    for (let o = 0; o < this.O; o++) this.v[o * this.D + j] = soft(this.v[o * this.D + j]!, owed);
    this.penaltyAt[j] = this.penalty;
  }

  /** v at flat index i (O×D layout) with the L1 penalty it owes applied (v itself without lazy L1): what a full broadcast sends. */
  currentV(i: number): number {
    if (!this.hasLazyL1) return this.v[i]!;
    const owed = this.penalty - this.penaltyAt[i % this.D]!;
    return owed === 0 ? this.v[i]! : soft(this.v[i]!, owed);
  }

  /**
   * Before an evaluation pass: with lazy L1, every coordinate may owe a penalty the replicas do not
   * know, so the version moves on without a step and the next sync sends every coordinate's current
   * value (currentV). The coordinator's own state is not changed: evaluations never change the bits.
   */
  exposeAll(): void {
    if (!this.hasLazyL1) return;
    this.version++;
    this.changed = null;
  }

  /**
   * FTRL-Proximal's step (the rule above) of the touched coordinates and the bias, new weights into
   * next. z and n are written at once: nothing reads them again if the run diverges (it ends).
   */
  private ftrl(part: SparsePart, n: number, alpha: number, next: Float64Array): void {
    const { O, D, v, bias } = this;
    const { l1, weightDecay: l2, ftrlBeta: beta } = this.spec;
    const z = this.sums;
    const squares = this.squares;
    const T = part.indices.length;
    for (let k = 0; k < T; k++) {
      const j = part.indices[k]!;
      for (let o = 0; o < O; o++) {
        const i = o * D + j;
        const g = part.values[k * O + o]! / n;
        const q = squares[i]! + g * g;
        const r = Math.sqrt(q);
        const sigma = (r - Math.sqrt(squares[i]!)) / alpha;
        const zi = z[i]! + g - sigma * v[i]!;
        z[i] = zi;
        squares[i] = q;
        next[k * O + o] = Math.abs(zi) <= l1 ? 0 : -(zi - (zi > 0 ? l1 : -l1)) / ((beta + r) / alpha + l2);
      }
    }
    const biasBase = O * D;
    for (let o = 0; o < O; o++) {
      const i = biasBase + o;
      const g = part.bias[o]! / n;
      const q = squares[i]! + g * g;
      const r = Math.sqrt(q);
      const sigma = (r - Math.sqrt(squares[i]!)) / alpha;
      const zi = z[i]! + g - sigma * bias[o]!;
      z[i] = zi;
      squares[i] = q;
      next[T * O + o] = -zi / ((beta + r) / alpha);
    }
  }

  /** θ in the shape's layout with w = scale·v (a fresh vector: the model file, early stopping). */
  theta(): Float64Array {
    const theta = new Float64Array(this.v.length + this.O);
    for (let i = 0; i < this.v.length; i++) theta[i] = this.scale * this.currentV(i);
    theta.set(this.bias, this.v.length);
    return theta;
  }

  /** v then the biases (the checkpoint's params of a sparse run, with `scale` beside them). */
  rawParams(): Float64Array {
    const raw = new Float64Array(this.v.length + this.O);
    raw.set(this.v);
    raw.set(this.bias, this.v.length);
    return raw;
  }

  /** The optimizer's state in the dense optimizers' format (a copy). */
  optimizerState(): OptimizerState {
    return {
      optimizer: this.spec.name,
      step: this.steps,
      buffers:
        this.spec.name === 'adagrad'
          ? { sum: Float64Array.from(this.sums) }
          : this.spec.name === 'ftrl'
            ? { z: Float64Array.from(this.sums), n: Float64Array.from(this.squares) }
            : this.hasLazyL1
              ? { penalty: Float64Array.of(this.penalty), penaltyAt: Float64Array.from(this.penaltyAt) }
              : {},
    };
  }
}

/** soft(x, c) = sgn(x)·max(0, |x| − c), c ≥ 0: a = |x| − c, then a > 0 ? ±a : 0 (exactly x when c = 0). */
function soft(x: number, c: number): number {
  const a = Math.abs(x) - c;
  return a > 0 ? (x > 0 ? a : -a) : 0;
}

/** The sorted union of two sorted arrays of distinct coordinates. */
function mergeSorted(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  let i = 0;
  let k = 0;
  let count = 0;
  while (i < a.length || k < b.length) {
    const x = i < a.length ? a[i]! : Number.POSITIVE_INFINITY;
    const y = k < b.length ? b[k]! : Number.POSITIVE_INFINITY;
    if (x <= y) i++;
    if (y <= x) k++;
    out[count++] = Math.min(x, y);
  }
  return out.slice(0, count);
}

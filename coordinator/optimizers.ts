// The optimizers of issue #12 over one flat parameter vector: sgd, momentum, nesterov, adagrad,
// adam, adamw, each in torch.optim's single-tensor operation order (torch 1.13, Debian bookworm's
// python3-torch, against which test/fixtures/optimizers/ was generated), so that the same
// gradients give the same bits. Pure math and its state; not the trainer, not the checkpoint file.
//
// Per element i, with g = grad[i] (the exact batch mean), p = params[i], η the step's rate (from
// lr-schedule.ts), λ = weight decay (dpt's --l2) where isDecayed[i] is 1 (weights), 0 elsewhere
// (the bias), and t the step count after the increment (1 on the first step):
//   L2 form (all but adamw), only when λ ≠ 0:  g ← g + λ·p
//   sgd:       p ← p − η·g
//   momentum:  buf ← g on the first step, else buf·μ + g  (dampening 0);  p ← p − η·buf
//   nesterov:  buf as momentum;  p ← p − η·(g + μ·buf)
//   adagrad:   sum ← sum + g·g;  p ← p + (−η·g) / (√sum + ε)            (lr_decay 0, initial sum 0)
//   adam:      m ← m·β1 + (1−β1)·g;  v ← v·β2 + ((1−β2)·g)·g;
//              c1 = 1 − β1^t, c2 = 1 − β2^t;  p ← p + (−(η/c1)·m) / (√v / √c2 + ε)
//   adamw:     p ← p·(1 − η·λ) (decoupled decay, before and instead of the L2 form), then adam.
// torch ≥ 2.0 writes adam's first moment as m.lerp(g, 1−β1) = m + (1−β1)·(g − m): the same value up
// to rounding (≈1 ulp), not the same bits; the algorithm box in torch's docs is the form used here.
// Measured: every optimizer equals torch 1.13 bit for bit over 50 steps with ATen's baseline kernels
// (test/unit/optimizers.test.ts); ATen's AVX2 kernels fuse a·b + c (FMA) and differ by ≤ 1.5e-14 there.

import { CheckpointError, ConfigError } from '../shared/errors.js';
import { powerOfFraction } from './power.js';

/** The optimizers of torch.optim (dense and, for sgd and adagrad, sparse data). */
export const OPTIMIZER_NAMES = ['sgd', 'momentum', 'nesterov', 'adagrad', 'adam', 'adamw'] as const;
/** Optimizers of sparse data only (issue #13): FTRL-Proximal (coordinator/sparse-model.ts has its rule). */
export const SPARSE_ONLY_OPTIMIZER_NAMES = ['ftrl'] as const;
/** Every value --optimizer takes. */
export const ALL_OPTIMIZER_NAMES = [...OPTIMIZER_NAMES, ...SPARSE_ONLY_OPTIMIZER_NAMES] as const;
export type OptimizerName = (typeof ALL_OPTIMIZER_NAMES)[number];

/** A validated, frozen optimizer configuration: what changes the result, hence the run fingerprint. */
export interface OptimizerSpec {
  readonly name: OptimizerName;
  /** μ for momentum and nesterov, in (0, 1). */
  readonly momentum: number;
  /** β1 and β2 for adam and adamw, each in [0, 1). */
  readonly beta1: number;
  readonly beta2: number;
  /** ε added to the denominator (adagrad, adam, adamw), > 0. */
  readonly eps: number;
  /** λ: torch's weight_decay, dpt's --l2, ≥ 0; applied only to parameters marked as weights. */
  readonly weightDecay: number;
  /** λ1 (--l1), ≥ 0: sgd's proximal step and ftrl's L1 (sparse data only); never applied to the bias. */
  readonly l1: number;
  /** β of ftrl (--ftrl-beta), > 0: the per-coordinate rate is α / (β + √n). */
  readonly ftrlBeta: number;
}

export type OptimizerOptions = { [K in keyof OptimizerSpec]?: OptimizerSpec[K] | undefined };

/** Defaults as torch.optim's (except weight decay, dpt's --l2 default 0); ε is 1e-10 for adagrad, as torch's. */
export const OPTIMIZER_DEFAULTS = {
  name: 'sgd',
  momentum: 0.9,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  adagradEps: 1e-10,
  weightDecay: 0,
  l1: 0,
  /** McMahan et al. 2013 report β = 1 as usually good enough. */
  ftrlBeta: 1,
} as const;

/** Merges the defaults and validates; errors name the flag (--optimizer, --momentum, --beta1, --beta2, --eps, --l2, --l1, --ftrl-beta). */
export function resolveOptimizerSpec(options: OptimizerOptions): OptimizerSpec {
  const name = options.name ?? OPTIMIZER_DEFAULTS.name;
  if (!(ALL_OPTIMIZER_NAMES as readonly string[]).includes(name)) {
    throw new ConfigError(`--optimizer must be one of ${ALL_OPTIMIZER_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  }
  const spec: OptimizerSpec = {
    name,
    momentum: options.momentum ?? OPTIMIZER_DEFAULTS.momentum,
    beta1: options.beta1 ?? OPTIMIZER_DEFAULTS.beta1,
    beta2: options.beta2 ?? OPTIMIZER_DEFAULTS.beta2,
    eps: options.eps ?? (name === 'adagrad' ? OPTIMIZER_DEFAULTS.adagradEps : OPTIMIZER_DEFAULTS.eps),
    weightDecay: options.weightDecay ?? OPTIMIZER_DEFAULTS.weightDecay,
    l1: options.l1 ?? OPTIMIZER_DEFAULTS.l1,
    ftrlBeta: options.ftrlBeta ?? OPTIMIZER_DEFAULTS.ftrlBeta,
  };
  // μ = 0 would make momentum plain sgd and nesterov undefined (torch refuses it); μ ≥ 1 never forgets.
  if (!(spec.momentum > 0 && spec.momentum < 1)) throw new ConfigError(`--momentum must be a number in (0, 1), got ${spec.momentum}`);
  if (!(spec.beta1 >= 0 && spec.beta1 < 1)) throw new ConfigError(`--beta1 must be a number in [0, 1), got ${spec.beta1}`);
  if (!(spec.beta2 >= 0 && spec.beta2 < 1)) throw new ConfigError(`--beta2 must be a number in [0, 1), got ${spec.beta2}`);
  if (!(spec.eps > 0 && Number.isFinite(spec.eps))) throw new ConfigError(`--eps must be a positive finite number, got ${spec.eps}`);
  if (!(spec.weightDecay >= 0 && Number.isFinite(spec.weightDecay))) {
    throw new ConfigError(`--l2 must be a non-negative finite number, got ${spec.weightDecay}`);
  }
  if (!(spec.l1 >= 0 && Number.isFinite(spec.l1))) throw new ConfigError(`--l1 must be a non-negative finite number, got ${spec.l1}`);
  // Only sgd (a proximal step) and ftrl (its own L1) define an L1 term; the others would ignore it silently.
  if (spec.l1 !== 0 && name !== 'sgd' && name !== 'ftrl') throw new ConfigError(`--l1 applies to --optimizer sgd or ftrl, not ${name}`);
  // β = 0 would make the bias's first weight 0/0 (n = 0 before any gradient).
  if (!(spec.ftrlBeta > 0 && Number.isFinite(spec.ftrlBeta))) throw new ConfigError(`--ftrl-beta must be a positive finite number, got ${spec.ftrlBeta}`);
  return Object.freeze(spec);
}

/** The hyper-parameters a spec's optimizer actually reads: what the run fingerprint and run event record. */
export function describeOptimizer(spec: OptimizerSpec): Readonly<Record<string, string | number>> {
  switch (spec.name) {
    case 'sgd':
      // l1 only when set: a run without it keeps the fingerprint it had before --l1 existed.
      return Object.freeze({ optimizer: spec.name, weightDecay: spec.weightDecay, ...(spec.l1 === 0 ? {} : { l1: spec.l1 }) });
    case 'ftrl':
      return Object.freeze({ optimizer: spec.name, ftrlBeta: spec.ftrlBeta, l1: spec.l1, weightDecay: spec.weightDecay });
    case 'momentum':
    case 'nesterov':
      return Object.freeze({ optimizer: spec.name, momentum: spec.momentum, weightDecay: spec.weightDecay });
    case 'adagrad':
      return Object.freeze({ optimizer: spec.name, eps: spec.eps, weightDecay: spec.weightDecay });
    case 'adam':
    case 'adamw':
      return Object.freeze({ optimizer: spec.name, beta1: spec.beta1, beta2: spec.beta2, eps: spec.eps, weightDecay: spec.weightDecay });
    default:
      return unreachable(spec.name);
  }
}

/** The buffers each optimizer keeps, one value per parameter, in the order state() lists them. */
const BUFFER_NAMES: Readonly<Record<OptimizerName, readonly string[]>> = {
  sgd: [],
  momentum: ['momentumBuffer'],
  nesterov: ['momentumBuffer'],
  adagrad: ['sum'],
  adam: ['expAvg', 'expAvgSq'],
  adamw: ['expAvg', 'expAvgSq'],
  ftrl: ['z', 'n'],
};

/** Buffers that hold sums of squares: never negative. */
export const NON_NEGATIVE_BUFFERS: ReadonlySet<string> = new Set(['sum', 'expAvgSq', 'n']);

/** An optimizer's state between steps, for checkpoints: the step count and one buffer per moment (copies). */
export interface OptimizerState {
  readonly optimizer: OptimizerName;
  /** Steps taken so far (torch's state['step']). */
  readonly step: number;
  readonly buffers: Readonly<Record<string, Float64Array>>;
}

export interface Optimizer {
  readonly spec: OptimizerSpec;
  /**
   * One update: reads params and grad (the batch-mean gradient), writes the new parameters into
   * next (which may be params itself), advances the moments in place. lr is this step's rate η.
   * Allocates nothing. A caller that refuses the result (the divergence guard) ends the run: the
   * moments have already moved, so the optimizer must then be restored from a committed state.
   */
  step(params: Float64Array, grad: Float64Array, lr: number, next?: Float64Array): void;
  /** Steps taken so far. */
  readonly stepCount: number;
  /** A copy of the state after the last step. */
  state(): OptimizerState;
  /** Replaces the state with a checkpoint's; throws CheckpointError (naming the field) if it does not fit. */
  restore(state: OptimizerState): void;
}

/**
 * An optimizer over parameterCount parameters; isDecayed[i] = 1 marks a weight (weight decay
 * applies), 0 a bias. The mask is copied.
 */
export function createOptimizer(spec: OptimizerSpec, parameterCount: number, isDecayed: Uint8Array): Optimizer {
  // Their exact lazy forms are per touched coordinate (coordinator/sparse-model.ts); a dense twin would be a second definition to keep equal.
  if (spec.name === 'ftrl')
    throw new ConfigError('--optimizer ftrl trains sparse data only (LIBSVM, --hash-bits, a sparse .dpt); use it there or pick another optimizer');
  if (spec.l1 !== 0) throw new ConfigError('--l1 trains sparse data only (LIBSVM, --hash-bits, a sparse .dpt); use --l2 on dense data');
  if (!Number.isSafeInteger(parameterCount) || parameterCount < 0) throw new Error(`invariant broken: parameter count ${parameterCount}`);
  if (isDecayed.length !== parameterCount) throw new Error(`invariant broken: decay mask of ${isDecayed.length} for ${parameterCount} parameters`);
  return new FlatOptimizer(spec, parameterCount, Uint8Array.from(isDecayed));
}

class FlatOptimizer implements Optimizer {
  readonly spec: OptimizerSpec;
  private readonly count: number;
  private readonly isDecayed: Uint8Array;
  private steps = 0;
  /** momentum buffer, adagrad's sum, or adam's m; adam's v. Empty for sgd. */
  private first: Float64Array;
  private second: Float64Array;

  constructor(spec: OptimizerSpec, count: number, isDecayed: Uint8Array) {
    this.spec = spec;
    this.count = count;
    this.isDecayed = isDecayed;
    const buffers = BUFFER_NAMES[spec.name].length;
    this.first = new Float64Array(buffers >= 1 ? count : 0);
    this.second = new Float64Array(buffers >= 2 ? count : 0);
  }

  get stepCount(): number {
    return this.steps;
  }

  step(params: Float64Array, grad: Float64Array, lr: number, next: Float64Array = params): void {
    if (params.length !== this.count || grad.length !== this.count || next.length !== this.count) {
      throw new Error(`invariant broken: optimizer over ${this.count} parameters given ${params.length}, ${grad.length}, ${next.length}`);
    }
    // The schedule only yields positive finite rates; anything else is a wiring bug, caught before the moments move.
    if (!(lr > 0 && Number.isFinite(lr))) throw new Error(`invariant broken: learning rate ${lr}`);
    const isFirstStep = this.steps === 0;
    this.steps++;
    switch (this.spec.name) {
      case 'sgd':
        this.sgd(params, grad, lr, next);
        return;
      case 'momentum':
      case 'nesterov':
        this.momentum(params, grad, lr, next, isFirstStep);
        return;
      case 'adagrad':
        this.adagrad(params, grad, lr, next);
        return;
      case 'adam':
      case 'adamw':
        this.adam(params, grad, lr, next);
        return;
      case 'ftrl':
        throw new Error('invariant broken: a dense ftrl optimizer (createOptimizer refuses it)');
      default:
        unreachable(this.spec.name);
    }
  }

  /** g ← g + λ·p where decayed (torch: grad.add(param, alpha=weight_decay), skipped when λ = 0). */
  private decayedGradient(i: number, p: number, g: number): number {
    const lambda = this.spec.weightDecay;
    return lambda !== 0 && this.isDecayed[i] === 1 ? g + lambda * p : g;
  }

  // p ← p − η·g: torch's param.add_(grad, alpha=−lr) is p + (−η)·g, the same bits; with L2 this is
  // exactly the trainer's pre-#12 update w − η·(g + λ·w), b − η·g.
  private sgd(params: Float64Array, grad: Float64Array, lr: number, next: Float64Array): void {
    for (let i = 0; i < this.count; i++) {
      const p = params[i]!;
      next[i] = p - lr * this.decayedGradient(i, p, grad[i]!);
    }
  }

  // buf ← g (first step: torch clones the gradient) or buf·μ + g (mul_ then add_, dampening 0);
  // momentum: p ← p − η·buf;  nesterov: p ← p − η·(g + μ·buf).
  private momentum(params: Float64Array, grad: Float64Array, lr: number, next: Float64Array, isFirstStep: boolean): void {
    const mu = this.spec.momentum;
    const isNesterov = this.spec.name === 'nesterov';
    const buf = this.first;
    for (let i = 0; i < this.count; i++) {
      const p = params[i]!;
      const g = this.decayedGradient(i, p, grad[i]!);
      const b = isFirstStep ? g : buf[i]! * mu + g;
      buf[i] = b;
      next[i] = p - lr * (isNesterov ? g + mu * b : b);
    }
  }

  // sum ← sum + g·g (addcmul_ with value 1);  p ← p + (−η·g) / (√sum + ε) (addcdiv_ with value −clr,
  // clr = η / (1 + (t−1)·lr_decay) = η exactly with lr_decay 0).
  private adagrad(params: Float64Array, grad: Float64Array, lr: number, next: Float64Array): void {
    const eps = this.spec.eps;
    const negativeLr = -lr;
    const sum = this.first;
    for (let i = 0; i < this.count; i++) {
      const p = params[i]!;
      const g = this.decayedGradient(i, p, grad[i]!);
      const s = sum[i]! + g * g;
      sum[i] = s;
      next[i] = p + (negativeLr * g) / (Math.sqrt(s) + eps);
    }
  }

  // torch 1.13 _single_tensor_adam / _single_tensor_adamw, scalar by scalar:
  //   m.mul_(β1).add_(g, alpha=1−β1); v.mul_(β2).addcmul_(g, g, value=1−β2);
  //   step_size = lr / (1 − β1**t); denom = (v.sqrt() / sqrt(1 − β2**t)).add_(eps);
  //   p.addcdiv_(m, denom, value=−step_size)  →  p + ((−step_size)·m) / denom.
  private adam(params: Float64Array, grad: Float64Array, lr: number, next: Float64Array): void {
    const { beta1, beta2, eps, weightDecay } = this.spec;
    const isDecoupled = this.spec.name === 'adamw';
    const t = this.steps;
    const oneMinusBeta1 = 1 - beta1;
    const oneMinusBeta2 = 1 - beta2;
    // β^t as C's pow() gives it (Python's beta1 ** step in torch), not as V8's ** does: see power.ts.
    const negativeStepSize = -(lr / (1 - powerOfFraction(beta1, t)));
    const biasCorrection2Sqrt = Math.sqrt(1 - powerOfFraction(beta2, t));
    // AdamW: param.mul_(1 − lr·weight_decay), applied to the bias's group too with λ = 0 (×1, exact).
    const decayFactor = 1 - lr * weightDecay;
    const m = this.first;
    const v = this.second;
    for (let i = 0; i < this.count; i++) {
      let p = params[i]!;
      let g = grad[i]!;
      if (isDecoupled) {
        if (this.isDecayed[i] === 1) p = p * decayFactor;
      } else {
        g = this.decayedGradient(i, p, g);
      }
      const mi = m[i]! * beta1 + oneMinusBeta1 * g;
      const vi = v[i]! * beta2 + oneMinusBeta2 * g * g;
      m[i] = mi;
      v[i] = vi;
      next[i] = p + (negativeStepSize * mi) / (Math.sqrt(vi) / biasCorrection2Sqrt + eps);
    }
  }

  state(): OptimizerState {
    const names = BUFFER_NAMES[this.spec.name];
    const buffers: Record<string, Float64Array> = {};
    names.forEach((name, index) => {
      buffers[name] = Float64Array.from(index === 0 ? this.first : this.second);
    });
    return { optimizer: this.spec.name, step: this.steps, buffers };
  }

  restore(state: OptimizerState): void {
    if (state.optimizer !== this.spec.name) {
      throw new CheckpointError(`optimizer state: the checkpoint holds ${JSON.stringify(state.optimizer)} state, the run uses ${this.spec.name}`);
    }
    if (!Number.isSafeInteger(state.step) || state.step < 0) {
      throw new CheckpointError(`optimizer state: step must be a non-negative integer, got ${state.step}`);
    }
    const names = BUFFER_NAMES[this.spec.name];
    const given = Object.keys(state.buffers).sort();
    if (given.join() !== [...names].sort().join()) {
      throw new CheckpointError(`optimizer state: ${this.spec.name} needs buffers [${names.join(', ')}], got [${given.join(', ')}]`);
    }
    const restored: Float64Array[] = [];
    for (const name of names) {
      const buffer = state.buffers[name];
      if (!(buffer instanceof Float64Array)) throw new CheckpointError(`optimizer state: buffer ${name} is not a Float64Array`);
      if (buffer.length !== this.count) {
        throw new CheckpointError(`optimizer state: buffer ${name} has ${buffer.length} values, the model has ${this.count} parameters`);
      }
      const isNonNegative = NON_NEGATIVE_BUFFERS.has(name);
      for (let i = 0; i < buffer.length; i++) {
        const value = buffer[i]!;
        if (!Number.isFinite(value) || (isNonNegative && value < 0)) {
          throw new CheckpointError(`optimizer state: buffer ${name}[${i}] is ${value}, expected a finite${isNonNegative ? ' non-negative' : ''} number`);
        }
      }
      restored.push(Float64Array.from(buffer));
    }
    // Validated in full before anything is replaced: a refused state leaves the optimizer as it was.
    this.steps = state.step;
    this.first = restored[0] ?? new Float64Array(0);
    this.second = restored[1] ?? new Float64Array(0);
  }
}

function unreachable(value: never): never {
  throw new Error(`invariant broken: unknown optimizer ${String(value)}`);
}

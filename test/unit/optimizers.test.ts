import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createOptimizer, describeOptimizer, OPTIMIZER_NAMES, type OptimizerName, resolveOptimizerSpec } from '../../coordinator/optimizers.js';
import { DptError } from '../../shared/errors.js';

// The fixtures come from torch.optim 1.13.1 in float64 (test/fixtures/optimizers/make-fixtures.py).
interface TorchRun {
  readonly optimizer: OptimizerName;
  readonly weightDecay: string;
  readonly weights: number;
  readonly start: string[];
  readonly rates: string[];
  readonly grads: string[][];
  readonly after: string[][];
}
const FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/optimizers/torch-optimizers.json', import.meta.url), 'utf8')) as {
  torch: string;
  runs: TorchRun[];
};

const scratch = new DataView(new ArrayBuffer(8));
function fromHex(hex: string): number {
  scratch.setBigUint64(0, BigInt(`0x${hex}`));
  return scratch.getFloat64(0);
}
function bitsOf(value: number): bigint {
  scratch.setFloat64(0, value);
  return scratch.getBigUint64(0);
}

/** A decay mask: D weights (1) then the bias (0). */
function weightsThenBias(D: number): Uint8Array {
  const mask = new Uint8Array(D + 1).fill(1);
  mask[D] = 0;
  return mask;
}

/** Seeded values in [-1, 1) times magnitudes 1e-3 .. 1e2, some exact zeros. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  const unit = (): number => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
  return () => {
    const magnitude = 10 ** Math.floor(unit() * 6 - 3);
    const value = (unit() * 2 - 1) * magnitude;
    return unit() < 0.05 ? 0 : value;
  };
}

describe('optimizers against torch.optim (float64 fixtures)', () => {
  const summary: string[] = [];
  for (const run of FIXTURE.runs) {
    const lambda = fromHex(run.weightDecay);
    it(`${run.optimizer} with weight decay ${lambda} (bias in a group without decay) gives torch's bits for 50 steps`, () => {
      const spec = resolveOptimizerSpec({ name: run.optimizer, weightDecay: lambda });
      const params = Float64Array.from(run.start, fromHex);
      const optimizer = createOptimizer(spec, params.length, weightsThenBias(run.weights));
      let maxAbsDiff = 0;
      let bitMismatches = 0;
      let compared = 0;
      run.grads.forEach((row, t) => {
        optimizer.step(params, Float64Array.from(row, fromHex), fromHex(run.rates[t]!));
        run.after[t]!.forEach((hex, i) => {
          const expected = fromHex(hex);
          const actual = params[i]!;
          maxAbsDiff = Math.max(maxAbsDiff, Math.abs(actual - expected));
          if (bitsOf(actual) !== bitsOf(expected)) bitMismatches++;
          compared++;
          expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-12 * Math.abs(expected));
        });
      });
      summary.push(`${run.optimizer} λ=${lambda}: max |diff| ${maxAbsDiff}, ${bitMismatches} of ${compared} values differ in bits`);
      expect(compared).toBe(run.grads.length * run.start.length);
      expect(bitMismatches).toBe(0);
    });
  }
  it('prints the comparison (max |diff| per optimizer)', () => {
    console.log(`torch ${FIXTURE.torch}\n${summary.join('\n')}`);
    expect(summary.length).toBe(FIXTURE.runs.length);
  });
});

describe('sgd', () => {
  it("reproduces the pre-#12 trainer's inline update (w − η·(g + λ·w), b − η·g) bit for bit", () => {
    const D = 7;
    const next = seeded(42);
    for (const l2 of [0, 1e-4, 0.01, 0.5]) {
      const spec = resolveOptimizerSpec({ name: 'sgd', weightDecay: l2 });
      const optimizer = createOptimizer(spec, D + 1, weightsThenBias(D));
      const params = Float64Array.from({ length: D + 1 }, next);
      let w = params.slice(0, D);
      let b = params[D]!;
      for (let step = 0; step < 200; step++) {
        const lr = Math.abs(next()) + 1e-3;
        const n = 1 + (step % 13);
        const batchSum = Float64Array.from({ length: D + 1 }, next);
        // The batch-mean gradient the trainer will hand the optimizer.
        const grad = batchSum.map((sum) => sum / n);
        optimizer.step(params, grad, lr);
        // Copied from coordinator/trainer.ts before #12 (Trainer.commit).
        const nextB = b - lr * (batchSum[D]! / n);
        const nextW = new Float64Array(D);
        for (let j = 0; j < D; j++) {
          const wj = w[j]!;
          nextW[j] = wj - lr * (batchSum[j]! / n + l2 * wj);
        }
        w = nextW;
        b = nextB;
        for (let j = 0; j < D; j++) expect(bitsOf(params[j]!)).toBe(bitsOf(w[j]!));
        expect(bitsOf(params[D]!)).toBe(bitsOf(b));
      }
    }
  });

  it('writes into a separate output buffer and leaves the input parameters untouched', () => {
    const optimizer = createOptimizer(resolveOptimizerSpec({ name: 'sgd', weightDecay: 0.1 }), 3, weightsThenBias(2));
    const params = Float64Array.of(1, 2, 3);
    const out = new Float64Array(3);
    optimizer.step(params, Float64Array.of(0.5, 0.5, 0.5), 0.1, out);
    expect([...params]).toEqual([1, 2, 3]);
    expect([...out]).toEqual([1 - 0.1 * (0.5 + 0.1 * 1), 2 - 0.1 * (0.5 + 0.1 * 2), 3 - 0.1 * 0.5]);
  });
});

// An independent reference, written in the textbook form (bias-corrected moments m̂ and v̂ for adam),
// not in torch's operation order: it agrees to rounding, not to the bit.
function referenceRun(name: OptimizerName, start: number[], grads: number[][], rates: number[], lambda: number, decayed: boolean[]): number[] {
  const p = [...start];
  const m = start.map(() => 0);
  const v = start.map(() => 0);
  const mu = 0.9;
  const [beta1, beta2] = [0.9, 0.999];
  const eps = name === 'adagrad' ? 1e-10 : 1e-8;
  grads.forEach((row, k) => {
    const t = k + 1;
    const lr = rates[k]!;
    for (let i = 0; i < p.length; i++) {
      const l2 = decayed[i] ? lambda : 0;
      let g = row[i]!;
      if (name === 'adamw') p[i] = p[i]! - lr * l2 * p[i]!;
      else g += l2 * p[i]!;
      if (name === 'sgd') p[i] = p[i]! - lr * g;
      if (name === 'momentum' || name === 'nesterov') {
        m[i] = t === 1 ? g : mu * m[i]! + g;
        p[i] = p[i]! - lr * (name === 'nesterov' ? g + mu * m[i]! : m[i]!);
      }
      if (name === 'adagrad') {
        v[i] = v[i]! + g * g;
        p[i] = p[i]! - (lr * g) / (Math.sqrt(v[i]!) + eps);
      }
      if (name === 'adam' || name === 'adamw') {
        m[i] = beta1 * m[i]! + (1 - beta1) * g;
        v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
        const mHat = m[i]! / (1 - beta1 ** t);
        const vHat = v[i]! / (1 - beta2 ** t);
        p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }
    }
  });
  return p;
}

describe('optimizers against an independent textbook reference', () => {
  for (const name of OPTIMIZER_NAMES) {
    it(`${name} agrees with the reference to 1e-12 relative over 100 steps, with and without L2`, () => {
      for (const lambda of [0, 0.03]) {
        const next = seeded(7 + lambda * 100);
        const D = 4;
        const start = Array.from({ length: D + 1 }, next);
        const grads = Array.from({ length: 100 }, () => Array.from({ length: D + 1 }, next));
        const rates = grads.map((_, k) => 0.01 + 0.001 * (k % 7));
        const expected = referenceRun(
          name,
          start,
          grads,
          rates,
          lambda,
          start.map((_, i) => i < D),
        );
        const optimizer = createOptimizer(resolveOptimizerSpec({ name, weightDecay: lambda }), D + 1, weightsThenBias(D));
        const params = Float64Array.from(start);
        grads.forEach((row, k) => {
          optimizer.step(params, Float64Array.from(row), rates[k]!);
        });
        expected.forEach((value, i) => {
          expect(Math.abs(params[i]! - value)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(value)));
        });
      }
    });
  }

  it('never decays the bias: with a zero gradient only the weights move, under every optimizer with L2', () => {
    for (const name of OPTIMIZER_NAMES) {
      const optimizer = createOptimizer(resolveOptimizerSpec({ name, weightDecay: 0.5 }), 3, weightsThenBias(2));
      const params = Float64Array.of(2, -3, 5);
      for (let step = 0; step < 5; step++) optimizer.step(params, new Float64Array(3), 0.1);
      expect(params[2], name).toBe(5);
      expect(Math.abs(params[0]!), name).toBeLessThan(2);
      expect(Math.abs(params[1]!), name).toBeLessThan(3);
    }
  });
});

describe('optimizer state', () => {
  for (const name of OPTIMIZER_NAMES) {
    it(`${name}: state() after 20 steps restored into a new optimizer continues with the uninterrupted run's bits`, () => {
      const D = 6;
      const next = seeded(99);
      const start = Float64Array.from({ length: D + 1 }, next);
      const grads = Array.from({ length: 50 }, () => Float64Array.from({ length: D + 1 }, next));
      const rate = (t: number): number => 0.02 * (1 + Math.cos((Math.PI * t) / 50));
      const spec = resolveOptimizerSpec({ name, weightDecay: 0.01 });

      const whole = createOptimizer(spec, D + 1, weightsThenBias(D));
      const uninterrupted = Float64Array.from(start);
      grads.forEach((grad, t) => {
        whole.step(uninterrupted, grad, rate(t));
      });

      const first = createOptimizer(spec, D + 1, weightsThenBias(D));
      const resumed = Float64Array.from(start);
      grads.slice(0, 20).forEach((grad, t) => {
        first.step(resumed, grad, rate(t));
      });
      const saved = first.state();
      // The state is a copy: steps after state() do not change it.
      first.step(Float64Array.from(resumed), grads[20]!, rate(20));
      const second = createOptimizer(spec, D + 1, weightsThenBias(D));
      second.restore(saved);
      expect(second.stepCount).toBe(20);
      grads.slice(20).forEach((grad, k) => {
        second.step(resumed, grad, rate(20 + k));
      });

      expect([...resumed].map(bitsOf)).toEqual([...uninterrupted].map(bitsOf));
      expect(second.state()).toEqual(whole.state());
    });
  }

  function refused(action: () => void): DptError {
    try {
      action();
    } catch (error) {
      if (error instanceof DptError) return error;
      throw error;
    }
    throw new Error('expected a DptError');
  }

  it('refuses a state of another optimizer, length, step or with a non-finite or negative value, and keeps its own', () => {
    const spec = resolveOptimizerSpec({ name: 'adam' });
    const optimizer = createOptimizer(spec, 3, weightsThenBias(2));
    const params = Float64Array.of(1, 2, 3);
    optimizer.step(params, Float64Array.of(0.1, 0.2, 0.3), 0.1);
    const good = optimizer.state();
    const cases: [string, unknown, RegExp][] = [
      ['another optimizer', { ...good, optimizer: 'adagrad' }, /holds "adagrad" state, the run uses adam/],
      ['a fractional step', { ...good, step: 1.5 }, /step must be a non-negative integer, got 1.5/],
      ['a negative step', { ...good, step: -1 }, /step must be a non-negative integer/],
      ['a missing buffer', { ...good, buffers: { expAvg: good.buffers.expAvg } }, /needs buffers \[expAvg, expAvgSq\], got \[expAvg\]/],
      ['a short buffer', { ...good, buffers: { ...good.buffers, expAvg: new Float64Array(2) } }, /buffer expAvg has 2 values, the model has 3 parameters/],
      ['NaN', { ...good, buffers: { ...good.buffers, expAvg: Float64Array.of(0, Number.NaN, 0) } }, /buffer expAvg\[1\] is NaN, expected a finite number/],
      ['Infinity', { ...good, buffers: { ...good.buffers, expAvgSq: Float64Array.of(0, 0, Infinity) } }, /buffer expAvgSq\[2\] is Infinity/],
      [
        'a negative square',
        { ...good, buffers: { ...good.buffers, expAvgSq: Float64Array.of(0, -1, 0) } },
        /expAvgSq\[1\] is -1, expected a finite non-negative/,
      ],
      ['a plain array', { ...good, buffers: { ...good.buffers, expAvg: [0, 0, 0] } }, /buffer expAvg is not a Float64Array/],
    ];
    for (const [what, state, message] of cases) {
      // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed checkpoint content
      const error = refused(() => optimizer.restore(state as any));
      expect(error.code, what).toBe('DPT_CHECKPOINT');
      expect(error.message, what).toMatch(message);
    }
    expect(optimizer.state()).toEqual(good);
  });
});

describe('resolveOptimizerSpec', () => {
  it('defaults to torch.optim values, with ε 1e-10 for adagrad and 1e-8 for the others', () => {
    expect(resolveOptimizerSpec({})).toEqual({ name: 'sgd', momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, l1: 0, ftrlBeta: 1 });
    expect(resolveOptimizerSpec({ name: 'adagrad' }).eps).toBe(1e-10);
    expect(resolveOptimizerSpec({ name: 'adagrad', eps: 1e-6 }).eps).toBe(1e-6);
    expect(Object.isFrozen(resolveOptimizerSpec({}))).toBe(true);
  });

  it('describes only the hyper-parameters each optimizer reads (for the run fingerprint)', () => {
    expect(describeOptimizer(resolveOptimizerSpec({ name: 'sgd', weightDecay: 0.1 }))).toEqual({ optimizer: 'sgd', weightDecay: 0.1 });
    expect(describeOptimizer(resolveOptimizerSpec({ name: 'sgd', l1: 0.2 }))).toEqual({ optimizer: 'sgd', weightDecay: 0, l1: 0.2 });
    expect(describeOptimizer(resolveOptimizerSpec({ name: 'ftrl', weightDecay: 0.1 }))).toEqual({ optimizer: 'ftrl', ftrlBeta: 1, l1: 0, weightDecay: 0.1 });
    expect(describeOptimizer(resolveOptimizerSpec({ name: 'nesterov' }))).toEqual({ optimizer: 'nesterov', momentum: 0.9, weightDecay: 0 });
    expect(describeOptimizer(resolveOptimizerSpec({ name: 'adagrad' }))).toEqual({ optimizer: 'adagrad', eps: 1e-10, weightDecay: 0 });
    expect(describeOptimizer(resolveOptimizerSpec({ name: 'adamw', weightDecay: 0.01 }))).toEqual({
      optimizer: 'adamw',
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0.01,
    });
  });

  it('refuses bad values with a DPT_CONFIG error naming the flag', () => {
    const cases: [Parameters<typeof resolveOptimizerSpec>[0], RegExp][] = [
      [{ name: 'rmsprop' as OptimizerName }, /--optimizer must be one of sgd, momentum, nesterov, adagrad, adam, adamw, ftrl, got "rmsprop"/],
      [{ momentum: 0 }, /--momentum must be a number in \(0, 1\), got 0/],
      [{ momentum: 1 }, /--momentum must be a number in \(0, 1\)/],
      [{ momentum: Number.NaN }, /--momentum/],
      [{ beta1: 1 }, /--beta1 must be a number in \[0, 1\), got 1/],
      [{ beta2: -0.1 }, /--beta2 must be a number in \[0, 1\), got -0.1/],
      [{ eps: 0 }, /--eps must be a positive finite number, got 0/],
      [{ eps: Infinity }, /--eps must be a positive finite number/],
      [{ weightDecay: -1 }, /--l2 must be a non-negative finite number, got -1/],
      [{ weightDecay: Number.POSITIVE_INFINITY }, /--l2/],
    ];
    for (const [options, message] of cases) {
      expect(() => resolveOptimizerSpec(options)).toThrow(message);
      try {
        resolveOptimizerSpec(options);
      } catch (error) {
        expect((error as DptError).code).toBe('DPT_CONFIG');
      }
    }
  });
});

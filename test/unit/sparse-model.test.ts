import { describe, expect, it } from 'vitest';
import { resolveLrScheduleSpec } from '../../coordinator/lr-schedule.js';
import { createOptimizer, resolveOptimizerSpec } from '../../coordinator/optimizers.js';
import { SparseBroadcast } from '../../coordinator/sparse-broadcast.js';
import { checkSparseOptimizer, MIN_SCALE, SparseModel } from '../../coordinator/sparse-model.js';
import { CheckpointError, ConfigError, DptError, ProtocolError } from '../../shared/errors.js';
import { logisticShape, softmaxShape } from '../../shared/model-shape.js';
import { decodeCoordinatorMessage, type Limits } from '../../shared/protocol.js';
import { SparseReplica } from '../../shared/sparse-replica.js';
import type { SparsePart } from '../../shared/sparse-rows.js';

/** A seeded generator of numbers in [-1, 1). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 31 - 1;
  };
}

/** A random batch-sum part over D coordinates, O outputs: about `touched` coordinates, sorted. */
function randomPart(random: () => number, D: number, O: number, touched: number): SparsePart {
  const set = new Set<number>();
  for (let i = 0; i < touched; i++) set.add(Math.floor(((random() + 1) / 2) * D));
  const indices = Uint32Array.from([...set].sort((a, b) => a - b));
  const values = new Float64Array(indices.length * O).map(() => random() * 5);
  const bias = new Float64Array(O).map(() => random() * 3);
  return { indices, values, bias, loss: 1 };
}

/** The part as a dense gradient sum in θ's layout (O×D weights then O biases). */
function densePart(part: SparsePart, D: number, O: number): Float64Array {
  const dense = new Float64Array(O * D + O);
  part.indices.forEach((j, k) => {
    for (let o = 0; o < O; o++) dense[o * D + j] = part.values[k * O + o]!;
  });
  dense.set(part.bias, O * D);
  return dense;
}

const CONSTANT = resolveLrScheduleSpec({ lr: 0.1 });

const limitsFor = (D: number, O: number): Limits => ({ features: D, parameters: O * D + O, maxChunks: 64, sparse: true });

describe('SparseModel', () => {
  it('gives the dense sgd bits exactly without L2, and the dense adagrad bits exactly', () => {
    for (const name of ['sgd', 'adagrad'] as const) {
      for (const shape of [logisticShape(50), softmaxShape(3, 40)]) {
        const spec = resolveOptimizerSpec({ name });
        const D = shape.features;
        const O = shape.outputs;
        const model = new SparseModel(shape, spec, new Float64Array(shape.parameterCount), 1, 0, null);
        const dense = createOptimizer(spec, shape.parameterCount, shape.isDecayed);
        const theta = new Float64Array(shape.parameterCount);
        const random = seeded(7);
        for (let step = 0; step < 30; step++) {
          const part = randomPart(random, D, O, 6);
          const n = 17;
          const lr = 0.05 + step * 0.001;
          model.update(part, n, lr);
          const gradient = densePart(part, D, O).map((g) => g / n);
          dense.step(theta, gradient, lr);
        }
        expect(Array.from(model.theta())).toEqual(Array.from(theta));
        expect(model.version).toBe(30);
      }
    }
  });

  it('follows the dense sgd with L2 through the scale, to rounding, and renormalises when the scale gets small', () => {
    const shape = softmaxShape(2, 30);
    const spec = resolveOptimizerSpec({ name: 'sgd', weightDecay: 0.5 });
    const model = new SparseModel(shape, spec, new Float64Array(shape.parameterCount), 1, 0, null);
    const theta = new Float64Array(shape.parameterCount);
    const random = seeded(3);
    let renormalised = 0;
    for (let step = 0; step < 600; step++) {
      const part = randomPart(random, 30, 2, 4);
      const lr = 0.9;
      model.update(part, 10, lr);
      if (model.lastChanged === null) renormalised++;
      // The dense rule, written out: w ← w − η·(g + λ·w) on weights, b ← b − η·g on biases.
      const gradient = densePart(part, 30, 2);
      for (let i = 0; i < theta.length; i++) {
        const g = gradient[i]! / 10;
        theta[i] = i < shape.biasIndex ? theta[i]! - lr * (g + 0.5 * theta[i]!) : theta[i]! - lr * g;
      }
      expect(model.scale).toBeGreaterThanOrEqual(MIN_SCALE);
    }
    expect(renormalised).toBeGreaterThan(0); // 0.55^600 ≈ 1e-156: the scale was folded into v at least once
    const sparseTheta = model.theta();
    for (let i = 0; i < theta.length; i++) expect(Math.abs(sparseTheta[i]! - theta[i]!)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(theta[i]!)));
  });

  it('refuses optimizers that move every coordinate, and L2 with adagrad, naming the flag', () => {
    for (const name of ['momentum', 'nesterov', 'adam', 'adamw'] as const) {
      expect(() => checkSparseOptimizer(resolveOptimizerSpec({ name }), 0.1, CONSTANT)).toThrow(/--optimizer/);
    }
    expect(() => checkSparseOptimizer(resolveOptimizerSpec({ name: 'adagrad', weightDecay: 0.1 }), 0.1, CONSTANT)).toThrow(/--l2/);
    expect(() => checkSparseOptimizer(resolveOptimizerSpec({ name: 'sgd', weightDecay: 20 }), 0.1, CONSTANT)).toThrow(/--lr × --l2/);
    expect(() => checkSparseOptimizer(resolveOptimizerSpec({ name: 'sgd', weightDecay: 0.1 }), 0.1, CONSTANT)).not.toThrow();
  });

  it('keeps the parameters when an update is not finite', () => {
    const shape = logisticShape(4);
    const model = new SparseModel(shape, resolveOptimizerSpec({ name: 'sgd' }), new Float64Array(5), 1, 0, null);
    model.update({ indices: Uint32Array.of(1), values: Float64Array.of(2), bias: Float64Array.of(1), loss: 0 }, 1, 1);
    const before = model.theta();
    expect(() => model.update({ indices: Uint32Array.of(2), values: Float64Array.of(1e308), bias: Float64Array.of(0), loss: 0 }, 1e-10, 1e10)).toThrow(
      DptError,
    );
    expect(Array.from(model.theta())).toEqual(Array.from(before));
    expect(model.version).toBe(1);
  });
});

describe('SparseBroadcast and SparseReplica', () => {
  it('brings replicas to the coordinator bits with deltas, full vectors for late joiners, and refuses a delta for another base', () => {
    const shape = softmaxShape(3, 25);
    const D = 25;
    const O = 3;
    const spec = resolveOptimizerSpec({ name: 'sgd', weightDecay: 0.01 });
    const model = new SparseModel(shape, spec, new Float64Array(shape.parameterCount), 1, 0, null);
    const broadcast = new SparseBroadcast(model, D, O);
    const limits = limitsFor(D, O);
    const peer = (): { paramsVersion: number; stepBytes: number; received: Buffer[]; sendBytes(bytes: Buffer): void } => ({
      paramsVersion: -1,
      stepBytes: 0,
      received: [],
      sendBytes(bytes) {
        this.received.push(bytes);
      },
    });
    const replicaOf = (): SparseReplica => new SparseReplica({ v: new Float64Array(O * D), scale: 1, bias: new Float64Array(O) }, D, O);
    const early = peer();
    const earlyReplica = replicaOf();
    const random = seeded(11);
    const deliver = (from: ReturnType<typeof peer>, replica: SparseReplica): void => {
      for (const bytes of from.received.splice(0)) {
        const message = decodeCoordinatorMessage(bytes, limits);
        if (message.kind !== 'params') throw new Error('expected params');
        replica.apply(message);
      }
    };
    let late: ReturnType<typeof peer> | null = null;
    let lateReplica: SparseReplica | null = null;
    for (let step = 0; step < 12; step++) {
      broadcast.sync(late === null ? [early] : [early, late]);
      deliver(early, earlyReplica);
      if (late !== null && lateReplica !== null) deliver(late, lateReplica);
      expect(earlyReplica.version).toBe(model.version);
      const raw = model.rawParams();
      expect(Array.from(earlyReplica.params.v)).toEqual(Array.from(raw.subarray(0, O * D)));
      expect(earlyReplica.params.scale).toBe(model.scale);
      if (step === 6) {
        late = peer();
        lateReplica = replicaOf();
      }
      model.update(randomPart(random, D, O, 3), 8, 0.3);
    }
    broadcast.sync([early, late!]);
    const deltaBytes = early.received.reduce((sum, bytes) => sum + bytes.length, 0);
    deliver(early, earlyReplica);
    deliver(late!, lateReplica!);
    expect(Array.from(lateReplica!.params.v)).toEqual(Array.from(earlyReplica.params.v));
    expect(Array.from(lateReplica!.params.bias)).toEqual(Array.from(model.bias));
    // A delta carries the touched coordinates only: ~3 of 25.
    expect(deltaBytes).toBeLessThan(200 + 3 * O * 8 + 3 * 4 + 64);

    // A delta for a base the replica does not hold fails loudly and changes nothing.
    const stale = replicaOf();
    const message = {
      kind: 'params' as const,
      base: 5,
      version: 6,
      scale: 1,
      bias: new Float64Array(O),
      indices: Uint32Array.of(1),
      values: Float64Array.of(1, 2, 3),
    };
    expect(() => stale.apply(message)).toThrow(ProtocolError);
    expect(() => stale.apply(message)).toThrow(/delta from version 5, but this worker holds version -1/);
    expect(stale.version).toBe(-1);
    expect(() => stale.require('step', 0)).toThrow(/version/);
  });
});

/**
 * FTRL-Proximal as McMahan et al. 2013 write it (Algorithm 1), over EVERY coordinate each step (an
 * untouched one has g = 0): σ = (√(n + g²) − √n)/α; z ← z + g − σ·w; n ← n + g²; then
 * w = 0 if |z| ≤ λ1, else −(z − sgn(z)·λ1)/((β + √n)/α + λ2). The bias (index ≥ biasFrom) has λ1 = λ2 = 0.
 */
function referenceFtrl(count: number, biasFrom: number, hyper: { alpha: number; beta: number; l1: number; l2: number }) {
  const z = new Array<number>(count).fill(0);
  const nSum = new Array<number>(count).fill(0);
  const w = new Array<number>(count).fill(0);
  return {
    w,
    z,
    n: nSum,
    step(gradient: ArrayLike<number>): void {
      for (let i = 0; i < count; i++) {
        const g = gradient[i]!;
        const l1 = i < biasFrom ? hyper.l1 : 0;
        const l2 = i < biasFrom ? hyper.l2 : 0;
        const sigma = (Math.sqrt(nSum[i]! + g * g) - Math.sqrt(nSum[i]!)) / hyper.alpha;
        z[i] = z[i]! + g - sigma * w[i]!;
        nSum[i] = nSum[i]! + g * g;
        w[i] = Math.abs(z[i]!) <= l1 ? 0 : -(z[i]! - Math.sign(z[i]!) * l1) / ((hyper.beta + Math.sqrt(nSum[i]!)) / hyper.alpha + l2);
      }
    },
  };
}

describe('SparseModel: ftrl and sgd with L1 (issue #13)', () => {
  it('ftrl equals the paper’s per-coordinate formulas applied to every coordinate (untouched ones change nothing), with exact zeros', () => {
    for (const shape of [logisticShape(60), softmaxShape(3, 40)]) {
      const D = shape.features;
      const O = shape.outputs;
      const hyper = { alpha: 0.3, beta: 1.5, l1: 0.05, l2: 0.2 };
      const spec = resolveOptimizerSpec({ name: 'ftrl', l1: hyper.l1, weightDecay: hyper.l2, ftrlBeta: hyper.beta });
      const model = new SparseModel(shape, spec, new Float64Array(shape.parameterCount), 1, 0, null);
      const reference = referenceFtrl(shape.parameterCount, shape.biasIndex, hyper);
      const random = seeded(21);
      for (let step = 0; step < 80; step++) {
        const part = randomPart(random, D, O, 7);
        model.update(part, 13, hyper.alpha);
        reference.step(densePart(part, D, O).map((g) => g / 13));
        expect(model.scale).toBe(1);
        expect(Array.from(model.lastChanged ?? [])).toEqual(Array.from(part.indices));
      }
      const theta = model.theta();
      let maxDiff = 0;
      for (let i = 0; i < theta.length; i++) maxDiff = Math.max(maxDiff, Math.abs(theta[i]! - reference.w[i]!));
      expect(maxDiff).toBeLessThanOrEqual(1e-12);
      // L1 gives exact zeros where |z| ≤ λ1 among coordinates that were touched, and the same ones as the reference.
      const zeros = Array.from(theta.subarray(0, shape.biasIndex)).filter((value, i) => value === 0 && reference.n[i]! > 0).length;
      expect(zeros).toBeGreaterThan(0);
      for (let i = 0; i < shape.biasIndex; i++) expect(theta[i] === 0, `w[${i}]`).toBe(reference.w[i] === 0);
      const state = model.optimizerState();
      for (let i = 0; i < theta.length; i++) {
        expect(Math.abs(state.buffers.z![i]! - reference.z[i]!)).toBeLessThanOrEqual(1e-12);
        expect(Math.abs(state.buffers.n![i]! - reference.n[i]!)).toBeLessThanOrEqual(1e-12);
      }
    }
  });

  it('ftrl resumed from its state (v, z, n) continues with the same bits, and a state of the wrong size is refused', () => {
    const shape = logisticShape(30);
    const spec = resolveOptimizerSpec({ name: 'ftrl', l1: 0.01, weightDecay: 0.1 });
    const parts = Array.from({ length: 40 }, (_, index) => randomPart(seeded(100 + index), 30, 1, 5));
    const whole = new SparseModel(shape, spec, new Float64Array(shape.parameterCount), 1, 0, null);
    for (const part of parts) whole.update(part, 9, 0.2);
    const first = new SparseModel(shape, spec, new Float64Array(shape.parameterCount), 1, 0, null);
    for (const part of parts.slice(0, 17)) first.update(part, 9, 0.2);
    const resumed = new SparseModel(shape, spec, first.rawParams(), first.scale, first.version, first.optimizerState());
    for (const part of parts.slice(17)) resumed.update(part, 9, 0.2);
    expect(Array.from(resumed.theta())).toEqual(Array.from(whole.theta()));
    expect(resumed.optimizerState()).toEqual(whole.optimizerState());
    const bad = { optimizer: 'ftrl' as const, step: 17, buffers: { z: new Float64Array(3), n: new Float64Array(3) } };
    expect(() => new SparseModel(shape, spec, first.rawParams(), 1, 17, bad)).toThrow(CheckpointError);
    const negative = { ...first.optimizerState(), buffers: { z: new Float64Array(31), n: new Float64Array(31).fill(-1) } };
    expect(() => new SparseModel(shape, spec, first.rawParams(), 1, 17, negative)).toThrow(/buffer n\[0\] is -1/);
  });

  it('sgd with --l1 equals the dense proximal formula (every weight shrunk every step) through the lazy catch-up, with and without L2, never the bias', () => {
    for (const [l2, steps] of [
      [0, 200],
      [0.3, 200],
      [0.9, 700], // 0.64^700 ≈ 1e-136: the scale is renormalised on the way
    ] as const) {
      const shape = softmaxShape(2, 30);
      const D = 30;
      const O = 2;
      const l1 = 0.02;
      const lr = 0.4 + 0.1 * l2;
      const model = new SparseModel(shape, resolveOptimizerSpec({ name: 'sgd', l1, weightDecay: l2 }), new Float64Array(shape.parameterCount), 1, 0, null);
      // The dense proximal step written out over θ: w ← sgn(u)·max(0, |u| − η·λ1) with u = w − η·(g + λ2·w), for every weight; b ← b − η·g.
      const theta = new Float64Array(shape.parameterCount);
      const random = seeded(5);
      const parts = Array.from({ length: steps + 1 }, () => randomPart(random, D, O, 4));
      let renormalised = 0;
      let maxDiff = 0;
      for (let step = 0; step < steps; step++) {
        const part = parts[step]!;
        // The trainer passes the coordinates of the next batch; here, the next part's.
        model.update(part, 10, lr, parts[step + 1]!.indices);
        if (model.lastChanged === null) renormalised++;
        const gradient = densePart(part, D, O).map((g) => g / 10);
        for (let i = 0; i < theta.length; i++) {
          if (i >= shape.biasIndex) {
            theta[i] = theta[i]! - lr * gradient[i]!;
            continue;
          }
          const u = theta[i]! - lr * (gradient[i]! + l2 * theta[i]!);
          theta[i] = Math.sign(u) * Math.max(0, Math.abs(u) - lr * l1);
        }
        const sparseTheta = model.theta();
        for (let i = 0; i < theta.length; i++) maxDiff = Math.max(maxDiff, Math.abs(sparseTheta[i]! - theta[i]!));
        // What the workers compute with (a replica: scale · v of the next batch's coordinates) is the dense θ too.
        for (const j of parts[step + 1]!.indices) {
          for (let o = 0; o < O; o++) maxDiff = Math.max(maxDiff, Math.abs(model.scale * model.v[o * D + j]! - theta[o * D + j]!));
        }
      }
      expect(maxDiff, `λ2 = ${l2}`).toBeLessThanOrEqual(1e-12);
      expect(renormalised > 0, `λ2 = ${l2}: renormalised`).toBe(l2 === 0.9);
      // L1 made weights exactly 0, the same ones as the dense formula.
      const sparseTheta = model.theta();
      expect(Array.from(sparseTheta.subarray(0, shape.biasIndex)).filter((w) => w === 0).length).toBeGreaterThan(0);
      for (let i = 0; i < shape.biasIndex; i++) expect(sparseTheta[i] === 0, `w[${i}]`).toBe(theta[i] === 0);
    }
  });

  it('sgd with --l1 resumed from its state (v, the penalties) continues with the same bits; exposeAll changes no bit', () => {
    const shape = logisticShape(30);
    const spec = resolveOptimizerSpec({ name: 'sgd', l1: 0.05, weightDecay: 0.1 });
    const parts = Array.from({ length: 41 }, (_, index) => randomPart(seeded(200 + index), 30, 1, 5));
    const whole = new SparseModel(shape, spec, new Float64Array(shape.parameterCount), 1, 0, null);
    for (let step = 0; step < 40; step++) {
      whole.update(parts[step]!, 9, 0.2, parts[step + 1]!.indices);
      if (step % 7 === 0) whole.exposeAll(); // an evaluation pass: the version moves, the values do not
    }
    const first = new SparseModel(shape, spec, new Float64Array(shape.parameterCount), 1, 0, null);
    for (let step = 0; step < 17; step++) first.update(parts[step]!, 9, 0.2, parts[step + 1]!.indices);
    const state = first.optimizerState();
    expect(Object.keys(state.buffers)).toEqual(['penalty', 'penaltyAt']);
    const resumed = new SparseModel(shape, spec, first.rawParams(), first.scale, first.version, state);
    for (let step = 17; step < 40; step++) resumed.update(parts[step]!, 9, 0.2, parts[step + 1]!.indices);
    expect(Array.from(resumed.theta())).toEqual(Array.from(whole.theta()));
    expect(resumed.optimizerState()).toEqual(whole.optimizerState());
    expect(whole.version).toBe(40 + 6);
    const bad = { ...state, buffers: { penalty: Float64Array.of(1), penaltyAt: Float64Array.of(2) } };
    expect(() => new SparseModel(shape, spec, first.rawParams(), 1, 17, bad)).toThrow(CheckpointError);
  });

  it('sgd with --l1: deltas and full vectors (a late joiner, an evaluation) give replicas the dense weights wherever a step or a pass reads them', () => {
    const shape = logisticShape(40);
    const D = 40;
    const model = new SparseModel(shape, resolveOptimizerSpec({ name: 'sgd', l1: 0.05 }), new Float64Array(shape.parameterCount), 1, 0, null);
    const broadcast = new SparseBroadcast(model, D, 1);
    const limits = limitsFor(D, 1);
    const peer = () => ({
      paramsVersion: -1,
      stepBytes: 0,
      received: [] as Buffer[],
      sendBytes(bytes: Buffer) {
        this.received.push(bytes);
      },
    });
    const replicaOf = (): SparseReplica => new SparseReplica({ v: new Float64Array(D), scale: 1, bias: new Float64Array(1) }, D, 1);
    const deliver = (from: ReturnType<typeof peer>, replica: SparseReplica): void => {
      for (const bytes of from.received.splice(0)) {
        const message = decodeCoordinatorMessage(bytes, limits);
        if (message.kind !== 'params') throw new Error('expected params');
        replica.apply(message);
      }
    };
    const random = seeded(17);
    const parts = Array.from({ length: 31 }, () => randomPart(random, D, 1, 5));
    const early = peer();
    const earlyReplica = replicaOf();
    for (let step = 0; step < 30; step++) {
      model.update(parts[step]!, 8, 0.5, parts[step + 1]!.indices);
      broadcast.sync([early]);
      deliver(early, earlyReplica);
      const theta = model.theta();
      // The next step reads these coordinates: the replica holds the current weights there.
      for (const j of parts[step + 1]!.indices) expect(earlyReplica.params.v[j]! * earlyReplica.params.scale).toBe(theta[j]);
      if (step === 20) {
        const late = peer();
        const lateReplica = replicaOf();
        broadcast.sync([late]);
        deliver(late, lateReplica);
        for (let j = 0; j < D; j++) expect(lateReplica.params.v[j]! * lateReplica.params.scale, `late w[${j}]`).toBe(theta[j]);
      }
    }
    // An evaluation pass reads every coordinate: exposeAll makes the next sync a full vector of the current weights.
    model.exposeAll();
    broadcast.sync([early]);
    deliver(early, earlyReplica);
    const theta = model.theta();
    for (let j = 0; j < D; j++) expect(earlyReplica.params.v[j]! * earlyReplica.params.scale, `w[${j}]`).toBe(theta[j]);
    expect(earlyReplica.version).toBe(model.version);
  });

  it('refuses --l1 outside sgd and ftrl, bad values, ftrl with a varying rate, and both on dense data, naming the flag', () => {
    expect(() => resolveOptimizerSpec({ name: 'adagrad', l1: 0.1 })).toThrow(/--l1 applies to --optimizer sgd or ftrl, not adagrad/);
    expect(() => resolveOptimizerSpec({ name: 'adam', l1: 0.1 })).toThrow(ConfigError);
    expect(() => resolveOptimizerSpec({ name: 'sgd', l1: -1 })).toThrow(/--l1 must be a non-negative finite number/);
    expect(() => resolveOptimizerSpec({ name: 'ftrl', ftrlBeta: 0 })).toThrow(/--ftrl-beta must be a positive finite number/);
    const ftrl = resolveOptimizerSpec({ name: 'ftrl', l1: 1, weightDecay: 30 });
    expect(() => checkSparseOptimizer(ftrl, 0.1, CONSTANT)).not.toThrow(); // λ2 of ftrl is in a denominator: no bound with the rate
    expect(() => checkSparseOptimizer(ftrl, 0.1, resolveLrScheduleSpec({ lr: 0.1, schedule: 'cosine' }))).toThrow(
      /--lr-schedule cosine: --optimizer ftrl takes a constant α/,
    );
    expect(() => checkSparseOptimizer(ftrl, 0.1, resolveLrScheduleSpec({ lr: 0.1, warmupSteps: 3 }))).toThrow(/--warmup-steps/);
    expect(() => checkSparseOptimizer(ftrl, 0.1, resolveLrScheduleSpec({ lr: 0.1, decayEpochs: 2 }))).toThrow(/--lr-decay-epochs/);
    const shape = logisticShape(3);
    expect(() => createOptimizer(ftrl, shape.parameterCount, shape.isDecayed)).toThrow(/--optimizer ftrl trains sparse data only/);
    expect(() => createOptimizer(resolveOptimizerSpec({ l1: 0.1 }), shape.parameterCount, shape.isDecayed)).toThrow(/--l1 trains sparse data only/);
  });
});

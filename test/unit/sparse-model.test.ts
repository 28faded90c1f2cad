import { describe, expect, it } from 'vitest';
import { createOptimizer, resolveOptimizerSpec } from '../../coordinator/optimizers.js';
import { SparseBroadcast } from '../../coordinator/sparse-broadcast.js';
import { checkSparseOptimizer, MIN_SCALE, SparseModel } from '../../coordinator/sparse-model.js';
import { DptError, ProtocolError } from '../../shared/errors.js';
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
      expect(() => checkSparseOptimizer(resolveOptimizerSpec({ name }), 0.1)).toThrow(/--optimizer/);
    }
    expect(() => checkSparseOptimizer(resolveOptimizerSpec({ name: 'adagrad', weightDecay: 0.1 }), 0.1)).toThrow(/--l2/);
    expect(() => checkSparseOptimizer(resolveOptimizerSpec({ name: 'sgd', weightDecay: 20 }), 0.1)).toThrow(/--lr × --l2/);
    expect(() => checkSparseOptimizer(resolveOptimizerSpec({ name: 'sgd', weightDecay: 0.1 }), 0.1)).not.toThrow();
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

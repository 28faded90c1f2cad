// --class-weight balanced (issue #12): the class count over the training rows, sklearn's
// n / (K·n_k) against a hand computation, and the welcome's classWeights check at the boundary.
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { balancedClassWeights, countClasses } from '../../coordinator/class-weights.js';
import { ProtocolError } from '../../shared/errors.js';
import { decodeCoordinatorMessage, type Limits } from '../../shared/protocol.js';

// Rows 1, 4 and 8 are validation rows; the training rows hold classes 0, 1, 0, 2, 2, 1, 0.
const LABELS = [0, 1, 1, 0, 2, 2, 2, 1, 2, 0];
const TRAIN = Uint32Array.from([0, 2, 3, 5, 6, 7, 9]);

/** A reader over LABELS that records every range it is asked for. */
function reader() {
  const reads: [number, number][] = [];
  const read = (from: number, to: number): number[] => {
    reads.push([from, to]);
    return LABELS.slice(from, to);
  };
  return { reads, read };
}

describe('countClasses', () => {
  it('counts the classes of the training rows only, in bounded batches that skip validation gaps', () => {
    for (const batchRows of [1, 2, 3, 64]) {
      const { reads, read } = reader();
      expect(Array.from(countClasses(TRAIN, 3, read, batchRows)), `batches of ${batchRows}`).toEqual([3, 2, 2]);
      for (const [from, to] of reads) expect(to - from).toBeLessThanOrEqual(batchRows);
      // Every training row is read once, whatever the batch size.
      const covered = TRAIN.filter((row) => reads.some(([from, to]) => row >= from && row < to));
      expect(covered.length).toBe(TRAIN.length);
    }
  });

  it('counts nothing over no training rows, and refuses a label that is not below K', () => {
    expect(Array.from(countClasses(new Uint32Array(0), 2, reader().read))).toEqual([0, 0]);
    expect(() => countClasses(TRAIN, 2, reader().read)).toThrow(/row 5: class 2 is not below the run's 2 classes/);
  });
});

describe('balancedClassWeights', () => {
  it("is sklearn's n / (K·n_k): n = 7 rows, K = 3, n = (3, 2, 2) give 7/9, 7/6, 7/6", () => {
    expect(Array.from(balancedClassWeights(Float64Array.from([3, 2, 2])))).toEqual([7 / 9, 7 / 6, 7 / 6]);
    // Each class then weighs n/K in all: Σ_k c_k·n_k = n.
    const counts = [3, 2, 2];
    expect(counts.reduce((sum, count, k) => sum + count * (balancedClassWeights(Float64Array.from(counts))[k] as number), 0)).toBeCloseTo(7, 12);
  });

  it('gives a class without training rows weight 0 (it weighs no row), the others n / (K·n_k) with K counting it', () => {
    expect(Array.from(balancedClassWeights(Float64Array.from([3, 2, 2, 0])))).toEqual([7 / 12, 7 / 8, 7 / 8, 0]);
  });

  it('gives every class weight 1 when the classes are balanced', () => {
    expect(Array.from(balancedClassWeights(Float64Array.from([5, 5])))).toEqual([1, 1]);
  });
});

describe('the welcome carries the class weights', () => {
  const LIMITS: Limits = { features: 3, parameters: 4, maxChunks: 4 };
  const raw = new Packr({ moreTypes: true, useRecords: false });
  const welcome = {
    kind: 'welcome',
    protocol: 4,
    workerId: 2,
    dataPath: '/srv/data/train.dpt',
    labelColumn: null,
    rows: 10,
    features: 3,
    sha256: 'ab'.repeat(32),
    schedule: { rows: 10, valFraction: 0, seed: 1, shuffle: true, shuffleBlockRows: 0, batchSize: 4, chunksPerBatch: 1 },
    kernel: 'ts',
    reduction: 'r',
    standardization: null,
    model: 'softmax',
    classes: 3,
  };
  const fieldOf = (message: object): { field: string | undefined; message: string } => {
    try {
      decodeCoordinatorMessage(raw.pack(message), LIMITS);
    } catch (error) {
      if (error instanceof ProtocolError) return { field: error.field, message: error.message };
      throw error;
    }
    throw new Error('expected a ProtocolError');
  };

  it('reads K finite weights ≥ 0, and null or an absent field as an unweighted run', () => {
    const weights = Float64Array.from([7 / 9, 0, 7 / 6]);
    expect(decodeCoordinatorMessage(raw.pack({ ...welcome, classWeights: weights }), LIMITS)).toMatchObject({ classWeights: weights });
    expect(decodeCoordinatorMessage(raw.pack({ ...welcome, classWeights: null }), LIMITS)).toMatchObject({ classWeights: null });
    expect(decodeCoordinatorMessage(raw.pack(welcome), LIMITS)).toMatchObject({ classWeights: null });
  });

  it('refuses weights of the wrong length or type, non-finite or negative, naming the field', () => {
    for (const bad of [
      Float64Array.from([1, 1]),
      Float64Array.from([1, 1, 1, 1]),
      [1, 1, 1],
      Float64Array.from([1, Number.NaN, 1]),
      Float64Array.from([1, Infinity, 1]),
    ]) {
      expect(fieldOf({ ...welcome, classWeights: bad }).field).toBe('classWeights');
    }
    const negative = fieldOf({ ...welcome, classWeights: Float64Array.from([1, -0.5, 1]) });
    expect(negative.field).toBe('classWeights');
    expect(negative.message).toMatch(/≥ 0/);
  });
});

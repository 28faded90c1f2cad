import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../shared/errors.js';
import { decodeCoordinatorMessage, decodeWorkerMessage, encodeMessage, type Limits, MAX_WORKER_NAME, workerName } from '../../shared/protocol.js';

const LIMITS: Limits = { features: 3, parameters: 4, maxChunks: 4 };
// An independent encoder, so malformed messages can be built field by field.
const raw = new Packr({ moreTypes: true, useRecords: false });

// Subtrees (level 0, index 1) and (level 1, index 1) of a 4-chunk tree: chunks 1, then 2 and 3.
const goodPart = {
  kind: 'part',
  step: 5,
  subtrees: Uint32Array.from([0, 1, 1, 1]),
  sums: new Float64Array(10).fill(0.5),
  rows: Uint32Array.from([3, 6]),
};
const goodStep = { kind: 'step', step: 2, assign: Uint32Array.from([7, 0, 2, 9, 2, 4]), theta: Float64Array.from([1, 2, 3, -1]) };

function coordinatorError(bytes: Uint8Array, limits: Limits = LIMITS): ProtocolError {
  try {
    decodeCoordinatorMessage(bytes, limits);
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Error('expected a ProtocolError');
}

function protocolError(bytes: Uint8Array, limits: Limits = LIMITS): ProtocolError {
  try {
    decodeWorkerMessage(bytes, limits);
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Error('expected a ProtocolError');
}

describe('the protocol codec', () => {
  it('round-trips a part with its typed arrays as raw binary', () => {
    const bytes = encodeMessage({ kind: 'part', step: 5, subtrees: goodPart.subtrees, sums: goodPart.sums, rows: goodPart.rows });
    // The float64 values travel as their raw little-endian bytes, not as msgpack numbers.
    const sums = Float64Array.from({ length: 10 }, (_, i) => i / 7);
    const withRawSums = encodeMessage({ kind: 'part', step: 5, subtrees: goodPart.subtrees, sums, rows: goodPart.rows });
    expect(withRawSums.includes(Buffer.from(sums.buffer))).toBe(true);
    const message = decodeWorkerMessage(bytes, LIMITS);
    expect(message.kind).toBe('part');
    if (message.kind !== 'part') return;
    expect(message.sums).toBeInstanceOf(Float64Array);
    expect(Array.from(message.sums)).toEqual(Array.from(goodPart.sums));
    expect(Array.from(message.subtrees)).toEqual([0, 1, 1, 1]);
  });

  it('decodes a step on the worker side, at an unaligned offset too', () => {
    const bytes = encodeMessage({ kind: 'step', step: 2, assign: goodStep.assign, theta: goodStep.theta });
    const shifted = Buffer.concat([Buffer.alloc(3), bytes]).subarray(3);
    const message = decodeCoordinatorMessage(shifted, LIMITS);
    expect(message).toMatchObject({ kind: 'step', step: 2 });
    if (message.kind === 'step') expect(Array.from(message.theta)).toEqual([1, 2, 3, -1]);
    if (message.kind === 'step') expect(Array.from(message.assign)).toEqual([7, 0, 2, 9, 2, 4]);
  });

  it.each([
    ['an assignment table that is not triples', raw.pack({ ...goodStep, assign: Uint32Array.from([7, 0, 2, 9]) }), 'assign'],
    ['an empty assignment table', raw.pack({ ...goodStep, assign: new Uint32Array(0) }), 'assign'],
    ['an empty range', raw.pack({ ...goodStep, assign: Uint32Array.from([7, 2, 2]) }), 'assign'],
    ['a range past the chunk bound', raw.pack({ ...goodStep, assign: Uint32Array.from([7, 2, 5]) }), 'assign'],
    ['overlapping ranges', raw.pack({ ...goodStep, assign: Uint32Array.from([7, 0, 3, 9, 2, 4]) }), 'assign'],
    ['ranges out of order', raw.pack({ ...goodStep, assign: Uint32Array.from([9, 2, 4, 7, 0, 2]) }), 'assign'],
    ['a table as a plain array', raw.pack({ ...goodStep, assign: [7, 0, 2] }), 'assign'],
    ['a θ of the wrong length', raw.pack({ ...goodStep, theta: new Float64Array(3) }), 'theta'],
    ['a non-finite θ', raw.pack({ ...goodStep, theta: Float64Array.from([1, Number.NaN, 3, 0]) }), 'theta'],
  ])('rejects a step with %s naming the field', (_name, bytes, field) => {
    const error = coordinatorError(bytes);
    expect(error.code).toBe('DPT_PROTOCOL');
    expect(error.field).toBe(field);
  });

  it.each([
    ['garbage bytes', Uint8Array.from([0xc1, 0xff, 0x00]), 'bytes'],
    ['a truncated message', encodeMessage(goodPart as never).subarray(0, 20), 'bytes'],
    ['a non-map', raw.pack([1, 2, 3]), 'bytes'],
    ['a missing kind', raw.pack({ step: 1 }), 'kind'],
    ['an unknown kind', raw.pack({ kind: 'steal' }), 'kind'],
    ['a prototype-named kind', raw.pack({ kind: 'toString' }), 'kind'],
    ['a wrong vector length', raw.pack({ ...goodPart, sums: new Float64Array(9) }), 'sums'],
    ['a vector of the wrong type', raw.pack({ ...goodPart, sums: new Float32Array(10) }), 'sums'],
    ['a vector as a plain array', raw.pack({ ...goodPart, sums: Array.from({ length: 10 }, () => 1) }), 'sums'],
    ['a NaN', raw.pack({ ...goodPart, sums: new Float64Array(10).fill(Number.NaN) }), 'sums'],
    ['an Infinity', raw.pack({ ...goodPart, sums: Float64Array.from({ length: 10 }, (_, i) => (i === 7 ? Number.POSITIVE_INFINITY : 0)) }), 'sums'],
    ['a negative step', raw.pack({ ...goodPart, step: -1 }), 'step'],
    ['a fractional step', raw.pack({ ...goodPart, step: 1.5 }), 'step'],
    ['too many subtrees', raw.pack({ ...goodPart, subtrees: new Uint32Array(10), sums: new Float64Array(25), rows: new Uint32Array(5) }), 'subtrees'],
    ['no subtrees', raw.pack({ ...goodPart, subtrees: new Uint32Array(0), sums: new Float64Array(0), rows: new Uint32Array(0) }), 'subtrees'],
    ['an odd subtree list', raw.pack({ ...goodPart, subtrees: Uint32Array.from([0, 1, 1]) }), 'subtrees'],
    ['a subtree listed twice', raw.pack({ ...goodPart, subtrees: Uint32Array.from([0, 2, 0, 2]) }), 'subtrees'],
    ['subtrees out of order', raw.pack({ ...goodPart, subtrees: Uint32Array.from([1, 1, 0, 1]) }), 'subtrees'],
    ['a subtree inside the one before it', raw.pack({ ...goodPart, subtrees: Uint32Array.from([1, 1, 0, 3]) }), 'subtrees'],
    ['a level above the tree', raw.pack({ ...goodPart, subtrees: Uint32Array.from([3, 0, 0, 3]) }), 'subtrees'],
    ['a subtree past the chunk bound', raw.pack({ ...goodPart, subtrees: Uint32Array.from([0, 1, 1, 2]) }), 'subtrees'],
    ['subtrees as a plain array', raw.pack({ ...goodPart, subtrees: [0, 1, 1, 1] }), 'subtrees'],
    ['row counts of the wrong length', raw.pack({ ...goodPart, rows: Uint32Array.from([3]) }), 'rows'],
    [
      'a block listed twice in a pass part',
      raw.pack({ kind: 'passPart', job: 1, blocks: Uint32Array.from([0, 3, 3]), sums: new Float64Array(3 * 2), rows: Uint32Array.from([1, 1, 1]) }),
      'blocks',
    ],
    ['negative row counts', raw.pack({ ...goodPart, rows: Int32Array.from([-1, 3]) }), 'rows'],
    ['a token that is not a string', raw.pack({ kind: 'hello', protocol: 1, token: 5, node: 'v20', kernel: 'k' }), 'token'],
    ['an oversized token', raw.pack({ kind: 'hello', protocol: 1, token: 'x'.repeat(5000), node: 'v20', kernel: 'k' }), 'token'],
    ['a CPU list that is not a string', raw.pack({ kind: 'hello', protocol: 1, token: 't', node: 'v20', kernel: 'k', cpus: [0, 1] }), 'cpus'],
    ['a worker name that is not a string', raw.pack({ kind: 'hello', protocol: 4, token: 't', node: 'v20', kernel: 'k', name: 7 }), 'name'],
    ['an empty worker name', raw.pack({ kind: 'hello', protocol: 4, token: 't', node: 'v20', kernel: 'k', name: '' }), 'name'],
    ['a worker name of 65 characters', raw.pack({ kind: 'hello', protocol: 4, token: 't', node: 'v20', kernel: 'k', name: 'a'.repeat(65) }), 'name'],
    [
      'a worker name with a line break and an escape sequence (log injection)',
      raw.pack({ kind: 'hello', protocol: 4, token: 't', node: 'v20', kernel: 'k', name: 'a\nworker 9 joined\u001b[2J' }),
      'name',
    ],
    ['a worker name with a space', raw.pack({ kind: 'hello', protocol: 4, token: 't', node: 'v20', kernel: 'k', name: 'host a' }), 'name'],
  ])('rejects %s naming the field', (_name, bytes, field) => {
    const error = protocolError(bytes);
    expect(error.code).toBe('DPT_PROTOCOL');
    expect(error.field).toBe(field);
  });

  it('reads a hello without a CPU list (an older worker) as unknown CPUs', () => {
    const hello = decodeWorkerMessage(raw.pack({ kind: 'hello', protocol: 1, token: 't', node: 'v20', kernel: 'k' }), {
      features: null,
      parameters: null,
      maxChunks: 4,
    });
    expect(hello).toEqual({ kind: 'hello', protocol: 1, token: 't', node: 'v20', kernel: 'k', cpus: '' });
  });

  it('reads a hello with a worker name as it is, and one without a name (same protocol 4) without one', () => {
    const limits = { features: null, parameters: null, maxChunks: 4 };
    const named = { kind: 'hello', protocol: 4, token: 't', node: 'v20', kernel: 'k', cpus: '0', name: `web-1.example_${'x'.repeat(50)}` };
    expect(named.name).toHaveLength(MAX_WORKER_NAME);
    expect(decodeWorkerMessage(raw.pack(named), limits)).toEqual(named);
    const { name: _name, ...unnamed } = named;
    expect(decodeWorkerMessage(raw.pack(unnamed), limits)).toEqual(unnamed);
  });

  it("reads a ready message's kernel implementation, and one without it (a relay, an older worker) without one; refuses a malformed one", () => {
    const ready = { kind: 'ready', rows: 10, features: 3, sha256: 'a'.repeat(64), kernel: 'native avx512f' };
    expect(decodeWorkerMessage(raw.pack(ready), LIMITS)).toEqual(ready);
    const { kernel: _kernel, ...without } = ready;
    expect(decodeWorkerMessage(raw.pack(without), LIMITS)).toEqual(without);
    for (const kernel of ['', 'Native', 'native  avx2', ' wasm', 'wasm\n', 'x'.repeat(33), 7]) {
      const error = protocolError(raw.pack({ ...ready, kernel }));
      expect(error.field, String(kernel)).toBe('kernel');
      expect(error.message).toMatch(/expected 1 to 32 characters/);
    }
  });

  it('makes a worker name from any host name: other characters become -, cut to 64, nothing left is no name', () => {
    expect(workerName('host-a')).toBe('host-a');
    expect(workerName('Mac mini (2)')).toBe('Mac-mini--2-');
    expect(workerName('rêve\n')).toBe('r-ve-');
    expect(workerName('h'.repeat(200))).toBe('h'.repeat(MAX_WORKER_NAME));
    expect(workerName('')).toBeUndefined();
    // Whatever it makes, the coordinator's check accepts.
    for (const host of ['host-a', 'Mac mini (2)', 'rêve\n', 'h'.repeat(200), '\u0000\u001b']) {
      const name = workerName(host);
      expect(name).toBeDefined();
      const hello = { kind: 'hello', protocol: 4, token: 't', node: 'v20', kernel: 'k', cpus: '', name: name ?? '' } as const;
      expect(decodeWorkerMessage(encodeMessage(hello), { features: null, parameters: null, maxChunks: 4 })).toEqual(hello);
    }
  });

  it('carries the data block a worker found bad in its fail message, and only a block number', () => {
    expect(decodeWorkerMessage(encodeMessage({ kind: 'fail', message: 'bad block', dataBlock: 3 }), LIMITS)).toEqual({
      kind: 'fail',
      message: 'bad block',
      dataBlock: 3,
    });
    expect(decodeWorkerMessage(raw.pack({ kind: 'fail', message: 'other' }), LIMITS)).toEqual({ kind: 'fail', message: 'other' });
    for (const dataBlock of [-1, 1.5, '3', null]) {
      expect(protocolError(raw.pack({ kind: 'fail', message: 'x', dataBlock })).message).toMatch(/message 'fail', field 'dataBlock'/);
    }
  });

  it('rejects a part before the handshake has fixed the model dimension', () => {
    expect(protocolError(raw.pack(goodPart), { features: null, parameters: null, maxChunks: 4 }).message).toMatch(/before the handshake/);
  });
});

describe('the welcome (data without copies, issue #11)', () => {
  const welcome = {
    kind: 'welcome',
    protocol: 1,
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
    classes: 26,
  };

  it('names the model and its classes (issue #12), and refuses a model it does not know or classes that do not fit it', () => {
    expect(decodeCoordinatorMessage(raw.pack(welcome), LIMITS)).toMatchObject({ model: 'softmax', classes: 26 });
    expect(coordinatorError(raw.pack({ ...welcome, model: 'tree' })).field).toBe('model');
    expect(coordinatorError(raw.pack({ ...welcome, classes: 1 })).field).toBe('classes');
    expect(coordinatorError(raw.pack({ ...welcome, model: 'logistic', classes: 3 })).field).toBe('classes');
    const { model: _model, ...older } = welcome;
    expect(coordinatorError(raw.pack(older)).field).toBe('model');
  });

  it('reads dataUrl, and its absence (an older coordinator) as null: the coordinator does not serve its data', () => {
    expect(decodeCoordinatorMessage(raw.pack({ ...welcome, dataUrl: '/data' }), LIMITS)).toMatchObject({ kind: 'welcome', dataUrl: '/data' });
    expect(decodeCoordinatorMessage(raw.pack(welcome), LIMITS)).toMatchObject({ kind: 'welcome', dataUrl: null });
    expect(coordinatorError(raw.pack({ ...welcome, dataUrl: 5 })).field).toBe('dataUrl');
  });

  it('refuses an identity that is not 64 lower-case hex digits (a worker names its cache file after it)', () => {
    for (const sha256 of ['../../etc/passwd', 'AB'.repeat(32), 'ab'.repeat(31), `${'ab'.repeat(31)}/x`]) {
      const error = coordinatorError(raw.pack({ ...welcome, sha256 }));
      expect(error.field, sha256).toBe('sha256');
      expect(error.message).toMatch(/64 lower-case hex digits/);
    }
  });
});

describe('sparse runs (issue #13)', () => {
  // D = 5 features, softmax over 2 classes: θ of 12, O = 2.
  const SPARSE: Limits = { features: 5, parameters: 12, maxChunks: 4, sparse: true };
  const params = {
    kind: 'params',
    base: 3,
    version: 4,
    scale: 0.5,
    bias: Float64Array.of(1, 2),
    indices: Uint32Array.of(0, 4),
    values: Float64Array.of(1, 2, 3, 4),
  };
  // Subtrees (0, 1) and (1, 1): two parts of O + 1 = 3 sums each, with 2 and 1 touched coordinates.
  const part = {
    kind: 'part',
    step: 5,
    subtrees: Uint32Array.of(0, 1, 1, 1),
    sums: new Float64Array(6).fill(0.25),
    rows: Uint32Array.of(3, 6),
    sparse: { counts: Uint32Array.of(2, 1), indices: Uint32Array.of(1, 3, 0), values: new Float64Array(6).fill(1) },
  };

  it('reads a params message, a sparse part, and a step or pass that names a version instead of θ', () => {
    expect(decodeCoordinatorMessage(raw.pack(params), SPARSE)).toMatchObject({ kind: 'params', base: 3, version: 4, scale: 0.5 });
    expect(decodeWorkerMessage(raw.pack(part), SPARSE)).toMatchObject({ kind: 'part', step: 5 });
    const step = decodeCoordinatorMessage(raw.pack({ ...goodStep, theta: new Float64Array(0), version: 4 }), SPARSE);
    expect(step).toMatchObject({ kind: 'step', version: 4 });
    const pass = { kind: 'pass', job: 1, purpose: 'eval', set: 'train', blocks: Uint32Array.of(0), theta: new Float64Array(0), version: 4 };
    expect(decodeCoordinatorMessage(raw.pack(pass), SPARSE)).toMatchObject({ kind: 'pass', version: 4 });
  });

  it('refuses params with coordinates out of order, beyond D, values of the wrong count, a non-positive scale, a base after the version', () => {
    expect(coordinatorError(raw.pack({ ...params, indices: Uint32Array.of(4, 0) }), SPARSE).message).toMatch(/strictly increasing/);
    expect(coordinatorError(raw.pack({ ...params, indices: Uint32Array.of(0, 5) }), SPARSE).message).toMatch(/not below D = 5/);
    expect(coordinatorError(raw.pack({ ...params, values: Float64Array.of(1, 2, 3) }), SPARSE).field).toBe('values');
    expect(coordinatorError(raw.pack({ ...params, values: Float64Array.of(1, 2, 3, Number.NaN) }), SPARSE).field).toBe('values');
    expect(coordinatorError(raw.pack({ ...params, scale: 0 }), SPARSE).field).toBe('scale');
    expect(coordinatorError(raw.pack({ ...params, base: 5 }), SPARSE).field).toBe('base');
    expect(coordinatorError(raw.pack({ ...params, bias: Float64Array.of(1) }), SPARSE).field).toBe('bias');
    // A dense run never takes params.
    expect(coordinatorError(raw.pack(params), { ...SPARSE, sparse: false }).message).toMatch(/only a sparse run/);
  });

  it('refuses a sparse part with miscounted, repeated or out-of-range coordinates, or dense sums; a dense run refuses sparse fields', () => {
    const bad = (sparse: object): ProtocolError => protocolError(raw.pack({ ...part, sparse: { ...part.sparse, ...sparse } }), SPARSE);
    expect(bad({ counts: Uint32Array.of(1, 1) }).field).toBe('indices');
    expect(bad({ indices: Uint32Array.of(3, 1, 0) }).message).toMatch(/strictly increasing/);
    expect(bad({ indices: Uint32Array.of(1, 3, 9) }).message).toMatch(/not below D = 5/);
    expect(bad({ values: new Float64Array(5) }).field).toBe('values');
    expect(protocolError(raw.pack({ ...part, sums: new Float64Array(26) }), SPARSE).field).toBe('sums');
    expect(protocolError(raw.pack({ ...goodPart, sparse: part.sparse }), LIMITS).field).toBe('sparse');
  });

  it('refuses a step of a sparse run carrying θ or no version, and a step of a dense run without θ', () => {
    expect(coordinatorError(raw.pack({ ...goodStep, theta: new Float64Array(12), version: 1 }), SPARSE).field).toBe('theta');
    expect(coordinatorError(raw.pack({ ...goodStep, theta: new Float64Array(0) }), SPARSE).field).toBe('version');
    expect(coordinatorError(raw.pack({ ...goodStep, theta: new Float64Array(0), version: 1 }), LIMITS).field).toBe('theta');
  });
});

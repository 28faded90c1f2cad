// The hand-written protobuf encoder of cli/onnx-proto.ts against the wire-format examples of the
// protobuf encoding guide (bytes written out there, not produced by any encoder here), and the
// ONNX messages it builds against their fields, decoded by a minimal reader written in this test.

import { describe, expect, it } from 'vitest';
import { encodeOnnxModel, nodeProto, ProtoWriter, tensorProto, valueInfoProto } from '../../cli/onnx-proto.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Field number, wire type and payload (a bigint for varints, bytes otherwise) of each field of a message. */
function decodeFields(bytes: Uint8Array): { field: number; wireType: number; value: bigint | Uint8Array }[] {
  const fields: { field: number; wireType: number; value: bigint | Uint8Array }[] = [];
  let offset = 0;
  const varint = (): bigint => {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = bytes[offset++];
      if (byte === undefined) throw new Error('truncated varint');
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value;
    }
    throw new Error('varint too long');
  };
  while (offset < bytes.length) {
    const tag = Number(varint());
    const wireType = tag & 7;
    if (wireType === 0) fields.push({ field: tag >> 3, wireType, value: varint() });
    else if (wireType === 2) {
      const length = Number(varint());
      fields.push({ field: tag >> 3, wireType, value: bytes.subarray(offset, offset + length) });
      offset += length;
    } else throw new Error(`unexpected wire type ${wireType}`);
  }
  return fields;
}

const text = (value: bigint | Uint8Array): string => new TextDecoder().decode(value as Uint8Array);

describe('ProtoWriter', () => {
  it('writes the encoding guide examples: varint 150, the string "testing", an embedded message', () => {
    expect(hex(new ProtoWriter().int(1, 150).bytes())).toBe('089601');
    expect(hex(new ProtoWriter().string(2, 'testing').bytes())).toBe('120774657374696e67');
    expect(hex(new ProtoWriter().message(3, new ProtoWriter().int(1, 150)).bytes())).toBe('1a03089601');
  });

  it('writes a negative int64 as ten bytes of two’s complement and 0 as one byte', () => {
    expect(hex(new ProtoWriter().int(1, -1).bytes())).toBe('08ffffffffffffffffff01');
    expect(hex(new ProtoWriter().int(1, 0).bytes())).toBe('0800');
    expect(hex(new ProtoWriter().int(1, 2 ** 53 - 1).bytes())).toBe('08ffffffffffffff0f');
  });

  it('encodes a field number past 15 in a two-byte tag', () => {
    // field 20, varint: (20 << 3) | 0 = 160 = 0xa0 0x01
    expect(hex(new ProtoWriter().int(20, 2).bytes())).toBe('a00102');
  });

  it('counts multi-byte UTF-8 characters in a string’s length, not UTF-16 units', () => {
    expect(hex(new ProtoWriter().string(1, 'é').bytes())).toBe('0a02c3a9');
  });
});

describe('ONNX messages', () => {
  it('stores a float tensor little-endian in raw_data with its dims, type and name', () => {
    const fields = decodeFields(tensorProto({ name: 'w', dims: [2, 1], type: 'float', values: Float32Array.of(1, -2) }).bytes());
    expect(fields.map((f) => f.field)).toEqual([1, 1, 2, 8, 9]);
    expect(fields.slice(0, 3).map((f) => f.value)).toEqual([2n, 1n, 1n]); // dims 2, 1; FLOAT = 1
    expect(text(fields[3]!.value)).toBe('w');
    expect(hex(fields[4]!.value as Uint8Array)).toBe('0000803f000000c0'); // 1.0f, -2.0f in IEEE 754, little-endian
  });

  it('stores int64 and double tensors raw, string tensors in string_data', () => {
    const int64 = decodeFields(tensorProto({ name: 'c', dims: [2], type: 'int64', values: BigInt64Array.of(1n, -1n) }).bytes());
    expect(int64[1]!.value).toBe(7n); // INT64
    expect(hex(int64[3]!.value as Uint8Array)).toBe('0100000000000000ffffffffffffffff');
    const double = decodeFields(tensorProto({ name: 'd', dims: [1], type: 'double', values: Float64Array.of(0.5) }).bytes());
    expect(double[1]!.value).toBe(11n); // DOUBLE
    expect(hex(double[3]!.value as Uint8Array)).toBe('000000000000e03f');
    const strings = decodeFields(tensorProto({ name: 's', dims: [2], type: 'string', values: ['a', 'bé'] }).bytes());
    expect(strings.map((f) => f.field)).toEqual([1, 2, 6, 6, 8]);
    expect(strings[1]!.value).toBe(8n); // STRING
    expect([text(strings[2]!.value), text(strings[3]!.value)]).toEqual(['a', 'bé']);
  });

  it('writes a value info with a symbolic and a fixed dimension', () => {
    const [name, type] = decodeFields(valueInfoProto({ name: 'X', type: 'float', shape: ['N', 3] }).bytes());
    expect(text(name!.value)).toBe('X');
    const [tensorType] = decodeFields(type!.value as Uint8Array);
    const [elemType, shape] = decodeFields(tensorType!.value as Uint8Array);
    expect(elemType!.value).toBe(1n);
    const dims = decodeFields(shape!.value as Uint8Array).map((d) => decodeFields(d.value as Uint8Array)[0]!);
    expect(dims.map((d) => [d.field, d.field === 2 ? text(d.value) : d.value])).toEqual([
      [2, 'N'],
      [1, 3n],
    ]);
  });

  it('writes a node’s inputs, outputs, name, op type and INT attributes', () => {
    const fields = decodeFields(nodeProto({ opType: 'ArgMax', name: 'a', inputs: ['s'], outputs: ['i'], attributes: { axis: 1, keepdims: 0 } }).bytes());
    expect(fields.map((f) => f.field)).toEqual([1, 2, 3, 4, 5, 5]);
    expect(fields.slice(0, 4).map((f) => text(f.value))).toEqual(['s', 'i', 'a', 'ArgMax']);
    const axis = decodeFields(fields[4]!.value as Uint8Array);
    expect(axis.map((f) => [f.field, f.field === 1 ? text(f.value) : f.value])).toEqual([
      [1, 'axis'],
      [3, 1n],
      [20, 2n], // AttributeType INT
    ]);
  });

  it('writes the model’s IR version, producer, graph, opset import and metadata', () => {
    const bytes = encodeOnnxModel({
      irVersion: 7,
      opsetVersion: 13,
      producerName: 'dpt',
      producerVersion: '0.1.0',
      docString: 'doc',
      graph: { name: 'g', docString: 'doc', nodes: [], initializers: [], inputs: [], outputs: [] },
      metadata: [['k', 'v']],
    });
    const fields = decodeFields(bytes);
    expect(fields.map((f) => f.field)).toEqual([1, 2, 3, 6, 7, 8, 14]);
    expect(fields[0]!.value).toBe(7n);
    expect([text(fields[1]!.value), text(fields[2]!.value)]).toEqual(['dpt', '0.1.0']);
    const opset = decodeFields(fields[5]!.value as Uint8Array);
    expect(opset.map((f) => [f.field, f.field === 1 ? text(f.value) : f.value])).toEqual([
      [1, ''],
      [2, 13n],
    ]);
    expect(decodeFields(fields[6]!.value as Uint8Array).map((f) => text(f.value))).toEqual(['k', 'v']);
  });
});

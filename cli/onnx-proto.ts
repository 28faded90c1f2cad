// The few ONNX protobuf messages `dpt export --format onnx` writes (ModelProto, GraphProto,
// NodeProto, TensorProto, ValueInfoProto and what they hold), encoded by hand in the protobuf
// wire format: about 150 lines instead of a protobuf library and the ONNX schema as dependencies.
// Writes only; field numbers are those of onnx/onnx.proto (IR version 7 and later keep them).

/** An element type of a tensor (TensorProto.DataType). */
export type OnnxElementType = 'float' | 'int64' | 'string' | 'double';

const DATA_TYPE: Record<OnnxElementType, number> = { float: 1, int64: 7, string: 8, double: 11 };

/** A constant tensor (a graph initializer); values in row-major order, `dims` their shape. */
export type OnnxTensor = { readonly name: string; readonly dims: readonly number[] } & (
  | { readonly type: 'float'; readonly values: Float32Array }
  | { readonly type: 'double'; readonly values: Float64Array }
  | { readonly type: 'int64'; readonly values: BigInt64Array }
  | { readonly type: 'string'; readonly values: readonly string[] }
);

/** A graph input or output: a tensor type whose dimensions are sizes or symbolic names ('N'). */
export interface OnnxValueInfo {
  readonly name: string;
  readonly type: OnnxElementType;
  readonly shape: readonly (number | string)[];
}

/** One operator call; `attributes` are the INT attributes (the only kind dpt's graphs use). */
export interface OnnxNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name: string;
  readonly attributes?: Readonly<Record<string, number>>;
}

export interface OnnxGraph {
  readonly name: string;
  readonly docString: string;
  readonly nodes: readonly OnnxNode[];
  readonly initializers: readonly OnnxTensor[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  readonly irVersion: number;
  /** The version of the default (ai.onnx) operator set. */
  readonly opsetVersion: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString: string;
  readonly graph: OnnxGraph;
  /** ModelProto.metadata_props, in order; keys should be distinct. */
  readonly metadata: readonly (readonly [string, string])[];
}

const VARINT = 0;
const LENGTH_DELIMITED = 2;

/** Appends protobuf fields to a growing byte list; `bytes()` is the message. */
export class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  /** An int64/int32/enum field. Negative numbers take ten bytes (two's complement), as protobuf says. */
  int(field: number, value: number | bigint): this {
    this.tag(field, VARINT);
    this.varint(BigInt.asUintN(64, BigInt(value)));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytesField(field, new TextEncoder().encode(value));
  }

  bytesField(field: number, value: Uint8Array): this {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(BigInt(value.length));
    this.push(value);
    return this;
  }

  message(field: number, message: ProtoWriter): this {
    return this.bytesField(field, message.bytes());
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const part of this.parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }

  private tag(field: number, wireType: number): void {
    this.varint(BigInt(field * 8 + wireType));
  }

  /** Base-128, least significant group first, the high bit set on every byte but the last. */
  private varint(value: bigint): void {
    const out: number[] = [];
    let rest = value;
    while (rest >= 0x80n) {
      out.push(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    out.push(Number(rest));
    this.push(Uint8Array.from(out));
  }

  private push(part: Uint8Array): void {
    this.parts.push(part);
    this.length += part.length;
  }
}

/** TensorProto: dims 1, data_type 2, string_data 6, name 8, raw_data 9 (little-endian, fixed width). */
export function tensorProto(tensor: OnnxTensor): ProtoWriter {
  const writer = new ProtoWriter();
  for (const size of tensor.dims) writer.int(1, size);
  writer.int(2, DATA_TYPE[tensor.type]);
  if (tensor.type === 'string') {
    for (const value of tensor.values) writer.bytesField(6, new TextEncoder().encode(value));
  }
  writer.string(8, tensor.name);
  if (tensor.type !== 'string') writer.bytesField(9, littleEndian(tensor.values));
  return writer;
}

/** The bytes of a typed array in little-endian order, whatever the host's order. */
function littleEndian(values: Float32Array | Float64Array | BigInt64Array): Uint8Array {
  const view = new DataView(new ArrayBuffer(values.byteLength));
  values.forEach((value: number | bigint, i: number) => {
    if (values instanceof Float32Array) view.setFloat32(i * 4, value as number, true);
    else if (values instanceof Float64Array) view.setFloat64(i * 8, value as number, true);
    else view.setBigInt64(i * 8, value as bigint, true);
  });
  return new Uint8Array(view.buffer);
}

/** ValueInfoProto (name 1, type 2) → TypeProto (tensor_type 1) → Tensor (elem_type 1, shape 2) → dims (dim_value 1 | dim_param 2). */
export function valueInfoProto(info: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const size of info.shape) shape.message(1, typeof size === 'number' ? new ProtoWriter().int(1, size) : new ProtoWriter().string(2, size));
  const tensorType = new ProtoWriter().int(1, DATA_TYPE[info.type]).message(2, shape);
  return new ProtoWriter().string(1, info.name).message(2, new ProtoWriter().message(1, tensorType));
}

const ATTRIBUTE_INT = 2; // AttributeProto.AttributeType.INT

/** NodeProto: input 1, output 2, name 3, op_type 4, attribute 5 (AttributeProto: name 1, i 3, type 20). */
export function nodeProto(node: OnnxNode): ProtoWriter {
  const writer = new ProtoWriter();
  for (const input of node.inputs) writer.string(1, input);
  for (const output of node.outputs) writer.string(2, output);
  writer.string(3, node.name).string(4, node.opType);
  for (const [name, value] of Object.entries(node.attributes ?? {})) {
    writer.message(5, new ProtoWriter().string(1, name).int(3, value).int(20, ATTRIBUTE_INT));
  }
  return writer;
}

/** GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12. */
export function graphProto(graph: OnnxGraph): ProtoWriter {
  const writer = new ProtoWriter();
  for (const node of graph.nodes) writer.message(1, nodeProto(node));
  writer.string(2, graph.name);
  for (const tensor of graph.initializers) writer.message(5, tensorProto(tensor));
  writer.string(10, graph.docString);
  for (const input of graph.inputs) writer.message(11, valueInfoProto(input));
  for (const output of graph.outputs) writer.message(12, valueInfoProto(output));
  return writer;
}

/**
 * The bytes of an .onnx file. ModelProto: ir_version 1, producer_name 2, producer_version 3,
 * doc_string 6, graph 7, opset_import 8 (OperatorSetIdProto: domain 1, version 2; the empty domain
 * is ai.onnx), metadata_props 14 (StringStringEntryProto: key 1, value 2).
 */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const writer = new ProtoWriter().int(1, model.irVersion).string(2, model.producerName).string(3, model.producerVersion);
  writer.string(6, model.docString).message(7, graphProto(model.graph));
  writer.message(8, new ProtoWriter().string(1, '').int(2, model.opsetVersion));
  for (const [key, value] of model.metadata) writer.message(14, new ProtoWriter().string(1, key).string(2, value));
  return writer.bytes();
}

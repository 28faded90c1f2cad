// A small assembler from flat WebAssembly text (the instruction subset our kernels use) to a
// module binary, so the SIMD kernel is built from readable source in the repo at module load,
// without a toolchain at build time or a WAT compiler among the runtime dependencies.
// Not a general WAT parser: one memory import, function imports, functions with flat bodies.

export type ValueType = 'i32' | 'f32' | 'f64' | 'v128';

export interface FunctionImport {
  readonly module: string;
  readonly field: string;
  /** Referenced as `call $name` in bodies. */
  readonly name: string;
  readonly params: readonly ValueType[];
  readonly results: readonly ValueType[];
}

export interface FunctionSource {
  readonly name: string;
  /** [name, type] pairs, referenced as `local.get $name`. */
  readonly params: readonly (readonly [string, ValueType])[];
  readonly results: readonly ValueType[];
  readonly locals: readonly (readonly [string, ValueType])[];
  /** Flat WAT: one instruction and its immediates after another; `;;` comments; labels by name. */
  readonly body: string;
  /** Export name, or undefined to keep the function internal. */
  readonly export?: string;
}

export interface ModuleSource {
  /** Imported linear memory; `shared` memories never detach their views when they grow. */
  readonly memory: { readonly module: string; readonly field: string; readonly minPages: number; readonly maxPages: number; readonly shared: boolean };
  readonly imports: readonly FunctionImport[];
  readonly functions: readonly FunctionSource[];
}

const TYPE_CODE: Record<ValueType, number> = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/** Immediate kinds: none, local index, label depth, function index, i32/f64 constant, memarg, lane, 16 lanes. */
type Immediate = 'none' | 'local' | 'label' | 'func' | 'i32' | 'i64' | 'f64' | 'mem' | 'lane' | 'lanes' | 'block';

/** [opcode bytes, immediate, natural alignment (log2 bytes) for memory ops]. 0xfd-prefixed ops are SIMD. */
const OPS: Record<string, readonly [readonly number[], Immediate, number?]> = {
  unreachable: [[0x00], 'none'],
  block: [[0x02], 'block'],
  loop: [[0x03], 'block'],
  if: [[0x04], 'none'],
  else: [[0x05], 'none'],
  end: [[0x0b], 'none'],
  br: [[0x0c], 'label'],
  br_if: [[0x0d], 'label'],
  return: [[0x0f], 'none'],
  call: [[0x10], 'func'],
  drop: [[0x1a], 'none'],
  select: [[0x1b], 'none'],
  'local.get': [[0x20], 'local'],
  'local.set': [[0x21], 'local'],
  'local.tee': [[0x22], 'local'],
  'i32.load': [[0x28], 'mem', 2],
  'f32.load': [[0x2a], 'mem', 2],
  'f64.load': [[0x2b], 'mem', 3],
  'i32.load8_u': [[0x2d], 'mem', 0],
  'i32.load16_u': [[0x2f], 'mem', 1],
  'i32.store': [[0x36], 'mem', 2],
  'f64.store': [[0x39], 'mem', 3],
  'i32.const': [[0x41], 'i32'],
  'i64.const': [[0x42], 'i64'],
  'f64.const': [[0x44], 'f64'],
  'i32.eqz': [[0x45], 'none'],
  'i32.eq': [[0x46], 'none'],
  'i32.ne': [[0x47], 'none'],
  'i32.lt_s': [[0x48], 'none'],
  'i32.lt_u': [[0x49], 'none'],
  'i32.gt_s': [[0x4a], 'none'],
  'i32.gt_u': [[0x4b], 'none'],
  'i32.le_s': [[0x4c], 'none'],
  'i32.le_u': [[0x4d], 'none'],
  'i32.ge_s': [[0x4e], 'none'],
  'i32.ge_u': [[0x4f], 'none'],
  'f64.eq': [[0x61], 'none'],
  'f64.ne': [[0x62], 'none'],
  'f64.lt': [[0x63], 'none'],
  'f64.gt': [[0x64], 'none'],
  'f64.ge': [[0x66], 'none'],
  'i32.add': [[0x6a], 'none'],
  'i32.sub': [[0x6b], 'none'],
  'i32.mul': [[0x6c], 'none'],
  'i32.and': [[0x71], 'none'],
  'i32.or': [[0x72], 'none'],
  'i32.shl': [[0x74], 'none'],
  'i32.shr_s': [[0x75], 'none'],
  'i32.shr_u': [[0x76], 'none'],
  'i64.and': [[0x83], 'none'],
  'i64.or': [[0x84], 'none'],
  'i64.shl': [[0x86], 'none'],
  'i64.shr_u': [[0x88], 'none'],
  'f64.abs': [[0x99], 'none'],
  'f64.neg': [[0x9a], 'none'],
  'f64.add': [[0xa0], 'none'],
  'f64.sub': [[0xa1], 'none'],
  'f64.mul': [[0xa2], 'none'],
  'f64.div': [[0xa3], 'none'],
  'f64.max': [[0xa5], 'none'],
  'i32.wrap_i64': [[0xa7], 'none'],
  'i32.trunc_f64_s': [[0xaa], 'none'],
  'i64.extend_i32_u': [[0xad], 'none'],
  'f64.convert_i32_s': [[0xb7], 'none'],
  'f64.convert_i32_u': [[0xb8], 'none'],
  'f64.promote_f32': [[0xbb], 'none'],
  'i64.reinterpret_f64': [[0xbd], 'none'],
  'f64.reinterpret_i64': [[0xbf], 'none'],
  'v128.load': [[0xfd, 0x00], 'mem', 4],
  'v128.store': [[0xfd, 0x0b], 'mem', 4],
  'i8x16.shuffle': [[0xfd, 0x0d], 'lanes'],
  'f64x2.splat': [[0xfd, 0x14], 'none'],
  'f64x2.extract_lane': [[0xfd, 0x21], 'lane'],
  'v128.load64_zero': [[0xfd, 0x5d], 'mem', 3],
  'f64x2.promote_low_f32x4': [[0xfd, 0x5f], 'none'],
  'f64x2.add': [[0xfd, 0xf0], 'none'],
  'f64x2.sub': [[0xfd, 0xf1], 'none'],
  'f64x2.mul': [[0xfd, 0xf2], 'none'],
};

/** Assembles `source` into a WebAssembly binary; throws an Error naming the function and token. */
export function assembleModule(source: ModuleSource): Uint8Array {
  const signatures: string[] = [];
  const typeIndex = (params: readonly ValueType[], results: readonly ValueType[]): number => {
    const key = `${params.join(',')}->${results.join(',')}`;
    if (!signatures.includes(key)) signatures.push(key);
    return signatures.indexOf(key);
  };
  const functionIndex = new Map<string, number>();
  source.imports.forEach((imported, index) => {
    functionIndex.set(imported.name, index);
  });
  source.functions.forEach((fn, index) => {
    functionIndex.set(fn.name, source.imports.length + index);
  });

  const importEntries = [
    [
      ...name(source.memory.module),
      ...name(source.memory.field),
      0x02,
      source.memory.shared ? 0x03 : 0x01,
      ...uleb(source.memory.minPages),
      ...uleb(source.memory.maxPages),
    ],
    ...source.imports.map((imported) => [...name(imported.module), ...name(imported.field), 0x00, ...uleb(typeIndex(imported.params, imported.results))]),
  ];
  const functionTypes = source.functions.map((fn) =>
    typeIndex(
      fn.params.map(([, type]) => type),
      fn.results,
    ),
  );
  const codes = source.functions.map((fn) => assembleFunction(fn, functionIndex));
  const exports = source.functions.flatMap((fn) => (fn.export === undefined ? [] : [[...name(fn.export), 0x00, ...uleb(functionIndex.get(fn.name)!)]]));
  const types = signatures.map((key) => {
    const [params, results] = key.split('->').map((list) => (list === '' ? [] : (list!.split(',') as ValueType[])));
    return [0x60, ...vector(params!.map((type) => [TYPE_CODE[type]])), ...vector(results!.map((type) => [TYPE_CODE[type]]))];
  });
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, vector(types)),
    ...section(2, vector(importEntries)),
    ...section(3, vector(functionTypes.map((index) => uleb(index)))),
    ...section(7, vector(exports)),
    ...section(10, vector(codes.map((code) => [...uleb(code.length), ...code]))),
  ]);
}

function assembleFunction(fn: FunctionSource, functionIndex: ReadonlyMap<string, number>): number[] {
  const localIndex = new Map<string, number>();
  for (const [localName] of [...fn.params, ...fn.locals]) {
    if (localIndex.has(localName)) throw new Error(`wasm function ${fn.name}: local ${localName} declared twice`);
    localIndex.set(localName, localIndex.size);
  }
  const fail = (token: string, problem: string): never => {
    throw new Error(`wasm function ${fn.name}, at '${token}': ${problem}`);
  };
  const tokens = fn.body
    .replace(/;;[^\n]*/g, ' ')
    .split(/\s+/)
    .filter((token) => token !== '');
  const out: number[] = vector(fn.locals.map(([, type]) => [1, TYPE_CODE[type]]));
  // Labels of the enclosing blocks, innermost last; `end` pops. The function body is a block too.
  const labels: (string | null)[] = [null];
  let at = 0;
  const next = (op: string): string => {
    const token = tokens[at++];
    if (token === undefined) return fail(op, 'missing immediate at the end of the body');
    return token;
  };
  while (at < tokens.length) {
    const op = tokens[at++]!;
    const spec = OPS[op];
    if (spec === undefined) fail(op, 'unknown instruction');
    const [opcode, immediate, alignment] = spec!;
    out.push(...opcode.slice(0, 1), ...opcode.slice(1).flatMap((sub) => uleb(sub)));
    switch (immediate) {
      case 'none':
        if (op === 'if') labels.push(null);
        if (op === 'if') out.push(0x40);
        if (op === 'end') labels.pop();
        break;
      case 'block': {
        const label = tokens[at]?.startsWith('$') === true ? tokens[at++]! : null;
        labels.push(label);
        out.push(0x40); // empty block type: our blocks carry no values
        break;
      }
      case 'label': {
        const label = next(op);
        if (!labels.includes(label)) fail(label, 'no enclosing block with this label');
        out.push(...uleb(labels.length - 1 - labels.lastIndexOf(label)));
        break;
      }
      case 'local': {
        const index = localIndex.get(next(op));
        if (index === undefined) fail(tokens[at - 1]!, 'unknown local');
        out.push(...uleb(index!));
        break;
      }
      case 'func': {
        const index = functionIndex.get(next(op));
        if (index === undefined) fail(tokens[at - 1]!, 'unknown function');
        out.push(...uleb(index!));
        break;
      }
      case 'i32':
        out.push(...sleb(BigInt(integer(next(op), fail) | 0)));
        break;
      case 'i64': {
        const token = next(op);
        if (!/^-?(\d+|0x[0-9a-f]+)$/i.test(token)) fail(token, 'expected an integer');
        out.push(...sleb(BigInt.asIntN(64, BigInt(token))));
        break;
      }
      case 'f64': {
        const bytes = new Uint8Array(8);
        new DataView(bytes.buffer).setFloat64(0, Number(next(op)), true);
        out.push(...bytes);
        break;
      }
      case 'mem': {
        let offset = 0;
        while (tokens[at]?.startsWith('offset=') === true) offset = integer(tokens[at++]!.slice(7), fail);
        out.push(...uleb(alignment!), ...uleb(offset));
        break;
      }
      case 'lane':
        out.push(integer(next(op), fail));
        break;
      case 'lanes':
        for (let lane = 0; lane < 16; lane++) out.push(integer(next(op), fail));
        break;
    }
  }
  if (labels.length !== 0) fail('end', `${labels.length} block(s) left open (the body must close with its own end)`);
  return out;
}

/** Decimal or 0x-hexadecimal; i32 immediates may be written unsigned (0xffffffff) as in WAT. */
function integer(token: string, fail: (token: string, problem: string) => never): number {
  if (!/^-?(\d+|0x[0-9a-f]+)$/i.test(token)) fail(token, 'expected an integer');
  return Number(token);
}

function uleb(value: number): number[] {
  const bytes: number[] = [];
  let v = value >>> 0;
  do {
    const byte = v & 0x7f;
    v >>>= 7;
    bytes.push(v === 0 ? byte : byte | 0x80);
  } while (v !== 0);
  return bytes;
}

function sleb(value: bigint): number[] {
  const bytes: number[] = [];
  let v = value;
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
    bytes.push(done ? byte : byte | 0x80);
    if (done) return bytes;
  }
}

function name(text: string): number[] {
  const bytes = Buffer.from(text, 'utf8');
  return [...uleb(bytes.length), ...bytes];
}

function vector(items: readonly (readonly number[])[]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, content: readonly number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

// The WebAssembly sparse kernels (issue #13): the definition of shared/sparse-kernel.ts in flat
// WAT, assembled at module load (shared/wasm-assembler.ts), over the kernel's own shared memory,
// and the wrapper that allocates there and turns the touched list into parts.
//
// Exports: createSparseKernel(shape, classWeights?, kind = 'wasm') (the one to call),
// createSparseWasmKernel(shape, classWeights?, { isEntryMode? }?), SparseKernelKind, SPARSE_KERNEL_MODULE.
//
// Operation order: exactly steps 1-4 of shared/sparse-kernel.ts, one row at a time in range order,
// scalar float64 (no SIMD: a gather of ~40 entries per row has nothing to vectorise), no FMA, x
// widened from float32 exactly, exp/log1p the fdlibm functions of shared/kernel-wasm.ts
// (MATH_FUNCTIONS, ported operation for operation in shared/fdlibm.ts), so the TypeScript kernel
// gives the same bits on every machine and Node.js version, and both carry one id (tested).
// The module fills the touched list (first-touch order) and the slot sums; sorting the touched
// coordinates into a part stays in JavaScript (takePart, O(t) by a radix sort). evaluate runs in
// the module too, in the order of the TypeScript evaluateSparse (the same bits, tested).

import { MATH_FUNCTIONS, type WasmMemory, wasm } from './kernel-wasm.js';
import type { ModelShape } from './model-shape.js';
import { createSparseTsKernel, ENTRY_MODE_FROM_D, PartAssembler, type SparseKernel, type SparseRowStorage, sparseKernelId } from './sparse-kernel.js';
import type { SparseParams, SparsePart, SparseRows } from './sparse-rows.js';
import { assembleModule, type ModuleSource } from './wasm-assembler.js';

/**
 * logistic(rowStart, indices, values, labels, order, from, to, D, v, scale, bias, cw, slotOf, base,
 * touched, sums, count, capacity, state) → the new touched count (slots as PartAssembler keeps them), −1 for an index ≥ D, −2 when
 * the touched list is full. Addresses are byte offsets; order 0 means rows from..to; cw 0 means
 * no class weights. state holds the open part's bias sum and loss (2 float64). softmax takes K
 * after D, uint16 labels, and a state of K bias sums, the loss, then K + K float64 of scratch.
 */
type WasmSparseCall = (...args: number[]) => number;

interface SparseExports {
  readonly logistic: WasmSparseCall;
  readonly softmax: WasmSparseCall;
  readonly evalLogistic: WasmSparseCall;
  readonly evalSoftmax: WasmSparseCall;
}

const ROW_START = `
      local.get $order i32.eqz
      if
        local.get $i local.set $row
      else
        local.get $order local.get $i i32.const 2 i32.shl i32.add i32.load local.set $row
      end
      local.get $rowStart local.get $row i32.const 2 i32.shl i32.add local.tee $p i32.load local.set $start
      local.get $p i32.load offset=4 local.set $end`;

const CLASS_WEIGHT = `
      f64.const 1 local.set $cy  ;; c_y: 1 without a table (x·1 = x exactly)
      local.get $cw if local.get $cw local.get $label i32.const 3 i32.shl i32.add f64.load local.set $cy end`;

/** Step 1's dot product over the row's entries: dot = 0, then dot + v[$vp + j_k]·x_k, k ascending; an index ≥ D returns −1. */
const DOT = `
      f64.const 0 local.set $dot
      local.get $start local.set $k
      block $dotDone
        loop $dotLoop
          local.get $k local.get $end i32.ge_u br_if $dotDone
          local.get $indices local.get $k i32.const 2 i32.shl i32.add i32.load local.tee $j
          local.get $D i32.ge_u if i32.const -1 return end  ;; before any read of v outside row o
          local.get $dot
          local.get $vp local.get $j i32.const 3 i32.shl i32.add f64.load
          local.get $values local.get $k i32.const 2 i32.shl i32.add f32.load f64.promote_f32
          f64.mul f64.add local.set $dot
          local.get $k i32.const 1 i32.add local.set $k
          br $dotLoop
        end
      end`;

/**
 * Step 4 for each entry: the slot of j (a new one at the end of the touched list on first touch),
 * then `add` (the slot's sums += r·x, $sp its address, $x the value). An index ≥ D returns −1
 * before any write (the dot product has already refused it; kept so no write depends on that).
 */
function scatter(add: string, outputsShift: string): string {
  return `
      local.get $start local.set $k
      block $gDone
        loop $gLoop
          local.get $k local.get $end i32.ge_u br_if $gDone
          local.get $indices local.get $k i32.const 2 i32.shl i32.add i32.load local.tee $j
          local.get $D i32.ge_u if i32.const -1 return end
          local.get $slotOf i32.eqz
          if  ;; entry mode: a new slot for every entry (merged in takePart, in entry order)
            local.get $count local.get $capacity i32.ge_u if i32.const -2 return end
            local.get $touched local.get $count i32.const 2 i32.shl i32.add local.get $j i32.store
            local.get $base local.get $count i32.const 1 i32.add local.tee $count i32.add local.set $slot
          else
            local.get $slotOf local.get $j i32.const 2 i32.shl i32.add local.tee $sa i32.load local.tee $slot
            local.get $base i32.le_u if  ;; not in the open part: the next slot
              local.get $count local.get $capacity i32.ge_u if i32.const -2 return end
              local.get $touched local.get $count i32.const 2 i32.shl i32.add local.get $j i32.store
              local.get $sa local.get $base local.get $count i32.const 1 i32.add local.tee $count i32.add local.tee $slot i32.store
            end
          end
          local.get $sums local.get $slot local.get $base i32.sub i32.const 1 i32.sub ${outputsShift} i32.const 3 i32.shl i32.add local.set $sp
          local.get $values local.get $k i32.const 2 i32.shl i32.add f32.load f64.promote_f32 local.set $x
          ${add}
          local.get $k i32.const 1 i32.add local.set $k
          br $gLoop
        end
      end`;
}

const LOGISTIC_BODY = `
  local.get $state f64.load local.set $biasSum
  local.get $state f64.load offset=8 local.set $loss
  local.get $bias f64.load local.set $b
  local.get $v local.set $vp
  local.get $from local.set $i
  block $rowsDone
    loop $rows
      local.get $i local.get $to i32.ge_u br_if $rowsDone
      ${ROW_START}
      local.get $labels local.get $row i32.add i32.load8_u local.tee $label f64.convert_i32_u local.set $y
      ${CLASS_WEIGHT}
      ${DOT}
      ;; 1. z = s·dot + b; 2. e = exp(−|z|), r = ((z ≥ 0 ? 1 : e)/(1 + e) − y)·c_y, L = ((log1p(e) + max(z, 0)) − y·z)·c_y; 3.
      local.get $scale local.get $dot f64.mul local.get $b f64.add local.set $z
      local.get $z f64.abs f64.neg call $exp local.set $e
      f64.const 1 local.get $e local.get $z f64.const 0 f64.ge select
      f64.const 1 local.get $e f64.add f64.div
      local.get $y f64.sub local.get $cy f64.mul local.set $r
      local.get $biasSum local.get $r f64.add local.set $biasSum
      local.get $loss
      local.get $e call $log1p local.get $z f64.const 0 f64.max f64.add local.get $y local.get $z f64.mul f64.sub local.get $cy f64.mul
      f64.add local.set $loss
      ;; 4. g_j += r·x
      ${scatter('local.get $sp local.get $sp f64.load local.get $r local.get $x f64.mul f64.add f64.store', '')}
      local.get $i i32.const 1 i32.add local.set $i
      br $rows
    end
  end
  local.get $state local.get $biasSum f64.store
  local.get $state local.get $loss f64.store offset=8
  local.get $count
end`;

/** $o's entry of the float64 vector at `base` (an i32 local), as an address on the stack. */
const entry = (base: string, index = '$o'): string => `local.get ${base} local.get ${index} i32.const 3 i32.shl i32.add`;

/** Step 1 for the softmax rows: z_o = s·dot_o + b_o into zs; m = max, a = its lowest index. */
const SOFTMAX_SCORES = `
      local.get $v local.set $vp
      i32.const 0 local.set $o
      block $zDone
        loop $zLoop
          local.get $o local.get $K i32.ge_u br_if $zDone
          ${DOT}
          local.get $scale local.get $dot f64.mul ${entry('$bias')} f64.load f64.add local.set $z
          ${entry('$zs')} local.get $z f64.store
          local.get $o i32.eqz local.get $z local.get $m f64.gt i32.or if local.get $z local.set $m local.get $o local.set $a end
          local.get $vp local.get $rowW i32.add local.set $vp
          local.get $o i32.const 1 i32.add local.set $o
          br $zLoop
        end
      end`;

const SOFTMAX_BODY = `
  local.get $K i32.const 3 i32.shl local.get $state i32.add local.tee $lossAt f64.load local.set $loss
  local.get $lossAt i32.const 8 i32.add local.set $zs
  local.get $zs local.get $K i32.const 3 i32.shl i32.add local.set $rs
  local.get $D i32.const 3 i32.shl local.set $rowW
  local.get $from local.set $i
  block $rowsDone
    loop $rows
      local.get $i local.get $to i32.ge_u br_if $rowsDone
      ${ROW_START}
      local.get $labels local.get $row i32.const 1 i32.shl i32.add i32.load16_u local.set $label
      ${CLASS_WEIGHT}
      ;; 1. z_o = s·dot_o + b_o into zs; m = max, a = its lowest index
      ${SOFTMAX_SCORES}
      ;; 2. e_o = exp(z_o − m) into rs; T = Σ_{o ≠ a} e_o
      f64.const 0 local.set $T
      i32.const 0 local.set $o
      block $eDone
        loop $eLoop
          local.get $o local.get $K i32.ge_u br_if $eDone
          ${entry('$rs')} ${entry('$zs')} f64.load local.get $m f64.sub call $exp local.tee $e f64.store
          local.get $o local.get $a i32.ne if local.get $T local.get $e f64.add local.set $T end
          local.get $o i32.const 1 i32.add local.set $o
          br $eLoop
        end
      end
      ;; S = 1 + T; L = (log1p(T) + (m − z_y))·c_y; 3. loss += L
      f64.const 1 local.get $T f64.add local.set $S
      local.get $loss
      local.get $T call $log1p local.get $m ${entry('$zs', '$label')} f64.load f64.sub f64.add local.get $cy f64.mul
      f64.add local.set $loss
      ;; r_o = (e_o/S − [o = y])·c_y into rs; 3. bias_o += r_o
      i32.const 0 local.set $o
      block $rDone
        loop $rLoop
          local.get $o local.get $K i32.ge_u br_if $rDone
          ${entry('$rs')} local.tee $sa
          local.get $sa f64.load local.get $S f64.div
          f64.const 1 f64.const 0 local.get $o local.get $label i32.eq select f64.sub local.get $cy f64.mul local.tee $r f64.store
          ${entry('$state')} local.tee $sa local.get $sa f64.load local.get $r f64.add f64.store
          local.get $o i32.const 1 i32.add local.set $o
          br $rLoop
        end
      end
      ;; 4. g_(o, j) += r_o·x, o ascending
      ${scatter(
        `i32.const 0 local.set $o
          block $oDone
            loop $oLoop
              local.get $o local.get $K i32.ge_u br_if $oDone
              ${entry('$sp')} local.tee $sa local.get $sa f64.load ${entry('$rs')} f64.load local.get $x f64.mul f64.add f64.store
              local.get $o i32.const 1 i32.add local.set $o
              br $oLoop
            end
          end`,
        'local.get $K i32.mul',
      )}
      local.get $i i32.const 1 i32.add local.set $i
      br $rows
    end
  end
  local.get $lossAt local.get $loss f64.store
  local.get $count
end`;

// The evaluation pass (evaluateSparse's order): state holds out[offset] (the loss) and
// out[offset + 1] (the correct predictions) on entry and on exit; the loss is the plain one (no
// class weights), added row by row. Returns 0, or −1 for an index ≥ D.
const EVAL_LOGISTIC_BODY = `
  local.get $state f64.load local.set $loss
  local.get $state f64.load offset=8 local.set $correct
  local.get $bias f64.load local.set $b
  local.get $v local.set $vp
  local.get $from local.set $i
  block $rowsDone
    loop $rows
      local.get $i local.get $to i32.ge_u br_if $rowsDone
      ${ROW_START}
      local.get $labels local.get $row i32.add i32.load8_u local.tee $label f64.convert_i32_u local.set $y
      ${DOT}
      local.get $scale local.get $dot f64.mul local.get $b f64.add local.set $z
      local.get $loss
      local.get $z f64.abs f64.neg call $exp call $log1p local.get $z f64.const 0 f64.max f64.add local.get $y local.get $z f64.mul f64.sub
      f64.add local.set $loss
      local.get $z f64.const 0 f64.gt local.get $label i32.eq
      if local.get $correct f64.const 1 f64.add local.set $correct end
      local.get $i i32.const 1 i32.add local.set $i
      br $rows
    end
  end
  local.get $state local.get $loss f64.store
  local.get $state local.get $correct f64.store offset=8
  i32.const 0
end`;

const EVAL_SOFTMAX_BODY = `
  local.get $state f64.load local.set $loss
  local.get $state f64.load offset=8 local.set $correct
  local.get $state i32.const 16 i32.add local.set $zs
  local.get $D i32.const 3 i32.shl local.set $rowW
  local.get $from local.set $i
  block $rowsDone
    loop $rows
      local.get $i local.get $to i32.ge_u br_if $rowsDone
      ${ROW_START}
      local.get $labels local.get $row i32.const 1 i32.shl i32.add i32.load16_u local.set $label
      ${SOFTMAX_SCORES}
      ;; T = Σ_{o ≠ a} exp(z_o − m); loss += log1p(T) + (m − z_y)
      f64.const 0 local.set $T
      i32.const 0 local.set $o
      block $eDone
        loop $eLoop
          local.get $o local.get $K i32.ge_u br_if $eDone
          local.get $o local.get $a i32.ne if local.get $T ${entry('$zs')} f64.load local.get $m f64.sub call $exp f64.add local.set $T end
          local.get $o i32.const 1 i32.add local.set $o
          br $eLoop
        end
      end
      local.get $loss
      local.get $T call $log1p local.get $m ${entry('$zs', '$label')} f64.load f64.sub f64.add
      f64.add local.set $loss
      local.get $a local.get $label i32.eq
      if local.get $correct f64.const 1 f64.add local.set $correct end
      local.get $i i32.const 1 i32.add local.set $i
      br $rows
    end
  end
  local.get $state local.get $loss f64.store
  local.get $state local.get $correct f64.store offset=8
  i32.const 0
end`;

const i32 = 'i32' as const;
const f64 = 'f64' as const;
const ROW_LOCALS = ['$i', '$row', '$p', '$start', '$end', '$k', '$j', '$slot', '$sa', '$sp', '$vp', '$label'] as const;
const named = <T extends 'i32' | 'f64'>(names: readonly string[], type: T) => names.map((name) => [name, type] as const);
const HEAD = ['$rowStart', '$indices', '$values', '$labels', '$order', '$from', '$to', '$D'];
const TAIL = ['$bias', '$cw', '$slotOf', '$base', '$touched', '$sums', '$count', '$capacity', '$state'];

/** The module's source; its memory is imported as env.memory (shared: growing never detaches a view). */
export const SPARSE_KERNEL_MODULE: ModuleSource = {
  memory: { module: 'env', field: 'memory', minPages: 1, maxPages: 65_536, shared: true },
  imports: [],
  functions: [
    {
      name: '$logistic',
      export: 'logistic',
      params: [...named(HEAD, i32), ['$v', i32], ['$scale', f64], ...named(TAIL, i32)],
      results: [i32],
      locals: [...named(ROW_LOCALS, i32), ...named(['$b', '$y', '$cy', '$dot', '$z', '$e', '$r', '$x', '$biasSum', '$loss'], f64)],
      body: LOGISTIC_BODY,
    },
    {
      name: '$softmax',
      export: 'softmax',
      params: [...named(HEAD, i32), ['$K', i32], ['$v', i32], ['$scale', f64], ...named(TAIL, i32)],
      results: [i32],
      locals: [
        ...named([...ROW_LOCALS, '$o', '$a', '$zs', '$rs', '$lossAt', '$rowW'], i32),
        ...named(['$cy', '$dot', '$z', '$m', '$e', '$T', '$S', '$r', '$x', '$loss'], f64),
      ],
      body: SOFTMAX_BODY,
    },
    {
      name: '$evalLogistic',
      export: 'evalLogistic',
      params: [...named(HEAD, i32), ['$v', i32], ['$scale', f64], ['$bias', i32], ['$state', i32]],
      results: [i32],
      locals: [...named(ROW_LOCALS, i32), ...named(['$b', '$y', '$dot', '$z', '$loss', '$correct'], f64)],
      body: EVAL_LOGISTIC_BODY,
    },
    {
      name: '$evalSoftmax',
      export: 'evalSoftmax',
      params: [...named(HEAD, i32), ['$K', i32], ['$v', i32], ['$scale', f64], ['$bias', i32], ['$state', i32]],
      results: [i32],
      locals: [...named([...ROW_LOCALS, '$o', '$a', '$zs', '$rowW'], i32), ...named(['$dot', '$z', '$m', '$T', '$loss', '$correct'], f64)],
      body: EVAL_SOFTMAX_BODY,
    },
    ...MATH_FUNCTIONS,
  ],
};

let compiled: object | null | undefined;

/** The compiled module, or null where WebAssembly or shared memory is unavailable. */
function sparseModule(): object | null {
  if (compiled === undefined) {
    const bytes = assembleModule(SPARSE_KERNEL_MODULE);
    compiled = wasm?.validate(bytes) === true ? new wasm.Module(bytes) : null;
  }
  return compiled;
}

const PAGE_BYTES = 65_536;
/** Allocations start at multiples of a cache line; address 0 stays unused (it means "none"). */
const ALIGN = 64;
/** Initial capacity of the touched list (coordinates), doubled on demand up to D. */
const INITIAL_TOUCHED = 1024;

class WasmSparseKernel implements SparseKernel {
  readonly id: string;
  readonly shape: ModelShape;
  readonly classWeights: Float64Array | null;
  private readonly memory: WasmMemory;
  private readonly exports: SparseExports;
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private nextFree = ALIGN;
  private readonly D: number;
  private readonly O: number;
  /** Per coordinate: its slot + 1 + base when touched in the open part (PartAssembler). */
  private readonly slotOf: Uint32Array;
  private touched: Uint32Array;
  private sums: Float64Array;
  private count = 0;
  /** The open part's O bias sums, its loss, then (softmax) 2·O float64 of per-row scratch. */
  private readonly state: Float64Array;
  private readonly bias: Float64Array;
  private readonly weightsTable: Float64Array | null;
  /** CSR copy of a call's rows when they lie outside the memory (grown on demand). */
  private copy: SparseRowStorage & { rows: number };
  /** The evaluation's two sums (loss, correct predictions) while the module adds to them. */
  private readonly evalState: Float64Array;
  private readonly assembler: PartAssembler;

  /** Entry mode: a slot per stored entry (no slotOf), merged by a stable sort in takePart. */
  private readonly isEntryMode: boolean;

  constructor(shape: ModelShape, classWeights: Float64Array | null, memory: WasmMemory, exports: SparseExports, isEntryMode: boolean) {
    this.id = sparseKernelId(shape);
    this.shape = shape;
    this.memory = memory;
    this.exports = exports;
    this.buffers.add(memory.buffer);
    this.D = shape.features;
    this.O = shape.outputs;
    this.isEntryMode = isEntryMode;
    this.slotOf = this.allocateIndex(isEntryMode ? 0 : this.D);
    const capacity = Math.min(this.D, INITIAL_TOUCHED);
    this.touched = this.allocateIndex(capacity);
    this.sums = this.allocateVector(capacity * this.O);
    this.state = this.allocateVector(this.O === 1 ? 2 : 3 * this.O + 1);
    this.bias = this.allocateVector(this.O);
    this.weightsTable = classWeights === null ? null : this.allocateVector(classWeights.length);
    this.weightsTable?.set(classWeights ?? []);
    this.classWeights = this.weightsTable;
    this.copy = { rows: 0, ...this.allocateRows(0, 0) };
    this.evalState = this.allocateVector(2 + this.O);
    this.assembler = new PartAssembler(this.D, this.O);
  }

  allocateRows(rows: number, nnz: number): SparseRowStorage {
    const rowStart = this.allocateIndex(rows + 1);
    const indices = this.allocateIndex(nnz);
    const valuesAt = this.allocate(nnz * 4);
    const labelBytes = this.O === 1 ? 1 : 2;
    const labelsAt = this.allocate(rows * labelBytes);
    const { buffer } = this.memory;
    const labels = labelBytes === 1 ? new Uint8Array(buffer, labelsAt, rows) : new Uint16Array(buffer, labelsAt, rows);
    return { rowStart, indices, values: new Float32Array(buffer, valuesAt, nnz), labels };
  }

  allocateParams(): SparseParams {
    return { v: this.allocateVector(this.O * this.D), scale: 1, bias: new Float64Array(this.O) };
  }

  accumulate(rows: SparseRows, order: Uint32Array | null, from: number, to: number, params: SparseParams): void {
    const { D, O } = this;
    if (!this.mine(params.v) || params.v.length < O * D) throw new Error('sparse wasm kernel: v must come from allocateParams of this kernel');
    const { source, rowOrder, first, last, nnz } = this.prepareRows(rows, order, from, to);
    this.ensureCapacity(this.isEntryMode ? this.count + nnz : Math.min(D, this.count + nnz));
    this.bias.set(params.bias.subarray(0, O));
    const cw = this.weightsTable === null ? 0 : this.weightsTable.byteOffset;
    const head = [source.rowStart.byteOffset, source.indices.byteOffset, source.values.byteOffset, source.labels.byteOffset, rowOrder, first, last, D];
    const tail = [
      this.bias.byteOffset,
      cw,
      this.isEntryMode ? 0 : this.slotOf.byteOffset,
      this.isEntryMode ? 0 : this.assembler.base, // entry mode: slot = entry + 1, whatever the part count
      this.touched.byteOffset,
      this.sums.byteOffset,
      this.count,
      this.touched.length,
      this.state.byteOffset,
    ];
    const count =
      O === 1
        ? this.exports.logistic(...head, params.v.byteOffset, params.scale, ...tail)
        : this.exports.softmax(...head, O, params.v.byteOffset, params.scale, ...tail);
    if (count < 0) {
      // The open part's extent is unknown after an early return: clear every slot, O(D), on this error only.
      this.assembler.clear(this.slotOf, this.sums);
      this.count = 0;
      this.resetPart();
      if (count === -1) throw new RangeError(`sparse kernel: a feature index not below D = ${D} in rows [${from}, ${to})`);
      throw new Error('invariant broken: the sparse kernel’s touched list overflowed');
    }
    this.count = count;
  }

  takePart(): SparsePart {
    const { O } = this;
    const { assembler, count } = this;
    // Read from copies: V8 (Node.js 20) reads typed arrays over a grown wasm memory ~8× slower
    // than over an ArrayBuffer, and a copy is a memcpy of O(count) bytes (of D when dense: D ≤ 32·count).
    const touched = this.touched.slice(0, count);
    const sums = this.sums.slice(0, count * O);
    const slotOf = !this.isEntryMode && assembler.isDense(count) ? this.slotOf.slice() : this.slotOf;
    const part = this.isEntryMode
      ? assembler.assembleEntries(touched, sums, count, this.state, this.state[O]!)
      : assembler.assemble(slotOf, touched, sums, count, this.state, this.state[O]!);
    assembler.discard(this.slotOf, this.sums, count);
    this.count = 0;
    this.state.fill(0, 0, O + 1);
    return part;
  }

  resetPart(): void {
    this.assembler.discard(this.slotOf, this.sums, this.count);
    this.count = 0;
    this.state.fill(0, 0, this.O + 1);
  }

  evaluate(rows: SparseRows, order: Uint32Array | null, from: number, to: number, params: SparseParams, out: Float64Array, offset: number): void {
    const { D, O } = this;
    if (!this.mine(params.v) || params.v.length < O * D) throw new Error('sparse wasm kernel: v must come from allocateParams of this kernel');
    const { source, rowOrder, first, last } = this.prepareRows(rows, order, from, to);
    this.bias.set(params.bias.subarray(0, O));
    // evaluateSparse's order: the module adds to the two sums it is handed, row by row.
    this.evalState[0] = out[offset]!;
    this.evalState[1] = out[offset + 1]!;
    const head = [source.rowStart.byteOffset, source.indices.byteOffset, source.values.byteOffset, source.labels.byteOffset, rowOrder, first, last, D];
    const tail = [params.v.byteOffset, params.scale, this.bias.byteOffset, this.evalState.byteOffset];
    const status = O === 1 ? this.exports.evalLogistic(...head, ...tail) : this.exports.evalSoftmax(...head, O, ...tail);
    if (status < 0) throw new RangeError(`sparse kernel: a feature index not below D = ${D} in rows [${from}, ${to})`);
    out[offset] = this.evalState[0]!;
    out[offset + 1] = this.evalState[1]!;
  }

  /**
   * Where the module reads rows order[from..to) (or from..to): in place when rows and order lie
   * in the memory, else copied there (O(nnz)); with their entry count. Checks every row's range.
   */
  private prepareRows(rows: SparseRows, order: Uint32Array | null, from: number, to: number) {
    if (!(from >= 0 && from <= to && (order === null ? to <= rows.rows : to <= order.length) && rows.rowStart.length > rows.rows)) {
      throw new RangeError(`sparse wasm kernel: rows [${from}, ${to}) out of range`);
    }
    const isInPlace =
      this.mine(rows.rowStart) && this.mine(rows.indices) && this.mine(rows.values) && this.mine(rows.labels) && (order === null || this.mine(order));
    if (!isInPlace) {
      const nnz = this.copyRows(rows, order, from, to);
      return { source: this.copy as SparseRowStorage, rowOrder: 0, first: 0, last: to - from, nnz };
    }
    let nnz = 0;
    for (let i = from; i < to; i++) {
      const row = order === null ? i : order[i]!;
      if (row >= rows.rows) throw new RangeError(`sparse wasm kernel: row ${row} of ${rows.rows}`);
      const start = rows.rowStart[row]!;
      const end = rows.rowStart[row + 1]!;
      if (!(start <= end && end <= rows.indices.length && end <= rows.values.length))
        throw new RangeError(`sparse wasm kernel: row ${row} has entries [${start}, ${end}) out of range`);
      nnz += end - start;
    }
    return { source: rows as SparseRowStorage, rowOrder: order === null ? 0 : order.byteOffset, first: from, last: to, nnz };
  }

  private mine(view: ArrayBufferView): boolean {
    return this.buffers.has(view.buffer);
  }

  /** Copies rows order[from..to) (or from..to) into the memory as rows 0..n of this.copy; returns their entries. */
  private copyRows(rows: SparseRows, order: Uint32Array | null, from: number, to: number): number {
    const n = to - from;
    let nnz = 0;
    for (let i = from; i < to; i++) {
      const row = order === null ? i : order[i]!;
      if (row >= rows.rows) throw new RangeError(`sparse wasm kernel: row ${row} of ${rows.rows}`);
      const start = rows.rowStart[row]!;
      const end = rows.rowStart[row + 1]!;
      if (!(start <= end && end <= rows.indices.length && end <= rows.values.length))
        throw new RangeError(`sparse wasm kernel: row ${row} has entries [${start}, ${end}) out of range`);
      nnz += end - start;
    }
    if (this.copy.labels.length < n || this.copy.indices.length < nnz) {
      const capacityRows = Math.max(n, 2 * this.copy.labels.length);
      this.copy = { rows: capacityRows, ...this.allocateRows(capacityRows, Math.max(nnz, 2 * this.copy.indices.length)) };
    }
    const { rowStart, indices, values, labels } = this.copy;
    let at = 0;
    for (let i = 0; i < n; i++) {
      const row = order === null ? from + i : order[from + i]!;
      const start = rows.rowStart[row]!;
      const end = rows.rowStart[row + 1]!;
      rowStart[i] = at;
      indices.set(rows.indices.subarray(start, end), at);
      values.set(rows.values.subarray(start, end), at);
      labels[i] = rows.labels[row]!;
      at += end - start;
    }
    rowStart[n] = at;
    return nnz;
  }

  /** Grows the touched list and its sums (doubling; at most D outside entry mode) to hold `needed` slots. */
  private ensureCapacity(needed: number): void {
    if (needed <= this.touched.length) return;
    const capacity = Math.min(this.isEntryMode ? Number.POSITIVE_INFINITY : this.D, Math.max(needed, 2 * this.touched.length));
    const touched = this.allocateIndex(capacity);
    touched.set(this.touched.subarray(0, this.count));
    const sums = this.allocateVector(capacity * this.O);
    sums.set(this.sums.subarray(0, this.count * this.O));
    this.touched = touched;
    this.sums = sums;
  }

  private allocateIndex(length: number): Uint32Array {
    const address = this.allocate(length * 4); // before reading .buffer: allocating may grow it
    return new Uint32Array(this.memory.buffer, address, length);
  }

  private allocateVector(length: number): Float64Array {
    const address = this.allocate(length * 8);
    return new Float64Array(this.memory.buffer, address, length);
  }

  /** Bump allocation of `bytes` (zeroed: fresh memory, never reused), growing the memory; returns the address. */
  private allocate(bytes: number): number {
    const address = Math.ceil(this.nextFree / ALIGN) * ALIGN;
    const end = address + Math.max(bytes, 1);
    if (end > SPARSE_KERNEL_MODULE.memory.maxPages * PAGE_BYTES) throw new RangeError(`sparse wasm kernel: ${end} bytes exceed the 4 GiB of a wasm32 memory`);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      this.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
      this.buffers.add(this.memory.buffer);
    }
    this.nextFree = end;
    return address;
  }
}

/**
 * The WebAssembly sparse kernel of `shape`, over a fresh memory (the same bits as
 * createSparseTsKernel), or null where WebAssembly with shared memory is unavailable.
 * `classWeights` (shape.classes values) are copied into its memory.
 */
export function createSparseWasmKernel(
  shape: ModelShape,
  classWeights: Float64Array | null = null,
  options: { readonly isEntryMode?: boolean } = {},
): SparseKernel | null {
  if (classWeights !== null && classWeights.length !== shape.classes) {
    throw new Error(`invariant broken: ${classWeights.length} class weights for ${shape.classes} classes`);
  }
  const module = sparseModule();
  if (module === null || wasm === undefined) return null;
  const { minPages, maxPages } = SPARSE_KERNEL_MODULE.memory;
  const memory = new wasm.Memory({ initial: minPages, maximum: maxPages, shared: true });
  const instance = new wasm.Instance(module, { env: { memory } });
  // The module above exports exactly these signatures.
  const isEntryMode = options.isEntryMode ?? shape.features > ENTRY_MODE_FROM_D;
  return new WasmSparseKernel(shape, classWeights, memory, instance.exports as unknown as SparseExports, isEntryMode);
}

export type SparseKernelKind = 'wasm' | 'js';

/** The sparse kernel of `shape`: 'wasm' where available (else the TypeScript one: the same id, the same bits), or 'js'. */
export function createSparseKernel(shape: ModelShape, classWeights: Float64Array | null = null, kind: SparseKernelKind = 'wasm'): SparseKernel {
  return (kind === 'wasm' ? createSparseWasmKernel(shape, classWeights) : null) ?? createSparseTsKernel(shape, classWeights);
}

// The WebAssembly SIMD-128 gradient kernel of softmax regression (issue #12): its source as flat
// WAT, assembled at module load (shared/wasm-assembler.ts), over its own linear memory that holds
// the rows, and a small wrapper that allocates in that memory. Not yet wired into training.
//
// Operation order: exactly steps 1-7 of shared/softmax.ts, one row at a time in range order, so
// that accumulateSoftmax with this module's exp and log1p gives the same bits (tested). The SIMD
// lanes only split what the order already splits: in step 1, lane 0 holds s0 (even j) and lane 1
// s1 (odd j) over j < D − D mod 4; in step 7 each lane updates its own out entry. Classes go in
// blocks of 4 (then one at a time): a block shares each load of x, and its dot products are 4
// independent chains the CPU overlaps; no sum changes, since each class's z and each out entry
// still see their terms in the order above. No FMA, no relaxed SIMD, x widened from float32
// exactly, and exp/log1p are the fdlibm ports of shared/kernel-wasm.ts rather than Math's, so the
// bits are the same on every machine and on every Node.js version.

import { MATH_FUNCTIONS, type WasmMemory, wasm } from './kernel-wasm.js';
import { softmaxPartWidth } from './softmax.js';
import { assembleModule, type ModuleSource } from './wasm-assembler.js';

/** Identity of this kernel: equal ids give equal bits for equal inputs, on any machine. */
export const SOFTMAX_WASM_KERNEL_ID = 'softmax-wasm-simd128-f64acc-1';

/**
 * softmax(x, y, D, K, order, n, theta, scratch, out, classWeights) → Σ L. Addresses are byte
 * offsets; classWeights is the address of K float64 c_k, or 0 for none (c_y = 1: the same bits).
 */
type WasmSoftmax = (
  x: number,
  y: number,
  D: number,
  K: number,
  order: number,
  n: number,
  theta: number,
  scratch: number,
  out: number,
  classWeights: number,
) => number;

/** Address of entry `$c` of the float64 vector at `base` (an i32 local), on the stack. */
const entry = (base: string): string => `local.get ${base} local.get $c i32.const 3 i32.shl i32.add`;

const CLASSES = [0, 1, 2, 3];

/**
 * Steps 1 and 2 for classes c + r, r in `block`: the x pair of each j is loaded once and shared by
 * the block's classes, whose dot products are independent chains (the blocking changes no sum).
 * $wp points at W row c on entry and at the row after the block on exit.
 */
function scores(block: readonly number[]): string {
  const each = (code: (r: number) => string): string => block.map(code).join('\n');
  return `
    ${each((r) => `f64.const 0 f64x2.splat local.set $acc${r} local.get $wp i32.const ${r} local.get $rowW i32.mul i32.add local.set $w${r}`)}
    i32.const 0 local.set $xj
    i32.const 0 local.set $wj
    block $dotDone
      local.get $vecBytes i32.eqz br_if $dotDone
      loop $dot  ;; lane l of class r: acc + W_(j+l)·x_(j+l), then + W_(j+2+l)·x_(j+2+l)
        local.get $p local.get $xj i32.add local.tee $xa v128.load64_zero f64x2.promote_low_f32x4 local.set $xlo
        local.get $xa v128.load64_zero offset=8 f64x2.promote_low_f32x4 local.set $xhi
        ${each(
          (r) => `local.get $acc${r}
        local.get $xlo local.get $w${r} local.get $wj i32.add local.tee $wa v128.load f64x2.mul f64x2.add
        local.get $xhi local.get $wa v128.load offset=16 f64x2.mul f64x2.add
        local.set $acc${r}`,
        )}
        local.get $wj i32.const 32 i32.add local.set $wj
        local.get $xj i32.const 16 i32.add local.tee $xj local.get $vecBytes i32.lt_u br_if $dot
      end
    end
    ${each((r) => `${entry('$thetaB')} f64.load offset=${8 * r} local.get $acc${r} f64x2.extract_lane 0 local.get $acc${r} f64x2.extract_lane 1 f64.add f64.add local.set $z${r}`)}
    block $tailDone
      local.get $xj local.get $rowBytes i32.ge_u br_if $tailDone
      loop $tail
        local.get $p local.get $xj i32.add f32.load f64.promote_f32 local.set $xv
        ${each((r) => `local.get $z${r} local.get $w${r} local.get $wj i32.add f64.load local.get $xv f64.mul f64.add local.set $z${r}`)}
        local.get $wj i32.const 8 i32.add local.set $wj
        local.get $xj i32.const 4 i32.add local.tee $xj local.get $rowBytes i32.lt_u br_if $tail
      end
    end
    ${each(
      (r) => `${entry('$scratch')} local.get $z${r} f64.store offset=${8 * r}
    local.get $c i32.const ${r} i32.add i32.eqz local.get $z${r} local.get $m f64.gt i32.or
    if local.get $z${r} local.set $m local.get $c i32.const ${r} i32.add local.set $a end`,
    )}
    local.get $wp i32.const ${block.length} local.get $rowW i32.mul i32.add local.set $wp`;
}

/** Steps 6 and 7 for classes c + r, r in `block`; $oa points at out's W row c on entry, after the block on exit. */
function gradients(block: readonly number[]): string {
  const each = (code: (r: number) => string): string => block.map(code).join('\n');
  return `
    ${each(
      (r) => `${entry('$scratch')} f64.load offset=${8 * r} local.get $S f64.div
    f64.const 1 f64.const 0 local.get $c i32.const ${r} i32.add local.get $label i32.eq select f64.sub local.get $cy f64.mul local.tee $g${r}
    f64x2.splat local.set $gv${r}
    local.get $oa i32.const ${r} local.get $rowW i32.mul i32.add local.set $o${r}`,
    )}
    i32.const 0 local.set $xj
    i32.const 0 local.set $wj
    block $vDone
      local.get $vecBytes i32.eqz br_if $vDone
      loop $v
        local.get $p local.get $xj i32.add local.tee $xa v128.load64_zero f64x2.promote_low_f32x4 local.set $xlo
        local.get $xa v128.load64_zero offset=8 f64x2.promote_low_f32x4 local.set $xhi
        ${each(
          (r) => `local.get $o${r} local.get $wj i32.add local.tee $wa local.get $wa v128.load local.get $xlo local.get $gv${r} f64x2.mul f64x2.add v128.store
        local.get $wa local.get $wa v128.load offset=16 local.get $xhi local.get $gv${r} f64x2.mul f64x2.add v128.store offset=16`,
        )}
        local.get $wj i32.const 32 i32.add local.set $wj
        local.get $xj i32.const 16 i32.add local.tee $xj local.get $vecBytes i32.lt_u br_if $v
      end
    end
    block $gTailDone
      local.get $xj local.get $rowBytes i32.ge_u br_if $gTailDone
      loop $gTail
        local.get $p local.get $xj i32.add f32.load f64.promote_f32 local.set $xv
        ${each((r) => `local.get $o${r} local.get $wj i32.add local.tee $wa local.get $wa f64.load local.get $xv local.get $g${r} f64.mul f64.add f64.store`)}
        local.get $wj i32.const 8 i32.add local.set $wj
        local.get $xj i32.const 4 i32.add local.tee $xj local.get $rowBytes i32.lt_u br_if $gTail
      end
    end
    ${each((r) => `${entry('$outB')} local.tee $sa local.get $sa f64.load offset=${8 * r} local.get $g${r} f64.add f64.store offset=${8 * r}`)}
    local.get $oa i32.const ${block.length} local.get $rowW i32.mul i32.add local.set $oa`;
}

const BODY = `
  local.get $D i32.const 2 i32.shl local.set $rowBytes
  local.get $D i32.const -4 i32.and i32.const 2 i32.shl local.set $vecBytes
  local.get $D i32.const 3 i32.shl local.set $rowW
  local.get $K local.get $D i32.mul i32.const 3 i32.shl local.set $wBytes
  local.get $theta local.get $wBytes i32.add local.set $thetaB
  local.get $out local.get $wBytes i32.add local.set $outB
  block $rowsDone
    loop $rows
      local.get $i local.get $n i32.ge_u br_if $rowsDone
      local.get $order i32.eqz
      if  ;; contiguous: x and y point at the range's first row
        local.get $i local.set $row
      else
        local.get $order local.get $i i32.const 2 i32.shl i32.add i32.load local.set $row
      end
      local.get $x local.get $row local.get $rowBytes i32.mul i32.add local.set $p
      local.get $y local.get $row i32.const 1 i32.shl i32.add i32.load16_u local.set $label
      f64.const 1 local.set $cy  ;; c_y: the class weight, 1 without a table
      local.get $cw if local.get $cw local.get $label i32.const 3 i32.shl i32.add f64.load local.set $cy end
      ;; 1, 2. z_c = b_c + (s0 + s1) + tail into scratch[c], 4 classes at a time; m = max, a = its lowest index
      local.get $theta local.set $wp
      i32.const 0 local.set $c
      block $zBlocksDone
        loop $zBlocks
          local.get $c i32.const 4 i32.add local.get $K i32.gt_u br_if $zBlocksDone
          ${scores(CLASSES)}
          local.get $c i32.const 4 i32.add local.set $c
          br $zBlocks
        end
      end
      block $zDone
        loop $zLoop  ;; the last K mod 4 classes one at a time
          local.get $c local.get $K i32.ge_u br_if $zDone
          ${scores([0])}
          local.get $c i32.const 1 i32.add local.set $c
          br $zLoop
        end
      end
      local.get $scratch local.get $label i32.const 3 i32.shl i32.add f64.load local.set $zy
      ;; 3. e_c = exp(z_c − m) over z_c; T = Σ_{c ≠ a} e_c
      f64.const 0 local.set $T
      i32.const 0 local.set $c
      block $eDone
        loop $eLoop
          local.get $c local.get $K i32.ge_u br_if $eDone
          ${entry('$scratch')} local.tee $sa
          local.get $sa f64.load local.get $m f64.sub call $exp local.tee $e f64.store
          local.get $c local.get $a i32.ne if local.get $T local.get $e f64.add local.set $T end
          local.get $c i32.const 1 i32.add local.set $c
          br $eLoop
        end
      end
      ;; 4. S = 1 + T; 5. Λ += (log1p(T) + (m − z_y))·c_y
      f64.const 1 local.get $T f64.add local.set $S
      local.get $lossSum local.get $T call $log1p local.get $m local.get $zy f64.sub f64.add local.get $cy f64.mul f64.add local.set $lossSum
      ;; 6, 7. g_c = (e_c/S − [c = y])·c_y; out W row c += g_c·x, then out b_c += g_c; 4 classes at a time
      local.get $out local.set $oa
      i32.const 0 local.set $c
      block $gBlocksDone
        loop $gBlocks
          local.get $c i32.const 4 i32.add local.get $K i32.gt_u br_if $gBlocksDone
          ${gradients(CLASSES)}
          local.get $c i32.const 4 i32.add local.set $c
          br $gBlocks
        end
      end
      block $gDone
        loop $gLoop
          local.get $c local.get $K i32.ge_u br_if $gDone
          ${gradients([0])}
          local.get $c i32.const 1 i32.add local.set $c
          br $gLoop
        end
      end
      local.get $i i32.const 1 i32.add local.set $i
      br $rows
    end
  end
  ;; out[K·D + K] += Λ
  local.get $outB local.get $K i32.const 3 i32.shl i32.add local.tee $sa
  local.get $sa f64.load local.get $lossSum f64.add f64.store
  local.get $lossSum
end`;

const i32 = 'i32' as const;
const f64 = 'f64' as const;
const v128 = 'v128' as const;

/** The module's source; its memory is imported as env.memory. exp and log1p are exported for tests. */
export const SOFTMAX_KERNEL_MODULE: ModuleSource = {
  memory: { module: 'env', field: 'memory', minPages: 1, maxPages: 65_536, shared: true },
  imports: [],
  functions: [
    {
      name: '$softmax',
      export: 'softmax',
      params: (['$x', '$y', '$D', '$K', '$order', '$n', '$theta', '$scratch', '$out', '$cw'] as const).map((name) => [name, i32] as const),
      results: [f64],
      locals: [
        ...(
          ['$i', '$row', '$p', '$label', '$rowBytes', '$vecBytes', '$wBytes', '$thetaB', '$outB', '$wp', '$xj', '$xa', '$oa', '$sa', '$c', '$a'] as const
        ).map((name) => [name, i32] as const),
        ...(['$rowW', '$wj', '$wa'] as const).map((name) => [name, i32] as const),
        ...CLASSES.flatMap((r) => [[`$w${r}`, i32] as const, [`$o${r}`, i32] as const]),
        ...(['$m', '$zy', '$e', '$T', '$S', '$xv', '$lossSum', '$cy'] as const).map((name) => [name, f64] as const),
        ...CLASSES.flatMap((r) => [[`$z${r}`, f64] as const, [`$g${r}`, f64] as const]),
        ...CLASSES.flatMap((r) => [[`$acc${r}`, v128] as const, [`$gv${r}`, v128] as const]),
        ['$xlo', v128],
        ['$xhi', v128],
      ],
      body: BODY,
    },
    ...MATH_FUNCTIONS,
  ],
};

let compiled: object | null | undefined;

/** The compiled module, or null where WebAssembly SIMD or shared memory is unavailable. */
function softmaxModule(): object | null {
  if (compiled === undefined) {
    const bytes = assembleModule(SOFTMAX_KERNEL_MODULE);
    compiled = wasm?.validate(bytes) === true ? new wasm.Module(bytes) : null;
  }
  return compiled;
}

const PAGE_BYTES = 65_536;
/** Allocations start at multiples of a cache line; address 0 stays unused (it means "no order"). */
const ALIGN = 64;

/** The module's exports as this file calls them. */
interface SoftmaxExports {
  readonly softmax: WasmSoftmax;
  readonly exp: (x: number) => number;
  readonly log1p: (x: number) => number;
}

/**
 * The softmax kernel over its own memory. Rows (x, y), the row order, θ and the output must all
 * come from its allocate functions: the module reads memory by address, and copying them per call
 * would cost O(K·D) per chunk. The memory only ever grows (shared), so views stay valid.
 */
export class SoftmaxWasmKernel {
  readonly id = SOFTMAX_WASM_KERNEL_ID;
  private readonly memory: WasmMemory;
  private readonly exports: SoftmaxExports;
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private nextFree = ALIGN;
  private scratch: Float64Array = new Float64Array(0);
  private scratchIndex: Uint32Array = new Uint32Array(0);

  private constructor(memory: WasmMemory, exports: SoftmaxExports) {
    this.memory = memory;
    this.exports = exports;
    this.buffers.add(memory.buffer);
  }

  /** A kernel over a fresh memory, or null where WebAssembly SIMD is unavailable. */
  static create(): SoftmaxWasmKernel | null {
    const module = softmaxModule();
    if (module === null || wasm === undefined) return null;
    const { minPages, maxPages } = SOFTMAX_KERNEL_MODULE.memory;
    const memory = new wasm.Memory({ initial: minPages, maximum: maxPages, shared: true });
    const instance = new wasm.Instance(module, { env: { memory } });
    // The module above exports exactly these signatures.
    return new SoftmaxWasmKernel(memory, instance.exports as unknown as SoftmaxExports);
  }

  /** The module's own e^x (x ≤ 0) and log(1 + x) (0 ≤ x < 2^53): the twin's `math` for equal bits. */
  get math(): { readonly exp: (x: number) => number; readonly log1p: (x: number) => number } {
    return { exp: this.exports.exp, log1p: this.exports.log1p };
  }

  /** x (rows × D, row-major float32) and y (uint16 class indices, as a .dpt stores them) in the kernel's memory. */
  allocateRows(rows: number, D: number): { x: Float32Array; y: Uint16Array } {
    const x = this.allocate(rows * D * 4);
    const y = this.allocate(rows * 2);
    return { x: new Float32Array(this.memory.buffer, x, rows * D), y: new Uint16Array(this.memory.buffer, y, rows) };
  }

  allocateIndex(length: number): Uint32Array {
    const address = this.allocate(length * 4); // before reading .buffer: allocating may grow it
    return new Uint32Array(this.memory.buffer, address, length);
  }

  /** float64 storage (θ, parts) in the kernel's memory. */
  allocateVector(length: number): Float64Array {
    const address = this.allocate(length * 8);
    return new Float64Array(this.memory.buffer, address, length);
  }

  /**
   * The contract of accumulateSoftmax (shared/softmax.ts), same bits as it computes with `math`:
   * adds the gradient sums of rows [from, to) (or order[from..to)) to out[offset ..) and their
   * loss sum to out[offset + K·D + K], and returns the loss sum. Labels must be < K and row
   * indices in `order` valid (checked where the rows are read, not here). `classWeights` (K
   * values, from allocateVector; null for none) weighs each row's gradient and loss by c_y.
   */
  accumulate(
    x: Float32Array,
    y: Uint16Array,
    D: number,
    K: number,
    order: Uint32Array | null,
    from: number,
    to: number,
    theta: Float64Array,
    out: Float64Array,
    offset: number,
    classWeights: Float64Array | null = null,
  ): number {
    const mine = (view: ArrayBufferView): boolean => this.buffers.has(view.buffer);
    if (!mine(x) || !mine(y) || !mine(theta) || !mine(out) || (classWeights !== null && !mine(classWeights))) {
      throw new Error('softmax wasm kernel: x, y, theta, out and the class weights must come from this kernel');
    }
    if (order !== null && !mine(order)) {
      // An epoch order held elsewhere: its O(to − from) indices are copied in (as the binary kernel does).
      if (to - from > this.scratchIndex.length) this.scratchIndex = this.allocateIndex(Math.max(to - from, 2 * this.scratchIndex.length));
      this.scratchIndex.set(order.subarray(from, to));
      return this.accumulate(x, y, D, K, this.scratchIndex, 0, to - from, theta, out, offset, classWeights);
    }
    const inRange = order === null ? to * D <= x.length && to <= y.length : to <= order.length;
    const hasWeights = classWeights === null || classWeights.length >= K;
    if (!(K >= 1 && hasWeights && from >= 0 && from <= to && inRange && theta.length >= K * D + K && offset + softmaxPartWidth(K, D) <= out.length)) {
      throw new RangeError(`softmax wasm kernel: rows [${from}, ${to}), K = ${K} or offset ${offset} out of range`);
    }
    if (this.scratch.length < K) this.scratch = this.allocateVector(K);
    const [xAddress, yAddress, orderAddress] =
      order === null ? [x.byteOffset + from * D * 4, y.byteOffset + from * 2, 0] : [x.byteOffset, y.byteOffset, order.byteOffset + from * 4];
    const weightsAddress = classWeights === null ? 0 : classWeights.byteOffset;
    return this.exports.softmax(
      xAddress,
      yAddress,
      D,
      K,
      orderAddress,
      to - from,
      theta.byteOffset,
      this.scratch.byteOffset,
      out.byteOffset + offset * 8,
      weightsAddress,
    );
  }

  /** Bump allocation of `bytes`, growing the memory; returns the address. */
  private allocate(bytes: number): number {
    const address = Math.ceil(this.nextFree / ALIGN) * ALIGN;
    const end = address + Math.max(bytes, 1);
    if (end > SOFTMAX_KERNEL_MODULE.memory.maxPages * PAGE_BYTES) throw new RangeError(`softmax wasm kernel: ${end} bytes exceed the 4 GiB of a wasm32 memory`);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      this.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
      this.buffers.add(this.memory.buffer);
    }
    this.nextFree = end;
    return address;
  }
}

// The WebAssembly SIMD-128 gradient kernel: its source as flat WAT, assembled at module load
// (shared/wasm-assembler.ts), and instantiated over a shared linear memory that holds the rows.
// Same contract as accumulateGradient (shared/model.ts) in its own operation order, the
// "lanes8" order (kernel id lanes8-r4-f64acc-1), which no instruction set decides: the native
// kernel (native/kernel.c, 8 float64 lanes where the CPU has them) and the TypeScript twin
// (shared/kernel.ts accumulateLanes8) compute it too, to the same bits.
//
// The lanes8 order. Per block of 4 rows (then single rows for the last n mod 4 rows of the range):
//   D8 = D − D mod 8. Per row: 8 partial sums S_k = Σ w_j·x_j over j < D8, j ≡ k (mod 8), each
//   from 0 in increasing j; z = ((S0 + S4) + (S2 + S6)) + ((S1 + S5) + (S3 + S7)); then
//   z = z + w_j·x_j for j = D8 … D − 1 in order; then z = z + b.
//   e = exp(−|z|); a = (z ≥ 0 ? 1 : e)/(1 + e); L = log1p(e) + max(z, 0) − y·z   (as model.ts)
//   with class weights (issue #12): r = (a − y)·c_y and L·c_y; without, c_y = 1 (the same bits)
//   bias += r and loss += L·c_y row by row in order
//   out_j += ((r_0·x_0j + r_1·x_1j) + (r_2·x_2j + r_3·x_3j)) for a block of 4, out_j += r·x_j for one
//   out_D += bias, once per call
// Every operation is a plain IEEE-754 float64 operation (no FMA, no relaxed SIMD, no
// reassociation), x is widened from float32 exactly, and exp/log1p are the module's own fdlibm
// ports (MATH_FUNCTIONS below, not JavaScript's Math), so the same inputs give the same bits on
// every x86 or ARM machine, every Node.js version and every implementation of the order.
// Here: S_2m and S_2m+1 are the lanes of f64x2 accumulator m (4 per row); two rows share each
// load of w; blocking 4 rows shares each load/store of out between 4 rows. The blocks depend
// only on the range given.

import { assembleModule, type FunctionSource, type ModuleSource } from './wasm-assembler.js';

/**
 * Exported signature: accumulate(x, y, D, order, n, w, b, out, classWeights) → Σ L. Addresses are
 * byte offsets; classWeights is the address of c_0, c_1 (float64), or 0 for none (issue #12).
 */
export type WasmAccumulate = (x: number, y: number, D: number, order: number, n: number, w: number, b: number, out: number, classWeights: number) => number;

const ROWS = [0, 1, 2, 3];

/** Row pointers and labels of block rows `rows`, starting at position $k. */
function loadRows(rows: readonly number[]): string {
  return rows
    .map(
      (r) => `
    local.get $order i32.eqz
    if  ;; contiguous: row = k + r (x and y already point at the range's first row)
      local.get $k i32.const ${r} i32.add local.set $row
    else  ;; indexed: row = order[k + r]
      local.get $order local.get $k i32.const 2 i32.shl i32.add i32.load offset=${4 * r} local.set $row
    end
    local.get $x local.get $row local.get $rowBytes i32.mul i32.add local.set $p${r}
    local.get $y local.get $row i32.add i32.load8_u local.tee $label f64.convert_i32_u local.set $y${r}
    f64.const 1 local.set $c${r}  ;; c_y: the class weight, 1 without a table (x·1 = x exactly)
    local.get $cw if local.get $cw local.get $label i32.const 3 i32.shl i32.add f64.load local.set $c${r} end`,
    )
    .join('\n');
}

/** Accumulators of one row of a dot-product group: f64x2 m holds the partial sums S_2m and S_2m+1. */
const LANES = [0, 1, 2, 3];

/**
 * z_r for the rows of one group (1 or 2 rows share each load of w): the order's 8 partial sums as
 * 4 f64x2 accumulators per row over the multiple-of-8 prefix, the fixed tree, the tail in order, + b.
 */
function dotGroup(rows: readonly number[]): string {
  const slots = rows.map((r, i) => [r, i] as const);
  const zero = slots.flatMap(([, i]) => LANES.map((m) => `f64.const 0 f64x2.splat local.set $s${i}${m}`)).join('\n');
  const step = slots
    .flatMap(([, i]) =>
      LANES.map(
        (m) =>
          `local.get $s${i}${m} local.get $xa${i} v128.load64_zero offset=${8 * m} f64x2.promote_low_f32x4 local.get $wv${m} f64x2.mul f64x2.add local.set $s${i}${m}`,
      ).concat([`local.get $xa${i} i32.const 32 i32.add local.set $xa${i}`]),
    )
    .join('\n');
  const start = slots.map(([r, i]) => `local.get $p${r} local.set $xa${i}`).join('\n');
  // ((S0 + S4) + (S2 + S6)) + ((S1 + S5) + (S3 + S7)): lane l of (A0 + A2) + (A1 + A3), then lane 0 + lane 1.
  const reduce = slots
    .map(
      ([r, i]) =>
        `local.get $s${i}0 local.get $s${i}2 f64x2.add local.get $s${i}1 local.get $s${i}3 f64x2.add f64x2.add local.tee $s${i}0 f64x2.extract_lane 0 local.get $s${i}0 f64x2.extract_lane 1 f64.add local.set $z${r}`,
    )
    .join('\n');
  const tail = slots
    .map(([r]) => `local.get $z${r} local.get $wv local.get $p${r} local.get $xj i32.add f32.load f64.promote_f32 f64.mul f64.add local.set $z${r}`)
    .join('\n');
  const bias = slots.map(([r]) => `local.get $z${r} local.get $b f64.add local.set $z${r}`).join('\n');
  return `
    ${zero}
    ${start}
    local.get $w local.set $wa
    local.get $w local.get $dotBytes i32.const 1 i32.shl i32.add local.set $wEnd
    block $dotDone
      local.get $dotBytes i32.eqz br_if $dotDone
      loop $dot
        local.get $wa v128.load local.set $wv0
        local.get $wa v128.load offset=16 local.set $wv1
        local.get $wa v128.load offset=32 local.set $wv2
        local.get $wa v128.load offset=48 local.set $wv3
        ${step}
        local.get $wa i32.const 64 i32.add local.tee $wa local.get $wEnd i32.lt_u br_if $dot
      end
    end
    ${reduce}
    local.get $dotBytes local.set $xj
    block $dotTailDone
      local.get $xj local.get $rowBytes i32.ge_u br_if $dotTailDone
      loop $dotTail
        local.get $wa f64.load local.set $wv
        ${tail}
        local.get $wa i32.const 8 i32.add local.set $wa
        local.get $xj i32.const 4 i32.add local.tee $xj local.get $rowBytes i32.lt_u br_if $dotTail
      end
    end
    ${bias}`;
}

/** z_r for the block rows: pairs of rows (a pair's 8 accumulators and w's 4 fit the 16 SIMD registers of x86-64). */
function dotProducts(rows: readonly number[]): string {
  return rows.length === 4 ? `${dotGroup([0, 1])}\n${dotGroup([2, 3])}` : dotGroup(rows);
}

/** Residual r = (a − y)·c_y, the bias sum and the loss sum (L·c_y), row by row in order (as model.ts computes them). */
function residuals(rows: readonly number[]): string {
  return rows
    .map(
      (r) => `
    local.get $z${r} f64.abs f64.neg call $exp local.set $e
    f64.const 1 local.get $e local.get $z${r} f64.const 0 f64.ge select
    f64.const 1 local.get $e f64.add f64.div
    local.get $y${r} f64.sub local.get $c${r} f64.mul local.tee $r${r}
    local.get $bias f64.add local.set $bias
    local.get $loss
    local.get $e call $log1p local.get $z${r} f64.const 0 f64.max f64.add local.get $y${r} local.get $z${r} f64.mul f64.sub
    local.get $c${r} f64.mul f64.add local.set $loss
    local.get $r${r} f64x2.splat local.set $rv${r}`,
    )
    .join('\n');
}

/** ((t0 + t1) + (t2 + t3)) for 4 terms, t0 for one. */
function sumTree(terms: readonly string[], add: string): string {
  if (terms.length === 1) return terms[0]!;
  return `${terms[0]} ${terms[1]} ${add} ${terms[2]} ${terms[3]} ${add} ${add}`;
}

/** out_j += Σ_r r_r·x_rj over the block rows: SIMD over the multiple-of-4 prefix, then the tail. */
function gradient(rows: readonly number[]): string {
  const half = (offset: number): string =>
    sumTree(
      rows.map((r) => `local.get $p${r} local.get $xj i32.add v128.load64_zero offset=${offset} f64x2.promote_low_f32x4 local.get $rv${r} f64x2.mul`),
      'f64x2.add',
    );
  const scalar = sumTree(
    rows.map((r) => `local.get $p${r} local.get $xj i32.add f32.load f64.promote_f32 local.get $r${r} f64.mul`),
    'f64.add',
  );
  return `
    i32.const 0 local.set $xj
    local.get $out local.set $oa
    block $gradDone
      local.get $vecBytes i32.eqz br_if $gradDone
      loop $grad
        local.get $oa local.get $oa v128.load ${half(0)} f64x2.add v128.store
        local.get $oa local.get $oa v128.load offset=16 ${half(8)} f64x2.add v128.store offset=16
        local.get $oa i32.const 32 i32.add local.set $oa
        local.get $xj i32.const 16 i32.add local.tee $xj local.get $vecBytes i32.lt_u br_if $grad
      end
    end
    block $gradTailDone
      local.get $xj local.get $rowBytes i32.ge_u br_if $gradTailDone
      loop $gradTail
        local.get $oa local.get $oa f64.load ${scalar} f64.add f64.store
        local.get $oa i32.const 8 i32.add local.set $oa
        local.get $xj i32.const 4 i32.add local.tee $xj local.get $rowBytes i32.lt_u br_if $gradTail
      end
    end`;
}

function block(rows: readonly number[]): string {
  return `${loadRows(rows)}\n${dotProducts(rows)}\n${residuals(rows)}\n${gradient(rows)}`;
}

const BODY = `
  local.get $D i32.const 2 i32.shl local.set $rowBytes
  local.get $D i32.const -4 i32.and i32.const 2 i32.shl local.set $vecBytes
  local.get $D i32.const -8 i32.and i32.const 2 i32.shl local.set $dotBytes
  block $blocksDone
    loop $blocks  ;; blocks of 4 rows while k + 4 ≤ n
      local.get $k i32.const 4 i32.add local.get $n i32.gt_u br_if $blocksDone
      ${block(ROWS)}
      local.get $k i32.const 4 i32.add local.set $k
      br $blocks
    end
  end
  block $rowsDone
    loop $rows  ;; the last n mod 4 rows one at a time
      local.get $k local.get $n i32.ge_u br_if $rowsDone
      ${block([0])}
      local.get $k i32.const 1 i32.add local.set $k
      br $rows
    end
  end
  ;; out_D += Σ(a − y)
  local.get $out local.get $rowBytes i32.const 1 i32.shl i32.add local.tee $oa
  local.get $oa f64.load local.get $bias f64.add f64.store
  local.get $loss
end`;

/** The double with high word `hi` and low word `lo`, as exact decimal text for f64.const. */
function double(hi: number, lo: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setUint32(0, hi);
  view.setUint32(4, lo);
  return String(view.getFloat64(0)); // shortest text that reads back to the same double
}

/** High 32 bits of the f64 on the stack, as i32 (fdlibm's GET_HIGH_WORD). */
const HIGH_WORD = 'i64.reinterpret_f64 i64.const 32 i64.shr_u i32.wrap_i64';
/** The f64 2^k for the i32 on the stack, −1022 ≤ k ≤ 1023 (fdlibm's INSERT_WORDS(0x3ff00000 + (k << 20), 0)). */
const POW2 = 'i32.const 20 i32.shl i32.const 0x3ff00000 i32.add i64.extend_i32_u i64.const 32 i64.shl f64.reinterpret_i64';

// exp(x) for x ≤ 0 (the kernel needs e^(−|z|) only): fdlibm's e_exp.c (Sun Microsystems, 1993,
// "permission to use, copy, modify, and distribute this software is freely granted, provided that
// this notice is preserved"), the algorithm V8's Math.exp uses: x = k·ln2 + r, |r| ≤ ln2/2, a
// degree-5 Remez polynomial R1 with exp(r) = 1 + r + r·R1/(2 − R1), scaled by 2^k; < 1 ulp.
const EXP_BODY = `
  local.get $x local.get $x f64.ne if local.get $x return end  ;; NaN
  local.get $x ${HIGH_WORD} i32.const 0x7fffffff i32.and local.set $hx
  local.get $hx i32.const 0x40862e42 i32.ge_u if  ;; |x| ≥ 709.78: below u_threshold exp underflows to 0
    local.get $x f64.const ${double(0xc0874910, 0xd52d3051)} f64.lt if f64.const 0 return end
  end
  local.get $hx i32.const 0x3fd62e42 i32.gt_u if  ;; |x| > ln2/2: reduce
    local.get $hx i32.const 0x3ff0a2b2 i32.lt_u if  ;; |x| < 1.5·ln2: k = −1
      i32.const -1 local.set $k
      local.get $x f64.const ${double(0x3fe62e42, 0xfee00000)} f64.add local.set $hi
      f64.const ${double(0xbdea39ef, 0x35793c76)} local.set $lo
    else  ;; k = (int)(x/ln2 − 0.5); hi = x − k·ln2_hi (exact); lo = k·ln2_lo
      f64.const ${double(0x3ff71547, 0x652b82fe)} local.get $x f64.mul f64.const -0.5 f64.add i32.trunc_f64_s local.tee $k
      f64.convert_i32_s local.set $t
      local.get $x local.get $t f64.const ${double(0x3fe62e42, 0xfee00000)} f64.mul f64.sub local.set $hi
      local.get $t f64.const ${double(0x3dea39ef, 0x35793c76)} f64.mul local.set $lo
    end
    local.get $hi local.get $lo f64.sub local.set $x
  else
    local.get $hx i32.const 0x3e300000 i32.lt_u if  ;; |x| < 2^−28
      f64.const 1 local.get $x f64.add return
    end
  end
  ;; c = x − t·(P1 + t·(P2 + t·(P3 + t·(P4 + t·P5)))), t = x²
  local.get $x local.get $x f64.mul local.set $t
  local.get $x
  local.get $t
  f64.const ${double(0x3fc55555, 0x5555553e)}
  local.get $t
  f64.const ${double(0xbf66c16c, 0x16bebd93)}
  local.get $t
  f64.const ${double(0x3f11566a, 0xaf25de2c)}
  local.get $t
  f64.const ${double(0xbebbbd41, 0xc5d26bf1)}
  local.get $t f64.const ${double(0x3e663769, 0x72bea4d0)} f64.mul
  f64.add f64.mul f64.add f64.mul f64.add f64.mul f64.add f64.mul f64.sub local.set $c
  local.get $k i32.eqz if  ;; 1 − ((x·c)/(c − 2) − x)
    f64.const 1 local.get $x local.get $c f64.mul local.get $c f64.const 2 f64.sub f64.div local.get $x f64.sub f64.sub return
  end
  ;; y = 1 − ((lo − (x·c)/(2 − c)) − hi), then y·2^k (in two factors where 2^k is subnormal)
  f64.const 1 local.get $lo local.get $x local.get $c f64.mul f64.const 2 local.get $c f64.sub f64.div f64.sub local.get $hi f64.sub f64.sub local.set $y
  local.get $k i32.const -1021 i32.ge_s if local.get $y local.get $k ${POW2} f64.mul return end
  local.get $y local.get $k i32.const 1000 i32.add ${POW2} f64.mul f64.const ${double(0x01700000, 0)} f64.mul
end`;

// log1p(x) for 0 ≤ x ≤ 1 (the kernel needs log(1 + e^(−|z|)) only): fdlibm's s_log1p.c (same
// notice as above): 1 + x = 2^k·(1 + f) with √2/2 ≤ 1 + f < √2 and a correction c for the
// rounding of 1 + x; log(1 + f) = f − (f²/2 − s·(f²/2 + R(s²))), s = f/(2 + f); < 1 ulp.
const LOG1P_BODY = `
  local.get $x ${HIGH_WORD} local.set $hx
  i32.const 1 local.set $k
  local.get $hx i32.const 0x3fda827a i32.lt_s if  ;; x < 0.41422
    local.get $hx i32.const 0x3e200000 i32.lt_s if  ;; x < 2^−29
      local.get $hx i32.const 0x3c900000 i32.lt_s if local.get $x return end
      local.get $x local.get $x local.get $x f64.mul f64.const 0.5 f64.mul f64.sub return
    end
    i32.const 0 local.set $k local.get $x local.set $f i32.const 1 local.set $hu
  end
  local.get $hx i32.const 0x7ff00000 i32.ge_s if local.get $x local.get $x f64.add return end  ;; NaN, +∞
  local.get $k if
    f64.const 1 local.get $x f64.add local.tee $u ${HIGH_WORD} local.tee $hu
    i32.const 20 i32.shr_s i32.const 1023 i32.sub local.tee $k
    i32.const 0 i32.gt_s if  ;; c = (k > 0 ? 1 − (u − x) : x − (u − 1)) / u
      f64.const 1 local.get $u local.get $x f64.sub f64.sub local.set $c
    else
      local.get $x local.get $u f64.const 1 f64.sub f64.sub local.set $c
    end
    local.get $c local.get $u f64.div local.set $c
    local.get $hu i32.const 0x000fffff i32.and local.set $hu
    local.get $hu i32.const 0x6a09e i32.lt_s if  ;; normalize u into [1, √2)
      local.get $u local.get $hu i32.const 0x3ff00000 i32.or call $setHighWord local.set $u
    else  ;; normalize u/2 into [√2/2, 1)
      local.get $k i32.const 1 i32.add local.set $k
      local.get $u local.get $hu i32.const 0x3fe00000 i32.or call $setHighWord local.set $u
      i32.const 0x00100000 local.get $hu i32.sub i32.const 2 i32.shr_s local.set $hu
    end
    local.get $u f64.const 1 f64.sub local.set $f
  end
  f64.const 0.5 local.get $f f64.mul local.get $f f64.mul local.set $hfsq
  local.get $k f64.convert_i32_s local.set $dk
  local.get $hu i32.eqz if  ;; |f| < 2^−20
    local.get $f f64.const 0 f64.eq if
      local.get $k i32.eqz if f64.const 0 return end
      local.get $dk f64.const ${double(0x3fe62e42, 0xfee00000)} f64.mul local.get $c local.get $dk f64.const ${double(0x3dea39ef, 0x35793c76)} f64.mul f64.add f64.add return
    end
    local.get $hfsq f64.const 1 f64.const 0.66666666666666666 local.get $f f64.mul f64.sub f64.mul local.set $R
    local.get $k i32.eqz if local.get $f local.get $R f64.sub return end
    local.get $dk f64.const ${double(0x3fe62e42, 0xfee00000)} f64.mul
    local.get $R local.get $dk f64.const ${double(0x3dea39ef, 0x35793c76)} f64.mul local.get $c f64.add f64.sub local.get $f f64.sub
    f64.sub return
  end
  local.get $f f64.const 2 local.get $f f64.add f64.div local.tee $s local.get $s f64.mul local.set $z
  ;; R = z·(Lp1 + z·(Lp2 + … + z·Lp7))
  local.get $z
  f64.const ${double(0x3fe55555, 0x55555593)} local.get $z
  f64.const ${double(0x3fd99999, 0x9997fa04)} local.get $z
  f64.const ${double(0x3fd24924, 0x94229359)} local.get $z
  f64.const ${double(0x3fcc71c5, 0x1d8e78af)} local.get $z
  f64.const ${double(0x3fc74664, 0x96cb03de)} local.get $z
  f64.const ${double(0x3fc39a09, 0xd078c69f)} local.get $z f64.const ${double(0x3fc2f112, 0xdf3e5244)} f64.mul
  f64.add f64.mul f64.add f64.mul f64.add f64.mul f64.add f64.mul f64.add f64.mul f64.add f64.mul local.set $R
  local.get $k i32.eqz if  ;; f − (hfsq − s·(hfsq + R))
    local.get $f local.get $hfsq local.get $s local.get $hfsq local.get $R f64.add f64.mul f64.sub f64.sub return
  end
  ;; k·ln2_hi − ((hfsq − (s·(hfsq + R) + (k·ln2_lo + c))) − f)
  local.get $dk f64.const ${double(0x3fe62e42, 0xfee00000)} f64.mul
  local.get $hfsq
  local.get $s local.get $hfsq local.get $R f64.add f64.mul local.get $dk f64.const ${double(0x3dea39ef, 0x35793c76)} f64.mul local.get $c f64.add f64.add
  f64.sub local.get $f f64.sub f64.sub
end`;

/** fdlibm's SET_HIGH_WORD(u, hi): u with its high 32 bits replaced. */
const SET_HIGH_WORD_BODY = `
  local.get $u i64.reinterpret_f64 i64.const 0xffffffff i64.and
  local.get $hi i64.extend_i32_u i64.const 32 i64.shl i64.or f64.reinterpret_i64
end`;

const i32 = 'i32' as const;
const f64 = 'f64' as const;
const v128 = 'v128' as const;

/**
 * The kernel's own e^x (x ≤ 0), log(1 + x) (0 ≤ x < 2^53) and their helper, as module functions
 * (`call $exp`, `call $log1p`): other kernels (shared/softmax-kernel-wasm.ts) include the same
 * source, so every kernel computes the same bits for exp and log1p on every Node.js version.
 */
export const MATH_FUNCTIONS: readonly FunctionSource[] = [
  {
    name: '$exp',
    export: 'exp',
    params: [['$x', f64]],
    results: [f64],
    locals: [
      ['$hx', i32],
      ['$k', i32],
      ['$hi', f64],
      ['$lo', f64],
      ['$t', f64],
      ['$c', f64],
      ['$y', f64],
    ],
    body: EXP_BODY,
  },
  {
    name: '$log1p',
    export: 'log1p',
    params: [['$x', f64]],
    results: [f64],
    locals: [
      ['$hx', i32],
      ['$hu', i32],
      ['$k', i32],
      ['$dk', f64],
      ['$u', f64],
      ['$c', f64],
      ['$f', f64],
      ['$hfsq', f64],
      ['$s', f64],
      ['$z', f64],
      ['$R', f64],
    ],
    body: LOG1P_BODY,
  },
  {
    name: '$setHighWord',
    params: [
      ['$u', f64],
      ['$hi', i32],
    ],
    results: [f64],
    locals: [],
    body: SET_HIGH_WORD_BODY,
  },
];

/** The kernel module's source; its memory is imported as env.memory. exp and log1p are exported for tests. */
export const KERNEL_MODULE: ModuleSource = {
  memory: { module: 'env', field: 'memory', minPages: 1, maxPages: 65_536, shared: true },
  imports: [],
  functions: [
    {
      name: '$accumulate',
      export: 'accumulate',
      params: [
        ['$x', i32],
        ['$y', i32],
        ['$D', i32],
        ['$order', i32],
        ['$n', i32],
        ['$w', i32],
        ['$b', f64],
        ['$out', i32],
        ['$cw', i32],
      ],
      results: [f64],
      locals: [
        ...(['$k', '$row', '$label', '$rowBytes', '$vecBytes', '$dotBytes', '$xj', '$xa0', '$xa1', '$wa', '$wEnd', '$oa'] as const).map(
          (name) => [name, i32] as const,
        ),
        ...ROWS.map((r) => [`$p${r}`, i32] as const),
        ...ROWS.flatMap((r) => [[`$y${r}`, f64] as const, [`$z${r}`, f64] as const, [`$r${r}`, f64] as const, [`$c${r}`, f64] as const]),
        ...(['$e', '$wv', '$bias', '$loss'] as const).map((name) => [name, f64] as const),
        ...ROWS.map((r) => [`$rv${r}`, v128] as const),
        ...[0, 1].flatMap((i) => LANES.map((m) => [`$s${i}${m}`, v128] as const)),
        ...LANES.map((m) => [`$wv${m}`, v128] as const),
      ],
      body: BODY,
    },
    ...MATH_FUNCTIONS,
  ],
};

// The WebAssembly API as far as we use it. Declared here because @types/node 20 does not declare
// the global (Node.js has it); a local view of globalThis does not clash when newer types do.
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number; maximum: number; shared: true }) => WasmMemory;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
}
/** The WebAssembly global, or undefined where this JavaScript has none. */
export const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let compiled: object | null | undefined;

/** The compiled kernel module, or null where WebAssembly SIMD or shared memory is unavailable. */
function kernelModule(): object | null {
  if (compiled === undefined) {
    const bytes = assembleModule(KERNEL_MODULE);
    compiled = wasm?.validate(bytes) === true ? new wasm.Module(bytes) : null;
  }
  return compiled;
}

/** True where this Node.js can run the SIMD kernel (WebAssembly SIMD-128 and shared memory). */
export function isWasmSimdSupported(): boolean {
  return kernelModule() !== null;
}

export interface KernelInstance {
  /** Shared memory (64 KiB pages, at most `maxPages`): growing it never detaches earlier views. */
  readonly memory: WasmMemory;
  readonly maxPages: number;
  readonly accumulate: WasmAccumulate;
  /** The kernel's own e^x (x ≤ 0) and log(1 + x) (0 ≤ x ≤ 1), exported for tests. */
  readonly exp: (x: number) => number;
  readonly log1p: (x: number) => number;
}

/**
 * An instance of the kernel over its own fresh memory, or over `memory` (a helper thread shares
 * its worker's memory: the rows are read where they lie); null where SIMD is unavailable.
 */
export function instantiateKernel(shared?: WasmMemory): KernelInstance | null {
  const module = kernelModule();
  if (module === null || wasm === undefined) return null;
  const { minPages, maxPages } = KERNEL_MODULE.memory;
  const memory = shared ?? new wasm.Memory({ initial: minPages, maximum: maxPages, shared: true });
  const instance = new wasm.Instance(module, { env: { memory } });
  // The module above exports exactly these signatures.
  const exports = instance.exports as { accumulate: WasmAccumulate; exp: (x: number) => number; log1p: (x: number) => number };
  return { memory, maxPages, ...exports };
}

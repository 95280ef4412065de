// AssemblyScript: elementwise float32 kernels of the CPU backend (WebAssembly SIMD), for the unary ops whose
// scalar forms call Math.exp, and relu (autodiff/op_table.ts gives their definitions). The host copies a block of the
// input to `src`, runs one kernel, and copies `dst` back; `n` is rounded up to a multiple of 8 by the host.

import { C_1_0, vexpIeee, vexpNegative, vlog1pUnit, vOnePlusErf } from "./vmath";

/** Op codes; the host (elementwise_wasm.ts) lists the same names in the same order. */
const EXP = 0, SIGMOID = 1, SILU = 2, GELU = 3, SOFTPLUS = 4, SILU_GRAD = 5, GELU_GRAD = 6, RELU = 7;

// Vector constants as globals (see vmath.ts).
let C_0_5 = f32x4.splat(0.5);
let C_0_70710678118654752 = f32x4.splat(0.70710678118654752);
let C_0_3989422804014327 = f32x4.splat(0.3989422804014327);
let C_M0_5 = f32x4.splat(-0.5);
let C_0_0 = f32x4.splat(0.0);
let C_20_0 = f32x4.splat(20.0);

@inline function sigmoid(x: v128): v128 {
  return f32x4.div(C_1_0, f32x4.add(C_1_0, vexpIeee(f32x4.neg(x))));
}

/** Φ(x) = (1 + erf(x/√2))/2, GELU's Gaussian CDF. */
@inline function cdf(x: v128): v128 {
  return f32x4.mul(C_0_5, vOnePlusErf(f32x4.mul(x, C_0_70710678118654752)));
}

/** φ(x) = e^(−x²/2)/√(2π), its density. */
@inline function pdf(x: v128): v128 {
  return f32x4.mul(C_0_3989422804014327, vexpNegative(f32x4.mul(C_M0_5, f32x4.mul(x, x))));
}

@inline function apply(op: i32, x: v128): v128 {
  if (op === RELU) return v128.and(x, f32x4.gt(x, C_0_0)); // x > 0 ? x : 0 (NaN and −0 give +0)
  if (op === EXP) return vexpIeee(x);
  if (op === SIGMOID) return sigmoid(x);
  if (op === SILU) return f32x4.mul(x, sigmoid(x));
  if (op === GELU) return f32x4.mul(x, cdf(x)); // x·Φ(x)
  if (op === SOFTPLUS) {
    // x > 20: x (torch's threshold); else max(x, 0) + log1p(e^−|x|)
    const sp = f32x4.add(f32x4.max(x, C_0_0), vlog1pUnit(vexpIeee(f32x4.neg(f32x4.abs(x)))));
    return v128.bitselect(x, sp, f32x4.gt(x, C_20_0));
  }
  if (op === SILU_GRAD) {
    // s·(1 + x·(1 − s))
    const s = sigmoid(x);
    return f32x4.mul(s, f32x4.add(C_1_0, f32x4.mul(x, f32x4.sub(C_1_0, s))));
  }
  return f32x4.add(cdf(x), f32x4.mul(x, pdf(x))); // GELU_GRAD: Φ(x) + x·φ(x)
}

/** Two vectors per iteration: independent polynomial chains overlap (the loops are latency-bound otherwise). */
@inline function run(op: i32, src: usize, dst: usize, end: usize): void {
  for (; src < end; src += 32, dst += 32) {
    const a = apply(op, v128.load(src)), b = apply(op, v128.load(src, 16));
    v128.store(dst, a);
    v128.store(dst, b, 16);
  }
}

/** dst[i] = op(src[i]) for i < n (n a multiple of 8). */
export function unary(op: i32, src: usize, dst: usize, n: i32): void {
  const end = src + (<usize>n << 2);
  // one loop per op, so the op's branches fold away inside the element loop
  if (op === EXP) run(EXP, src, dst, end);
  else if (op === SIGMOID) run(SIGMOID, src, dst, end);
  else if (op === SILU) run(SILU, src, dst, end);
  else if (op === GELU) run(GELU, src, dst, end);
  else if (op === SOFTPLUS) run(SOFTPLUS, src, dst, end);
  else if (op === SILU_GRAD) run(SILU_GRAD, src, dst, end);
  else if (op === RELU) run(RELU, src, dst, end);
  else run(GELU_GRAD, src, dst, end);
}

/** Wave-MambaAD's DSE gate (Eq. 8): dst = gelu(a)·b + gelu(b)·a for i < n (n a multiple of 4). */
export function geluCross(a: usize, b: usize, dst: usize, n: i32): void {
  const end = a + (<usize>n << 2);
  for (; a < end; a += 16, b += 16, dst += 16) {
    const x = v128.load(a), y = v128.load(b);
    v128.store(dst, f32x4.add(f32x4.mul(apply(GELU, x), y), f32x4.mul(apply(GELU, y), x)));
  }
}

/**
 * Gradient of {@link geluCross} given g: da = g·(gelu'(a)·b + gelu(b)), db = g·(gelu'(b)·a + gelu(a)). Each of a and
 * b takes one erf and one exp, shared by gelu = x·Φ(x) and gelu' = Φ(x) + x·φ(x) (the same values as GELU and
 * GELU_GRAD above, which would take two erfs each).
 */
export function geluCrossGrad(a: usize, b: usize, g: usize, da: usize, db: usize, n: i32): void {
  const end = a + (<usize>n << 2);
  for (; a < end; a += 16, b += 16, g += 16, da += 16, db += 16) {
    const x = v128.load(a), y = v128.load(b), gv = v128.load(g);
    const cx = cdf(x), cy = cdf(y);
    const gradX = f32x4.add(cx, f32x4.mul(x, pdf(x))), gradY = f32x4.add(cy, f32x4.mul(y, pdf(y)));
    v128.store(da, f32x4.mul(gv, f32x4.add(f32x4.mul(gradX, y), f32x4.mul(y, cy))));
    v128.store(db, f32x4.mul(gv, f32x4.add(f32x4.mul(gradY, x), f32x4.mul(x, cx))));
  }
}

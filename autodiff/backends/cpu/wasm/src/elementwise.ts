// AssemblyScript: elementwise float32 kernels of the CPU backend (WebAssembly SIMD), for the unary ops whose
// scalar forms call Math.exp (autodiff/op_table.ts gives their definitions). The host copies a block of the
// input to `src`, runs one kernel, and copies `dst` back; `n` is rounded up to a multiple of 4 by the host.

import { vexpIeee, vlog1pUnit, vOnePlusErf } from "./vmath";

/** Op codes; the host (elementwise_wasm.ts) lists the same names in the same order. */
const EXP = 0, SIGMOID = 1, SILU = 2, GELU = 3, SOFTPLUS = 4, SILU_GRAD = 5, GELU_GRAD = 6;

const ONE = f32x4.splat(1.0);

function sigmoid(x: v128): v128 {
  return f32x4.div(ONE, f32x4.add(ONE, vexpIeee(f32x4.neg(x))));
}

function apply(op: i32, x: v128): v128 {
  if (op === EXP) return vexpIeee(x);
  if (op === SIGMOID) return sigmoid(x);
  if (op === SILU) return f32x4.mul(x, sigmoid(x));
  if (op === GELU) {
    // 0.5·x·(1 + erf(x/√2))
    return f32x4.mul(
      f32x4.mul(f32x4.splat(0.5), x),
      vOnePlusErf(f32x4.mul(x, f32x4.splat(0.70710678118654752))),
    );
  }
  if (op === SOFTPLUS) {
    // x > 20: x (torch's threshold); else max(x, 0) + log1p(e^−|x|)
    const sp = f32x4.add(f32x4.max(x, f32x4.splat(0.0)), vlog1pUnit(vexpIeee(f32x4.neg(f32x4.abs(x)))));
    return v128.bitselect(x, sp, f32x4.gt(x, f32x4.splat(20.0)));
  }
  if (op === SILU_GRAD) {
    // s·(1 + x·(1 − s))
    const s = sigmoid(x);
    return f32x4.mul(s, f32x4.add(ONE, f32x4.mul(x, f32x4.sub(ONE, s))));
  }
  // GELU_GRAD: Φ(x) + x·φ(x)
  const cdf = f32x4.mul(f32x4.splat(0.5), vOnePlusErf(f32x4.mul(x, f32x4.splat(0.70710678118654752))));
  const pdf = f32x4.mul(f32x4.splat(0.3989422804014327), vexpIeee(f32x4.mul(f32x4.splat(-0.5), f32x4.mul(x, x))));
  return f32x4.add(cdf, f32x4.mul(x, pdf));
}

/** dst[i] = op(src[i]) for i < n (n a multiple of 4). */
export function unary(op: i32, src: usize, dst: usize, n: i32): void {
  const end = src + (<usize> n << 2);
  // one loop per op, so the op's branch is outside the element loop
  if (op === EXP) { for (; src < end; src += 16, dst += 16) v128.store(dst, apply(EXP, v128.load(src))); }
  else if (op === SIGMOID) { for (; src < end; src += 16, dst += 16) v128.store(dst, apply(SIGMOID, v128.load(src))); }
  else if (op === SILU) { for (; src < end; src += 16, dst += 16) v128.store(dst, apply(SILU, v128.load(src))); }
  else if (op === GELU) { for (; src < end; src += 16, dst += 16) v128.store(dst, apply(GELU, v128.load(src))); }
  else if (op === SOFTPLUS) {
    for (; src < end; src += 16, dst += 16) {
      v128.store(dst, apply(SOFTPLUS, v128.load(src)));
    }
  } else if (op === SILU_GRAD) {
    for (; src < end; src += 16, dst += 16) v128.store(dst, apply(SILU_GRAD, v128.load(src)));
  } else for (; src < end; src += 16, dst += 16) v128.store(dst, apply(GELU_GRAD, v128.load(src)));
}

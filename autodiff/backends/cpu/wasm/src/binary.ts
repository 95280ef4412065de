// AssemblyScript: the float32 arithmetic ops (add, sub, mul, div) with broadcasting, on tensors that live in the
// kernels' memory (the host's tensor heap). The host coalesces the output shape to at most 4 dims (n0, n1, n2, len),
// gives each operand's strides in elements (0 where it broadcasts), and splits the n0·n1·n2 output rows over
// threads: one call writes rows [r0, r1) of the contiguous output. Each result is the correctly rounded float32
// result, as the host's scalar loops (double arithmetic rounded to float32) give.

import { rowStart } from "./rows";

/** Op codes; the host (binary_wasm.ts) lists the same names in the same order. */
const ADD = 0, SUB = 1, MUL = 2, DIV = 3;

@inline function apply(op: i32, x: v128, y: v128): v128 {
  if (op === ADD) return f32x4.add(x, y);
  if (op === SUB) return f32x4.sub(x, y);
  if (op === MUL) return f32x4.mul(x, y);
  return f32x4.div(x, y);
}

@inline function apply1(op: i32, x: f32, y: f32): f32 {
  if (op === ADD) return x + y;
  if (op === SUB) return x - y;
  if (op === MUL) return x * y;
  return x / y;
}

/** One output row of `len` elements; ia, ib: the operands' strides along it (in elements). */
@inline function row(op: i32, a: usize, b: usize, dst: usize, len: i32, ia: i32, ib: i32): void {
  let j = 0;
  if (ia === 1 && ib === 1) {
    for (; j + 4 <= len; j += 4) {
      const o = <usize>j << 2;
      v128.store(dst + o, apply(op, v128.load(a + o), v128.load(b + o)));
    }
  } else if (ia === 1 && ib === 0) {
    const y = v128.load32_splat(b);
    for (; j + 4 <= len; j += 4) {
      const o = <usize>j << 2;
      v128.store(dst + o, apply(op, v128.load(a + o), y));
    }
  } else if (ia === 0 && ib === 1) {
    const x = v128.load32_splat(a);
    for (; j + 4 <= len; j += 4) {
      const o = <usize>j << 2;
      v128.store(dst + o, apply(op, x, v128.load(b + o)));
    }
  }
  for (; j < len; j++) {
    store<f32>(dst + (<usize>j << 2), apply1(op, load<f32>(a + (<usize>(j * ia) << 2)), load<f32>(b + (<usize>(j * ib) << 2))));
  }
}

@inline function rows(
  op: i32, a: usize, b: usize, dst: usize, n1: i32, n2: i32, len: i32,
  sa0: i32, sa1: i32, sa2: i32, ia: i32, sb0: i32, sb1: i32, sb2: i32, ib: i32, r0: i32, r1: i32,
): void {
  for (let r = r0; r < r1; r++) {
    const pa = a + rowStart(r, n1, n2, sa0, sa1, sa2), pb = b + rowStart(r, n1, n2, sb0, sb1, sb2);
    row(op, pa, pb, dst + (<usize>r * <usize>len << 2), len, ia, ib);
  }
}

/** dst[r, j] = a[r, j] op b[r, j] for output rows r in [r0, r1) of the (n0, n1, n2, len) walk (see the top). */
export function binary(
  op: i32, a: usize, b: usize, dst: usize, n1: i32, n2: i32, len: i32,
  sa0: i32, sa1: i32, sa2: i32, ia: i32, sb0: i32, sb1: i32, sb2: i32, ib: i32, r0: i32, r1: i32,
): void {
  // one loop nest per op, so the op's branches fold away inside the element loop
  if (op === ADD) rows(ADD, a, b, dst, n1, n2, len, sa0, sa1, sa2, ia, sb0, sb1, sb2, ib, r0, r1);
  else if (op === SUB) rows(SUB, a, b, dst, n1, n2, len, sa0, sa1, sa2, ia, sb0, sb1, sb2, ib, r0, r1);
  else if (op === MUL) rows(MUL, a, b, dst, n1, n2, len, sa0, sa1, sa2, ia, sb0, sb1, sb2, ib, r0, r1);
  else rows(DIV, a, b, dst, n1, n2, len, sa0, sa1, sa2, ia, sb0, sb1, sb2, ib, r0, r1);
}

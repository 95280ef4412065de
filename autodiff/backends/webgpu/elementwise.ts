/**
 * Elementwise kernels: fill, cast, unary, binary, where, clamp, affine and strided copy. They are lazy: each returns
 * a buffer holding an expression that `fusion.ts` compiles, together with its elementwise neighbours, into one
 * kernel when something else needs the values. Op expressions come from the shared op table (`op_table.ts`).
 *
 * @module
 */

import type { BinaryOp, DType, UnaryOp } from "../../backend.ts";
import { BINARY } from "../../op_table.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import {
  Codegen,
  type FusedNode,
  lazy,
  MAX_NODES,
  MAX_VIEWS,
  maxLeaves,
  measure,
  operand,
  unaryOutDtype,
} from "./fusion.ts";
import {
  at,
  bindings,
  collapse,
  contiguousStrides,
  entry1d,
  grid,
  MAX_RANK,
  offsetsFn,
  stridedUniforms,
  uniforms,
  WG,
} from "./templates.ts";

/** `fill`: a new buffer with every element `value` (lazy: a constant, usually fused into its consumer). */
export function fill(rt: Runtime, length: number, value: number, dtype: DType): GPUBuf {
  if (length === 0) return rt.alloc(0, dtype);
  return lazy(rt, length, dtype, [], () => ({ k: "const", dtype, v: value }));
}

/** `cast`: converts element types (float→int truncates; anything→bool is `x != 0`). */
export function cast(rt: Runtime, x: GPUBuf, dtype: DType): GPUBuf {
  if (x.length === 0) return rt.alloc(0, dtype);
  return lazy(rt, x.length, dtype, [x], () => ({ k: "cast", dtype, x: operand(x) }));
}

/** `unary`: `out[i] = f(x[i])` with the op table's WGSL (lazy). */
export function unary(rt: Runtime, op: UnaryOp, x: GPUBuf): GPUBuf {
  const dtype = unaryOutDtype(op, x.dtype);
  if (x.length === 0) return rt.alloc(0, dtype);
  return lazy(rt, x.length, dtype, [x], () => ({ k: "unary", dtype, op, x: operand(x) }));
}

/** The node reading `b` over `shape` with `strides`: the buffer itself when that is its contiguous layout. */
function strided(b: GPUBuf, shape: readonly number[], strides: readonly number[], offset = 0): FusedNode {
  const n = shape.reduce((a, d) => a * d, 1);
  const c = collapse(shape, [strides]);
  const contiguous = offset === 0 && n === b.length && (n === 1 || (c.shape.length === 1 && c.strides[0][0] === 1));
  if (contiguous) return operand(b);
  return { k: "view", dtype: b.dtype, x: operand(b), shape: shape.slice(), strides: strides.slice(), offset };
}

/** `binary`: `out[i] = f(a[ia(i)], b[ib(i)])` over `shape` with broadcast/negative strides (lazy). */
export function binary(
  rt: Runtime,
  op: BinaryOp,
  a: GPUBuf,
  b: GPUBuf,
  shape: readonly number[],
  stridesA: readonly number[],
  stridesB: readonly number[],
): GPUBuf {
  const dtype: DType = BINARY[op].bool ? "bool" : a.dtype;
  const n = shape.reduce((x, y) => x * y, 1);
  if (n === 0) return rt.alloc(0, dtype);
  return lazy(rt, n, dtype, [a, b], () => ({
    k: "binary",
    dtype,
    op,
    a: strided(a, shape, stridesA),
    b: strided(b, shape, stridesB),
  }));
}

/** `where`: `out = cond ? a : b` with broadcast strides; output has a's dtype (lazy). */
export function where(
  rt: Runtime,
  cond: GPUBuf,
  a: GPUBuf,
  b: GPUBuf,
  shape: readonly number[],
  stridesCond: readonly number[],
  stridesA: readonly number[],
  stridesB: readonly number[],
): GPUBuf {
  const dtype = a.dtype;
  const n = shape.reduce((x, y) => x * y, 1);
  if (n === 0) return rt.alloc(0, dtype);
  return lazy(rt, n, dtype, [cond, a, b], () => ({
    k: "where",
    dtype,
    c: strided(cond, shape, stridesCond),
    a: strided(a, shape, stridesA),
    b: strided(b, shape, stridesB),
  }));
}

/** `clamp`: `min(max(x, lo), hi)`, NaN in x propagates (float32); int32 clamps to integer bounds (lazy). */
export function clamp(rt: Runtime, x: GPUBuf, lo: number, hi: number): GPUBuf {
  if (x.length === 0) return rt.alloc(0, x.dtype);
  return lazy(rt, x.length, x.dtype, [x], () => ({ k: "clamp", dtype: x.dtype, x: operand(x), lo, hi }));
}

/** `affine`: `out = x * scale + shift`, computed in f32; the output keeps x's dtype (lazy). */
export function affine(rt: Runtime, x: GPUBuf, scale: number, shift: number): GPUBuf {
  if (x.length === 0) return rt.alloc(0, x.dtype);
  return lazy(rt, x.length, x.dtype, [x], () => ({ k: "affine", dtype: x.dtype, x: operand(x), scale, shift }));
}

/**
 * `stridedCopyInto`: `dst[dstOffset + Σ i dstStrides] = src[srcOffset + Σ i srcStrides]` (bit copy). A copy that
 * fills a fresh buffer contiguously (a permute, slice or broadcast made contiguous) makes that buffer a lazy view
 * of `src`; any other copy runs now.
 */
export function stridedCopyInto(
  rt: Runtime,
  src: GPUBuf,
  srcOffset: number,
  srcStrides: readonly number[],
  dst: GPUBuf,
  dstOffset: number,
  dstStrides: readonly number[],
  shape: readonly number[],
): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  if (
    src !== dst && dst.fresh && !dst.expr && dst.consumers.size === 0 && dstOffset === 0 && n === dst.length &&
    src.dtype === dst.dtype
  ) {
    const cd = collapse(shape, [dstStrides]);
    if (n === 1 || (cd.shape.length === 1 && cd.strides[0][0] === 1)) {
      lazy(rt, n, dst.dtype, [src], () => strided(src, shape, srcStrides, srcOffset), dst);
      return;
    }
  }
  if (
    src !== dst && src.dtype === dst.dtype &&
    lazyRegion(rt, src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape)
  ) {
    return;
  }
  rt.check(dst);
  if (
    src.expr && src !== dst && src.dtype === dst.dtype &&
    fusedCopy(rt, src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape)
  ) {
    return;
  }
  rt.check(src);
  copyNow(rt, src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape);
}

/**
 * A copy into part of a buffer not computed yet (a fill such as the zeros around a slice's gradient, a fresh
 * buffer that `cat`/`stack` assemble piece by piece, or one such copy already pending): `dst` stays lazy, its
 * expression becomes "inside the region, the copied value; elsewhere, the previous expression" (a fresh buffer's
 * unwritten elements read 0). False, with nothing done, when `dst` holds data already, when the region's strides
 * are not nested (every offset of `dst` has at most one multi-index), or when the expression would not fit one
 * kernel.
 */
function lazyRegion(
  rt: Runtime,
  src: GPUBuf,
  srcOffset: number,
  srcStrides: readonly number[],
  dst: GPUBuf,
  dstOffset: number,
  dstStrides: readonly number[],
  shape: readonly number[],
): boolean {
  if (!dst.expr && !(dst.fresh && dst.consumers.size === 0)) return false;
  const contiguous = contiguousStrides(shape);
  const dims = shape.map((n, d) => ({ n, s: dstStrides[d], c: contiguous[d] })).filter((x) => x.n > 1);
  if (dims.length > MAX_RANK || dims.some((x) => x.s <= 0)) return false;
  dims.sort((a, b) => b.s - a.s);
  for (let d = 0; d + 1 < dims.length; d++) if (dims[d].s < dims[d + 1].s * dims[d + 1].n) return false;
  const node: FusedNode = {
    k: "region",
    dtype: dst.dtype,
    x: strided(src, shape, srcStrides, srcOffset),
    base: dst.expr ?? { k: "const", dtype: dst.dtype, v: 0 },
    shape: dims.map((x) => x.n),
    strides: dims.map((x) => x.s),
    cstrides: dims.map((x) => x.c),
    offset: dstOffset,
  };
  const m = measure(node);
  if (m.leaves.has(dst) || m.leaves.size > maxLeaves(rt) || m.nodes > MAX_NODES || m.views > MAX_VIEWS) return false;
  // the previous expression's leaves are leaves of the new one: link the new ones, nothing to unlink
  dst.expr = node;
  for (const leaf of m.leaves) {
    if (!leaf.consumers.has(dst)) {
      leaf.consumers.add(dst);
      dst.leaves.push(leaf);
    }
  }
  return true;
}

/**
 * A strided copy of a lazy `src` into `dst` that evaluates `src`'s expression in the copy kernel itself (one
 * dispatch instead of two; `src` stays lazy). False when it does not fit one kernel or the expression reads `dst`.
 */
function fusedCopy(
  rt: Runtime,
  src: GPUBuf,
  srcOffset: number,
  srcStrides: readonly number[],
  dst: GPUBuf,
  dstOffset: number,
  dstStrides: readonly number[],
  shape: readonly number[],
): boolean {
  const c = collapse(shape, [srcStrides, dstStrides]);
  if (c.shape.length > MAX_RANK) return false;
  if (c.shape.length === 0) {
    c.shape.push(1);
    c.strides.forEach((s) => s.push(0));
  }
  const node: FusedNode = {
    k: "view",
    dtype: src.dtype,
    x: src.expr!,
    shape: c.shape,
    strides: c.strides[0],
    offset: srcOffset,
  };
  const m = measure(node);
  if (m.leaves.has(dst) || m.leaves.size > maxLeaves(rt) || m.nodes > MAX_NODES || m.views > MAX_VIEWS) return false;
  const n = shape.reduce((a, b) => a * b, 1);
  const g = new Codegen();
  g.scalars.push(["n", "u32", n], ["dr", "u32", c.shape.length], ["dso", "i32", dstOffset]);
  g.arrays.push(["ds", c.shape], ["dt", c.strides[1]]);
  const v = g.value(node, "gidx");
  const lines = g.block();
  const { u, b } = g.finish([["dst", dst]]);
  const code = u.decl + b.decl + [...g.helpers].join("") + `fn dsti_(flat: u32) -> u32 {
  var rem = flat;
  var o = P.dso;
  for (var d = i32(P.dr) - 1; d >= 0; d--) {
    let sz = u32(${at("ds", "d")});
    o += i32(rem % sz) * ${at("dt", "d")};
    rem = rem / sz;
  }
  return u32(o);
}
` + entry1d(`  if (gidx >= P.n) { return; }\n${lines.join("\n")}\n  dst[dsti_(gidx)] = ${v};`);
  rt.dispatch({ code, uniforms: u, buffers: b.buffers, groups: grid(Math.ceil(n / WG)), label: "fused-copy" });
  return true;
}

/** The strided copy kernel. */
function copyNow(
  rt: Runtime,
  src: GPUBuf,
  srcOffset: number,
  srcStrides: readonly number[],
  dst: GPUBuf,
  dstOffset: number,
  dstStrides: readonly number[],
  shape: readonly number[],
): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (src === dst) {
    // One buffer cannot be bound read-only and writable in the same dispatch: copy through a temporary.
    const tmp = rt.alloc(src.length, src.dtype);
    copyNow(rt, src, 0, [1], tmp, 0, [1], [src.length]);
    copyNow(rt, tmp, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape);
    rt.free(tmp);
    return;
  }
  const c = collapse(shape, [srcStrides, dstStrides]);
  if (c.shape.length > MAX_RANK) throw new Error(`WebGPU: rank ${c.shape.length} exceeds ${MAX_RANK} after collapsing`);
  if (c.shape.length === 0) {
    c.shape.push(1);
    c.strides.forEach((s) => s.push(0));
  }
  const su = stridedUniforms(c.shape, c.strides, [srcOffset, dstOffset]);
  const u = uniforms([["n", "u32", n], ...su.scalars], su.arrays);
  const b = bindings([["src", src, "read", "u32"], ["dst", dst, "rw", "u32"]]);
  const code = u.decl + b.decl + offsetsFn(2) +
    entry1d(`  if (gidx >= P.n) { return; }\n  let o = offsets_(gidx);\n  dst[u32(o.y)] = src[u32(o.x)];`);
  rt.dispatch({ code, uniforms: u, buffers: b.buffers, groups: grid(Math.ceil(n / WG)) });
}

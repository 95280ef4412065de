/**
 * Elementwise kernels: fill, cast, unary, binary, where, clamp, affine and strided copy. Op
 * expressions come from the shared op table (`op_table.ts`).
 *
 * @module
 */

import type { BinaryOp, DType, UnaryOp } from "../../backend.ts";
import { BINARY, UNARY, WGSL_HELPERS } from "../../op_table.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import {
  collapse,
  convert,
  entry1d,
  grid,
  ISNAN_WGSL,
  MAX_RANK,
  offsetsFn,
  storage,
  stridedUniforms,
  uniforms,
  type UniformScalar,
  type ValueKind,
  WG,
  wgslType,
} from "./templates.ts";

/** A contiguous elementwise kernel: `out[i] = <expr>` where `expr` reads `x0[i]`…; one element per thread. */
function mapKernel(
  rt: Runtime,
  inputs: readonly GPUBuf[],
  outDtype: DType,
  expr: (loads: string[]) => string,
  scalars: readonly UniformScalar[] = [],
  prelude: string = "",
): GPUBuf {
  const n = inputs[0]?.length ?? 0;
  const out = rt.alloc(n, outDtype);
  if (n === 0) return out;
  const u = uniforms([["n", "u32", n], ...scalars]);
  let code = u.decl;
  inputs.forEach((b, j) => code += storage(j + 1, `x${j}`, wgslType(b.dtype), "read"));
  code += storage(inputs.length + 1, "out", wgslType(outDtype), "rw");
  code += prelude;
  const loads = inputs.map((_, j) => `x${j}[gidx]`);
  code += entry1d(`  if (gidx >= P.n) { return; }\n  out[gidx] = ${expr(loads)};`);
  rt.dispatch({
    code,
    uniforms: u,
    buffers: [...inputs.map((b) => [b, "read"] as const), [out, "rw"]],
    groups: grid(Math.ceil(n / WG)),
  });
  return out;
}

/** `fill`: a new buffer with every element `value`. */
export function fill(rt: Runtime, length: number, value: number, dtype: DType): GPUBuf {
  const out = rt.alloc(length, dtype);
  if (length === 0) return out;
  const ty = wgslType(dtype);
  const v = dtype === "bool" ? (value !== 0 ? 1 : 0) : value;
  const u = uniforms([["n", "u32", length], ["v", ty, v]]);
  const code = u.decl + storage(1, "out", ty, "rw") + entry1d(`  if (gidx < P.n) { out[gidx] = P.v; }`);
  rt.dispatch({ code, uniforms: u, buffers: [[out, "rw"]], groups: grid(Math.ceil(length / WG)) });
  return out;
}

/** `cast`: converts element types (float→int truncates; anything→bool is `x != 0`). */
export function cast(rt: Runtime, x: GPUBuf, dtype: DType): GPUBuf {
  return mapKernel(rt, [x], dtype, ([v]) => convert(v, x.dtype, dtype));
}

/** Kind in which a unary op evaluates for input dtype `d`. */
function unaryEvalKind(op: UnaryOp, d: DType): DType {
  return d === "int32" && UNARY[op].int ? "int32" : "float32";
}

/** `unary`: `out[i] = f(x[i])` with the op table's WGSL; float32 with length % 4 == 0 runs on vec4. */
export function unary(rt: Runtime, op: UnaryOp, x: GPUBuf): GPUBuf {
  const def = UNARY[op];
  const outDtype: DType = op === "isnan" ? "bool" : x.dtype;
  const ek = unaryEvalKind(op, x.dtype);
  const et = wgslType(ek);
  const body = op === "isnan" && ek === "float32" ? "select(0.0, 1.0, isnan_(x))" : def.wgsl;
  const fn = `${WGSL_HELPERS}${ISNAN_WGSL}fn f_(x: ${et}) -> ${et} { return ${body}; }\n`;
  const n = x.length;
  if (x.dtype === "float32" && outDtype === "float32" && n % 4 === 0 && n > 0) {
    const out = rt.alloc(n, outDtype);
    const n4 = n / 4;
    const u = uniforms([["n", "u32", n4]]);
    const code = u.decl + storage(1, "x", "vec4<f32>", "read") + storage(2, "out", "vec4<f32>", "rw") + fn +
      entry1d(`  if (gidx >= P.n) { return; }
  let v = x[gidx];
  out[gidx] = vec4<f32>(f_(v.x), f_(v.y), f_(v.z), f_(v.w));`);
    rt.dispatch({ code, uniforms: u, buffers: [[x, "read"], [out, "rw"]], groups: grid(Math.ceil(n4 / WG)) });
    return out;
  }
  return mapKernel(rt, [x], outDtype, ([v]) => convert(`f_(${convert(v, x.dtype, ek)})`, ek, outDtype), [], fn);
}

/** How one operand of a broadcast kernel is addressed. */
type Access = "contig" | "scalar" | "strided";

/**
 * Shared broadcast kernel over `shape`: operand j is read at `offsets_(i)[j]` (or directly when the
 * strides are contiguous/all-zero), converted to `kinds[j]`, and combined by `expr`.
 */
function broadcastKernel(
  rt: Runtime,
  operands: readonly GPUBuf[],
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  kinds: readonly ValueKind[],
  outDtype: DType,
  expr: (vals: string[]) => string,
  prelude: string = "",
): GPUBuf {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = rt.alloc(n, outDtype);
  if (n === 0) return out;
  const c = collapse(shape, strides);
  if (c.shape.length > MAX_RANK) throw new Error(`WebGPU: rank ${c.shape.length} exceeds ${MAX_RANK} after collapsing`);
  const access: Access[] = c.strides.map((s) =>
    s.every((v) => v === 0) ? "scalar" : s.length === 1 && s[0] === 1 ? "contig" : "strided"
  );
  const anyStrided = access.includes("strided");
  const su = anyStrided ? stridedUniforms(c.shape, c.strides, c.strides.map(() => 0)) : { scalars: [], arrays: [] };
  const u = uniforms([["n", "u32", n], ...su.scalars], su.arrays);
  let code = u.decl;
  operands.forEach((b, j) => code += storage(j + 1, `x${j}`, wgslType(b.dtype), "read"));
  code += storage(operands.length + 1, "out", wgslType(outDtype), "rw");
  code += prelude;
  if (anyStrided) code += offsetsFn(operands.length);
  const k = operands.length;
  const vals = operands.map((b, j) => {
    const idx = access[j] === "scalar" ? "0u" : access[j] === "contig" ? "gidx" : `u32(o${k === 1 ? "" : `[${j}]`})`;
    return convert(`x${j}[${idx}]`, b.dtype, kinds[j]);
  });
  const body = `  if (gidx >= P.n) { return; }\n` + (anyStrided ? `  let o = offsets_(gidx);\n` : "") +
    `  out[gidx] = ${expr(vals)};`;
  code += entry1d(body);
  rt.dispatch({
    code,
    uniforms: u,
    buffers: [...operands.map((b) => [b, "read"] as const), [out, "rw"]],
    groups: grid(Math.ceil(n / WG)),
  });
  return out;
}

/** `binary`: `out[i] = f(a[ia(i)], b[ib(i)])` over `shape` with broadcast/negative strides. */
export function binary(
  rt: Runtime,
  op: BinaryOp,
  a: GPUBuf,
  b: GPUBuf,
  shape: readonly number[],
  stridesA: readonly number[],
  stridesB: readonly number[],
): GPUBuf {
  const def = BINARY[op];
  const useInt = a.dtype !== "float32" && def.wgslInt !== undefined;
  const ek: DType = useInt ? "int32" : "float32";
  const outDtype: DType = def.bool ? "bool" : a.dtype;
  let e = useInt ? def.wgslInt! : def.wgsl;
  // PyTorch propagates NaN through maximum/minimum; WGSL max/min need not.
  if (!useInt && (op === "maximum" || op === "minimum")) e = `select(${e}, a + b, isnan_(a) || isnan_(b))`;
  const resKind: ValueKind = def.bool ? "wbool" : ek;
  const et = wgslType(ek);
  const rt_ = def.bool ? "bool" : et;
  const prelude = `${WGSL_HELPERS}${ISNAN_WGSL}fn f_(a: ${et}, b: ${et}) -> ${rt_} { return ${e}; }\n`;
  return broadcastKernel(
    rt,
    [a, b],
    shape,
    [stridesA, stridesB],
    [ek, ek],
    outDtype,
    ([va, vb]) => convert(`f_(${va}, ${vb})`, resKind, outDtype),
    prelude,
  );
}

/** `where`: `out = cond ? a : b` with broadcast strides; output has a's dtype. */
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
  return broadcastKernel(
    rt,
    [cond, a, b],
    shape,
    [stridesCond, stridesA, stridesB],
    ["wbool", a.dtype, a.dtype],
    a.dtype,
    ([c, va, vb]) => `select(${vb}, ${va}, ${c})`,
  );
}

/** `clamp`: `min(max(x, lo), hi)`, NaN in x propagates (float32); int32 clamps to integer bounds. */
export function clamp(rt: Runtime, x: GPUBuf, lo: number, hi: number): GPUBuf {
  if (x.dtype === "float32") {
    return mapKernel(
      rt,
      [x],
      "float32",
      ([v]) => `select(min(max(${v}, P.lo), P.hi), ${v}, isnan_(${v}))`,
      [["lo", "f32", lo], ["hi", "f32", hi]],
      ISNAN_WGSL,
    );
  }
  const ilo = Number.isNaN(lo) ? -2147483648 : Math.max(-2147483648, Math.min(2147483647, Math.ceil(lo)));
  const ihi = Number.isNaN(hi) ? 2147483647 : Math.max(-2147483648, Math.min(2147483647, Math.floor(hi)));
  const xi = convert("xv", x.dtype, "int32");
  return mapKernel(
    rt,
    [x],
    x.dtype,
    ([v]) => convert(`min(max(${xi.replace("xv", v)}, P.lo), P.hi)`, "int32", x.dtype),
    [["lo", "i32", ilo], ["hi", "i32", ihi]],
  );
}

/** `affine`: `out = x * scale + shift`, computed in f32; the output keeps x's dtype. */
export function affine(rt: Runtime, x: GPUBuf, scale: number, shift: number): GPUBuf {
  return mapKernel(
    rt,
    [x],
    x.dtype,
    ([v]) => convert(`${convert(v, x.dtype, "float32")} * P.scale + P.shift`, "float32", x.dtype),
    [["scale", "f32", scale], ["shift", "f32", shift]],
  );
}

/** `stridedCopyInto`: `dst[dstOffset + Σ i dstStrides] = src[srcOffset + Σ i srcStrides]` (bit copy). */
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
  if (src === dst) {
    // One buffer cannot be bound read-only and writable in the same dispatch: copy through a temporary.
    const tmp = rt.alloc(src.length, src.dtype);
    stridedCopyInto(rt, src, 0, [1], tmp, 0, [1], [src.length]);
    stridedCopyInto(rt, tmp, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape);
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
  const code = u.decl + storage(1, "src", "u32", "read") + storage(2, "dst", "u32", "rw") + offsetsFn(2) +
    entry1d(`  if (gidx >= P.n) { return; }\n  let o = offsets_(gidx);\n  dst[u32(o.y)] = src[u32(o.x)];`);
  rt.dispatch({ code, uniforms: u, buffers: [[src, "read"], [dst, "rw"]], groups: grid(Math.ceil(n / WG)) });
}

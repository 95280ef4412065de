/**
 * torch.gather and torch.Tensor.scatter_add_ along one axis. Both decode the index tensor's
 * coordinates with the shared strided index math (axis stride zeroed) and add `index · stride[axis]`.
 * Float scatter-add uses a compare-exchange loop on the bit pattern; int32 uses `atomicAdd`. Lazy inputs (the
 * index `indexSelect` broadcasts, a value or gradient still an expression) are evaluated inside the kernel.
 *
 * @module
 */

import type { GPUBuf, Runtime } from "./runtime.ts";
import { contiguousStrides, numel } from "../../shape.ts";
import { fusedReads } from "./fusion.ts";
import {
  bindings,
  dispatch1d,
  entry1d,
  offsetsFn,
  stridedUniforms,
  type UniformArray,
  uniforms,
  type UniformScalar,
  wgslType,
} from "./templates.ts";

/** Uniforms shared by gather and scatter: index shape, target strides with the axis zeroed. */
function axisUniforms(
  targetShape: readonly number[],
  axis: number,
  indexShape: readonly number[],
  n: number,
): { scalars: UniformScalar[]; arrays: UniformArray[] } {
  if (targetShape.length !== indexShape.length) throw new Error("gather/scatter: index rank must match");
  if (axis < 0 || axis >= targetShape.length) throw new Error(`gather/scatter: axis ${axis} out of range`);
  const strides = contiguousStrides(targetShape);
  const axisStride = strides[axis];
  const zeroed = strides.map((s, d) => (d === axis ? 0 : s));
  const su = stridedUniforms(indexShape, [zeroed], [0]);
  return {
    scalars: [["n", "u32", n], ["axisLen", "i32", targetShape[axis]], ["axisStride", "i32", axisStride], ...su.scalars],
    arrays: su.arrays,
  };
}

/**
 * Dispatches one gather/scatter kernel over the `n` index elements: `body(t)` reads `value` (loaded as WGSL type
 * `t`) and `idx`, and writes `output`. Lazy reads are evaluated inside it ({@linkcode fusedReads}, `t` the
 * value's type); computed ones are bound as they are, `value` as `plainType`. `output` gives its element type
 * for the type the value loads as.
 */
function axisDispatch(
  rt: Runtime,
  ua: { scalars: UniformScalar[]; arrays: UniformArray[] },
  value: readonly [string, GPUBuf],
  idx: GPUBuf,
  output: readonly [string, GPUBuf, (t: string) => string],
  plainType: string,
  body: (t: string) => string,
  n: number,
): void {
  const reads = [value, ["idx", idx]] as const;
  const [name, buf, outType] = output;
  const t = wgslType(value[1].dtype);
  const f = fusedReads(rt, ua.scalars, reads, [[name, buf, outType(t)]], body(t), ua.arrays);
  if (f) return dispatch1d(rt, f.decl + offsetsFn(1) + entry1d(f.body), f.u, f.b, n);
  const u = uniforms(ua.scalars, ua.arrays);
  const b = bindings([[...value, "read", plainType], ["idx", idx, "read", "i32"], [
    name,
    buf,
    "rw",
    outType(plainType),
  ]]);
  dispatch1d(rt, u.decl + b.decl + offsetsFn(1) + entry1d(body(plainType)), u, b, n);
}

/** `gather`: out (indexShape) reads x at the index along `axis`; out-of-range indices give 0. */
export function gather(
  rt: Runtime,
  x: GPUBuf,
  xShape: readonly number[],
  axis: number,
  index: GPUBuf,
  indexShape: readonly number[],
): GPUBuf {
  const n = numel(indexShape);
  const out = rt.alloc(n, x.dtype);
  if (n === 0) return out;
  // unfused, values move as bit patterns (u32)
  const body = (t: string) =>
    `  if (gidx >= P.n) { return; }
  let j = idx[gidx];
  var v = ${t}(0);
  if (j >= 0 && j < P.axisLen) { v = x[u32(offsets_(gidx) + j * P.axisStride)]; }
  out[gidx] = v;`;
  axisDispatch(rt, axisUniforms(xShape, axis, indexShape, n), ["x", x], index, ["out", out, (t) => t], "u32", body, n);
  return out;
}

/** `scatterAddInto`: `dst[i with axis coord ← index[i]] += src[i]` in place; out-of-range indices are skipped. */
export function scatterAddInto(
  rt: Runtime,
  dst: GPUBuf,
  dstShape: readonly number[],
  axis: number,
  index: GPUBuf,
  src: GPUBuf,
  indexShape: readonly number[],
): void {
  const n = numel(indexShape);
  if (n === 0) return;
  // lazy values that read dst (src itself, say) are computed first: one kernel cannot read and write dst
  rt.beforeWrite(dst);
  const isFloat = dst.dtype === "float32";
  const srcType = wgslType(src.dtype);
  const add = isFloat
    ? `  let v = f32(src[gidx]);
  var old = atomicLoad(&dst[o]);
  loop {
    let r = atomicCompareExchangeWeak(&dst[o], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }`
    : dst.dtype === "int32"
    ? `  atomicAdd(&dst[o], i32(src[gidx]));`
    : `  if (src[gidx] != ${srcType}(0)) { atomicOr(&dst[o], 1u); }`;
  const body = () =>
    `  if (gidx >= P.n) { return; }
  let j = idx[gidx];
  if (j < 0 || j >= P.axisLen) { return; }
  let o = u32(offsets_(gidx) + j * P.axisStride);
${add}`;
  const atomic = dst.dtype === "int32" ? "atomic<i32>" : "atomic<u32>";
  axisDispatch(
    rt,
    axisUniforms(dstShape, axis, indexShape, n),
    ["src", src],
    index,
    ["dst", dst, () => atomic],
    srcType,
    body,
    n,
  );
}

/**
 * torch.gather and torch.Tensor.scatter_add_ along one axis. Both decode the index tensor's
 * coordinates with the shared strided index math (axis stride zeroed) and add `index · stride[axis]`.
 * Float scatter-add uses a compare-exchange loop on the bit pattern; int32 uses `atomicAdd`.
 *
 * @module
 */

import type { GPUBuf, Runtime } from "./runtime.ts";
import { contiguousStrides, numel } from "../../shape.ts";
import { bindings, dispatch1d, entry1d, offsetsFn, stridedUniforms, type Uniforms, uniforms } from "./templates.ts";

/** Uniforms shared by gather and scatter: index shape, target strides with the axis zeroed. */
function axisUniforms(
  targetShape: readonly number[],
  axis: number,
  indexShape: readonly number[],
  n: number,
): Uniforms {
  if (targetShape.length !== indexShape.length) throw new Error("gather/scatter: index rank must match");
  if (axis < 0 || axis >= targetShape.length) throw new Error(`gather/scatter: axis ${axis} out of range`);
  const strides = contiguousStrides(targetShape);
  const axisStride = strides[axis];
  const zeroed = strides.map((s, d) => (d === axis ? 0 : s));
  const su = stridedUniforms(indexShape, [zeroed], [0]);
  return uniforms(
    [["n", "u32", n], ["axisLen", "i32", targetShape[axis]], ["axisStride", "i32", axisStride], ...su.scalars],
    su.arrays,
  );
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
  const u = axisUniforms(xShape, axis, indexShape, n);
  const b = bindings([["x", x, "read", "u32"], ["idx", index, "read", "i32"], ["out", out, "rw", "u32"]]);
  const code = u.decl + b.decl + offsetsFn(1) +
    entry1d(`  if (gidx >= P.n) { return; }
  let j = idx[gidx];
  var v = 0u;
  if (j >= 0 && j < P.axisLen) { v = x[u32(offsets_(gidx) + j * P.axisStride)]; }
  out[gidx] = v;`);
  dispatch1d(rt, code, u, b, n);
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
  const u = axisUniforms(dstShape, axis, indexShape, n);
  const isFloat = dst.dtype === "float32";
  const srcType = src.dtype === "float32" ? "f32" : src.dtype === "int32" ? "i32" : "u32";
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
  const b = bindings([
    ["src", src, "read", srcType],
    ["idx", index, "read", "i32"],
    ["dst", dst, "rw", dst.dtype === "int32" ? "atomic<i32>" : "atomic<u32>"],
  ]);
  const code = u.decl + b.decl + offsetsFn(1) +
    entry1d(`  if (gidx >= P.n) { return; }
  let j = idx[gidx];
  if (j < 0 || j >= P.axisLen) { return; }
  let o = u32(offsets_(gidx) + j * P.axisStride);
${add}`);
  dispatch1d(rt, code, u, b, n);
}

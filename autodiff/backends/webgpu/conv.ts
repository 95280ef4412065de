/**
 * im2col (unfold) and col2im (fold) over NCHW images. col2im is a gather over the column entries
 * that contribute to each pixel, so it needs no atomics.
 *
 * @module
 */

import type { Im2colParams } from "../../backend.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import { fusedReads } from "./fusion.ts";
import {
  bindings,
  dispatch1d,
  entry1d,
  pixelAdjoint,
  uniforms,
  type UniformScalar,
  wgslType,
  windowUniforms,
} from "./templates.ts";

/** `im2col`: x (batch, C, H, W) → (batch, C·kh·kw, outH·outW); out-of-image taps read `padValue`. */
export function im2col(rt: Runtime, x: GPUBuf, p: Im2colParams, padValue: number): GPUBuf {
  const rows = p.channels * p.kernelH * p.kernelW;
  const L = p.outH * p.outW;
  const n = p.batch * rows * L;
  const out = rt.alloc(n, x.dtype);
  if (n === 0) return out;
  // Elements are copied as raw 32-bit patterns, so any dtype works; padValue is encoded for x's dtype.
  const bits = new Uint32Array(1);
  if (x.dtype === "float32") new Float32Array(bits.buffer)[0] = padValue;
  else if (x.dtype === "int32") new Int32Array(bits.buffer)[0] = padValue;
  else bits[0] = padValue !== 0 ? 1 : 0;
  const scalars: UniformScalar[] = [["n", "u32", n], ["pad", "u32", bits[0]], ...windowUniforms(p)];
  const body = `  if (gidx >= P.n) { return; }
  let L = P.oh * P.ow;
  let l = gidx % L;
  let rows = P.C * P.kh * P.kw;
  let row = (gidx / L) % rows;
  let b = gidx / (L * rows);
  let kj = i32(row % P.kw);
  let ki = i32((row / P.kw) % P.kh);
  let c = row / (P.kh * P.kw);
  let ih = i32(l / P.ow) * P.sh - P.ph + ki * P.dh;
  let iw = i32(l % P.ow) * P.sw - P.pw + kj * P.dw;
  var v = P.pad;
  if (ih >= 0 && ih < P.H && iw >= 0 && iw < P.W) {
    v = x[((b * P.C + c) * u32(P.H) + u32(ih)) * u32(P.W) + u32(iw)];
  }
  out[gidx] = v;`;
  // fused: x's expression is evaluated (in its dtype's storage type, as the output is bound) instead of loaded
  const f = fusedReads(rt, scalars, [["x", x]], [["out", out]], body);
  if (f) {
    const fb = f.body.replace("var v = P.pad;", `var v = bitcast<${wgslType(x.dtype)}>(P.pad);`);
    dispatch1d(rt, f.decl + entry1d(fb), f.u, f.b, n);
    return out;
  }
  const u = uniforms(scalars);
  const b = bindings([["x", x, "read", "u32"], ["out", out, "rw", "u32"]]);
  dispatch1d(rt, u.decl + b.decl + entry1d(body), u, b, n);
  return out;
}

/** `col2im`: the adjoint of im2col; each pixel sums the column entries that read it. */
export function col2im(rt: Runtime, cols: GPUBuf, p: Im2colParams): GPUBuf {
  const n = p.batch * p.channels * p.height * p.width;
  const out = rt.alloc(n, "float32");
  if (n === 0) return out;
  const scalars: UniformScalar[] = [["n", "u32", n], ...windowUniforms(p)];
  const body = pixelAdjoint(
    "  let L = P.oh * P.ow;",
    // row (c·kh + ki)·kw + kj of image b: bc = b·C + c, so the row base is bc·kh·kw
    "      acc += cols[((bc * P.kh + ki) * P.kw + kj) * L + oh * P.ow + ow];",
  );
  const f = fusedReads(rt, scalars, [["cols", cols]], [["out", out]], body);
  if (f) {
    dispatch1d(rt, f.decl + entry1d(f.body), f.u, f.b, n);
    return out;
  }
  const u = uniforms(scalars);
  const b = bindings([["cols", cols, "read"], ["out", out, "rw"]]);
  dispatch1d(rt, u.decl + b.decl + entry1d(body), u, b, n);
  return out;
}

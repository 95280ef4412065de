/**
 * Max pooling over NCHW images, without im2col.
 *
 * - Forward: one thread per output element scans its window's in-image taps row-major, keeping the first
 *   maximum (a tap replaces the running one when greater or NaN, with a bit-test NaN check that survives
 *   fast-math), and writes the value and its flat index `h·W + w` in the plane.
 * - Backward: one thread per input pixel gathers the output positions whose windows contain it (stride
 *   divisibility checked as col2im does) and adds the gy of those whose index is this pixel, so it needs
 *   no atomics.
 *
 * @module
 */

import type { Im2colParams } from "../../backend.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import { bindings, dispatch1d, entry1d, ISNAN_WGSL, pixelAdjoint, uniforms, windowUniforms } from "./templates.ts";

/** `maxPool2d`: x (batch, C, H, W) → out (f32) and indices (i32), both (batch, C, outH, outW). */
export function maxPool2d(rt: Runtime, x: GPUBuf, p: Im2colParams): { out: GPUBuf; indices: GPUBuf } {
  const n = p.batch * p.channels * p.outH * p.outW;
  const out = rt.alloc(n, "float32"), indices = rt.alloc(n, "int32");
  if (n === 0) return { out, indices };
  const u = uniforms([["n", "u32", n], ...windowUniforms(p)]);
  const b = bindings([["x", x, "read"], ["out", out, "rw"], ["idx", indices, "rw", "i32"]]);
  const code = u.decl + b.decl + ISNAN_WGSL +
    entry1d(`  if (gidx >= P.n) { return; }
  let L = P.oh * P.ow;
  let l = gidx % L;
  let xBase = (gidx / L) * u32(P.H * P.W);
  let h0 = i32(l / P.ow) * P.sh - P.ph;
  let w0 = i32(l % P.ow) * P.sw - P.pw;
  var best = 0.0;
  var bestAt = -1;
  for (var ki = 0u; ki < P.kh; ki++) {
    let ih = h0 + i32(ki) * P.dh;
    if (ih < 0 || ih >= P.H) { continue; }
    for (var kj = 0u; kj < P.kw; kj++) {
      let iw = w0 + i32(kj) * P.dw;
      if (iw < 0 || iw >= P.W) { continue; }
      let i = ih * P.W + iw;
      let v = x[xBase + u32(i)];
      if (bestAt < 0 || isnan_(v) || (v > best && !isnan_(best))) {
        best = v;
        bestAt = i;
      }
    }
  }
  out[gidx] = best;
  idx[gidx] = bestAt;`);
  dispatch1d(rt, code, u, b, n);
  return { out, indices };
}

/** `maxPool2dBackward`: gy and indices (batch, C, outH, outW) → dx (batch, C, H, W). */
export function maxPool2dBackward(rt: Runtime, gy: GPUBuf, indices: GPUBuf, p: Im2colParams): GPUBuf {
  const n = p.batch * p.channels * p.height * p.width;
  const out = rt.alloc(n, "float32");
  if (n === 0) return out;
  const u = uniforms([["n", "u32", n], ...windowUniforms(p)]);
  const b = bindings([["gy", gy, "read"], ["idx", indices, "read", "i32"], ["out", out, "rw"]]);
  const code = u.decl + b.decl +
    entry1d(pixelAdjoint(
      "  let pix = xh * P.W + xw;\n  let gBase = bc * P.oh;",
      "      if (idx[(gBase + oh) * P.ow + ow] == pix) { acc += gy[(gBase + oh) * P.ow + ow]; }",
    ));
  dispatch1d(rt, code, u, b, n);
  return out;
}

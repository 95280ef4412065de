/**
 * im2col (unfold) and col2im (fold) over NCHW images. col2im is a gather over the column entries
 * that contribute to each pixel, so it needs no atomics.
 *
 * @module
 */

import type { Im2colParams } from "../../backend.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import { entry1d, grid, storage, uniforms, WG, windowUniforms } from "./templates.ts";

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
  const u = uniforms([["n", "u32", n], ["pad", "u32", bits[0]], ...windowUniforms(p)]);
  const code = u.decl + storage(1, "x", "u32", "read") + storage(2, "out", "u32", "rw") +
    entry1d(`  if (gidx >= P.n) { return; }
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
  out[gidx] = v;`);
  rt.dispatch({ code, uniforms: u, buffers: [[x, "read"], [out, "rw"]], groups: grid(Math.ceil(n / WG)) });
  return out;
}

/** `col2im`: the adjoint of im2col; each pixel sums the column entries that read it. */
export function col2im(rt: Runtime, cols: GPUBuf, p: Im2colParams): GPUBuf {
  const n = p.batch * p.channels * p.height * p.width;
  const out = rt.alloc(n, "float32");
  if (n === 0) return out;
  const u = uniforms([["n", "u32", n], ...windowUniforms(p)]);
  const code = u.decl + storage(1, "cols", "f32", "read") + storage(2, "out", "f32", "rw") +
    entry1d(`  if (gidx >= P.n) { return; }
  let w = i32(gidx % u32(P.W));
  let h = i32((gidx / u32(P.W)) % u32(P.H));
  let bc = gidx / u32(P.W * P.H);
  let L = P.oh * P.ow;
  var acc = 0.0;
  for (var ki = 0u; ki < P.kh; ki++) {
    let th = h + P.ph - i32(ki) * P.dh;
    if (th < 0 || th % P.sh != 0) { continue; }
    let oh = u32(th / P.sh);
    if (oh >= P.oh) { continue; }
    for (var kj = 0u; kj < P.kw; kj++) {
      let tw = w + P.pw - i32(kj) * P.dw;
      if (tw < 0 || tw % P.sw != 0) { continue; }
      let ow = u32(tw / P.sw);
      if (ow >= P.ow) { continue; }
      // Row (c·kh + ki)·kw + kj of image b: bc = b·C + c, so the row base is bc·kh·kw.
      acc += cols[((bc * P.kh + ki) * P.kw + kj) * L + oh * P.ow + ow];
    }
  }
  out[gidx] = acc;`);
  rt.dispatch({ code, uniforms: u, buffers: [[cols, "read"], [out, "rw"]], groups: grid(Math.ceil(n / WG)) });
  return out;
}

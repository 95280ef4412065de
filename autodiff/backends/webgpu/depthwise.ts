/**
 * Depthwise 2-D convolution (groups = channels, one filter per channel) over NCHW images, without im2col.
 *
 * - Forward: one thread per output element reads its kh·kw taps.
 * - Input gradient: one thread per input pixel gathers the (output position, tap) pairs that read it,
 *   checking stride divisibility as col2im does, so it needs no atomics.
 * - Weight gradient: long sums take one workgroup per (channel, tap, slice of the batch·outH·outW
 *   positions), whose lanes stride the slice and combine in workgroup memory (f32); short ones one thread per
 *   (channel, tap, slice). With more than one slice per (channel, tap), the partial sums are added by a second
 *   pass (the middle-axis `reduce`).
 *
 * @module
 */

import type { Im2colParams } from "../../backend.ts";
import type { GPUBuf, Runtime } from "./runtime.ts";
import { reduce } from "./reduce.ts";
import { fusedReads } from "./fusion.ts";
import {
  bindings,
  dispatch1d,
  entry1d,
  grid,
  pixelAdjoint,
  uniforms,
  type UniformScalar,
  WG,
  windowUniforms,
} from "./templates.ts";

/** Threads per workgroup of the weight-gradient reduction (a power of two). */
const RWG = 256;
/** Weight-gradient workgroups worth splitting the reduction into, when channels·taps alone are fewer. */
const TARGET_GROUPS = 1024;
/** Fewest positions a weight-gradient lane walks before the reduction is split further. */
const MIN_PER_LANE = 16;
/** Positions one thread sums when a (channel, tap) sum is too short to share among lanes. */
const SERIAL_CHUNK = 256;

/** `depthwiseConv2d`: x (batch, C, H, W), w (C, 1, kh, kw) → (batch, C, outH, outW). */
export function depthwiseConv2d(rt: Runtime, x: GPUBuf, w: GPUBuf, p: Im2colParams): GPUBuf {
  const n = p.batch * p.channels * p.outH * p.outW;
  const out = rt.alloc(n, "float32");
  if (n === 0) return out;
  const scalars: UniformScalar[] = [["n", "u32", n], ...windowUniforms(p)];
  const body = `  if (gidx >= P.n) { return; }
  let L = P.oh * P.ow;
  let l = gidx % L;
  let bc = gidx / L;
  let c = bc % P.C;
  let h0 = i32(l / P.ow) * P.sh - P.ph;
  let w0 = i32(l % P.ow) * P.sw - P.pw;
  let xBase = bc * u32(P.H);
  let wBase = c * P.kh * P.kw;
  var acc = 0.0;
  for (var ki = 0u; ki < P.kh; ki++) {
    let ih = h0 + i32(ki) * P.dh;
    if (ih < 0 || ih >= P.H) { continue; }
    let row = (xBase + u32(ih)) * u32(P.W);
    for (var kj = 0u; kj < P.kw; kj++) {
      let iw = w0 + i32(kj) * P.dw;
      if (iw < 0 || iw >= P.W) { continue; }
      acc += w[wBase + ki * P.kw + kj] * x[row + u32(iw)];
    }
  }
  out[gidx] = acc;`;
  const f = fusedReads(rt, scalars, [["x", x], ["w", w]], [["out", out]], body);
  if (f) {
    dispatch1d(rt, f.decl + entry1d(f.body), f.u, f.b, n);
    return out;
  }
  const u = uniforms(scalars);
  const b = bindings([["x", x, "read"], ["w", w, "read"], ["out", out, "rw"]]);
  dispatch1d(rt, u.decl + b.decl + entry1d(body), u, b, n);
  return out;
}

/** `depthwiseConv2dBackwardInput`: gy (batch, C, outH, outW), w (C, 1, kh, kw) → (batch, C, H, W). */
export function depthwiseConv2dBackwardInput(rt: Runtime, gy: GPUBuf, w: GPUBuf, p: Im2colParams): GPUBuf {
  const n = p.batch * p.channels * p.height * p.width;
  const out = rt.alloc(n, "float32");
  if (n === 0) return out;
  const scalars: UniformScalar[] = [["n", "u32", n], ...windowUniforms(p)];
  const body = pixelAdjoint(
    "  let gBase = bc * P.oh;\n  let wBase = (bc % P.C) * P.kh * P.kw;",
    "      acc += gy[(gBase + oh) * P.ow + ow] * w[wBase + ki * P.kw + kj];",
  );
  const f = fusedReads(rt, scalars, [["gy", gy], ["w", w]], [["out", out]], body);
  if (f) {
    dispatch1d(rt, f.decl + entry1d(f.body), f.u, f.b, n);
    return out;
  }
  const u = uniforms(scalars);
  const b = bindings([["gy", gy, "read"], ["w", w, "read"], ["out", out, "rw"]]);
  dispatch1d(rt, u.decl + b.decl + entry1d(body), u, b, n);
  return out;
}

/**
 * `depthwiseConv2dBackwardWeight`: x (batch, C, H, W), gy (batch, C, outH, outW) → (C, 1, kh, kw).
 *
 * Long sums (at least {@linkcode RWG}·{@linkcode MIN_PER_LANE} positions per (channel, tap)) are split over the
 * lanes of a workgroup; shorter ones are walked by one thread each in slices of {@linkcode SERIAL_CHUNK}. A
 * workgroup of 256 lanes over a handful of positions is mostly idle lanes and barriers: in Wave-MambaAD's
 * training step at 64² (2,722 channels over 2×2 positions) that made this kernel 80–140 ms a dispatch on lavapipe.
 */
export function depthwiseConv2dBackwardWeight(rt: Runtime, x: GPUBuf, gy: GPUBuf, p: Im2colParams): GPUBuf {
  const taps = p.channels * p.kernelH * p.kernelW;
  const m = p.batch * p.outH * p.outW; // positions summed per (channel, tap)
  const lanes = m >= RWG * MIN_PER_LANE ? RWG : 1;
  // Split each (channel, tap) sum into slices when channels·taps alone would leave the device idle (lanes), or
  // to bound one thread's walk (serial).
  const slices = lanes > 1
    ? Math.max(1, Math.min(Math.ceil(TARGET_GROUPS / taps), Math.ceil(m / (RWG * MIN_PER_LANE))))
    : Math.max(1, Math.ceil(m / SERIAL_CHUNK));
  const chunk = Math.ceil(m / slices);
  const partial = rt.alloc(taps * slices, "float32");
  if (taps === 0) return partial;
  // (m = 0 needs no special case: every lane sums nothing and the result is 0)
  const scalars: UniformScalar[] = [
    ["groups", "u32", taps * slices],
    ["m", "u32", m],
    ["slices", "u32", slices],
    ["chunk", "u32", chunk],
    ...windowUniforms(p),
  ];
  // one (channel, tap, slice) per workgroup (lanes) or per thread (serial)
  const sum = (id: string, first: string, step: string) =>
    `  let valid = ${id} < P.groups;
  let gg = min(${id}, P.groups - 1u);
  let s = gg % P.slices;
  let tap = (gg / P.slices) % (P.kh * P.kw);
  let c = gg / (P.slices * P.kh * P.kw);
  let dy = i32(tap / P.kw) * P.dh - P.ph;
  let dx = i32(tap % P.kw) * P.dw - P.pw;
  let L = P.oh * P.ow;
  let iEnd = min(P.m, (s + 1u) * P.chunk);
  var acc = 0.0;
  for (var i = s * P.chunk${first}; i < iEnd; i += ${step}) {
    let b = i / L;
    let l = i % L;
    let ih = i32(l / P.ow) * P.sh + dy;
    let iw = i32(l % P.ow) * P.sw + dx;
    if (ih >= 0 && ih < P.H && iw >= 0 && iw < P.W) {
      let bc = b * P.C + c;
      acc += gy[bc * L + l] * x[(bc * u32(P.H) + u32(ih)) * u32(P.W) + u32(iw)];
    }
  }
`;
  const kernel = lanes === 1
    ? entry1d(`${sum("gidx", "", "1u")}  if (valid) { out[gidx] = acc; }`)
    : `var<workgroup> sv: array<f32, ${RWG}>;
@compute @workgroup_size(${RWG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
${sum("g", " + lid", `${RWG}u`)}  sv[lid] = acc;
  workgroupBarrier();
  for (var k = ${RWG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { sv[lid] += sv[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u && valid) { out[g] = sv[0]; }
}
`;
  const f = fusedReads(rt, scalars, [["x", x], ["gy", gy]], [["out", partial]], kernel);
  const u = f?.u ?? uniforms(scalars);
  const b = f?.b ?? bindings([["x", x, "read"], ["gy", gy, "read"], ["out", partial, "rw"]]);
  const code = f ? f.decl + f.body : u.decl + b.decl + kernel;
  const groups = grid(lanes === 1 ? Math.ceil(taps * slices / WG) : taps * slices);
  rt.dispatch({ code, uniforms: u, buffers: b.buffers, groups });
  if (slices === 1) return partial;
  const out = reduce(rt, "sum", partial, taps, slices, 1);
  rt.free(partial);
  return out;
}

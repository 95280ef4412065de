/**
 * The Haar wavelet transform of Wave-MambaAD (MWCNN-style `dwt_init` / `iwt_init`) on WebGPU: one invocation
 * per output quad, i.e. per 2×2 block of the full-resolution plane and the four sub-band values it maps to.
 * The formulas and the float32 evaluation order are those of the CPU kernels (`../cpu/wavelet.ts`): each tap
 * halved, then summed left to right.
 *
 * Layouts: the full-resolution tensor is (B, C, 2h, 2w); the sub-band tensor is (4B, C, h, w) with the bands
 * [LL, HL, LH, HH] stacked on the batch axis, so band k of quad q sits at `k·band + q`, `band = B·C·h·w`, and
 * q runs over (B·C, h, w) row-major.
 *
 * @module
 */

import type { GPUBuf, Runtime } from "./runtime.ts";
import { fusedReads } from "./fusion.ts";
import { bindings, dispatch1d, entry1d, uniforms, type UniformScalar } from "./templates.ts";

/**
 * The quad geometry shared by both kernels: quads `n`, sub-band width `w`, quads per plane `hw`. A lazy `src`
 * (e.g. the sum of two branches before an IWT) is evaluated inside the kernel.
 */
function quadDispatch(rt: Runtime, src: GPUBuf, out: GPUBuf, n: number, h: number, w: number, body: string): void {
  const scalars: UniformScalar[] = [["n", "u32", n], ["w", "u32", w], ["hw", "u32", h * w]];
  const main = entry1d(`  if (gidx >= P.n) { return; }
  let plane = gidx / P.hw;
  let r = gidx % P.hw;
  let i = r / P.w;
  let j = r % P.w;
  // top-left pixel of the 2x2 block in the full-resolution plane
  let p0 = plane * 4u * P.hw + 2u * i * (2u * P.w) + 2u * j;
  let p1 = p0 + 2u * P.w;
${body}`);
  const f = fusedReads(rt, scalars, [["src", src]], [["out", out]], main);
  if (f) return dispatch1d(rt, f.decl + f.body, f.u, f.b, n);
  const u = uniforms(scalars);
  const b = bindings([["src", src, "read"], ["out", out, "rw"]]);
  dispatch1d(rt, u.decl + b.decl + main, u, b, n);
}

/** `haarDwt`: x (batch, C, H, W), H and W even → (4·batch, C, H/2, W/2) as [LL; HL; LH; HH]. */
export function haarDwt(
  rt: Runtime,
  x: GPUBuf,
  batch: number,
  channels: number,
  height: number,
  width: number,
): GPUBuf {
  const h = height / 2, w = width / 2, n = batch * channels * h * w;
  const out = rt.alloc(4 * n, "float32");
  if (n === 0) return out;
  quadDispatch(
    rt,
    x,
    out,
    n,
    h,
    w,
    `  let x1 = src[p0] * 0.5;
  let x2 = src[p1] * 0.5;
  let x3 = src[p0 + 1u] * 0.5;
  let x4 = src[p1 + 1u] * 0.5;
  out[gidx] = ((x1 + x2) + x3) + x4;
  out[P.n + gidx] = ((-x1 - x2) + x3) + x4;
  out[2u * P.n + gidx] = ((-x1 + x2) - x3) + x4;
  out[3u * P.n + gidx] = ((x1 - x2) - x3) + x4;`,
  );
  return out;
}

/** `haarIwt`: y (4·batch, C, h, w) as [LL; HL; LH; HH] → (batch, C, 2h, 2w). */
export function haarIwt(rt: Runtime, y: GPUBuf, batch: number, channels: number, h: number, w: number): GPUBuf {
  const n = batch * channels * h * w;
  const out = rt.alloc(4 * n, "float32");
  if (n === 0) return out;
  quadDispatch(
    rt,
    y,
    out,
    n,
    h,
    w,
    `  let x1 = src[gidx] * 0.5;
  let x2 = src[P.n + gidx] * 0.5;
  let x3 = src[2u * P.n + gidx] * 0.5;
  let x4 = src[3u * P.n + gidx] * 0.5;
  out[p0] = ((x1 - x2) - x3) + x4;
  out[p1] = ((x1 - x2) + x3) - x4;
  out[p0 + 1u] = ((x1 + x2) - x3) - x4;
  out[p1 + 1u] = ((x1 + x2) + x3) + x4;`,
  );
  return out;
}

/**
 * Layer normalisation on WebGPU (`Backend.layerNorm`): x viewed as (outer, size, inner) is normalised over the
 * middle axis, one row = one (outer, inner) pair.
 *
 * - Forward: one kernel computes each row's mean and rstd (two passes over the row, so the variance never
 *   subtracts large squares); `y = (x − mean) · rstd · weight + bias` is returned lazy, so it is evaluated by
 *   whichever kernel consumes it (usually together with the gate or projection that follows).
 * - Backward: one kernel computes each row's Σg and Σg·x̂ (g = gy · weight, x̂ the normalised x); dx is the lazy
 *   `rstd · (g − (Σg + x̂ · Σg·x̂) / size)`. dWeight = Σ gy · x̂ and dBias = Σ gy over the rows come from one
 *   reduction over a lazy (pieces, size, rows) arrangement of both. At most two dispatches.
 *
 * Lazy inputs (x, gy, weight) are evaluated inside the kernels (`fusedReads`).
 *
 * @module
 */

import type { GPUBuf, Runtime } from "./runtime.ts";
import { fusedReads } from "./fusion.ts";
import { affine, binary, stridedCopyInto } from "./elementwise.ts";
import { reduce } from "./reduce.ts";
import { bindings, dispatch1d, entry1d, uniforms, type UniformScalar } from "./templates.ts";

/** Dispatches a one-thread-per-row kernel over `rows` rows reading `reads` (lazy ones fused) into `outputs`. */
function rowKernel(
  rt: Runtime,
  scalars: UniformScalar[],
  reads: readonly (readonly [string, GPUBuf])[],
  outputs: readonly (readonly [string, GPUBuf])[],
  body: string,
  rows: number,
): void {
  const src = entry1d(`  if (gidx >= P.rows) { return; }
  // row (o, i) of (outer, size, inner): element s at base + s·inner
  let base = (gidx / P.inner) * P.size * P.inner + gidx % P.inner;
${body}`);
  const f = fusedReads(rt, scalars, reads, outputs, src);
  if (f) return dispatch1d(rt, f.decl + f.body, f.u, f.b, rows);
  const u = uniforms(scalars);
  const b = bindings([
    ...reads.map(([name, x]) => [name, x, "read"] as const),
    ...outputs.map(([name, x]) => [name, x, "rw"] as const),
  ]);
  dispatch1d(rt, u.decl + b.decl + src, u, b, rows);
}

/** Broadcast strides over (outer, size, inner) of a per-row (outer, inner) value and of a per-s (size) one. */
function strides(size: number, inner: number) {
  return { full: [size * inner, inner, 1], row: [inner, 0, 1], col: [0, 1, 0] };
}

/** Frees the temporaries of a lazy expression once it has been built (its leaves stay linked to it). */
function freeAll(rt: Runtime, bufs: readonly GPUBuf[]): void {
  for (const b of bufs) rt.free(b);
}

/** `layerNorm` forward: y (lazy), mean and rstd (outer, inner). */
export function layerNorm(
  rt: Runtime,
  x: GPUBuf,
  weight: GPUBuf | null,
  bias: GPUBuf | null,
  outer: number,
  size: number,
  inner: number,
  eps: number,
): { y: GPUBuf; mean: GPUBuf; rstd: GPUBuf } {
  const rows = outer * inner;
  const mean = rt.alloc(rows, "float32"), rstd = rt.alloc(rows, "float32");
  if (rows > 0) {
    const scalars: UniformScalar[] = [["rows", "u32", rows], ["size", "u32", size], ["inner", "u32", inner], [
      "eps",
      "f32",
      eps,
    ]];
    rowKernel(
      rt,
      scalars,
      [["x", x]],
      [["mean", mean], ["rstd", rstd]],
      `  var sum = 0.0;
  for (var s = 0u; s < P.size; s++) { sum += x[base + s * P.inner]; }
  let m = sum / f32(P.size);
  var sq = 0.0;
  for (var s = 0u; s < P.size; s++) { let d = x[base + s * P.inner] - m; sq += d * d; }
  mean[gidx] = m;
  rstd[gidx] = inverseSqrt(sq / f32(P.size) + P.eps);`,
      rows,
    );
  }
  const shape = [outer, size, inner], st = strides(size, inner);
  const temps: GPUBuf[] = [];
  let y = binary(rt, "sub", x, mean, shape, st.full, st.row);
  const step = (next: GPUBuf) => {
    temps.push(y);
    y = next;
  };
  step(binary(rt, "mul", y, rstd, shape, st.full, st.row));
  if (weight) step(binary(rt, "mul", y, weight, shape, st.full, st.col));
  if (bias) step(binary(rt, "add", y, bias, shape, st.full, st.col));
  freeAll(rt, temps);
  return { y, mean, rstd };
}

/** `layerNormBackward`: dx (lazy), dWeight and dBias (lazy views of one reduction), each when wanted. */
export function layerNormBackward(
  rt: Runtime,
  gy: GPUBuf,
  x: GPUBuf,
  weight: GPUBuf | null,
  mean: GPUBuf,
  rstd: GPUBuf,
  outer: number,
  size: number,
  inner: number,
  want: { dx: boolean; dWeight: boolean; dBias: boolean },
): { dx: GPUBuf | null; dWeight: GPUBuf | null; dBias: GPUBuf | null } {
  const rows = outer * inner, shape = [outer, size, inner], st = strides(size, inner);
  const temps: GPUBuf[] = [];
  const keep = (b: GPUBuf) => (temps.push(b), b);
  // x̂ and g = gy · weight, lazy
  const xh = keep(
    binary(rt, "mul", keep(binary(rt, "sub", x, mean, shape, st.full, st.row)), rstd, shape, st.full, st.row),
  );
  let dx: GPUBuf | null = null;
  if (want.dx) {
    const g = weight ? keep(binary(rt, "mul", gy, weight, shape, st.full, st.col)) : gy;
    const sg = keep(rt.alloc(rows, "float32")), sgx = keep(rt.alloc(rows, "float32"));
    if (rows > 0) {
      const scalars: UniformScalar[] = [["rows", "u32", rows], ["size", "u32", size], ["inner", "u32", inner]];
      rowKernel(
        rt,
        scalars,
        [["g", g], ["xh", xh]],
        [["sg", sg], ["sgx", sgx]],
        `  var a = 0.0;
  var b = 0.0;
  for (var s = 0u; s < P.size; s++) {
    let j = base + s * P.inner;
    let gv = g[j];
    a += gv;
    b += gv * xh[j];
  }
  sg[gidx] = a;
  sgx[gidx] = b;`,
        rows,
      );
    }
    // rstd · (g − (Σg + x̂ · Σg·x̂) / size)
    const t = keep(
      binary(rt, "add", keep(binary(rt, "mul", xh, sgx, shape, st.full, st.row)), sg, shape, st.full, st.row),
    );
    const d = keep(binary(rt, "sub", g, keep(affine(rt, t, 1 / size, 0)), shape, st.full, st.full));
    dx = binary(rt, "mul", d, rstd, shape, st.full, st.row);
  }
  // Σ over the rows of gy · x̂ and of gy: the pieces laid out (piece, size, rows) in one lazy buffer, one reduction
  const pieces: GPUBuf[] = [];
  if (want.dWeight) pieces.push(keep(binary(rt, "mul", gy, xh, shape, st.full, st.full)));
  if (want.dBias) pieces.push(gy);
  let dWeight: GPUBuf | null = null, dBias: GPUBuf | null = null;
  if (pieces.length > 0) {
    const n = size * rows;
    const stacked = keep(rt.alloc(pieces.length * n, "float32"));
    pieces.forEach((p, k) => {
      // (outer, size, inner) read as (size, outer, inner)
      stridedCopyInto(rt, p, 0, [inner, size * inner, 1], stacked, k * n, [outer * inner, inner, 1], [
        size,
        outer,
        inner,
      ]);
    });
    const sums = keep(reduce(rt, "sum", stacked, pieces.length * size, rows, 1));
    const column = (k: number) => {
      const out = rt.alloc(size, "float32");
      stridedCopyInto(rt, sums, k * size, [1], out, 0, [1], [size]);
      return out;
    };
    if (want.dWeight) dWeight = column(0);
    if (want.dBias) dBias = column(want.dWeight ? 1 : 0);
  }
  freeAll(rt, temps);
  return { dx, dWeight, dBias };
}

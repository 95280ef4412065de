/**
 * Fused layer normalisation kernels of the CPU backend: x viewed as (outer, size, inner), normalised over the
 * middle axis. One kernel reads x twice (statistics) and writes y once, where the composite of reductions and
 * elementwise ops makes seven full passes; statistics and the weight/bias gradient sums are kept in float64.
 * `inner` = 1 is LayerNorm over trailing dims (rows of `size`); `inner` > 1 is the channels-first LayerNorm2d,
 * whose statistics run over `size` planes at once (one float64 accumulator per pixel).
 *
 * @module
 */

import { layerNormBackwardWasm, layerNormForwardWasm } from "./layer_norm_wasm.ts";

/** y = (x − mean)·rstd·w + b per (outer, ·, inner) row; writes mean and rstd, (outer, inner). */
export function layerNormForward(
  x: Float32Array,
  w: Float32Array | null,
  b: Float32Array | null,
  y: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  outer: number,
  size: number,
  inner: number,
  eps: number,
): void {
  if (layerNormForwardWasm(x, w, b, y, mean, rstd, outer, size, inner, eps)) return;
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const base = o * size;
      let s = 0;
      for (let i = 0; i < size; i++) s += x[base + i];
      const m = s / size;
      let v = 0;
      for (let i = 0; i < size; i++) {
        const d = x[base + i] - m;
        v += d * d;
      }
      const r = 1 / Math.sqrt(v / size + eps);
      mean[o] = m;
      rstd[o] = r;
      if (w && b) { for (let i = 0; i < size; i++) y[base + i] = (x[base + i] - m) * r * w[i] + b[i]; }
      else if (w) { for (let i = 0; i < size; i++) y[base + i] = (x[base + i] - m) * r * w[i]; }
      else if (b) { for (let i = 0; i < size; i++) y[base + i] = (x[base + i] - m) * r + b[i]; }
      else for (let i = 0; i < size; i++) y[base + i] = (x[base + i] - m) * r;
    }
    return;
  }
  const m = new Float64Array(inner), v = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * size * inner;
    m.fill(0);
    v.fill(0);
    for (let s = 0; s < size; s++) {
      const row = base + s * inner;
      for (let i = 0; i < inner; i++) m[i] += x[row + i];
    }
    for (let i = 0; i < inner; i++) m[i] /= size;
    for (let s = 0; s < size; s++) {
      const row = base + s * inner;
      for (let i = 0; i < inner; i++) {
        const d = x[row + i] - m[i];
        v[i] += d * d;
      }
    }
    for (let i = 0; i < inner; i++) {
      v[i] = 1 / Math.sqrt(v[i] / size + eps);
      mean[o * inner + i] = m[i];
      rstd[o * inner + i] = v[i];
    }
    for (let s = 0; s < size; s++) {
      const row = base + s * inner, ws = w ? w[s] : 1, bs = b ? b[s] : 0;
      for (let i = 0; i < inner; i++) y[row + i] = (x[row + i] - m[i]) * v[i] * ws + bs;
    }
  }
}

/**
 * Gradients of {@linkcode layerNormForward}: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = gy·w and
 * x̂ = (x − mean)·rstd; dw = Σ gy·x̂ and db = Σ gy over (outer, inner). Each output is optional.
 */
export function layerNormBackward(
  gy: Float32Array,
  x: Float32Array,
  w: Float32Array | null,
  mean: Float32Array,
  rstd: Float32Array,
  dx: Float32Array | null,
  dw: Float32Array | null,
  db: Float32Array | null,
  outer: number,
  size: number,
  inner: number,
): void {
  if (layerNormBackwardWasm(gy, x, w, mean, rstd, dx, dw, db, outer, size, inner)) return;
  const sw = dw ? new Float64Array(size) : null, sb = db ? new Float64Array(size) : null;
  if (inner === 1) {
    // rows of `size`: scalar sums, x̂ recomputed (cheaper than storing it)
    for (let o = 0; o < outer; o++) {
      const base = o * size, m = mean[o], r = rstd[o];
      let sg = 0, sgx = 0;
      for (let i = 0; i < size; i++) {
        const g = gy[base + i], xh = (x[base + i] - m) * r, gw = w ? g * w[i] : g;
        sg += gw;
        sgx += gw * xh;
        if (sw) sw[i] += g * xh;
        if (sb) sb[i] += g;
      }
      if (!dx) continue;
      sg /= size;
      sgx /= size;
      for (let i = 0; i < size; i++) {
        const xh = (x[base + i] - m) * r;
        dx[base + i] = r * ((w ? gy[base + i] * w[i] : gy[base + i]) - sg - xh * sgx);
      }
    }
    if (dw && sw) dw.set(sw);
    if (db && sb) db.set(sb);
    return;
  }
  const sg = new Float64Array(inner), sgx = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * size * inner, stat = o * inner;
    sg.fill(0);
    sgx.fill(0);
    for (let s = 0; s < size; s++) {
      const row = base + s * inner, ws = w ? w[s] : 1;
      let accW = 0, accB = 0;
      for (let i = 0; i < inner; i++) {
        const g = gy[row + i], xh = (x[row + i] - mean[stat + i]) * rstd[stat + i];
        sg[i] += g * ws;
        sgx[i] += g * ws * xh;
        accW += g * xh;
        accB += g;
      }
      if (sw) sw[s] += accW;
      if (sb) sb[s] += accB;
    }
    if (!dx) continue;
    for (let i = 0; i < inner; i++) {
      sg[i] /= size;
      sgx[i] /= size;
    }
    for (let s = 0; s < size; s++) {
      const row = base + s * inner, ws = w ? w[s] : 1;
      for (let i = 0; i < inner; i++) {
        const r = rstd[stat + i], xh = (x[row + i] - mean[stat + i]) * r;
        dx[row + i] = r * (gy[row + i] * ws - sg[i] - xh * sgx[i]);
      }
    }
  }
  if (dw && sw) { for (let s = 0; s < size; s++) dw[s] = sw[s]; }
  if (db && sb) { for (let s = 0; s < size; s++) db[s] = sb[s]; }
}

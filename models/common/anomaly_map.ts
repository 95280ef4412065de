/**
 * The training loss and the anomaly map shared by MambaAD and Wave-MambaAD (docs/paper.md §1.9, §1.10; ADER
 * `util/metric.py::cal_anomaly_map` with `uni_am=False, amap_mode='add', gaussian_sigma=4`).
 *
 * @module
 */

import type { Tensor } from "../../autodiff/tensor.ts";
import { noGrad, tidy } from "../../autodiff/tensor.ts";
import { tensor } from "../../autodiff/ops/creation.ts";
import { add, affine, mul } from "../../autodiff/ops/elementwise.ts";
import { reshape, transpose } from "../../autodiff/ops/shape.ts";
import { max } from "../../autodiff/ops/reduce.ts";
import { matmul } from "../../autodiff/ops/linalg.ts";
import { avgPool2d } from "../../autodiff/ops/conv.ts";
import { interpolate } from "../../autodiff/ops/resize.ts";
import { cosineSimilarity, mseLoss } from "../../nn/losses.ts";
import type { ADFeatures, AnomalyMapResult } from "./anomaly_model.ts";

function checkPairs(op: string, features: ADFeatures): void {
  const { encoder, decoder } = features;
  if (encoder.length === 0 || encoder.length !== decoder.length) {
    throw new Error(
      `${op}: expected as many encoder as decoder features (≥ 1), got ${encoder.length} and ${decoder.length}`,
    );
  }
  encoder.forEach((f, i) => {
    const g = decoder[i];
    if (f.shape.join() !== g.shape.join()) {
      throw new Error(`${op}: scale ${i}: encoder [${f.shape}] and decoder [${g.shape}] features differ in shape`);
    }
  });
}

/**
 * The training loss of docs/paper.md §1.9: Σ_i lam · MSE_mean(f_i, g_i) over the scales (summed, not averaged).
 * Differentiable with respect to the decoder features.
 */
export function adLoss(features: ADFeatures, lam = 5): Tensor {
  checkPairs("adLoss", features);
  return tidy(() => {
    let total: Tensor | null = null;
    features.encoder.forEach((f, i) => {
      const term = mul(mseLoss(features.decoder[i], f), lam);
      total = total ? add(total, term) : term;
    });
    return total!;
  });
}

/**
 * The (n × n) matrix of scipy.ndimage's 1-D Gaussian filter along an axis of length n, mode 'reflect'
 * ('d c b a | a b c d', repeated as often as the radius needs, period 2n), truncate 4.0: radius
 * round(4σ), taps exp(−x²/(2σ²)) normalised to sum 1. Row o holds the weights of the inputs of output o.
 */
export function gaussianMatrix(n: number, sigma: number, truncate = 4.0): Float32Array {
  if (!(sigma > 0)) throw new Error(`gaussianBlur: sigma must be positive, got ${sigma}`);
  if (!Number.isInteger(n) || n < 1) throw new Error(`gaussianBlur: size must be a positive integer, got ${n}`);
  const radius = Math.floor(truncate * sigma + 0.5);
  const taps = new Float64Array(2 * radius + 1);
  let s = 0;
  for (let x = -radius; x <= radius; x++) s += taps[x + radius] = Math.exp(-0.5 * (x * x) / (sigma * sigma));
  const m = new Float64Array(n * n);
  const period = 2 * n;
  for (let o = 0; o < n; o++) {
    for (let x = -radius; x <= radius; x++) {
      let j = ((o + x) % period + period) % period;
      if (j >= n) j = period - 1 - j;
      m[o * n + j] += taps[x + radius] / s;
    }
  }
  return Float32Array.from(m);
}

/**
 * Gaussian blur of the last two dims of `x` (…, H, W) exactly as `scipy.ndimage.gaussian_filter(x, sigma)`
 * per image (mode 'reflect', truncate 4.0: σ = 4 gives 33 taps). The two separable 1-D convolutions with
 * reflect padding are applied as banded matrices (the padding folded in), so any radius works, even one
 * larger than the image (scipy then reflects repeatedly, and so does this). Runs on `x`'s device.
 */
export function gaussianBlur(x: Tensor, sigma: number): Tensor {
  if (x.ndim < 2) throw new Error(`gaussianBlur: expected at least 2 dims (…, H, W), got [${x.shape}]`);
  const [h, w] = x.shape.slice(-2);
  return noGrad(() =>
    tidy(() => {
      const mh = tensor(gaussianMatrix(h, sigma), { shape: [h, h], device: x.device });
      const mwT = transpose(tensor(gaussianMatrix(w, sigma), { shape: [w, w], device: x.device }), 0, 1);
      return matmul(mh, matmul(x, mwT));
    })
  );
}

/** Options of {@linkcode anomalyMapOf}. */
export interface AnomalyMapOfOptions {
  /** Output size S of the square map. */
  size: number;
  /** Gaussian sigma (default 4). */
  sigma?: number;
  /** Average-pool kernel (stride 1) before the max of the image score (default null: none). */
  poolingKs?: number | null;
}

/** The pieces of {@linkcode anomalyMapOf} before the blur, for tests: the per-scale maps and their sum / 9. */
export interface AnomalyMapParts {
  /** (B, S, S) per scale: 1 − cos, upsampled (not divided). */
  perScale: Tensor[];
  /** (B, S, S): Σ perScale / (3 · Σ weights) = / 9, before the blur. */
  unsmoothed: Tensor;
}

/**
 * The per-scale maps and the unsmoothed sum of docs/paper.md §1.10 steps 1-3 (no gradient): per scale
 * 1 − cosine similarity over channels (eps 1e-8, PyTorch 1.13 semantics), bilinear upsampling with
 * align_corners=True to S × S, then the sum divided by 3 · Σ weights = 9 (the official constant).
 */
export function anomalyMapParts(features: ADFeatures, size: number): AnomalyMapParts {
  checkPairs("anomalyMapOf", features);
  return noGrad(() =>
    tidy(() => {
      const perScale = features.encoder.map((f, i) => {
        if (f.ndim !== 4) throw new Error(`anomalyMapOf: scale ${i}: expected (B, C, H, W) features, got [${f.shape}]`);
        const [b, , hh, ww] = f.shape;
        const d = reshape(affine(cosineSimilarity(f, features.decoder[i], 1, 1e-8), -1, 1), [b, 1, hh, ww]);
        const up = interpolate(d, { size: [size, size], mode: "bilinear", alignCorners: true });
        return reshape(up, [b, size, size]);
      });
      let sum = perScale[0];
      for (let i = 1; i < perScale.length; i++) sum = add(sum, perScale[i]);
      // official: anomaly_map / (3 · sum(weights)) with weights = [1, 1, 1] — a constant /9 kept as coded
      return { perScale, unsmoothed: mul(sum, 1 / 9) };
    })
  );
}

/**
 * Anomaly maps and image scores of docs/paper.md §1.10, with no gradient, on the features' device:
 * {@linkcode anomalyMapParts}, then a per-image Gaussian blur ({@linkcode gaussianBlur}, σ = 4 by default),
 * then score = max of the map (after avg_pool2d(k, stride 1) when `poolingKs` is set).
 */
export function anomalyMapOf(features: ADFeatures, opts: AnomalyMapOfOptions): AnomalyMapResult {
  const { size, sigma = 4, poolingKs = null } = opts;
  if (!Number.isInteger(size) || size < 1) {
    throw new Error(`anomalyMapOf: size must be a positive integer, got ${size}`);
  }
  return noGrad(() =>
    tidy(() => {
      const { unsmoothed } = anomalyMapParts(features, size);
      const map = gaussianBlur(unsmoothed, sigma);
      const b = map.shape[0];
      let pooled = map;
      if (poolingKs !== null && poolingKs !== undefined) {
        if (!Number.isInteger(poolingKs) || poolingKs < 1 || poolingKs > size) {
          throw new Error(`anomalyMapOf: poolingKs must be an integer in [1, ${size}], got ${poolingKs}`);
        }
        pooled = avgPool2d(reshape(map, [b, 1, size, size]), poolingKs, { stride: 1 });
      }
      const score = max(reshape(pooled, [b, -1]), 1);
      return { map, score };
    })
  );
}

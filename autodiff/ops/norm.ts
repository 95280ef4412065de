/**
 * Layer normalisation as one op: the backend's fused kernel where it has one (`Backend.layerNorm`), else the
 * composite of reductions and elementwise ops (whose backward is autodiff's).
 *
 * @module
 */

import { record, Tensor } from "../tensor.ts";
import { add, affine, mul, rsqrt, sub } from "./elementwise.ts";
import { mean } from "./reduce.ts";
import { reshape } from "./shape.ts";
import { fmt, numel, requireFloat, sameDevice } from "./util.ts";

/** Options of {@linkcode layerNorm}. */
export interface LayerNormOpOptions {
  /** Scale of the normalised shape, or null. */
  weight?: Tensor | null;
  /** Shift of the normalised shape, or null. */
  bias?: Tensor | null;
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** First normalised dim (default: the trailing dims, `x.ndim − normalizedShape.length`). */
  axis?: number;
}

/**
 * torch.nn.functional.layer_norm: x normalised over the dims `[axis, axis + normalizedShape.length)` (the
 * trailing dims by default) with the biased variance, `(x − mean)/√(var + eps) · weight + bias`. `axis` 1 on
 * (N, C, H, W) with normalizedShape [C] is the channels-first LayerNorm2d.
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  opts: LayerNormOpOptions = {},
): Tensor {
  const shape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
  const k = shape.length, axis = opts.axis ?? x.ndim - k, eps = opts.eps ?? 1e-5;
  const weight = opts.weight ?? null, bias = opts.bias ?? null;
  requireFloat("layerNorm", x);
  sameDevice("layerNorm", x, ...[weight, bias].filter((t): t is Tensor => t !== null));
  const dims = x.shape.slice(axis, axis + k);
  if (axis < 0 || axis + k > x.ndim || dims.join() !== shape.join()) {
    throw new Error(`layerNorm: input ${fmt(x.shape)} has no dims ${fmt(shape)} at axis ${axis}`);
  }
  for (const [name, t] of [["weight", weight], ["bias", bias]] as const) {
    if (t && t.shape.join() !== shape.join()) {
      throw new Error(`layerNorm: ${name} ${fmt(t.shape)} must have the normalised shape ${fmt(shape)}`);
    }
  }
  const outer = numel(x.shape.slice(0, axis)), size = numel(shape), inner = numel(x.shape.slice(axis + k));
  const backend = x.backend;
  if (!backend.layerNorm || !backend.layerNormBackward) {
    // weight/bias broadcast over the dims after the normalised ones
    const perDim = (t: Tensor) => (inner === 1 ? t : reshape(t, [...shape, ...x.shape.slice(axis + k).map(() => 1)]));
    const axes = shape.map((_, i) => axis + i);
    const m = mean(x, axes, true);
    const d = sub(x, m);
    let y = mul(d, rsqrt(affine(mean(mul(d, d), axes, true), 1, eps)));
    if (weight) y = mul(y, perDim(weight));
    if (bias) y = add(y, perDim(bias));
    return y;
  }
  const r = backend.layerNorm(x.buffer, weight?.buffer ?? null, bias?.buffer ?? null, outer, size, inner, eps);
  const device = x.device;
  const y = Tensor.fromBuffer(r.y, x.shape, "float32", device);
  const statShape = [outer, inner];
  const mu = Tensor.fromBuffer(r.mean, statShape, "float32", device);
  const rstd = Tensor.fromBuffer(r.rstd, statShape, "float32", device);
  const inputs = [x, weight, bias].filter((t): t is Tensor => t !== null);
  const saved = [x, mu, rstd, ...(weight ? [weight] : [])];
  const out = record("layerNorm", y, inputs, saved, (g, [sx, sm, sr, sw]) => {
    const want = { dx: x.requiresGrad, dWeight: !!weight?.requiresGrad, dBias: !!bias?.requiresGrad };
    const gr = g.backend.layerNormBackward!(
      g.buffer,
      sx.buffer,
      sw?.buffer ?? null,
      sm.buffer,
      sr.buffer,
      outer,
      size,
      inner,
      want,
    );
    const wrap = (b: typeof gr.dx, s: readonly number[]) => (b ? Tensor.fromBuffer(b, s, "float32", g.device) : null);
    return [
      wrap(gr.dx, x.shape),
      ...(weight ? [wrap(gr.dWeight, shape)] : []),
      ...(bias ? [wrap(gr.dBias, shape)] : []),
    ];
  });
  mu.dispose();
  rstd.dispose();
  return out;
}
